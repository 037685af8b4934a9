@zone @ci
Feature: One us-west1 zone is lost and the region rides it out
  A zone outage is not a regional outage: the storefronts run in three zones, so losing one must
  not trigger a failover, and users may see at most the platform's 1% error-rate SLO while the
  zone's pods are rescheduled onto the other two.

  Scenario: us-west1-a goes down; traffic stays in us-west1 within the SLO
    Given the platform is healthy
    And traffic is served from region "us-west1"
    When zone "us-west1-a" goes down
    And 10m pass
    Then at most 1% of the "front-door" probe's answers were bad
    And traffic is still served from region "us-west1"
