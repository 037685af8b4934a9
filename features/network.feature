Feature: Network faults through Toxiproxy: undone exactly, however the drill ends
  The Toxiproxy runs inside the test (firedrill reaches it over its HTTP API), so it outlives a
  SIGKILLed firedrill and the tests read its state through the same API. The platform is not
  the embedded one, so runs need --yes.

  Background:
    Given the file "platform.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      toxiproxy:
        url: ${FIREDRILL_TOXIPROXY_URL:-http://127.0.0.1:9}
        links:
          app-link: { proxy: app }
          db-link: { proxy: db }
      commands:
        fail: { run: [sh, -c, "echo broken >&2; exit 7"] }
        wait-long: { run: [sleep, "30"] }
      """

  Scenario: a drill that fails halfway leaves no toxic behind and the proxy enabled
    Given a Toxiproxy with the proxy "app"
    And the file "drills/failing.feature":
      """
      Feature: failing
        Scenario: latency both ways, a cut, then a failing command
          When the link "app-link" has 300ms latency (±50ms) both
          And the link "app-link" is cut
          And the command "fail" is run
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 1
    And the output contains "injected: link \"app-link\": 300ms ±50ms latency upstream"
    And the output contains "injected: link \"app-link\": 300ms ±50ms latency downstream"
    And the output contains "exited with code 7: broken"
    And the output contains "undone: link \"app-link\": cut"
    And the proxy "app" has 0 toxics
    And the proxy "app" is enabled
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults

  Scenario: a toxic someone else added survives the undo
    Given a Toxiproxy with the proxy "app"
    And the toxic "theirs" was added to the proxy "app" by someone else
    And the file "drills/mine.feature":
      """
      Feature: mine
        Scenario: faults restored by a step and at the end
          When the link "app-link" resets connections
          And the link "app-link" is restored
          And the link "app-link" drops connections after 5s upstream
          And the link "app-link" is limited to 100 KB/s
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 0
    And the output contains "link app-link restored"
    And the proxy "app" has 1 toxic
    And the proxy "app" has the toxic "theirs"

  Scenario: after SIGKILL, recover removes the toxic and enables the proxy, once
    Given a Toxiproxy with the proxy "app"
    And the file "drills/long.feature":
      """
      Feature: long
        Scenario: faults, then a long wait
          When the link "app-link" is limited to 100 KB/s
          And the link "app-link" is cut
          And the command "wait-long" is run
      """
    When I start `firedrill run drills --platform platform.yaml --yes`
    And its output shows "cut (proxy"
    And the proxy "app" becomes disabled
    And I send it SIGKILL
    And it exits
    Then the proxy "app" has 1 toxic
    And the proxy "app" is disabled
    And the ledger ".firedrill/ledger.jsonl" has 2 outstanding faults
    When I run `firedrill recover`
    Then the exit code is 0
    And the proxy "app" has 0 toxics
    And the proxy "app" is enabled
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    When I run `firedrill recover`
    Then the exit code is 0
    And the output contains "nothing to recover"

  Scenario: an unknown link is an error that lists the known links
    Given the file "drills/typo.feature":
      """
      Feature: typo
        Scenario: a misspelt link
          When the link "app-lnk" is cut
      """
    When I run `firedrill validate drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "typo.feature:3:20: When the link \"app-lnk\" is cut: link \"app-lnk\" is not in the platform (hint: known links: \"app-link\" or \"db-link\")"

  Scenario: an unreachable Toxiproxy fails preflight and nothing is injected
    Given the file "drills/cut.feature":
      """
      Feature: cut
        Scenario: a cut
          When the link "app-link" is cut
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "platform.yaml:6:3: Toxiproxy at http://127.0.0.1:9 is unreachable while trying to read the version"
    And the output contains "nothing was injected"
    And the file ".firedrill/ledger.jsonl" does not exist

  Scenario: absurd attributes are reported at their column before anything runs
    Given a Toxiproxy with the proxy "app"
    And the file "drills/absurd.feature":
      """
      Feature: absurd
        Scenario: values no drill means
          When the link "app-link" has 2h latency
          And the link "app-link" has 300ms latency (±1s)
          And the link "app-link" has -300ms latency
          And the link "app-link" is limited to 0 KB/s
          And the link "app-link" drops connections after 90 minutes
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "absurd.feature:3:34: When the link \"app-link\" has 2h latency: latency 2h is out of range (hint: milliseconds between 0 and 3600000 (1 hour))"
    And the output contains "absurd.feature:4:49: And the link \"app-link\" has 300ms latency (±1s): jitter 1s is out of range"
    And the output contains "absurd.feature:5:33: And the link \"app-link\" has -300ms latency: latency -300ms is negative"
    And the output contains "absurd.feature:6:43: And the link \"app-link\" is limited to 0 KB/s: rate 0 is out of range"
    And the output contains "absurd.feature:7:53: And the link \"app-link\" drops connections after 90 minutes: timeout 90 minutes is out of range"
    And the output contains "5 problems found; nothing was injected"
    And the proxy "app" has 0 toxics
    And the file ".firedrill/ledger.jsonl" does not exist

  Scenario: sim up --only toxiproxy serves the API, and links with create: true are created at setup
    Given the file "made.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      toxiproxy:
        url: ${FIREDRILL_TOXIPROXY_URL}
        links:
          made-link: { proxy: made, listen: "127.0.0.1:0", upstream: "127.0.0.1:9", create: true }
      """
    And the file "drills/made.feature":
      """
      Feature: made
        Scenario: latency on a link whose proxy firedrill creates
          When the link "made-link" has 1s latency
      """
    When I start `firedrill sim up --only toxiproxy --env-file tp.env`
    And its output shows "env file: tp.env"
    Given the environment in "tp.env"
    When I run `firedrill run drills --platform made.yaml --yes`
    Then the exit code is 0
    And the output contains "created Toxiproxy proxy \"made\""
    And the proxy "made" has 0 toxics
    And the proxy "made" is enabled

  Scenario: on the embedded platform, latency on a front door link is seen by the probe
    Given the shipped drills and platform
    When I run `firedrill run drills/network.feature --time-scale 20 --json report.json`
    Then the exit code is 0
    And the report "report.json" has verdict "passed" and every fault undone
    And the report "report.json" has a "front-door" probe answer slower than 250ms
