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

  Scenario: a torn tail is ended by the next run, so recover after that run's crash applies every undo
    Given the file "drills/long.feature":
      """
      Feature: long
        Scenario: a fault, then a long wait
          When the fault "marker" is injected
          And the command "wait-long" is run
      """
    And the file ".firedrill/ledger.jsonl" holds these lines, the last one torn:
      """
      {"v":1,"op":"begin","run":"dead","platform":"platform.yaml","in_process":false,"at":"2025-01-01T00:00:00.000Z"}
      {"v":1,"op":"inject","id":"dead/1","run":"dead","scen
      """
    When I start `firedrill run drills --platform platform.yaml --yes`
    And its output shows "$ sh -c touch faulted"
    And I send it SIGKILL
    And it exits
    Then the file "faulted" exists
    When I run `firedrill recover`
    Then the exit code is 0
    And the output contains "recovered"
    And the file "faulted" does not exist
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    And the ledger ".firedrill/ledger.jsonl" has no unreadable lines

  Scenario: a line recover cannot read is named by file:line, every other undo is applied, and it exits 4
    Given the file "faulted":
      """
      left behind by a crashed run
      """
    And the file ".firedrill/ledger.jsonl" holds these lines:
      """
      {"op":"begin","run":"old","platform":"platform.yaml","in_process":false,"at":"2025-01-01T00:00:00.000Z"}
      this line is not json
      {"op":"inject","id":"old/1","run":"old","scenario":"s","fault":"marker","undo":{"provider":"command","command":{"kind":"fault-undo","fault":"marker"},"run":["sh","-c","rm -f faulted"]},"at":"2025-01-01T00:00:01.000Z"}
      {"v":2,"op":"inject","id":"future/1","run":"future","fault":"from a newer firedrill"}
      """
    When I run `firedrill recover`
    Then the exit code is 4
    And the file "faulted" does not exist
    And the output contains ".firedrill/ledger.jsonl:2: not JSON"
    And the output contains ".firedrill/ledger.jsonl:4: ledger format version 2"
    And the output contains "fault \"from a newer firedrill\", id \"future/1\""
    And the output contains "UNDO INCOMPLETE"
    And the output does not contain "recovered"
    When I run `firedrill recover`
    Then the exit code is 4
    And the output does not contain "nothing to recover"

  Scenario: a complete last line that does not parse is not taken for a torn one
    Given the file ".firedrill/ledger.jsonl" holds these lines:
      """
      {"v":1,"op":"begin","run":"old","platform":"platform.yaml","in_process":false,"at":"2025-01-01T00:00:00.000Z"}
      {"v":1,"op":"inject","id":"old/2","fault":"latency 300ms"}
      """
    When I run `firedrill recover`
    Then the exit code is 4
    And the output contains ".firedrill/ledger.jsonl:2: not a ledger entry this firedrill knows"
    And the output contains "fault \"latency 300ms\", id \"old/2\""
    And the output does not contain "nothing to recover"

  Scenario: a run does not start over another run's outstanding undo, and starts once it is recovered
    Given the file "faulted":
      """
      left behind by a crashed run
      """
    And the file ".firedrill/ledger.jsonl" holds these lines:
      """
      {"v":1,"op":"begin","run":"old","platform":"platform.yaml","in_process":false,"pid":1,"at":"2025-01-01T00:00:00.000Z"}
      {"v":1,"op":"inject","id":"old/1","run":"old","scenario":"s","fault":"marker","undo":{"provider":"command","command":{"kind":"fault-undo","fault":"marker"},"run":["sh","-c","rm -f faulted"]},"at":"2025-01-01T00:00:01.000Z"}
      """
    And the file "drills/failing.feature":
      """
      Feature: one fault
        Scenario: a fault
          When the fault "marker" is injected
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "outstanding: \"marker\" (old/1) of run old, injected 2025-01-01T00:00:01.000Z"
    And the output contains "firedrill recover --ledger .firedrill/ledger.jsonl"
    And the output does not contain "injected: marker"
    And the file ".firedrill/ledger.jsonl" has 2 lines
    When I run `firedrill recover`
    Then the exit code is 0
    And the file "faulted" does not exist
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 0
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: the undos of an in-process run that ended are moot, and the next run says so and starts
    Given the file ".firedrill/ledger.jsonl" holds these lines:
      """
      {"v":1,"op":"begin","run":"emb","platform":"embedded","in_process":true,"pid":1,"at":"2025-01-01T00:00:00.000Z"}
      {"v":1,"op":"inject","id":"emb/1","run":"emb","scenario":"s","fault":"region-dark us-west1","undo":{"provider":"command","command":{"kind":"fault-undo","fault":"marker"},"run":["true"]},"at":"2025-01-01T00:00:01.000Z"}
      """
    And the file "drills/failing.feature":
      """
      Feature: one fault
        Scenario: a fault
          When the fault "marker" is injected
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 0
    And the output contains "ledger: \"region-dark us-west1\" (emb/1) of run emb, injected 2025-01-01T00:00:01.000Z needs no undo: its platform ran inside that firedrill process and ended with it"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: while a run holds the ledger, a second run and recover are refused; recover --ignore-lock is not
    Given the file "drills/long.feature":
      """
      Feature: long
        Scenario: a fault, then a long wait
          When the fault "marker" is injected
          And the command "wait-long" is run
      """
    When I start `firedrill run drills --platform platform.yaml --yes`
    And its output shows "$ sh -c touch faulted"
    And I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "is locked by a firedrill that is still running"
    And the output contains "kill -TERM"
    When I run `firedrill recover`
    Then the exit code is 2
    And the output contains "recover does not race a running drill: nothing was undone"
    And the file "faulted" exists
    When I run `firedrill recover --ignore-lock`
    Then the exit code is 0
    And the file "faulted" does not exist
    When I send it SIGTERM
    And it exits
    Then the exit code is 3
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: recover's problems say nothing about what was injected
    Given the file ".firedrill/ledger.jsonl" holds these lines:
      """
      {"v":1,"op":"begin","run":"old","platform":"gone.yaml","in_process":false,"at":"2025-01-01T00:00:00.000Z"}
      {"v":1,"op":"inject","id":"old/1","run":"old","scenario":"s","fault":"marker","undo":{"provider":"command","command":{"kind":"fault-undo","fault":"marker"},"run":["true"]},"at":"2025-01-01T00:00:01.000Z"}
      """
    When I run `firedrill recover`
    Then the exit code is 4
    And the output contains "cannot load its platform gone.yaml"
    And the output contains "1 problem found"
    And the output does not contain "nothing was injected"

  Scenario: a ledger on a full disk refuses the run before anything is injected
    Given the file "drills/failing.feature":
      """
      Feature: one fault
        Scenario: a fault
          When the fault "marker" is injected
      """
    When I run `firedrill run drills --platform platform.yaml --yes --ledger /dev/full`
    Then the exit code is 2
    And the output contains "cannot write the ledger /dev/full"
    And the output does not contain "injected: marker"
    And the file "faulted" does not exist

  Scenario: an undo recover cannot record stays outstanding, and recover exits 4
    Given the file "faulted":
      """
      left behind by a crashed run
      """
    And the file ".firedrill/ledger.jsonl" holds these lines:
      """
      {"v":1,"op":"begin","run":"old","platform":"platform.yaml","in_process":false,"at":"2025-01-01T00:00:00.000Z"}
      {"v":1,"op":"inject","id":"old/1","run":"old","scenario":"s","fault":"marker","undo":{"provider":"command","command":{"kind":"fault-undo","fault":"marker"},"run":["sh","-c","rm -f faulted"]},"at":"2025-01-01T00:00:01.000Z"}
      """
    When I run `firedrill recover` where no file may grow
    Then the exit code is 4
    And the output contains "the ledger could not record it, so it stays outstanding"
    And the file "faulted" does not exist
    And the ledger ".firedrill/ledger.jsonl" has 1 outstanding fault
    When I run `firedrill recover`
    Then the exit code is 0
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: an undo that failed before a later one succeeded is retried once, as a drill's own undo is
    Given the file "retry.yaml":
      """
      name: retry
      regions:
        here: { role: primary }
        there: { role: failover }
      faults:
        lock:
          description: its undo opens the way for the other one
          inject: { run: [sh, -c, "true"] }
          undo: { run: [sh, -c, "touch allow-undo"] }
        stubborn:
          description: a fault whose undo fails until allowed
          inject: { run: [sh, -c, "touch faulted"] }
          undo: { run: [sh, -c, "test -f allow-undo && rm -f faulted"] }
      """
    And the file "faulted":
      """
      left behind by a crashed run
      """
    And the file ".firedrill/ledger.jsonl" holds these lines:
      """
      {"v":1,"op":"begin","run":"old","platform":"retry.yaml","in_process":false,"at":"2025-01-01T00:00:00.000Z"}
      {"v":1,"op":"inject","id":"old/1","run":"old","scenario":"s","fault":"lock","undo":{"provider":"command","command":{"kind":"fault-undo","fault":"lock"},"run":["sh","-c","touch allow-undo"]},"at":"2025-01-01T00:00:01.000Z"}
      {"v":1,"op":"inject","id":"old/2","run":"old","scenario":"s","fault":"stubborn","undo":{"provider":"command","command":{"kind":"fault-undo","fault":"stubborn"},"run":["sh","-c","test -f allow-undo && rm -f faulted"]},"at":"2025-01-01T00:00:02.000Z"}
      """
    When I run `firedrill recover`
    Then the exit code is 0
    And the output contains "retrying stubborn (old/2)"
    And the file "faulted" does not exist
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
