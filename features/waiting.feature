Feature: One grammar for waiting: a state assertion checks now, its `within` form waits
  Every state assertion has a plain form that checks once and a `within {duration}` form that
  waits until the state holds, at most that long after the end of the step before it. The
  steady-state check after an undo is `Then the platform is healthy within …`: a plain check
  right after a restore races the platform settling.

  Scenario: after a cut link is restored, the steady-state checks wait for the platform to settle
    Given the file "drills/steady.feature":
      """
      Feature: steady state
        Scenario: the front door's link is cut and restored, and the platform is healthy again
          Given the platform is healthy
          When the link "front-door-to-us-west1" is cut
          Then the outage is detected within 1m
          When the link "front-door-to-us-west1" is restored
          Then the platform is healthy within 2m
          And the service answers from "us-west1" within 2m
          And the service answers from "us-west1"
          And traffic is served from region "us-west1"
          And traffic is still served from region "us-west1" within 1m
          And the platform is healthy
      """
    When I run `firedrill run drills/steady.feature --json report.json`
    Then the exit code is 0
    And the output contains "1 passed, 0 failed"
    And the report "report.json" has verdict "passed" and every fault undone

  Scenario: a state that does not come within its time fails, naming what was seen last
    Given the file "drills/never.feature":
      """
      Feature: never
        Scenario: healthy while the link is still cut
          Given the platform is healthy
          When the link "front-door-to-us-west1" is cut
          Then the platform is healthy within 30s

        Scenario: served from a region that was never switched to
          Then traffic is served from region "us-west2" within 20s
      """
    When I run `firedrill run drills/never.feature`
    Then the exit code is 1
    And the output contains "0 passed, 2 failed"
    And the output contains "within 30s of the end of the step before, expected the platform to be healthy, but probe \"front-door\""
    And the output contains "within 20s of the end of the step before, expected traffic to be served from \"us-west2\", but probe \"front-door\" got a good answer from \"us-west1\""
    And the output contains "undone: link \"front-door-to-us-west1\""

  Scenario: a latency percentile over a window is judged, counting bad answers as slow
    Given the file "drills/percentiles.feature":
      """
      Feature: percentiles
        Scenario: answers within the probe's timeout
          Given the platform is healthy
          When 1m pass
          Then the p95 latency of the "front-door" probe stayed below 1m over the last 1m

        Scenario: no answer is that fast
          Given the platform is healthy
          When 1m pass
          Then the p50 latency of the "front-door" probe stayed below 1ms over the last 1m

        Scenario: a cut link's bad answers are slower than any bound
          Given the platform is healthy
          When the link "front-door-to-us-west1" is cut
          Then the outage is detected within 1m
          And the p99 latency of the "front-door" probe stayed below 1m since the fault
      """
    When I run `firedrill run drills/percentiles.feature`
    Then the exit code is 1
    And the output contains "1 passed, 2 failed"
    And the output contains "p95 latency over the last 1m was "
    And the output contains "p50 latency over the last 1m was "
    And the output contains ", NOT below 1ms"
    And the output contains "p99 latency since \"fault injected\" was a bad answer (slower than any bound)"

  Scenario: the database flips back to the region it named, and refuses another before undoing
    Given the file "drills/flip-back.feature":
      """
      Feature: flip back
        Scenario: there and back
          When the database of "prod-1" flips to "us-west2"
          Then the primary of "prod-1" is in "us-west2" within 1m
          When the database of "prod-1" flips back to "us-west1"
          Then the primary of "prod-1" is in "us-west1"

        Scenario: back to where it never was
          When the database of "prod-1" flips to "us-west2"
          And the database of "prod-1" flips back to "us-west2"
      """
    When I run `firedrill run drills/flip-back.feature --json report.json`
    Then the exit code is 1
    And the output contains "1 passed, 1 failed"
    And the output contains "the database of \"prod-1\" cannot flip back to \"us-west2\": before this scenario's flip its primary was in \"us-west1\""
    And the report "report.json" has verdict "failed" and every fault undone

  Scenario: a percentile firedrill does not compute and a negative wait are named at their column
    Given the file "drills/bad.feature":
      """
      Feature: bad
        Scenario: bad
          Then the p90 latency of the "front-door" probe stayed below 2s since the fault
          And the platform is healthy within -5s
          When the database of "prod-1" flips back to "mars"
      """
    When I run `firedrill validate drills/bad.feature`
    Then the exit code is 2
    And the output contains "drills/bad.feature:3:14: Then the p90 latency of the \"front-door\" probe stayed below 2s since the fault: \"p90\" is not a percentile firedrill computes (hint: write p50, p95 or p99)"
    And the output contains "drills/bad.feature:4:40: And the platform is healthy within -5s: duration -5s is negative"
    And the output contains "drills/bad.feature:5:50: When the database of \"prod-1\" flips back to \"mars\": region \"mars\" is not in the platform (hint: known regions:"
    And the output contains "3 problems found; nothing was injected"
