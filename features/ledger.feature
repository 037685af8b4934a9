Feature: The ledger: every fault is undone however a drill ends
  A marker file stands for a fault: the inject command creates it, the undo removes it. The
  platform is not the embedded one, so runs need --yes.

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
        stubborn:
          description: a fault whose undo fails until allowed
          inject: { run: [sh, -c, "touch faulted"] }
          undo: { run: [sh, -c, "test -f allow-undo && rm -f faulted"] }
      commands:
        fail: { run: [sh, -c, "echo broken >&2; exit 7"] }
        wait-long: { run: [sleep, "30"] }
      """

  Scenario: a failing drill undoes its faults
    Given the file "drills/failing.feature":
      """
      Feature: failing
        Scenario: the command after the fault fails
          When the fault "marker" is injected
          And the command "fail" is run
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 1
    And the output contains "exited with code 7: broken"
    And the output contains "undone: marker"
    And the file "faulted" does not exist
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario Outline: <signal> mid-drill undoes the faults and exits 3
    Given the file "drills/long.feature":
      """
      Feature: long
        Scenario: a fault, then a long wait
          When the fault "marker" is injected
          And the command "wait-long" is run
      """
    When I start `firedrill run drills --platform platform.yaml --yes`
    And its output shows "$ sh -c touch faulted"
    Then the file "faulted" exists
    When I send it <signal>
    And it exits
    Then the exit code is 3
    And the output contains "aborted by"
    And the file "faulted" does not exist
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

    Examples:
      | signal  |
      | SIGINT  |
      | SIGTERM |

  Scenario: after SIGKILL, recover applies the undo, and a second recover is a no-op
    Given the file "drills/long.feature":
      """
      Feature: long
        Scenario: a fault, then a long wait
          When the fault "marker" is injected
          And the command "wait-long" is run
      """
    When I start `firedrill run drills --platform platform.yaml --yes`
    And its output shows "$ sh -c touch faulted"
    And I send it SIGKILL
    And it exits
    Then the file "faulted" exists
    And the ledger ".firedrill/ledger.jsonl" has 1 outstanding fault
    When I run `firedrill recover`
    Then the exit code is 0
    And the output contains "undone"
    And the file "faulted" does not exist
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    When I run `firedrill recover`
    Then the exit code is 0
    And the output contains "nothing to recover"

  Scenario: an undo that fails exits 4, and recover finishes the job once the cause is fixed
    Given the file "drills/stubborn.feature":
      """
      Feature: stubborn
        Scenario: the undo is refused
          When the fault "stubborn" is injected
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 4
    And the output contains "UNDO FAILED"
    And the output contains "firedrill recover"
    And the file "faulted" exists
    And the ledger ".firedrill/ledger.jsonl" has 1 outstanding fault
    Given the file "allow-undo":
      """
      yes
      """
    When I run `firedrill recover`
    Then the exit code is 0
    And the file "faulted" does not exist

  Scenario: a real platform is not touched without --yes when not on a terminal
    Given the file "drills/failing.feature":
      """
      Feature: failing
        Scenario: a fault
          When the fault "marker" is injected
      """
    When I run `firedrill run drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "refusing to inject 1 change(s) into platform \"local\""
    And the output contains "--yes"
    And the file "faulted" does not exist
    And the file ".firedrill/ledger.jsonl" does not exist
