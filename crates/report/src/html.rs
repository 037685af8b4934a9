//! The drill report as one self-contained HTML file: inline CSS and SVG, no scripts, nothing
//! fetched (a Content-Security-Policy forbids it), readable printed.
//!
//! Layout and tables come from a minijinja template; the timeline and probe charts are small
//! hand-written SVGs (a timeline of bands, bars and marks is simpler to draw than to bend a
//! plotting library into).

use std::fmt::Write as _;

use minijinja::{Environment, context};
use serde::Serialize;

use crate::json::{Report, ScenarioReport};
use firedrill_core::clock::{PlatformTime, format_duration};

const TEMPLATE: &str = include_str!("report.html.j2");

/// The template failed to render (a firedrill bug, caught by the golden test).
#[derive(Debug, thiserror::Error)]
#[error("cannot render the HTML report: {0}")]
pub struct RenderError(#[from] minijinja::Error);

/// Renders one or more reports: each run's scenarios in detail, then (with several runs) the
/// trend of recovery times against their target band.
///
/// # Errors
///
/// [`RenderError`].
pub fn render(reports: &[Report]) -> Result<String, RenderError> {
    let mut env = Environment::new();
    env.add_template("report", TEMPLATE)?;
    let runs: Vec<RunView> = reports.iter().map(run_view).collect();
    let trend = (reports.len() > 1).then(|| trend_svg(reports));
    let phases = phase_breakdown(reports);
    Ok(env
        .get_template("report")?
        .render(context! { runs, trend, phases, several => reports.len() > 1 })?)
}

#[derive(Serialize)]
struct RunView {
    run: String,
    platform: String,
    started_at: String,
    verdict: String,
    time_scale: f64,
    /// What stopped the run (a signal, a guard, `firedrill halt`), as the JSON report says.
    aborted_by: Option<String>,
    /// The blackout window `--override-blackout` let this run into: window, until, why, who.
    blackout_override: Option<(String, String, String, String)>,
    scenarios: Vec<ScenarioView>,
}

#[derive(Serialize)]
struct ScenarioView {
    feature: String,
    name: String,
    passed: bool,
    timeline: String,
    /// The timeline's marks by number: at, name, who observed it (escaped: a guard's source
    /// carries its `abort-if`).
    milestones: Vec<(usize, String, String, String)>,
    probes: String,
    verdicts: Vec<VerdictRow>,
    faults: Vec<FaultRow>,
    commands: Vec<CommandRow>,
    writes: Vec<(String, u64, u64)>,
    steps: Vec<(String, String, String)>,
    probe_counts: Vec<(String, u64, u64)>,
    aborted: Option<String>,
    guard_trips: Vec<String>,
    queries: Vec<QueryRow>,
}

#[derive(Serialize)]
struct QueryRow {
    what: String,
    assertion: String,
    passed: bool,
    failure: Option<String>,
    chart: String,
}

#[derive(Serialize)]
struct VerdictRow {
    phase: String,
    measured: String,
    target: String,
    margin: String,
    passed: bool,
}

#[derive(Serialize)]
struct FaultRow {
    fault: String,
    injected: String,
    undone: String,
    undo: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct CommandRow {
    argv: String,
    exit: String,
    took: String,
    output: String,
}

fn rel(t: PlatformTime, start: PlatformTime) -> String {
    format!("T+{}", format_duration(t.saturating_since(start)))
}

fn run_view(report: &Report) -> RunView {
    RunView {
        run: report.run.clone(),
        platform: report.platform.clone(),
        started_at: report.started_at.clone(),
        verdict: report.verdict.clone(),
        time_scale: report.time_scale,
        aborted_by: report.aborted_by.as_deref().map(esc),
        blackout_override: report.blackout_override.as_ref().map(|o| {
            let window = match &o.window_reason {
                Some(why) => format!("{} ({why})", o.window),
                None => o.window.clone(),
            };
            (esc(&window), esc(&o.until), esc(&o.reason), esc(&o.by))
        }),
        scenarios: report.scenarios.iter().map(scenario_view).collect(),
    }
}

fn scenario_view(s: &ScenarioReport) -> ScenarioView {
    let start = s.started;
    ScenarioView {
        feature: s.feature.clone(),
        name: s.scenario.clone(),
        passed: s.passed,
        timeline: timeline_svg(s),
        milestones: s
            .milestones
            .iter()
            .enumerate()
            .map(|(i, m)| (i + 1, rel(m.at, start), esc(&m.name), esc(&m.source)))
            .collect(),
        probes: probe_svg(s),
        verdicts: s
            .phases
            .iter()
            .filter_map(|p| {
                p.verdict.map(|v| VerdictRow {
                    phase: p.name.clone(),
                    measured: format_duration(v.measured),
                    target: v.target.to_string(),
                    margin: v.margin(),
                    passed: v.passed,
                })
            })
            .collect(),
        faults: s
            .faults
            .iter()
            .map(|f| FaultRow {
                fault: f.fault.clone(),
                injected: rel(f.injected_at, start),
                undone: f
                    .undone_at
                    .map_or_else(|| "NOT UNDONE".to_owned(), |t| rel(t, start)),
                undo: f.undo.clone(),
                error: f.undo_error.clone(),
            })
            .collect(),
        commands: s
            .commands
            .iter()
            .map(|c| CommandRow {
                argv: c.argv.join(" "),
                exit: c
                    .exit_code
                    .map_or_else(|| "signal".to_owned(), |e| e.to_string()),
                took: format_duration(c.finished.saturating_since(c.started)),
                output: format!("{}{}", c.stdout, c.stderr),
            })
            .collect(),
        writes: s
            .writes
            .iter()
            .map(|w| (w.namespace.clone(), w.acknowledged, w.lost))
            .collect(),
        steps: s
            .steps
            .iter()
            .map(|st| {
                let (outcome, message) = match &st.outcome {
                    firedrill_engine::events::StepOutcome::Passed => ("passed", String::new()),
                    firedrill_engine::events::StepOutcome::Skipped => ("skipped", String::new()),
                    firedrill_engine::events::StepOutcome::Failed(m) => ("failed", m.clone()),
                };
                (
                    format!("{} {}", st.keyword, st.text),
                    outcome.to_owned(),
                    message,
                )
            })
            .collect(),
        probe_counts: s
            .probes
            .iter()
            .map(|p| (p.name.clone(), p.good, p.bad))
            .collect(),
        // The template does not escape (its other fields are firedrill's own words); these
        // carry PromQL and series labels, so they are escaped here.
        aborted: s.aborted.as_deref().map(esc),
        guard_trips: s
            .guard_trips
            .iter()
            .map(|t| esc(&format!("{}: {t}", rel(t.at, start))))
            .collect(),
        queries: s
            .queries
            .iter()
            .map(|q| QueryRow {
                what: esc(&q
                    .name
                    .as_ref()
                    .map_or_else(|| q.query.clone(), |n| format!("{n}: {}", q.query))),
                assertion: esc(&q.assertion),
                passed: q.passed,
                failure: q.failure.as_deref().map(esc),
                chart: query_svg(q),
            })
            .collect(),
    }
}

/// The series an SLO assertion judged, over its range, with the limit as a dashed line.
fn query_svg(q: &firedrill_core::observed::QueryJudged) -> String {
    let points: Vec<(f64, f64)> = q
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|(at, v)| (at.saturating_since(q.from).as_secs_f64(), *v))
        .filter(|(_, v)| v.is_finite())
        .collect();
    if points.is_empty() {
        return String::new();
    }
    let span = q.to.saturating_since(q.from).as_secs_f64().max(1.0);
    let high = points
        .iter()
        .map(|(_, v)| *v)
        .fold(q.limit, f64::max)
        .max(f64::MIN_POSITIVE);
    let low = points.iter().map(|(_, v)| *v).fold(0.0, f64::min);
    let (top, h) = (10.0, 80.0);
    let x = |t: f64| LEFT + PLOT * (t / span).clamp(0.0, 1.0);
    let y = |v: f64| top + h - h * (v - low) / (high - low).max(f64::MIN_POSITIVE);
    let mut out = format!(
        r#"<svg class="query" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 120" role="img" aria-label="query series">"#
    );
    let _ = write!(
        out,
        r#"<line class="limit" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="label" x="{:.1}" y="{:.1}" text-anchor="end">limit {}</text>"#,
        LEFT + PLOT,
        y(q.limit),
        y(q.limit),
        LEFT - 6.0,
        y(q.limit) + 4.0,
        esc(&firedrill_core::guard::format_value(q.limit))
    );
    for (i, series) in q.series.iter().enumerate() {
        let line: Vec<String> = series
            .points
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(at, v)| {
                format!(
                    "{:.1},{:.1}",
                    x(at.saturating_since(q.from).as_secs_f64()),
                    y(*v)
                )
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="series s{}" points="{}"><title>{}</title></polyline>"#,
            i % 4,
            line.join(" "),
            esc(&series.labels)
        );
    }
    axis(&mut out, span, top + h + 4.0, x);
    out.push_str("</svg>");
    out
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 200.0;
const PLOT: f64 = WIDTH - LEFT - 20.0;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round tick step for a span of `secs` seconds.
fn tick_step(secs: f64) -> f64 {
    [
        1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| secs / s <= 10.0)
    .unwrap_or(7200.0)
}

fn axis(out: &mut String, span: f64, y: f64, x: impl Fn(f64) -> f64) {
    let step = tick_step(span);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let px = x(t);
        let _ = write!(
            out,
            r#"<line class="tick" x1="{px:.1}" y1="20" x2="{px:.1}" y2="{y:.1}"/><text class="axis" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y + 14.0,
            format_duration(std::time::Duration::from_secs_f64(t))
        );
        t += step;
    }
}

/// How many characters of a label fit in the left column; longer ones get a full-width row.
const LEFT_LABEL: usize = 30;
/// Characters per line of a full-width label row (11px text over the SVG's width).
const ROW_LABEL: usize = 150;
/// The height of one line of label text.
const LINE: f64 = 14.0;

/// A bar's label: in the left column when it fits, else (whole, never cut) in lines of
/// its own above the bar, wrapped at spaces.
fn bar_label(out: &mut String, y: &mut f64, label: &str) {
    if label.chars().count() <= LEFT_LABEL {
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            *y + 14.0,
            esc(label)
        );
        return;
    }
    for line in wrap(label, ROW_LABEL) {
        let _ = write!(
            out,
            r#"<text class="label row" x="8" y="{:.1}">{}</text>"#,
            *y + 11.0,
            esc(&line)
        );
        *y += LINE;
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// The lane of each label (numbers at `xs`, in the order given) so that labels in one lane do
/// not overlap: a label takes the first lane whose last label ends left of it.
fn lanes(xs: &[(f64, f64)]) -> Vec<usize> {
    let mut ends: Vec<f64> = Vec::new();
    xs.iter()
        .map(|&(x, width)| {
            let lane = ends
                .iter()
                .position(|&end| end + 2.0 <= x - width / 2.0)
                .unwrap_or(ends.len());
            if lane == ends.len() {
                ends.push(f64::MIN);
            }
            ends[lane] = x + width / 2.0;
            lane
        })
        .collect()
}

fn timeline_svg(s: &ScenarioReport) -> String {
    let start = s.started;
    let secs = |t: PlatformTime| t.saturating_since(start).as_secs_f64();
    let mut end = s.finished.map_or(0.0, secs);
    for m in &s.milestones {
        end = end.max(secs(m.at));
    }
    for f in &s.faults {
        end = end.max(f.undone_at.map_or(0.0, secs));
    }
    for p in &s.phases {
        if let Some(v) = p.verdict {
            end = end.max(secs(p.start) + v.target.upper().as_secs_f64());
        }
    }
    let span = end.max(1.0);
    let x = |t: f64| LEFT + PLOT * (t / span).clamp(0.0, 1.0);
    let row = 22.0;
    let mut body = String::new();
    let mut y = 30.0;
    for f in &s.faults {
        bar_label(&mut body, &mut y, &format!("fault: {}", f.fault));
        let (a, b) = (
            x(secs(f.injected_at)),
            f.undone_at.map_or(x(span), |t| x(secs(t))),
        );
        let _ = write!(
            body,
            r#"<rect class="fault" x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{} ({} → {})</title></rect>"#,
            y + 3.0,
            (b - a).max(1.0),
            row - 6.0,
            esc(&f.fault),
            rel(f.injected_at, start),
            f.undone_at
                .map_or_else(|| "not undone".into(), |t| rel(t, start))
        );
        y += row;
    }
    for p in &s.phases {
        bar_label(&mut body, &mut y, &p.name);
        let a = x(secs(p.start));
        if let Some(v) = p.verdict {
            let (lo, hi) = (
                x(secs(p.start) + v.target.lower().as_secs_f64()),
                x(secs(p.start) + v.target.upper().as_secs_f64()),
            );
            let _ = write!(
                body,
                r#"<rect class="target" x="{lo:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>target {}</title></rect>"#,
                y + 1.0,
                (hi - lo).max(2.0),
                row - 2.0,
                esc(&v.target.to_string())
            );
        }
        let b = p.end.map_or(x(span), |t| x(secs(t)));
        let class = match p.verdict {
            Some(v) if v.passed => "phase pass",
            _ => "phase fail",
        };
        let _ = write!(
            body,
            r#"<rect class="{class}" x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {}</title></rect>"#,
            y + 6.0,
            (b - a).max(1.0),
            row - 12.0,
            esc(&p.name),
            p.verdict
                .map_or_else(|| "never ended".into(), |v| v.to_string())
        );
        y += row;
    }
    let _ = write!(
        body,
        r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">milestones</text>"#,
        LEFT - 6.0,
        y + 14.0
    );
    // Each mark carries its number from the legend under the chart; numbers that would
    // overlap go to the next lane down.
    let marks: Vec<(f64, f64)> = s
        .milestones
        .iter()
        .enumerate()
        .map(|(i, m)| (x(secs(m.at)), 7.0 * (i + 1).to_string().len() as f64 + 2.0))
        .collect();
    let lane = lanes(&marks);
    for (i, m) in s.milestones.iter().enumerate() {
        let cx = marks[i].0;
        let _ = write!(
            body,
            r#"<circle class="milestone" cx="{cx:.1}" cy="{:.1}" r="5"><title>{}: {} at {}</title></circle><text class="mark" x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y + 10.0,
            i + 1,
            esc(&m.name),
            rel(m.at, start),
            y + 27.0 + LINE * lane[i] as f64,
            i + 1
        );
    }
    y += row + LINE * lane.iter().max().map_or(0.0, |l| (l + 1) as f64);
    axis(&mut body, span, y, x);
    let height = y + 40.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="timeline of {}">"#,
        esc(&s.scenario)
    );
    out.push_str(&body);
    out.push_str("</svg>");
    out
}

/// The regions that served a scenario's answers, in order of first answer: the colour of
/// each (`r0`, `r1`, … in the stylesheet) is its position here.
fn serving_regions(s: &ScenarioReport) -> Vec<String> {
    let mut observations: Vec<_> = s.probes.iter().flat_map(|p| &p.observations).collect();
    observations.sort_by_key(|o| o.at);
    let mut regions: Vec<String> = Vec::new();
    for region in observations.iter().filter_map(|o| o.region.as_ref()) {
        if !regions.contains(region) {
            regions.push(region.clone());
        }
    }
    regions
}

/// How many region colours the stylesheet has; more regions reuse them.
const REGION_COLOURS: usize = 4;

fn probe_svg(s: &ScenarioReport) -> String {
    let observations: Vec<_> = s
        .probes
        .iter()
        .flat_map(|p| p.observations.iter())
        .collect();
    if observations.is_empty() {
        return String::new();
    }
    let regions = serving_regions(s);
    let start = s.started;
    let secs = |t: PlatformTime| t.saturating_since(start).as_secs_f64();
    let span = observations.iter().map(|o| secs(o.at)).fold(1.0, f64::max);
    let max_latency = observations
        .iter()
        .map(|o| o.latency.as_secs_f64())
        .fold(0.001, f64::max);
    let x = |t: f64| LEFT + PLOT * (t / span);
    let (top, h) = (20.0, 80.0);
    let strip = 16.0;
    let strips = s
        .probes
        .iter()
        .filter(|p| !p.observations.is_empty())
        .count();
    let legend = top + h + 4.0 + strip * strips as f64 + 30.0;
    let mut out = format!(
        r#"<svg class="probes" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="probe answers">"#,
        legend + 12.0
    );
    let _ = write!(
        out,
        r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">latency (max {})</text>"#,
        LEFT - 6.0,
        top + 10.0,
        format_duration(std::time::Duration::from_secs_f64(max_latency))
    );
    let points: Vec<String> = observations
        .iter()
        .map(|o| {
            format!(
                "{:.1},{:.1}",
                x(secs(o.at)),
                top + h - h * o.latency.as_secs_f64() / max_latency
            )
        })
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="latency" points="{}"/>"#,
        points.join(" ")
    );
    // One strip per probe: a good answer in the colour of the region that served it, a bad
    // one in red (with the region in its tooltip when one answered).
    let mut y = top + h + 4.0;
    for probe in s.probes.iter().filter(|p| !p.observations.is_empty()) {
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">answers: {}</text>"#,
            LEFT - 6.0,
            y + 8.0,
            esc(&probe.name)
        );
        for o in &probe.observations {
            let region = o
                .region
                .as_ref()
                .and_then(|r| regions.iter().position(|known| known == r));
            let class = match (o.good, region) {
                (false, _) => "bad".to_owned(),
                (true, Some(i)) => format!("good r{}", i % REGION_COLOURS),
                (true, None) => "good".to_owned(),
            };
            let title = match (&o.region, o.good) {
                (Some(r), true) => format!("{} good from {}", rel(o.at, start), r),
                (Some(r), false) => format!("{} bad from {}", rel(o.at, start), r),
                (None, good) => format!(
                    "{} {}",
                    rel(o.at, start),
                    if good {
                        "good"
                    } else {
                        "bad, no region answered"
                    }
                ),
            };
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{:.1}" y="{y:.1}" width="2" height="10"><title>{}</title></rect>"#,
                x(secs(o.at)),
                esc(&title)
            );
        }
        y += strip;
    }
    axis(&mut out, span, y, x);
    let mut lx = LEFT;
    for (i, region) in regions.iter().enumerate() {
        let _ = write!(
            out,
            r#"<rect class="good r{}" x="{lx:.1}" y="{:.1}" width="10" height="10"/><text class="legend" x="{:.1}" y="{legend:.1}">good answer from {}</text>"#,
            i % REGION_COLOURS,
            legend - 9.0,
            lx + 14.0,
            esc(region)
        );
        lx += 14.0 + 7.0 * (17 + region.chars().count()) as f64;
    }
    let _ = write!(
        out,
        r#"<rect class="bad" x="{lx:.1}" y="{:.1}" width="10" height="10"/><text class="legend" x="{:.1}" y="{legend:.1}">bad answer</text>"#,
        legend - 9.0,
        lx + 14.0
    );
    out.push_str("</svg>");
    out
}

