@mongo @ci
Feature: A MongoDB primary is lost
  A primary that steps down (maintenance, a failed node) must be replaced by an election within
  the driver's patience, and no write the database acknowledged with w:majority may be lost.

  # On an Atlas-managed database (prod-1 on the embedded platform and in the reference estate)
  # the step-down is Atlas's test failover (restartPrimaries); on a self-managed one (prod-1 on
  # kind) it is replSetStepDown.
  Scenario: the primary steps down; a new one is elected and no majority write is lost
    Given a write checker runs against the "prod-1" database at 50 writes per second
    When the primary of "prod-1" is stepped down
    Then a new primary is elected within 12s
    And writes were unavailable for at most 15s
    And no acknowledged write was lost

  # A killed primary is noticed only after the election timeout (10s, plus up to 1.5s jitter).
  # @member-kill: the platform must declare how a killed member comes back (databases.<db>.kill).
  @member-kill
  Scenario: the primary is killed; a new one is elected and no majority write is lost
    Given a write checker runs against the "prod-2" database at 50 writes per second
    When the primary of "prod-2" is killed
    Then a new primary is elected within 20s
    And no acknowledged write was lost
