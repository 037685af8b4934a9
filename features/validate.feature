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

  Scenario: a report in a folder that does not exist is refused before anything is created or injected
    Given a Toxiproxy with the proxy "app"
    And the file "made.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      toxiproxy:
        url: ${FIREDRILL_TOXIPROXY_URL}
        links:
          made-link: { proxy: made, listen: "127.0.0.1:0", upstream: "127.0.0.1:9", create: true }
      faults:
        marker:
          description: a marker file stands for a fault
          inject: { run: [sh, -c, "touch faulted"] }
          undo: { run: [sh, -c, "rm -f faulted"] }
      """
    And the file "reports/last-quarter.html":
      """
      kept
      """
    And the file "drills/made.feature":
      """
      Feature: made
        Scenario: a fault and latency on a link whose proxy firedrill would create
          When the fault "marker" is injected
          And the link "made-link" has 1s latency
      """
    When I run `firedrill run drills --platform made.yaml --yes --json no/such/dir/r.json --html reports`
    Then the exit code is 2
    And the output contains "--json no/such/dir/r.json: the folder no/such/dir does not exist (hint: create it"
    And the output contains "2 problems found; nothing was injected"
    And the Toxiproxy has no proxy "made"
    And the file "faulted" does not exist
    And the file ".firedrill/ledger.jsonl" does not exist

  Scenario: two flags naming one file are refused, and the report already there is kept
    Given the file "drills/marker.feature":
      """
      Feature: marker
        Scenario: a fault
          When the fault "marker" is injected
      """
    And the file "q3.json":
      """
      last quarter's report
      """
    When I run `firedrill run drills --platform platform.yaml --yes --json q3.json --cucumber-json ./q3.json --ledger q3.json`
    Then the exit code is 2
    And the output contains "--json q3.json and --cucumber-json ./q3.json name the same file (hint: give each its own file)"
    And the output contains "--json q3.json and --ledger q3.json name the same file"
    And the file "q3.json" contains "last quarter's report"
    And the file "faulted" does not exist

  Scenario: a report that cannot be written when the drill ends fails the run, and the undo is whole
    Given the file "drills/marker.feature":
      """
      Feature: marker
        Scenario: a fault
          When the fault "marker" is injected
      """
    When I run `firedrill run drills --platform platform.yaml --yes --junit /dev/full --json report.json`
    Then the exit code is 1
    And the output contains "cannot write the report /dev/full (--junit): No space left on device"
    And the output contains "the drill ran and its undo is not affected"
    And the report "report.json" has verdict "passed" and every fault undone
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    And the file "faulted" does not exist

  Scenario: Pushgateway credentials in the URL and in an echoed answer are never printed
    Given a Pushgateway that echoes the request headers into a 401 answer
    And the file "drills/marker.feature":
      """
      Feature: marker
        Scenario: a fault
          When the fault "marker" is injected
      """
    When I run `firedrill run drills --platform platform.yaml --yes` pushing to it as "drill-bot:hunter2-pw"
    Then the exit code is 0
    And the file "pushgateway.log" contains "Basic ZHJpbGwtYm90Omh1bnRlcjItcHc="
    And the output contains "warning: --pushgateway carries credentials"
    And the output contains "refused the push of drill \"marker\": HTTP 401: unauthorized; you sent:"
    And the output contains "authorization: <redacted>"
    And the output does not contain "hunter2-pw"
    And the output does not contain "ZHJpbGwtYm90Omh1bnRlcjItcHc="

  Scenario: a target for a phase no step measures is a typo, located, with the closest phase
    Given the file "targets.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      targets:
        failover: 20m..25m
        detecton: 2m
      """
    When I run `firedrill validate --platform targets.yaml`
    Then the exit code is 2
    And the output contains "targets.yaml:7:3: target \"detecton\" names no phase any step measures (hint: did you mean \"detection\"?"

  Scenario: a misspelt keyword is named whole, at its own line
    Given the file "drills/typo.feature":
      """
      Feature: typo
        Scenario: ok
          When the fault "marker" is injected
        Scenaro: a typo
          When the fault "marker" is injected
      """
    When I run `firedrill validate drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "typo.feature:4:3: unknown keyword \"Scenaro\" (hint: did you mean \"Scenario\"?"
    And the output does not contain "typo.feature:5:"
    And the output does not contain "\"Scen\""

  Scenario: an empty drill says it is empty
    Given the file "drills/empty.feature":
      """
      """
    When I run `firedrill validate drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "empty.feature:1:1: the file is empty: it holds no Feature"
    And the output does not contain "not valid Gherkin"

  Scenario: a 10 MB step line is quoted short, not echoed whole
    Given the file "drills/huge.feature" has a step line of 10 MB
    When I run `firedrill validate drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "huge.feature:3:21: When the fault \"xxxxxxxxxx"
    And the output contains "more characters)\" is not defined in the platform"
    And the output contains "huge.feature:4:9: undefined step: And traffic is swiched to"
    And the output contains "the closest known steps are:"
    And the standard error holds at most 20 KB

  Scenario: a Scenario Outline without Examples says so
    Given the file "drills/outline.feature":
      """
      Feature: outline
        Scenario Outline: each region goes dark
          When traffic is switched to "<region>"
      """
    When I run `firedrill validate drills --platform platform.yaml`
    Then the exit code is 2
    And the output contains "outline.feature:2:3: Scenario Outline \"each region goes dark\" has no Examples, so its <placeholders> have no values"
    And the output does not contain "not in the platform"

  Scenario: a Mongo driver error reads as a sentence, not as Rust debug output
    Given the file "mongo.yaml":
      """
      name: local
      regions:
        here: { role: primary }
        there: { role: failover }
      databases:
        prod-1:
          replica-set: rs0
          uri: { env: FIREDRILL_TEST_MONGO_URI }
      safety:
        allow:
          replica-sets: [rs0]
      """
    And the file "mongo.env":
      """
      FIREDRILL_TEST_MONGO_URI=mongodb://admin:hunter2@127.0.0.1:9/?replicaSet=rs0&serverSelectionTimeoutMS=300&connectTimeoutMS=300
      """
    And the environment in "mongo.env"
    And the file "drills/mongo.feature":
      """
      Feature: mongo
        Scenario: a step-down
          When the Mongo primary of "prod-1" is stepped down
      """
    When I run `firedrill run drills --platform mongo.yaml --yes`
    Then the exit code is 2
    And the output contains "database \"prod-1\": member 127.0.0.1:9 is unreachable: Server selection timeout"
    And the output contains "I/O error: Connection refused"
    And the output does not contain "labels:"
    And the output does not contain "source: None"
    And the output does not contain "Kind:"
    And the output does not contain "hunter2"
