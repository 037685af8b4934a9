@gameday @region
Feature: GameDay — the regional failover, one approved step at a time
  The quarterly failover run as a GameDay: the team walks the runbook together, and a person
  approves each change at a prompt before it acts (`--auto-approve` in CI). The time spent at the
  prompt counts: a GameDay measures the decisions as well as the machines. A @gameday scenario
  runs only when --tags names @gameday: `firedrill run --tags @gameday`.

  Scenario: us-west1 goes dark; each change is approved; the application fails over to us-west2
    Given the platform is healthy
    And traffic is served from region "us-west1"
    When region "us-west1" goes dark
    Then the outage is detected within 2m
    When the failover cluster in "us-west2" is scaled up
    Then the failover pods in "us-west2" are ready within 15m
    When traffic is switched to region "us-west2"
    Then the service answers from "us-west2" within 25m of the fault
    And the failover time is within its target
