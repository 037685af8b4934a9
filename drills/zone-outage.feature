@zone @ci
Feature: One us-west1 zone is lost and the region rides it out
  A zone outage is not a regional outage: the storefronts run in three zones, so losing one must
  not trigger a failover, and the errors users see while the zone's pods are rescheduled onto
  the other two must stay within the platform's SLO for the service.

  Scenario: us-west1-a goes down; traffic stays in us-west1 within the SLO
    Given the platform is healthy
    And traffic is served from region "us-west1"
    When zone "us-west1-a" goes down
    And 10m pass
    Then the "front-door" probe's error rate is within its SLO
    And traffic is still served from region "us-west1"
