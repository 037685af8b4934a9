Feature: Stop conditions: a guard stops a drill the moment a bystander breaches, and undoes it
  prod-2 and prod-3 share the estate with the drilled namespace. The platform's `bystanders`
  guard watches their checkouts (failing ones are a breach): evaluated before the
  first fault, then every 15 s of platform time; two breaches in a row trip it, every fault is
  undone newest first, and the run exits 5.
  On the embedded platform it is measured by the platform's own probes; on a platform file
  written by `sim up --prometheus`, by the real Prometheus scraping the front door's /metrics.

  Scenario: without Prometheus, a fault on a bystander trips the probe guard and everything is undone
    Given the file "drills/careless.feature":
      """
      @guard:bystanders
      Feature: careless
        Scenario: a drill on prod-1 cuts prod-2's database by mistake
          Given the "prod-1-orders" probe is running
          When the link "us-west1-to-prod-1-db" has 50ms latency (±0ms) downstream
          And the link "us-west1-to-prod-2-db" is cut
          And 10m pass
          Then namespaces "prod-2" and "prod-3" were never touched
      """
    When I run `firedrill run drills/careless.feature --time-scale 20 --json report.json`
    Then the exit code is 5
    And the output contains "guard tripped: bystanders"
    And the output contains "aborted by guard \"bystanders\"; every fault of this run was undone"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    And the report "report.json" shows the guard "bystanders" tripped and every fault undone within 15s of it

  Scenario: Prometheus guards a drill: a fault on a bystander trips it within two evaluations, and everything is undone
    Given the embedded platform runs in the background at time scale 20, scraped by Prometheus, with --env-file "fd.env"
    And the file "drills/careless.feature":
      """
      @guard:bystanders
      Feature: careless
        Scenario: a drill on prod-1 cuts prod-2's database by mistake
          When the link "us-west1-to-prod-1-db" has 50ms latency (±0ms) downstream
          And the link "us-west1-to-prod-2-db" is cut
          And 10m pass
          Then namespaces "prod-2" and "prod-3" were never touched
      """
    When I run `firedrill run --platform fd.env.platform.yaml drills/careless.feature --json report.json --yes`
    Then the exit code is 5
    And the output contains "guard tripped: bystanders"
    And the output contains "aborted by guard \"bystanders\"; every fault of this run was undone"
    And the ledger ".firedrill/ledger.jsonl" has 0 outstanding faults
    And the report "report.json" shows the guard "bystanders" tripped and every fault undone within 15s of it

  Scenario: Prometheus guards a drill that leaves the bystanders alone: the guard holds and the SLOs are judged
    Given the embedded platform runs in the background at time scale 20, scraped by Prometheus, with --env-file "fd.env"
    And the shipped drills and platform
    And the file "drills/slo.feature":
      """
      @guard:bystanders
      Feature: slo
        Scenario: prod-1 loses its database; prod-2 and prod-3 keep their error budget
          When the link "us-west1-to-prod-1-db" is cut
          And 2m pass
          Then the "bystander-errors" query stayed below 5 throughout
          When the link "us-west1-to-prod-1-db" is restored
          Then the "checkout-p99" query is below 2.5 within 5m
      """
    When I run `firedrill run --platform fd.env.platform.yaml drills/slo.feature drills/bystander-guard.feature --json report.json --yes`
    Then the exit code is 0
    And the report "report.json" has verdict "passed" and every fault undone
    And the output does not contain "guard tripped"
    And the report "report.json" has the "bystander-errors" query passed, judged over at least 3 points
    And the report "report.json" has the "checkout-p99" query passed, judged over at least 1 point

  Scenario: a guard already breached before the first fault fails the scenario with nothing injected
    Given the embedded platform runs in the background at time scale 20, scraped by Prometheus, with --env-file "fd.env"
    And the environment in "fd.env"
    And the file "drills/late.feature":
      """
      @guard:bystanders
      Feature: late
        Scenario: a drill starts while prod-2 is already failing
          When the link "us-west1-to-prod-1-db" is cut
      """
    When the proxy "us-west1-to-prod-2-db" is disabled by someone else
    And I run `firedrill run --platform fd.env.platform.yaml drills/late.feature --json report.json --yes` once the "bystander-errors" query of "fd.env.platform.yaml" is above 20
    Then the exit code is 1
    And the output contains "was NOT injected: guard \"bystanders\" is breached before the first change"
    And the proxy "us-west1-to-prod-1-db" is enabled
