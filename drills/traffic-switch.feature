@ci @traffic
Feature: Traffic switch between regions
  The global load balancer moves traffic with a Terraform apply. The apply must fit its budget,
  and once the load balancer follows, users must be answered from the new region.

  Background:
    Given the platform is healthy
    And traffic is served from region "us-west1"

  Scenario: traffic moves to a ready us-west2 within the switch target, without errors
    When the failover cluster in "us-west2" is scaled up
    Then the failover pods in "us-west2" are ready within 15m
    When traffic is switched to region "us-west2"
    Then the service answers from "us-west2" within 10m of the switch
    And the switch time is within the 5m..7m target
    And at most 0% of the "front-door" probe's answers were bad
