Feature: Kubernetes zone and region faults on the embedded platform
  The embedded platform runs one Kubernetes API server per region (contexts us-west1 and
  us-west2): storefront runs in prod-1..3 on us-west1's three zones, us-west2 holds the same
  deployments at 0 replicas.

  Scenario: a zone outage and the failover scale-up pass, and both are undone
    Given the file "drills/zone.feature":
      """
      Feature: zone
        Scenario: us-west1-a goes down and us-west2 is scaled up
          When zone "us-west1-a" goes down
          And the failover cluster in "us-west2" is scaled up
          Then the failover pods in "us-west2" are ready within 15m
      """
    When I run `firedrill run drills --json report.json`
    Then the exit code is 0
    And the output contains "injected: zone-outage us-west1-a: taint 3 nodes firedrill.dev/zone-outage:NoExecute"
    And the output contains "zone drained: us-west1-a"
    And the output contains "first failover pod ready"
    And the output contains "failover pods ready"
    And the output contains "undone: zone-outage us-west1-a"
    And the output contains "undone: failover-scale-up us-west2"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    And the report "report.json" has verdict "passed" and every fault undone

  Scenario: pods replaced in a namespace that had to stay untouched fail the drill, and the faults are undone
    Given the file "drills/untouched.feature":
      """
      Feature: untouched
        Scenario: a zone outage touches every namespace
          When zone "us-west1-b" goes down
          And region "us-west1" goes dark
          And the failover cluster in "us-west2" is scaled up
          Then the failover pods in "us-west2" are ready within 15m
          And namespaces "prod-2" and "prod-3" were never touched
      """
    When I run `firedrill run drills`
    Then the exit code is 1
    And the output contains "namespaces \"prod-2\" and \"prod-3\" were touched since the scenario started"
    And the output contains "[us-west1] deployment prod-2/storefront was scaled from"
    And the output contains "undone: zone-outage us-west1-b"
    And the output contains "undone: region-dark us-west1"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: unknown zones, regions and namespaces are named with the known ones
    Given the file "drills/bad.feature":
      """
      Feature: bad
        Scenario: names the platform lacks
          When zone "us-east1-a" goes down
          And region "eu-west1" goes dark
          Then namespaces "prod-2" and "prod-9" were never touched
      """
    When I run `firedrill validate drills`
    Then the exit code is 2
    And the output contains "zone \"us-east1-a\" is not in any region of the platform"
    And the output contains "known zones"
    And the output contains "region \"eu-west1\" is not in the platform"
    And the output contains "namespace \"prod-9\" is not in the platform"
    And the output contains "known namespaces"

  Scenario: a fault elsewhere leaves the namespaces untouched, and a scale-down touches them
    (Each scenario compares with its own start: pods a previous scenario's undo re-created are
    not its doing.)
    Given the file "drills/scaled.feature":
      """
      Feature: scaled
        Scenario: only the front door loses us-west1
          When the fault "us-west1-dark" is injected
          Then namespaces "prod-1", "prod-2" and "prod-3" were never touched

        Scenario: us-west1 goes dark
          When region "us-west1" goes dark
          Then namespace "prod-3" was never touched
      """
    When I run `firedrill run drills`
    Then the exit code is 1
    And the output contains "[us-west1] deployment prod-3/storefront was scaled from 3 to 0 replicas"
    And the output contains "1 passed, 1 failed"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: a pod kill takes half the storefront pods of prod-1, leaves the other namespaces alone, and waits for replacements
    Given the file "drills/kill.feature":
      """
      Feature: kill
        Scenario: half the prod-1 pods are killed
          When 50% of the pods of "app=storefront" in "prod-1" are killed
          Then namespaces "prod-2" and "prod-3" were never touched
      """
    When I run `firedrill run drills`
    Then the exit code is 0
    And the output contains "injected: pod-kill 2 of \"app=storefront\" in prod-1"
    And the output contains "undone: pod-kill 2 of \"app=storefront\" in prod-1"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
