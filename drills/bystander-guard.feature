@isolation @guard:bystanders
Feature: A drill on prod-1 is guarded by its bystanders
  prod-2 and prod-3 share the estate with the drilled namespace and have the same uptime
  promise. The platform's `bystanders` guard watches their checkouts for the whole drill: had
  either's checkouts failed in two evaluations in a row, the drill would have stopped itself
  and undone everything (exit code 5). Losing prod-1's database must not touch
  them, so the guard holds and the drill runs to its end.

  Scenario: prod-1 loses its database; the guard over prod-2 and prod-3 holds
    When the link "us-west1-to-prod-1-db" is cut
    And 2m pass
    Then namespaces "prod-2" and "prod-3" were never touched
    When the link "us-west1-to-prod-1-db" is restored
    And 1m pass
    Then the primary of "prod-1" is in "us-west1"
