Feature: Bad input is a clear error with file:line:column and a hint, and nothing is injected

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
      traffic:
        probe: service
        switch: { run: [sh, -c, "echo {region}"] }
      probes:
        service: { url: "http://127.0.0.1:9/", region-header: x-served-by }
      targets:
        failover: 20m..25m
      """

  Scenario: malformed YAML names the line
    Given the file "broken.yaml":
      """
      name: local
      regions:
        here: { role: primary
      """
    When I run `firedrill validate --platform broken.yaml`
    Then the exit code is 2
    And the output contains "broken.yaml:4:"
    And the output contains "invalid platform file"

  Scenario: an unknown key names the key, its line and column
    Given the file "typo.yaml":
      """
      name: local
      regions:
        here:
          role: primary
          zonez: [a]
      """
    When I run `firedrill validate --platform typo.yaml`
    Then the exit code is 2
    And the output contains "typo.yaml:5:5: invalid platform file: regions.here: unknown field `zonez`"
    And the output contains "hint:"

  Scenario: a missing environment variable is named with its position
    Given the file "env.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      toxiproxy:
        url: ${FIREDRILL_TEST_UNSET_TOXIPROXY}
      """
    When I run `firedrill validate --platform env.yaml`
    Then the exit code is 2
    And the output contains "env.yaml:6:8: environment variable FIREDRILL_TEST_UNSET_TOXIPROXY is not set"

  Scenario: a database URI written inline is refused: it may hold a password
    Given the file "secret.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      databases:
        prod-1:
          replica-set: rs0
          uri: "mongodb://admin:hunter2@db:27017"
      """
    When I run `firedrill validate --platform secret.yaml`
    Then the exit code is 2
    And the output contains "secret.yaml:8:10: invalid platform file: databases.prod-1.uri: invalid type: string, expected struct SecretRef"
    And the output does not contain "hunter2"
    And the output contains "1 problem found"

  Scenario: every problem in the drills is reported at once, each located, with hints
    Given the file "drills/bad.feature":
      """
      Feature: bad
        Scenario: many mistakes
          When traffic is swiched to "there"
          And traffic is switched to "us-east9"
          And the fault "nope" is injected
          Then the outage is detected within 5x
          And the failover time is within the 25m..20m target
      """
    When I run `firedrill validate drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "bad.feature:3:10: undefined step: When traffic is swiched to \"there\""
    And the output contains "the closest known steps are: When traffic is switched to \"{region}\""
    And the output contains "bad.feature:4:33: And traffic is switched to \"us-east9\": region \"us-east9\" is not in the platform (hint: known regions: \"here\" or \"there\")"
    And the output contains "bad.feature:6:40: Then the outage is detected within 5x: \"5x\" is not a duration (hint: write it like 90s, 5m, 25m or 25 minutes)"
    And the output contains "lower bound above its upper bound"
    And the output contains "fault \"nope\" is not defined in the platform (hint: known faults: \"marker\")"
    And the output contains "5 problems found; nothing was injected"

  Scenario: a drill with a syntax error names its line
    Given the file "drills/syntax.feature":
      """
      Feature: syntax
        Scenario: a stray line
          When the fault "marker" is injected
          this line is not gherkin
      """
    When I run `firedrill validate drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "syntax.feature:4:"

  Scenario: an unreachable endpoint fails preflight and nothing is injected
    Given the file "drills/probe.feature":
      """
      Feature: probe
        Scenario: a fault while the service is probed
          When the fault "marker" is injected
          Then the service answers from "there" within 1m of the fault
      """
    When I run `firedrill run drills --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "probe \"service\" cannot reach http://127.0.0.1:9/"
    And the output contains "platform.yaml:14:14:"
    And the file "faulted" does not exist
    And the file ".firedrill/ledger.jsonl" does not exist

  Scenario: a bad tag expression is a usage error
    When I run `firedrill run --tags '@a and and'`
    Then the exit code is 2
    And the output contains "is not a tag expression"

  Scenario: an SLO that is not a percentage names its line
    Given the file "slo.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      probes:
        service: { url: "http://127.0.0.1:9/", slo: "ninety-nine" }
      """
    When I run `firedrill validate --platform slo.yaml`
    Then the exit code is 2
    And the output contains "slo.yaml:6:42:"
    And the output contains "slo \"ninety-nine\" is not a percentage"

  Scenario: an SLO step on a probe without an SLO is an error at the step
    Given the file "drills/slo.feature":
      """
      Feature: slo
        Scenario: errors within the SLO
          Given the "service" probe is running
          When the fault "marker" is injected
          Then the "service" probe's error rate is within its SLO
      """
    When I run `firedrill run drills/slo.feature --platform platform.yaml --yes`
    Then the exit code is 2
    And the output contains "slo.feature:5:"
    And the output contains "probe \"service\" has no slo in the platform"
    And the output contains "add e.g. `slo: 99%` under probes.service"
    And the file "faulted" does not exist
