@semiannual @mongo @atlas
Feature: us-west1 is lost for the prod-1 database
  The region-wide database DR case the estate rehearses: Atlas's regional outage simulation
  cuts the network to prod-1's nodes in us-west1. The electable nodes in us-west2 and the
  tie-breaker keep a majority, so a primary is elected in us-west2; writes must come back
  within 45s, and no write acknowledged with w:majority may be lost. Then the
  simulation ends (Atlas says COMPLETE) and the primary returns to us-west1. What Atlas says
  (the simulation's states) and what the driver sees (the primary lost, the new primary) are
  separate milestones on the timeline.

  Scenario: Atlas cuts us-west1 off prod-1's cluster; the primary moves to us-west2 and back
    Given a write checker runs against the "prod-1" database at 50 writes per second
    When Atlas simulates an outage of region "us-west1" for "prod-1"
    Then a new primary is elected within 30s
    And the primary of "prod-1" is in "us-west2"
    When the Atlas outage simulation of "prod-1" ends
    Then the primary of "prod-1" is in "us-west1"
    And writes were unavailable for at most 45s
    And no acknowledged write was lost
