@network @ci
Feature: Network faults between the front door and us-west1
  The front door reaches each region's application through a Toxiproxy link. A slow link must
  not cost users their answers; a cut link is an outage that must be seen quickly, and the
  service must answer again once the link is restored.

  Scenario: 300ms of latency on the us-west1 link slows answers but keeps the service answering
    Given the platform is healthy
    And traffic is served from region "us-west1"
    When the link "front-door-to-us-west1" has 300ms latency (±50ms)
    Then the "front-door" probe gets 3 good answers slower than 250ms within 2m
    And at most 0% of the "front-door" probe's answers were bad

  Scenario: a cut us-west1 link is an outage, and the service answers again once it is restored
    Given the platform is healthy
    And traffic is served from region "us-west1"
    When the link "front-door-to-us-west1" is cut
    Then the outage is detected within 1m
    When the link "front-door-to-us-west1" is restored
    Then the service answers from "us-west1" within 2m of "link front-door-to-us-west1 restored"
    And the recovery time is within the 3m target
