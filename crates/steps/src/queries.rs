//! SLO assertions over the platform's Prometheus: a query stayed below a number from the
//! first fault to now (a range query at the platform's `prometheus.interval`), or comes below
//! it within a deadline. Each result, with the series it judged, goes to the reports.

use std::time::{Duration, SystemTime};

use cucumber::then;

use super::{Analysis, Args, Failure, Need, ResultExt, StepDoc, StepError, param};
use crate::world::Drill;
use firedrill_core::clock::{Clock, PlatformTime, format_duration};
use firedrill_core::diagnostic::{echo, one_of};
use firedrill_core::guard::format_value;
use firedrill_core::observed::{JudgedSeries, QueryJudged};
use firedrill_engine::events::Event;
use firedrill_platform::Platform;
use firedrill_providers::prometheus::{Sample, Series};

/// The SLO query steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "Then",
        pattern: "the query {query} stayed below {number} throughout",
        example: "the query \"sum(rate(http_requests_total{code=~'5..'}[5m])) / sum(rate(http_requests_total[5m]))\" stayed below 0.01 throughout",
        doc: "Every series of the PromQL query stayed below {number} at every point from `fault injected` (the scenario's start when there is none) to now, by a range query on the platform's Prometheus every `prometheus.interval`. Points without a value (NaN) are left out; a query with no value at all fails. The result, with the series judged, is in the JSON and HTML reports.",
        domain: "queries",
        analyze: analyze_query,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the query {query} is below {number} within {duration}",
        example: "the query \"max(kube_deployment_status_replicas_unavailable{namespace='prod-1'})\" is below 1 within 10m",
        doc: "Asks the instant query every `prometheus.interval` until every series it returns is below {number}, at most {duration} (platform time) after the end of the step before it. The last answer, with its series, is in the reports.",
        domain: "queries",
        analyze: analyze_query_within,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the query {query} is below {number}",
        example: "the query \"max(kube_deployment_status_replicas_unavailable{namespace='prod-1'})\" is below 1",
        doc: "Asks the instant query once: every series it returns is below {number} now. The answer, with its series, is in the reports.",
        domain: "queries",
        analyze: analyze_query_within,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {query-name} query stayed below {number} throughout",
        example: "the \"checkout-error-ratio\" query stayed below 0.01 throughout",
        doc: "As `the query \"{query}\" stayed below {number} throughout`, for the query named `{query-name}` under `prometheus.queries`.",
        domain: "queries",
        analyze: analyze_named,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {query-name} query is below {number} within {duration}",
        example: "the \"checkout-error-ratio\" query is below 0.01 within 5m",
        doc: "As `the query \"{query}\" is below {number} within {duration}`, for the query named `{query-name}` under `prometheus.queries`: at most {duration} after the end of the step before it.",
        domain: "queries",
        analyze: analyze_named_within,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {query-name} query is below {number}",
        example: "the \"checkout-error-ratio\" query is below 0.01",
        doc: "As `the query \"{query}\" is below {number}`, for the query named `{query-name}` under `prometheus.queries`.",
        domain: "queries",
        analyze: analyze_named_within,
    },
];

fn needs_prometheus(a: &mut Analysis, arg: &'static str, platform: &Platform) -> bool {
    if platform.prometheus.is_none() {
        a.problem(
            arg,
            "the platform has no `prometheus` section",
            "add prometheus: { url: … } to the platform file",
        );
        return false;
    }
    a.needs.push(Need::Prometheus);
    true
}

fn analyze_query(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    if needs_prometheus(&mut a, "query", platform) {
        a.needs
            .push(Need::PrometheusQuery(args.get("query").to_owned()));
    }
    a
}

fn analyze_query_within(args: &Args, platform: &Platform) -> Analysis {
    analyze_query(args, platform)
}

fn analyze_named(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let name = args.get("query-name");
    if needs_prometheus(&mut a, "query-name", platform) {
        let queries = platform
            .prometheus
            .as_ref()
            .map(|p| &p.queries)
            .filter(|q| q.contains_key(name));
        match queries {
            Some(queries) => a.needs.push(Need::PrometheusQuery(queries[name].clone())),
            None => a.problem(
                "query-name",
                format!("query \"{name}\" is not defined under prometheus.queries"),
                format!(
                    "known queries: {}",
                    one_of(
                        &platform
                            .prometheus
                            .iter()
                            .flat_map(|p| p.queries.keys())
                            .collect::<Vec<_>>()
                    )
                ),
            ),
        }
    }
    a
}

fn analyze_named_within(args: &Args, platform: &Platform) -> Analysis {
    analyze_named(args, platform)
}

