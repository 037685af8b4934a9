@mongo
Feature: MongoDB drills against the embedded replica sets
  `firedrill sim up --env-file` runs the embedded platform in the background; drills run
  against its platform file from another process, so a SIGKILL of the drill leaves the replica
  sets as they were for `firedrill recover`.

  Background:
    Given the embedded platform runs in the background with --env-file "fd.env"
    And the file "drills/check.feature":
      """
      Feature: check
        Scenario: where is the primary
          Then the primary of "prod-1" is in "us-west1"
      """

  # prod-1 is an Atlas cluster on the embedded platform: its flip is a PATCH of the region
  # priorities through the embedded Atlas Administration API.
  Scenario: the flip puts the primary in the target region, and flipping back restores it
    Given the file "drills/flip.feature":
      """
      Feature: flip
        Scenario: flip and back
          When the database of "prod-1" flips to "us-west2"
          Then the primary of "prod-1" is in "us-west2"
          When the database of "prod-1" flips back
          Then the primary of "prod-1" is in "us-west1"
      """
    When I run `firedrill run drills/flip.feature --platform fd.env.platform.yaml --yes`
    Then the exit code is 0
    And the output contains "atlas cluster UPDATING: prod-1"
    And the output contains "atlas cluster IDLE: prod-1"
    And the output contains "new primary elected in us-west2"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: recover after a SIGKILL mid-flip restores the original config
    Given the file "drills/flip.feature":
      """
      Feature: flip
        Scenario: flip and stay
          When the database of "prod-1" flips to "us-west2"
          Then the primary of "prod-1" is in "us-west2"
          And "never" is reached within 1h of "database flip started: prod-1"
      """
    When I start `firedrill run drills/flip.feature --platform fd.env.platform.yaml --yes`
    And its output shows "new primary elected in us-west2"
    And I send it SIGKILL
    And it exits
    Then the ledger ".firedrill/ledger.jsonl" has 1 outstanding fault
    When I run `firedrill recover`
    Then the exit code is 0
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    When I run `firedrill run drills/check.feature --platform fd.env.platform.yaml --yes`
    Then the exit code is 0

  Scenario: a replica set name that does not match stops the run before anything is injected
    Given the file "platform.yaml":
      """
      name: wrong-set
      regions:
        us-west1: { role: primary }
        us-west2: { role: failover }
      namespaces:
        prod-1: { database: prod-1 }
      databases:
        prod-1:
          replica-set: rs-somewhere-else
          uri: { file: fd.env.prod-1.uri }
      safety:
        allow:
          replica-sets: [rs-somewhere-else]
      """
    And the file "drills/stepdown.feature":
      """
      Feature: stepdown
        Scenario: step down
          When the Mongo primary of "prod-1" is stepped down
      """
    When I run `firedrill run drills/stepdown.feature --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "belongs to replica set \"rs-prod-1\", but the platform says \"rs-somewhere-else\""
    And the file ".firedrill/ledger.jsonl" does not exist
    When I run `firedrill run drills/check.feature --platform fd.env.platform.yaml --yes`
    Then the exit code is 0

  Scenario: an unreachable member and a password in the URI: a clear error, and the password never shows
    Given the file "secret.uri":
      """
      mongodb://drill-admin:hunter2-s3cret@127.0.0.1:9/?replicaSet=rs0&serverSelectionTimeoutMS=200
      """
    And the file "platform.yaml":
      """
      name: unreachable
      regions:
        us-west1: { role: primary }
        us-west2: { role: failover }
      namespaces:
        prod-1: { database: prod-1 }
      databases:
        prod-1:
          replica-set: rs0
          uri: { file: secret.uri }
      safety:
        allow:
          replica-sets: [rs0]
      """
    And the file "drills/stepdown.feature":
      """
      Feature: stepdown
        Scenario: step down
          When the Mongo primary of "prod-1" is stepped down
      """
    When I run `firedrill run drills/stepdown.feature --platform platform.yaml --yes --json report.json`
    Then the exit code is 2
    And the output contains "member 127.0.0.1:9 is unreachable"
    And the output does not contain "hunter2-s3cret"
    And the output does not contain "drill-admin:"
    And the file ".firedrill/ledger.jsonl" does not exist

  Scenario: a replica set the safety allow-list does not name is refused by validate
    Given the file "platform.yaml":
      """
      name: not-allowed
      regions:
        us-west1: { role: primary }
        us-west2: { role: failover }
      namespaces:
        prod-1: { database: prod-1 }
      databases:
        prod-1:
          replica-set: rs-prod-1
          uri: { env: NOT_NEEDED_FOR_VALIDATE }
      """
    And the file "drills/stepdown.feature":
      """
      Feature: stepdown
        Scenario: step down
          When the Mongo primary of "prod-1" is stepped down
      """
    When I run `firedrill validate drills/stepdown.feature --platform platform.yaml`
    Then the exit code is 2
    And the output contains "replica set \"rs-prod-1\" of database \"prod-1\" is not allowed"

  Scenario: sim up --only mongo runs only the replica sets and writes their connection strings
    When I start `firedrill sim up --only mongo --time-scale 50 --env-file mongo.env`
    And its output shows "prod-3 (rs-prod-3): mongodb://127.0.0.1:"
    Then the file "mongo.env" contains "FIREDRILL_MONGO_URI_PROD_1='mongodb://127.0.0.1:"
    And the file "mongo.env" contains "FIREDRILL_MONGO_URI_PROD_3='mongodb://127.0.0.1:"
    And the file "fd.env" contains "FIREDRILL_MONGO_URI_PROD_2='mongodb://127.0.0.1:"
    When I send it SIGINT
    And it exits
    Then the output does not contain "front door"

  Scenario: a primary killed from another process comes back through the platform's restart command
    Given the file "drills/kill.feature":
      """
      Feature: kill
        Scenario: kill
          When the Mongo primary of "prod-2" is killed
          Then a new primary is elected within 1m
      """
    And the file "drills/check-prod-2.feature":
      """
      Feature: check
        Scenario: where is the primary
          Then the primary of "prod-2" is in "us-west1"
      """
    When I run `firedrill run drills/kill.feature --platform fd.env.platform.yaml --yes`
    Then the exit code is 0
    And the output contains "undone: kill of the primary 127.0.0.1:"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    When I run `firedrill run drills/check-prod-2.feature --platform fd.env.platform.yaml --yes`
    Then the exit code is 0

  Scenario: killing a primary with no way to bring it back is refused at preflight
    Given the file "drills/kill.feature":
      """
      Feature: kill
        Scenario: kill
          When the Mongo primary of "prod-1" is killed
      """
    And the file "no-way-back.yaml":
      """
      name: no-way-back
      regions:
        us-west1: { role: primary }
        us-west2: { role: failover }
      namespaces:
        prod-1: { database: prod-1 }
      databases:
        prod-1:
          replica-set: rs-prod-1
          uri: { file: fd.env.prod-1.uri }
      safety:
        allow:
          replica-sets: [rs-prod-1]
      """
    When I run `firedrill run drills/kill.feature --platform no-way-back.yaml --yes`
    Then the exit code is 2
    And the output contains "database \"prod-1\" has no way to bring a killed member back"
    And the output contains "set databases.prod-1.kill"
    And the file ".firedrill/ledger.jsonl" does not exist
