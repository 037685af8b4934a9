@quarterly @region @ci
Feature: us-west1 goes dark and traffic fails over to us-west2
  Every application in us-west1 stops answering. The outage must be seen quickly, and once
  traffic is switched the service must answer from us-west2 within the failover target.

  Scenario: us-west1 is lost and traffic is switched to us-west2
    Given the platform is healthy
    And traffic is served from region "us-west1"
    When the fault "us-west1-dark" is injected
    Then the outage is detected within 1m
    When traffic is switched to "us-west2"
    Then the service answers from "us-west2" within 10m of the fault
    And the failover time is within its target
    And the detection time is within its target
