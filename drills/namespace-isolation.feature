@isolation
Feature: A fault in prod-2 leaves prod-1 and prod-3 untouched
  Every namespace is production with the same uptime promise, on its own node pool and its own
  replica set. Losing half of prod-2's storefront pods and its database primary must not touch
  a pod of prod-1 or prod-3, nor cost a prod-1 checkout.

  Scenario: half of prod-2's pods are killed and its primary steps down; the others never notice
    Given the platform is healthy
    And the "prod-1-orders" probe is running
    When 50% of the pods of "app=storefront" in "prod-2" are killed
    And the primary of "prod-2" is stepped down
    Then a new primary is elected within 12s
    When 5m pass
    Then namespaces "prod-1" and "prod-3" were never touched
    And the primary of "prod-1" is in "us-west1"
    And at most 0% of the "prod-1-orders" probe's answers were bad