/// The query named `name` in the platform.
fn named(world: &Drill, name: &str) -> Result<String, Failure> {
    world
        .platform()
        .prometheus
        .as_ref()
        .and_then(|p| p.queries.get(name))
        .cloned()
        .ok_or_else(|| {
            StepError::platform(
                format!("query \"{name}\" is not defined under prometheus.queries"),
                format!("add prometheus.queries.{name}: <PromQL> to the platform file"),
            )
        })
}

#[then(expr = "the query {query} stayed below {number} throughout")]
async fn query_stayed_below(
    world: &mut Drill,
    query: param::Query,
    number: param::Number,
) -> Result<(), Failure> {
    stayed_below(world, None, query.0, number.0).await
}

#[then(expr = "the {query-name} query stayed below {number} throughout")]
async fn named_stayed_below(
    world: &mut Drill,
    name: param::QueryName,
    number: param::Number,
) -> Result<(), Failure> {
    let query = named(world, &name)?;
    stayed_below(world, Some(name.0), query, number.0).await
}

#[then(expr = "the query {query} is below {number} within {duration}")]
async fn query_below_within(
    world: &mut Drill,
    query: param::Query,
    number: param::Number,
    duration: param::Duration,
) -> Result<(), Failure> {
    below_within(world, None, query.0, number.0, duration.value).await
}

#[then(expr = "the {query-name} query is below {number} within {duration}")]
async fn named_below_within(
    world: &mut Drill,
    name: param::QueryName,
    number: param::Number,
    duration: param::Duration,
) -> Result<(), Failure> {
    let query = named(world, &name)?;
    below_within(world, Some(name.0), query, number.0, duration.value).await
}

#[then(expr = "the query {query} is below {number}")]
async fn query_below(
    world: &mut Drill,
    query: param::Query,
    number: param::Number,
) -> Result<(), Failure> {
    below_within(world, None, query.0, number.0, Duration::ZERO).await
}

#[then(expr = "the {query-name} query is below {number}")]
async fn named_below(
    world: &mut Drill,
    name: param::QueryName,
    number: param::Number,
) -> Result<(), Failure> {
    let query = named(world, &name)?;
    below_within(world, Some(name.0), query, number.0, Duration::ZERO).await
}

/// A Unix time (Prometheus's) on the platform timeline.
fn platform_time(clock: &Clock, unix: f64) -> PlatformTime {
    let origin = clock
        .wall_origin()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let wall = Duration::try_from_secs_f64((unix - origin).max(0.0)).unwrap_or_default();
    PlatformTime::from_offset(clock.to_platform(wall))
}

/// The prometheus interval (platform time) the steps sample at.
fn interval(world: &Drill) -> Duration {
    world
        .platform()
        .prometheus
        .as_ref()
        .map_or(Duration::from_secs(15), |p| p.interval)
}

/// The first point of `series` at or above `limit`: `(when, value, series)`.
fn first_breach(series: &[JudgedSeries], limit: f64) -> Option<(PlatformTime, f64, &str)> {
    series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(move |(at, v)| (*at, *v, s.labels.as_str()))
        })
        .filter(|(_, v, _)| *v >= limit)
        .min_by_key(|(at, _, _)| *at)
}

/// Judges `series` against `< limit`: the failure, if any.
fn judge(series: &[JudgedSeries], limit: f64, what: &str) -> Option<String> {
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    if points == 0 {
        return Some(format!(
            "{what} had no value to judge ({} series, every point empty) (hint: check the query in the Prometheus UI, and that its targets are scraped)",
            series.len()
        ));
    }
    first_breach(series, limit).map(|(at, value, labels)| {
        format!(
            "{what} was {} at {at} ({labels}), not below {} ({points} points of {} series judged)",
            format_value(value),
            format_value(limit),
            series.len()
        )
    })
}

fn describe(name: Option<&str>, query: &str) -> String {
    match name {
        Some(name) => format!("query \"{name}\""),
        None => format!("query `{}`", echo(query)),
    }
}

fn judged_range(clock: &Clock, series: Vec<Series>) -> Vec<JudgedSeries> {
    series
        .into_iter()
        .map(|s| JudgedSeries {
            labels: s.selector(),
            points: s
                .points
                .iter()
                .filter(|(_, v)| !v.is_nan())
                .map(|(t, v)| (platform_time(clock, *t), *v))
                .collect(),
        })
        .collect()
}

