@quarterly @region @ci
Feature: Quarterly regional failover from us-west1 to us-west2
  us-west1 is lost. The runbook: see the outage, scale the passive us-west2 cluster up from 0,
  wait until it is Ready, then switch traffic with the Terraform apply. Users must be answered
  from us-west2 within the failover target (20–25 minutes in the reference estate), and the database stays in us-west1:
  no write acknowledged by it may be lost while the application moves. The prod-1-orders probe
  (a checkout: write and read back an order) measures the database latency the application
  sees, cross-region once us-west2 serves.

  Scenario: us-west1 goes dark and the application fails over to us-west2
    Given the platform is healthy
    And traffic is served from region "us-west1"
    And a write checker runs against the "prod-1" database at 50 writes per second
    And the "prod-1-orders" probe is running
    When region "us-west1" goes dark
    Then the outage is detected within 2m
    When the failover cluster in "us-west2" is scaled up
    Then the failover pods in "us-west2" are ready within 15m
    When traffic is switched to region "us-west2"
    Then the service answers from "us-west2" within 25m of the fault
    And the failover time is within its target
    And the detection time is within its target
    And no acknowledged write was lost
