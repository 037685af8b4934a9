Feature: Stop conditions: the emergency halt and blackout windows
  `firedrill halt` marks the estate halted (here in a file the platform names; on Kubernetes a
  ConfigMap): a running drill stops within one halt interval and undoes everything (exit 5), a
  new run is refused before anything is touched (exit 2) until `firedrill resume`. A blackout
  window refuses a run the same way, unless `--override-blackout` says why, in the report.
  `validate --preflight` says whether a run would start now.
  A marker file stands for a fault: the inject command creates it, the undo removes it.

  Background:
    Given the file "platform.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      faults:
        marker:
          description: a marker file stands for a fault
          inject: { run: [sh, -c, "touch faulted"] }
          undo: { run: [sh, -c, "rm -f faulted"] }
      commands:
        wait-long: { run: [sleep, "30"] }
      safety:
        halt: { file: state/halt.json, interval: 200ms }
      """
    And the file "drills/long.feature":
      """
      Feature: long
        Scenario: a fault, then a long wait
          When the fault "marker" is injected
          And the command "wait-long" is run
      """
    And the file "short/short.feature":
      """
      Feature: short
        Scenario: a fault, undone at the end
          When the fault "marker" is injected
      """

  Scenario: a halt stops a running drill, which undoes everything and exits 5
    When I start `firedrill run drills --platform platform.yaml --yes --json report.json`
    And its output shows "$ sh -c touch faulted"
    Then the file "faulted" exists
    When I run `firedrill halt --platform platform.yaml --reason 'payments incident' --by alice`
    Then the exit code is 0
    And the output contains "HALTED by alice: \"payments incident\""
    When it exits
    Then the exit code is 5
    And the output contains "aborted by emergency halt by alice"
    And the output contains "\"payments incident\"; every fault of this run was undone"
    And the file "faulted" does not exist
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    And the report "report.json" has verdict "aborted" and every fault undone
    And the file "report.json" contains "emergency halt by alice"

  Scenario: a halted estate refuses new runs until resumed, and both are recorded with who and why
    When I run `firedrill halt --platform platform.yaml --reason 'payments incident' --by alice`
    And I run `firedrill run short --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "estate \"local\" is halted: emergency halt by alice"
    And the output contains "nothing was injected"
    And the file "faulted" does not exist
    And the file ".firedrill/ledger.jsonl" does not exist
    When I run `firedrill validate --preflight short --platform platform.yaml`
    Then the exit code is 2
    And the output contains "estate \"local\" is halted: emergency halt by alice"
    When I run `firedrill resume --platform platform.yaml --reason 'incident closed' --by bob`
    Then the exit code is 0
    And the output contains "RESUMED by bob: \"incident closed\""
    And the file "state/halt.json" contains "incident closed"
    And the file "state/halt.json" contains "payments incident"
    When I run `firedrill validate --preflight short --platform platform.yaml`
    Then the exit code is 0
    When I run `firedrill run short --platform platform.yaml --yes`
    Then the exit code is 0

  Scenario: a marker someone wrote by hand halts too
    Given the file "state/halt.json":
      """
      stop everything, the database is on fire
      """
    When I run `firedrill run short --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "stop everything, the database is on fire"

  Scenario: a run inside a blackout window is refused before anything is touched
    Given the file "frozen.yaml":
      """
      name: frozen
      regions:
        here: { role: primary }
        there: { role: failover }
      faults:
        marker:
          description: a marker file stands for a fault
          inject: { run: [sh, -c, "touch faulted"] }
          undo: { run: [sh, -c, "rm -f faulted"] }
      safety:
        blackout:
          time-zone: Europe/Berlin
          freezes:
            - { from: 2000-01-01, to: 2999-12-31, reason: the longest change freeze }
      """
    When I run `firedrill run short --platform frozen.yaml --yes`
    Then the exit code is 2
    And the output contains "platform \"frozen\" is in a blackout: freeze 2000-01-01 to 2999-12-31 Europe/Berlin (\"the longest change freeze\"), until 3000-01-01T00:00:00+01:00[Europe/Berlin]"
    And the output contains "--override-blackout"
    And the file "faulted" does not exist
    And the file ".firedrill/ledger.jsonl" does not exist
    When I run `firedrill validate short --platform frozen.yaml`
    Then the exit code is 0
    When I run `firedrill validate --preflight short --platform frozen.yaml`
    Then the exit code is 2
    And the output contains "platform \"frozen\" is in a blackout"

  Scenario: --override-blackout lets the run in, and the report records the window, who and why
    Given the file "weekly.yaml":
      """
      name: weekly
      regions:
        here: { role: primary }
        there: { role: failover }
      faults:
        marker:
          description: a marker file stands for a fault
          inject: { run: [sh, -c, "touch faulted"] }
          undo: { run: [sh, -c, "rm -f faulted"] }
      safety:
        blackout:
          time-zone: America/Los_Angeles
          weekly:
            - { days: [mon-sun], from: "00:00", to: "24:00", reason: every day is a blackout }
      """
    When I run `firedrill run short --platform weekly.yaml --yes --override-blackout 'postmortem action item' --json report.json`
    Then the exit code is 0
    And the output contains "blackout overridden by"
    And the report "report.json" records the blackout override "postmortem action item" of "weekly window mon-sun 00:00–24:00 America/Los_Angeles"
