@mongo @atlas
Feature: MongoDB Atlas drills through the embedded Atlas Administration API
  On the embedded platform prod-1 is an Atlas cluster: firedrill reaches it only over the Atlas
  Administration API (digest-authenticated), which cuts, steps down and reconfigures the
  embedded replica set underneath. The drills run from another process against
  `firedrill sim up`, so a SIGKILL of the drill leaves Atlas as it was for `firedrill recover`.

  Background:
    Given the embedded platform runs in the background with --env-file "fd.env"
    And the file "drills/outage.feature":
      """
      Feature: outage
        Scenario: us-west1 is cut off prod-1
          Given a write checker runs against the "prod-1" database at 20 writes per second
          When Atlas simulates an outage of region "us-west1" for "prod-1"
          Then a new primary is elected within 30s
          And the primary of "prod-1" is in "us-west2"
          When the Atlas outage simulation of "prod-1" ends
          Then the primary of "prod-1" is in "us-west1"
          And no acknowledged write was lost
      """
    And the file "drills/check.feature":
      """
      Feature: check
        Scenario: where is the primary
          Then the primary of "prod-1" is in "us-west1"
      """

  Scenario: an outage simulation walks Atlas's states, moves the primary and loses no write
    Given the environment in "fd.env"
    When I run `firedrill run drills/outage.feature --platform fd.env.platform.yaml --yes --json report.json`
    Then the exit code is 0
    And the output contains "atlas outage simulation START_REQUESTED: prod-1"
    And the output contains "atlas outage simulation SIMULATING: prod-1"
    And the output contains "new primary elected in us-west2"
    And the output contains "atlas outage simulation RECOVERING: prod-1"
    And the output contains "new primary elected in us-west1"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    And the output does not contain the value of "FIREDRILL_ATLAS_PRIVATE_KEY"
    And the file "report.json" does not contain the value of "FIREDRILL_ATLAS_PRIVATE_KEY"
    And the file ".firedrill/ledger.jsonl" does not contain the value of "FIREDRILL_ATLAS_PRIVATE_KEY"
    And the file "report.json" does not contain the value of "FIREDRILL_ATLAS_PUBLIC_KEY"

  Scenario: a test failover elects another primary and waits for the cluster to be IDLE
    Given the file "drills/failover.feature":
      """
      Feature: failover
        Scenario: test failover
          Given a write checker runs against the "prod-1" database at 20 writes per second
          When Atlas fails over the primary of "prod-1"
          Then a new primary is elected within 20s
          And no acknowledged write was lost
      """
    When I run `firedrill run drills/failover.feature --platform fd.env.platform.yaml --yes`
    Then the exit code is 0
    And the output contains "injected: Atlas test failover of prod-1"
    And the output contains "undone: Atlas test failover of prod-1"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: credentials without the Project Owner role are refused at preflight, naming nothing secret
    Given the environment in "fd.env"
    And the file "read-only.yaml":
      """
      name: read-only
      regions:
        us-west1: { role: primary }
        us-west2: { role: failover }
      namespaces:
        prod-1: { database: prod-1 }
      databases:
        prod-1:
          replica-set: rs-prod-1
          uri: { file: fd.env.prod-1.uri }
          atlas:
            url: ${FIREDRILL_ATLAS_URL}
            project-id: ${FIREDRILL_ATLAS_PROJECT_ID}
            cluster: prod-1
            api-key:
              public-key: { env: FIREDRILL_ATLAS_READONLY_PUBLIC_KEY }
              private-key: { env: FIREDRILL_ATLAS_READONLY_PRIVATE_KEY }
            regions: { us-west1: WESTERN_US, us-west2: US_WEST_2 }
      safety:
        allow:
          replica-sets: [rs-prod-1]
      """
    When I run `firedrill run drills/outage.feature --platform read-only.yaml --yes`
    Then the exit code is 2
    And the output contains "Atlas cluster \"prod-1\" (database \"prod-1\"): an outage simulation needs the Project Owner role, which the API key lacks"
    And the output contains "nothing was injected"
    And the output does not contain the value of "FIREDRILL_ATLAS_READONLY_PRIVATE_KEY"
    And the file ".firedrill/ledger.jsonl" does not exist

  Scenario: recover after a SIGKILL mid-simulation ends the simulation and brings the primary home
    Given the file "drills/stay.feature":
      """
      Feature: stay
        Scenario: cut and stay
          When Atlas simulates an outage of region "us-west1" for "prod-1"
          Then a new primary is elected within 30s
          And the primary of "prod-1" is in "us-west2"
          And "never" is reached within 1h of "mongo fault: prod-1"
      """
    When I start `firedrill run drills/stay.feature --platform fd.env.platform.yaml --yes`
    And its output shows "atlas outage simulation SIMULATING: prod-1"
    And its output shows "new primary elected in us-west2"
    And I send it SIGKILL
    And it exits
    Then the ledger ".firedrill/ledger.jsonl" has 1 outstanding fault
    When I run `firedrill recover`
    Then the exit code is 0
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    When I run `firedrill run drills/check.feature --platform fd.env.platform.yaml --yes`
    Then the exit code is 0
