Feature: Timing assertions judge phases against targets, with the margin in the message
  The platform runs compressed 100x, so a command sleeping 0.9 s takes 90 s of platform time.

  Background:
    Given the file "platform.yaml":
      """
      name: timing
      time-scale: 100
      regions:
        here: { role: primary }
        there: { role: failover }
      faults:
        marker:
          description: a marker file stands for a fault
          inject: { run: [sh, -c, "touch faulted"] }
          undo: { run: [sh, -c, "rm -f faulted"] }
      commands:
        wait-90s: { run: [sleep, "0.9"] }
      """
    And the file "drills/timing.feature":
      """
      Feature: timing
        Scenario: in time
          When the fault "marker" is injected
          And the command "wait-90s" is run
          Then "command wait-90s finished" is reached within 3m of "fault injected"

        Scenario: too late
          When the fault "marker" is injected
          And the command "wait-90s" is run
          Then "command wait-90s finished" is reached within 1m of "fault injected"
      """

  Scenario: a phase inside its target passes, a phase past it fails with how far over it was
    When I run `firedrill run drills --platform platform.yaml --json report.json --yes`
    Then the exit code is 1
    And the output contains "met: measured 1m 3"
    And the output contains "against target within 3m ("
    And the output contains "to spare)"
    And the output contains "MISSED: measured 1m 3"
    And the output contains "against target within 1m ("
    And the output contains "over)"
    And the report "report.json" has phase "fault injected → command wait-90s finished" passed in scenario "in time"
    And the report "report.json" has phase "fault injected → command wait-90s finished" failed in scenario "too late"
    And the file "faulted" does not exist

  Scenario: only the selected scenarios run
    When I run `firedrill run drills --platform platform.yaml --name 'in time' --yes`
    Then the exit code is 0
    And the output contains "1 passed, 0 failed"
    And the output does not contain "too late"