/// Recovery time per drill across runs, against its target band.
fn trend_svg(reports: &[Report]) -> String {
    let mut series: std::collections::BTreeMap<String, Vec<(usize, f64, f64, f64)>> =
        std::collections::BTreeMap::new();
    for (i, report) in reports.iter().enumerate() {
        for s in &report.scenarios {
            for p in s
                .phases
                .iter()
                .filter(|p| p.name == "failover" || p.name == "recovery")
            {
                if let Some(v) = p.verdict {
                    series.entry(s.scenario.clone()).or_default().push((
                        i,
                        v.measured.as_secs_f64(),
                        v.target.lower().as_secs_f64(),
                        v.target.upper().as_secs_f64(),
                    ));
                }
            }
        }
    }
    let max = series
        .values()
        .flatten()
        .map(|(_, m, _, hi)| m.max(*hi))
        .fold(60.0, f64::max)
        * 1.1;
    let (top, h) = (20.0, 220.0);
    let n = reports.len().max(2) - 1;
    let x = |i: usize| LEFT + PLOT * i as f64 / n as f64;
    let y = |v: f64| top + h - h * v / max;
    let mut out = format!(
        r#"<svg class="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="recovery time across runs">"#,
        top + h + 60.0
    );
    for (k, (name, points)) in series.iter().enumerate() {
        if let Some((_, _, lo, hi)) = points.first() {
            let _ = write!(
                out,
                r#"<rect class="target" x="{LEFT}" y="{:.1}" width="{PLOT}" height="{:.1}"><title>{} target band</title></rect>"#,
                y(*hi),
                (y(*lo) - y(*hi)).max(1.0),
                esc(name)
            );
        }
        let line: Vec<String> = points
            .iter()
            .map(|(i, m, _, _)| format!("{:.1},{:.1}", x(*i), y(*m)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="series s{}" points="{}"/>"#,
            k % 4,
            line.join(" ")
        );
        for (i, m, _, _) in points {
            let _ = write!(
                out,
                r#"<circle class="run s{}" cx="{:.1}" cy="{:.1}" r="4"><title>{}: {} ({})</title></circle>"#,
                k % 4,
                x(*i),
                y(*m),
                esc(name),
                format_duration(std::time::Duration::from_secs_f64(*m)),
                esc(&reports[*i].started_at)
            );
        }
        let _ = write!(
            out,
            r#"<text class="legend s{}" x="{LEFT}" y="{:.1}">● {}</text>"#,
            k % 4,
            top + h + 34.0 + 14.0 * k as f64,
            esc(name)
        );
    }
    for v in [0.0, max / 2.0, max / 1.1] {
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y(v) + 4.0,
            format_duration(std::time::Duration::from_secs_f64(v))
        );
    }
    for (i, r) in reports.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(i),
            top + h + 16.0,
            esc(r.started_at.get(..10).unwrap_or(&r.started_at))
        );
    }
    out.push_str("</svg>");
    out
}

