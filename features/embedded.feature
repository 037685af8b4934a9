Feature: The shipped drills run on the embedded platform
  `firedrill run` with no arguments runs drills/ against the embedded platform in compressed
  time, and its verdicts are the expected ones.

  Scenario: the shipped drills pass, and every fault is undone
    Given the shipped drills and platform
    When I run `firedrill run --json report.json --junit junit.xml --cucumber-json cucumber.json`
    Then the exit code is 0
    And the report "report.json" has verdict "passed" and every fault undone
    And the report "report.json" has phase "failover" passed in scenario "us-west1 goes dark and the application fails over to us-west2"
    And the report "report.json" has phase "switch" passed in scenario "traffic moves to a ready us-west2 within the switch target, without errors"
    And the file "junit.xml" holds 12 test cases
    And the file "cucumber.json" holds 12 Cucumber scenarios

  Scenario: a target tighter than the failover takes flips the verdict to failed
    Given the file "drills/tight.feature":
      """
      Feature: tight
        Scenario: failover within an impossible band
          Given traffic is served from region "us-west1"
          When region "us-west1" goes dark
          And the failover cluster in "us-west2" is scaled up
          Then the failover pods in "us-west2" are ready within 15m
          When traffic is switched to "us-west2"
          Then the service answers from "us-west2" within 25m of the fault
          And the failover time is within the 10m..15m target
      """
    When I run `firedrill run drills/tight.feature --json report.json`
    Then the exit code is 1
    And the output contains "MISSED"
    And the report "report.json" has phase "failover" failed in scenario "failover within an impossible band"

  Scenario: plan shows what each scenario injects and how it is undone, touching nothing
    Given the shipped drills and platform
    When I run `firedrill plan`
    Then the exit code is 0
    And the output contains "[us-west1] scale every platform service to 0"
    And the output contains "undo: "
    And the output contains "switch traffic to \"us-west2\""
    And the file ".firedrill/ledger.jsonl" does not exist

  Scenario: the shipped drills validate
    Given the shipped drills and platform
    When I run `firedrill validate`
    Then the exit code is 0
    And the output contains "ok: 13 scenario(s)"

  Scenario: drills run from another process against `firedrill sim up`
    Given the shipped drills and platform
    When I start `firedrill sim up --time-scale 200 --env-file fd.env`
    And its output shows "press Ctrl-C to stop"
    Then the file "fd.env.platform.yaml" exists
    When I run `firedrill run --platform fd.env.platform.yaml --tags '@ci and not @member-kill' --json report.json --yes`
    Then the exit code is 0
    And the output contains " passed, 0 failed"
    And the report "report.json" has verdict "passed" and every fault undone

  Scenario: the applications reach their databases through the platform's links
    Given the file "drills/db-link.feature":
      """
      Feature: db link
        Scenario: a cut database link fails us-west1's checkouts
          Given the "prod-1-orders" probe is running
          When the link "us-west1-to-prod-1-db" is cut
          And 1m pass
          Then at most 0% of the "prod-1-orders" probe's answers were bad
      """
    When I run `firedrill run drills/db-link.feature`
    Then the exit code is 1
    And the output contains "probe \"prod-1-orders\": "
    And the output contains "answers were bad"
    And the output contains "probe \"front-door\": "

  Scenario: a platform that does not answer is not healthy, after waiting for it to settle
    Given the file "drills/unhealthy.feature":
      """
      Feature: unhealthy
        Scenario: health is checked while the front door's link is cut
          When the link "front-door-to-us-west1" is cut
          Given the platform is healthy
      """
    When I run `firedrill run drills/unhealthy.feature`
    Then the exit code is 1
    And the output contains "the platform is not healthy, so no fault was injected: probe \"front-door\""
    And the output contains "undone: link \"front-door-to-us-west1\""
