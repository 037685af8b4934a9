@semiannual @mongo
Feature: The prod-1 database flips to us-west2 and back
  Before a regional failover the database primary moves to the failover region by a priority
  reconfig; afterwards it flips back. Both directions must land where they were asked to.

  Scenario: prod-1's primary moves to us-west2 and back to us-west1
    Given a write checker runs against the "prod-1" database at 50 writes per second
    When the database of "prod-1" flips to "us-west2"
    Then the primary of "prod-1" is in "us-west2"
    When the database of "prod-1" flips back to "us-west1"
    Then the primary of "prod-1" is in "us-west1"
    And no acknowledged write was lost