/// One run's scenario: its start, its name, and each phase with its duration.
type Breakdown = (String, String, Vec<(String, String)>);

/// Per run and scenario, each phase's duration (for the breakdown table).
fn phase_breakdown(reports: &[Report]) -> Vec<Breakdown> {
    reports
        .iter()
        .flat_map(|r| {
            r.scenarios.iter().map(move |s| {
                let phases = s
                    .phases
                    .iter()
                    .filter_map(|p| {
                        p.verdict
                            .map(|v| (p.name.clone(), format_duration(v.measured)))
                    })
                    .collect();
                (r.started_at.clone(), s.scenario.clone(), phases)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    fn embedded_run() -> crate::json::Report {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/reports/embedded-run.json");
        crate::json::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn long_labels_are_shown_whole_wrapped_in_a_row_of_their_own() {
        let mut report = embedded_run();
        let fault = "a very long fault description"
            .repeat(8)
            .replace("descriptiona", "description a");
        report.scenarios[0].faults[0].fault.clone_from(&fault);
        let long = format!("fault: {fault}");
        let html = super::render(&[report]).expect("render");
        let timelines: Vec<&str> = html
            .split(r#"<svg class="timeline""#)
            .skip(1)
            .filter_map(|rest| rest.split("</svg>").next())
            .collect();
        assert_eq!(timelines.len(), 2);
        assert!(
            timelines.iter().all(|t| !t.contains('…')),
            "a label was cut"
        );
        let lines = super::wrap(&long, super::ROW_LABEL);
        assert_eq!(lines.len(), 2, "{lines:?}");
        for line in &lines {
            assert!(
                html.contains(r#"<text class="label row" x="8""#)
                    && html.contains(&format!(">{line}</text>")),
                "{line}"
            );
        }
        assert!(
            html.contains(
                ">fault: traffic switched from &quot;us-west1&quot; to &quot;us-west2&quot;</text>"
            ),
            "the fixture's own long fault label is whole"
        );
    }

    #[test]
    fn every_milestone_mark_is_numbered_without_overlap_and_listed_with_its_name() {
        let report = embedded_run();
        let html = super::render(std::slice::from_ref(&report)).expect("render");
        let s = &report.scenarios[0];
        for (i, m) in s.milestones.iter().enumerate() {
            assert!(
                html.contains(&format!(
                    "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>",
                    i + 1,
                    super::rel(m.at, s.started),
                    m.name
                )),
                "legend row {} ({})",
                i + 1,
                m.name
            );
        }
        // Marks at one instant (`fault injected` and its own) share an x: not a lane.
        let lanes = super::lanes(&[(100.0, 9.0), (100.0, 9.0), (104.0, 9.0), (300.0, 9.0)]);
        assert_eq!(lanes, [0, 1, 2, 0]);
    }

    #[test]
    fn the_answers_strip_colours_each_answer_by_the_region_that_served_it() {
        let report = embedded_run();
        let html = super::render(std::slice::from_ref(&report)).expect("render");
        let s = &report.scenarios[0];
        assert_eq!(super::serving_regions(s), ["us-west1", "us-west2"]);
        let from = |region: &str| {
            s.probes[0]
                .observations
                .iter()
                .filter(|o| o.good && o.region.as_deref() == Some(region))
                .count()
        };
        let probes = html
            .split(r#"<svg class="probes""#)
            .nth(1)
            .and_then(|rest| rest.split("</svg>").next())
            .expect("a probe chart");
        // One mark per answer, plus one legend key per region.
        assert_eq!(
            probes.matches(r#"class="good r0""#).count(),
            from("us-west1") + 1
        );
        assert_eq!(
            probes.matches(r#"class="good r1""#).count(),
            from("us-west2") + 1
        );
        assert!(
            probes.contains("good answer from us-west1</text>"),
            "{probes}"
        );
        assert!(
            probes.contains("good answer from us-west2</text>"),
            "{probes}"
        );
        assert!(probes.contains(">bad answer</text>"), "{probes}");
        assert!(probes.contains("answers: front-door</text>"), "{probes}");
    }

    #[test]
    fn an_aborted_scenario_shows_its_guard_trip_and_the_series_its_queries_judged() {
        let html = super::render(&[crate::json::tests::guarded_run()]).expect("render");
        assert!(
            html.contains("Aborted by guard &quot;bystanders&quot;"),
            "{html}"
        );
        assert!(
            html.contains(
                "guard &quot;bystanders&quot; tripped: 40 (prod-2-orders), abort-if &gt; 5"
            ),
            "{html}"
        );
        assert!(html.contains(r#"<svg class="query""#), "{html}");
        assert!(html.contains(r#"<polyline class="series s0""#), "{html}");
        assert!(html.contains("limit 0.05"), "{html}");
        assert!(html.contains("stayed below 0.05 throughout"), "{html}");
    }

    #[test]
    fn a_halted_run_and_a_blackout_override_are_stated_for_the_run() {
        let mut report = crate::json::tests::guarded_run();
        report.aborted_by = Some("halt by alice: <bad deploy>".into());
        report.blackout_override = Some(firedrill_engine::events::BlackoutOverride {
            window: "fri 16:00-23:59 America/Los_Angeles".into(),
            window_reason: Some("weekend freeze".into()),
            until: "2026-12-04T23:59:00-08:00[America/Los_Angeles]".into(),
            reason: "sev-1 drill".into(),
            by: "bob".into(),
        });
        let html = super::render(&[report.clone()]).expect("render");
        assert!(
            html.contains("The run was stopped by halt by alice: &lt;bad deploy&gt;"),
            "{html}"
        );
        assert!(
            html.contains(
                "Run inside the blackout window fri 16:00-23:59 America/Los_Angeles (weekend freeze), \
                 until 2026-12-04T23:59:00-08:00[America/Los_Angeles], by bob: sev-1 drill"
            ),
            "{html}"
        );
        report.aborted_by = None;
        report.blackout_override = None;
        let plain = super::render(&[report]).expect("render");
        assert!(!plain.contains("The run was stopped by"), "{plain}");
        assert!(!plain.contains("blackout window"), "{plain}");
    }
}
