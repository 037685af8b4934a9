@network @region
Feature: The us-west2 application on Mongo in us-west1 stays within its latency budget
  After an application-only failover, us-west2 serves users while every database stays in
  us-west1, so each checkout crosses regions. When that cross-region link degrades, checkouts
  may slow down, but by at most the storefront's 2-second degradation budget. (The budget is
  relative to the same run's own baseline: in compressed time every answer also carries the
  embedded platform's wall-clock cost, so an absolute budget would measure the machine.)

  Scenario: 200ms more on the us-west2 → prod-1 database link keeps checkouts within budget
    Given the platform is healthy
    And the "prod-1-orders" probe is running
    When the failover cluster in "us-west2" is scaled up
    Then the failover pods in "us-west2" are ready within 15m
    When traffic is switched to region "us-west2"
    Then the service answers from "us-west2" within 10m of the switch
    When the link "us-west2-to-prod-1-db" has 200ms latency (±50ms)
    And 5m pass
    Then at most 0% of the "prod-1-orders" probe's answers were bad
    And the "prod-1-orders" probe's median latency rose by at most 2s