fn judged_instant(clock: &Clock, samples: &[Sample]) -> Vec<JudgedSeries> {
    samples
        .iter()
        .map(|s| JudgedSeries {
            labels: s.selector(),
            points: if s.value.is_nan() {
                Vec::new()
            } else {
                vec![(platform_time(clock, s.at), s.value)]
            },
        })
        .collect()
}

fn report(world: &Drill, judged: QueryJudged) -> Result<(), Failure> {
    let failure = judged.failure.clone().map(|seen| {
        StepError::unmet(
            format!(
                "{} {}",
                describe(judged.name.as_deref(), &judged.query),
                judged.assertion
            ),
            seen,
            "the report plots every series of the query over the drill",
        )
    });
    world.run.events.emit(&Event::QueryJudged(Box::new(judged)));
    failure.map_or(Ok(()), Err)
}

async fn stayed_below(
    world: &mut Drill,
    name: Option<String>,
    query: String,
    limit: f64,
) -> Result<(), Failure> {
    let client = world.prometheus()?;
    let clock = world.clock();
    let from = world
        .timeline()
        .first("fault injected")
        .map_or(world.started, |m| m.at);
    let to = clock.now();
    let step = clock.to_wall(interval(world));
    let what = describe(name.as_deref(), &query);
    let series = client
        .query_range(&query, clock.happened_at(from), clock.happened_at(to), step)
        .await
        .acting(|| format!("query Prometheus for {what}"))?;
    let series = judged_range(&clock, series);
    let failure = judge(&series, limit, &what);
    report(
        world,
        QueryJudged {
            name,
            query,
            assertion: format!("stayed below {} throughout", format_value(limit)),
            limit,
            passed: failure.is_none(),
            from,
            to,
            series,
            failure,
        },
    )
}

async fn below_within(
    world: &mut Drill,
    name: Option<String>,
    query: String,
    limit: f64,
    within: Duration,
) -> Result<(), Failure> {
    let client = world.prometheus()?;
    let clock = world.clock();
    let from = clock.now();
    let deadline = from.plus(within);
    let what = describe(name.as_deref(), &query);
    world.run.events.emit(&Event::Waiting {
        what: format!("{what} below {}", format_value(limit)),
        since: from,
        deadline,
    });
    let mut ticks = clock.interval(interval(world));
    let (series, failure) = loop {
        ticks.tick().await;
        let (series, failure) = match client.query(&query, None).await {
            Ok(samples) => {
                let series = judged_instant(&clock, &samples);
                let failure = judge(&series, limit, &what);
                (series, failure)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if failure.is_none() || clock.now() >= deadline {
            break (series, failure);
        }
    };
    let failure = failure.map(|f| {
        if within.is_zero() {
            f
        } else {
            format!(
                "{f}; still not below {} {} after the end of the step before",
                format_value(limit),
                format_duration(within)
            )
        }
    });
    let assertion = if within.is_zero() {
        format!("below {}", format_value(limit))
    } else {
        format!(
            "below {} within {}",
            format_value(limit),
            format_duration(within)
        )
    };
    report(
        world,
        QueryJudged {
            name,
            query,
            assertion,
            limit,
            passed: failure.is_none(),
            from,
            to: clock.now(),
            series,
            failure,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> PlatformTime {
        PlatformTime::from_offset(Duration::from_secs(s))
    }

    #[test]
    fn the_first_point_at_or_above_the_limit_fails_the_assertion() {
        let series = vec![
            JudgedSeries {
                labels: "{namespace=\"prod-2\"}".into(),
                points: vec![(at(0), 0.0), (at(15), 0.2), (at(30), 0.5)],
            },
            JudgedSeries {
                labels: "{namespace=\"prod-3\"}".into(),
                points: vec![(at(0), 0.0), (at(15), 0.01)],
            },
        ];
        assert_eq!(judge(&series, 0.6, "q"), None);
        let failure = judge(&series, 0.1, "q").expect("breached");
        assert!(
            failure.starts_with("q was 0.2 at T+15s ({namespace=\"prod-2\"}), not below 0.1 (5 points of 2 series judged)"),
            "{failure}"
        );
        let empty = vec![JudgedSeries {
            labels: "{}".into(),
            points: Vec::new(),
        }];
        assert!(judge(&empty, 1.0, "q").is_some_and(|f| f.contains("no value to judge")));
        assert!(judge(&[], 1.0, "q").is_some());
    }

    #[test]
    fn prometheus_time_lands_on_the_platform_timeline() {
        let clock = Clock::scaled(200.0).expect("clock");
        let origin = clock
            .wall_origin()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        assert_eq!(platform_time(&clock, origin + 1.5), at(300));
        assert_eq!(platform_time(&clock, origin - 10.0), at(0));
    }
}
