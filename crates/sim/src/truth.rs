//! Ground truth: what the embedded platform really did, from its own records, so a drill's
//! observed timeline can be checked against it (a probe sees a change up to one interval late;
//! the model knows when it happened).

use std::sync::Arc;

use crate::kube::{Cluster, PodRecord};
use firedrill_core::clock::PlatformTime;

/// One ground-truth event: a name and when it happened.
pub type Event = (String, PlatformTime);

/// An interval of platform time; open-ended while it lasts.
pub type Span = (PlatformTime, Option<PlatformTime>);

/// A source of ground truth: every event at or after a time, in time order.
pub type Source = Arc<dyn Fn(PlatformTime) -> Vec<Event> + Send + Sync>;

/// The intervals during which `pods` had at least one Ready pod, merged and sorted.
fn serving_intervals(pods: &[&PodRecord]) -> Vec<Span> {
    let mut spans: Vec<Span> = pods
        .iter()
        .filter_map(|p| p.ready.map(|r| (r, p.deleted)))
        .filter(|(r, d)| d.is_none_or(|d| d > *r))
        .collect();
    spans.sort_by_key(|(start, _)| *start);
    let mut merged: Vec<Span> = Vec::new();
    for (start, end) in spans {
        match merged.last_mut() {
            Some((_, last_end)) if last_end.is_none_or(|e| e >= start) => {
                *last_end = match (*last_end, end) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(a.max(b)),
                };
            }
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Intersects two sorted interval lists.
fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for (a0, a1) in a {
        for (b0, b1) in b {
            let start = (*a0).max(*b0);
            let end = match (a1, b1) {
                (None, None) => None,
                (Some(x), None) | (None, Some(x)) => Some(*x),
                (Some(x), Some(y)) => Some((*x).min(*y)),
            };
            if end.is_none_or(|e| e > start) {
                out.push((start, end));
            }
        }
    }
    out.sort_by_key(|(s, _)| *s);
    out
}

/// When `cluster` served every namespace in `namespaces` (a `storefront` pod Ready in each).
#[must_use]
pub fn serving(cluster: &Cluster, namespaces: &[&str]) -> Vec<Span> {
    let records = cluster.pod_records();
    let mut all: Option<Vec<Span>> = None;
    for ns in namespaces {
        let pods: Vec<&PodRecord> = records
            .iter()
            .filter(|r| r.namespace == *ns && r.deployment.as_deref() == Some("storefront"))
            .collect();
        let spans = serving_intervals(&pods);
        all = Some(match all {
            None => spans,
            Some(so_far) => intersect(&so_far, &spans),
        });
    }
    all.unwrap_or_default()
}

/// The ground-truth events of one region: `{region} up` and `{region} down` at each change of
/// its serving state after `since`.
#[must_use]
pub fn region_events(region: &str, spans: &[Span], since: PlatformTime) -> Vec<Event> {
    let mut events = Vec::new();
    for (start, end) in spans {
        if *start >= since {
            events.push((format!("{region} up"), *start));
        }
        if let Some(end) = end
            && *end >= since
        {
            events.push((format!("{region} down"), *end));
        }
    }
    events
}

/// When users were first answered from a region after each switch to it: the switch, or the
/// region coming up after it, whichever is later.
#[must_use]
pub fn answered_from(
    switches: &[(String, PlatformTime)],
    serving: &dyn Fn(&str) -> Vec<Span>,
    since: PlatformTime,
) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, (region, at)) in switches.iter().enumerate() {
        let until = switches.get(i + 1).map(|(_, t)| *t);
        let spans = serving(region);
        let first = spans.iter().find_map(|(start, end)| {
            let from = (*start).max(*at);
            let open = end.is_none_or(|e| e > from);
            (open && until.is_none_or(|u| from < u)).then_some(from)
        });
        if let Some(t) = first.filter(|t| *t >= since) {
            events.push((format!("users answered from {region}"), t));
        }
        if *at >= since {
            events.push((format!("traffic sent to {region}"), *at));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(s: u64) -> PlatformTime {
        PlatformTime::ZERO.plus(Duration::from_secs(s))
    }

    fn pod(ready: Option<u64>, deleted: Option<u64>) -> PodRecord {
        PodRecord {
            namespace: "prod-1".into(),
            name: "p".into(),
            uid: "u".into(),
            deployment: Some("storefront".into()),
            node: None,
            zone: None,
            created: t(0),
            scheduled: None,
            running: None,
            ready: ready.map(t),
            deleted: deleted.map(t),
            start_delay: None,
            ready_delay: None,
        }
    }

    #[test]
    fn overlapping_pods_serve_without_a_gap_and_a_gap_is_an_outage() {
        let a = pod(Some(10), Some(100));
        let b = pod(Some(50), Some(120));
        let c = pod(Some(300), None);
        let never = pod(None, Some(5));
        let spans = serving_intervals(&[&c, &a, &never, &b]);
        assert_eq!(spans, vec![(t(10), Some(t(120))), (t(300), None)]);
        let events = region_events("us-west1", &spans, t(20));
        assert_eq!(
            events,
            vec![
                ("us-west1 down".to_owned(), t(120)),
                ("us-west1 up".to_owned(), t(300))
            ]
        );
    }

    #[test]
    fn every_namespace_must_serve() {
        let one = vec![(t(0), Some(t(100))), (t(200), None)];
        let two = vec![(t(50), Some(t(250)))];
        assert_eq!(
            intersect(&one, &two),
            vec![(t(50), Some(t(100))), (t(200), Some(t(250)))]
        );
    }

    #[test]
    fn users_are_answered_once_the_switch_and_the_region_are_both_there() {
        let switches = vec![
            ("us-west1".to_owned(), t(0)),
            ("us-west2".to_owned(), t(600)),
        ];
        let serving = |region: &str| match region {
            "us-west1" => vec![(t(0), Some(t(100)))],
            _ => vec![(t(500), None)],
        };
        let events = answered_from(&switches, &serving, t(1));
        assert_eq!(
            events,
            vec![
                ("users answered from us-west2".to_owned(), t(600)),
                ("traffic sent to us-west2".to_owned(), t(600)),
            ]
        );
        let late = |region: &str| match region {
            "us-west1" => vec![(t(0), Some(t(100)))],
            _ => vec![(t(900), None)],
        };
        assert_eq!(
            answered_from(&switches, &late, t(1))[0],
            ("users answered from us-west2".to_owned(), t(900))
        );
    }
}
