//! Checks of a parsed platform that need no I/O.

use std::collections::BTreeMap;

use super::{Platform, Role};
use firedrill_core::diagnostic::{Problem, Problems, closest, echo, one_of};
use firedrill_core::timeline::phase_names;

impl Platform {
    /// Checks references between sections, value ranges and the safety rules' preconditions.
    ///
    /// # Errors
    ///
    /// Every problem found, each located in the file.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut problems = Problems::default();
        let mut problem = |path: &str, message: String, hint: String| {
            problems.push(Problem::at(self.locate(path), message).hint(hint));
        };

        if self.regions.is_empty() {
            problem(
                "regions",
                "the platform has no regions".into(),
                "add at least a primary and a failover region".into(),
            );
        }
        if !self.regions.is_empty() && self.primary_region().is_none() {
            problem(
                "regions",
                "no region has `role: primary`".into(),
                "mark the region that normally serves traffic with `role: primary`".into(),
            );
        }
        if !self.time_scale.is_finite() || self.time_scale <= 0.0 {
            problem(
                "time-scale",
                format!(
                    "time-scale {} is not a number greater than zero",
                    self.time_scale
                ),
                "use 1 for real time".into(),
            );
        }

        let mut zone_owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, region) in &self.regions {
            for (i, zone) in region.zones.iter().enumerate() {
                if let Some(other) = zone_owner.insert(zone, name) {
                    problem(
                        &format!("regions.{name}.zones.{i}"),
                        format!(
                            "zone \"{zone}\" is listed in both region \"{other}\" and region \"{name}\""
                        ),
                        "a zone belongs to exactly one region".into(),
                    );
                }
            }
            if let Some(context) = &region.kube_context
                && !self.safety.allow.kube_contexts.contains(context)
            {
                problem(
                    &format!("regions.{name}.kube-context"),
                    format!(
                        "kube context \"{context}\" of region \"{name}\" is not in safety.allow.kube-contexts"
                    ),
                    format!(
                        "add \"{context}\" to safety.allow.kube-contexts if drills may touch it"
                    ),
                );
            }
        }

        for (ns_name, ns) in &self.namespaces {
            if let Some(db) = &ns.database
                && !self.databases.contains_key(db)
            {
                problem(
                    &format!("namespaces.{ns_name}.database"),
                    format!("namespace \"{ns_name}\" uses database \"{db}\", which is not defined"),
                    format!(
                        "define it under `databases:` (known: {})",
                        one_of(&self.databases.keys().collect::<Vec<_>>())
                    ),
                );
            }
        }

        for (db_name, db) in &self.databases {
            if db.uri.env.is_some() == db.uri.file.is_some() {
                problem(&format!("databases.{db_name}.uri"), format!("database \"{db_name}\": `uri` needs exactly one of `env:` or `file:`"), "connection strings may hold passwords, so they come from the environment or a file: uri: { env: MONGO_URI_PROD_1 }".into());
            }
            for (member, region) in &db.members {
                if !self.regions.contains_key(region) {
                    problem(
                        &format!("databases.{db_name}.members.{member}"),
                        format!(
                            "member \"{member}\" of database \"{db_name}\" is in region \"{region}\", which is not defined"
                        ),
                        format!("known regions: {}", one_of(&self.region_names())),
                    );
                }
            }
            if let Some(kill) = &db.kill {
                let at = format!("databases.{db_name}.kill");
                let links: Vec<&String> = self
                    .toxiproxy
                    .as_ref()
                    .map(|t| t.links.keys().collect())
                    .unwrap_or_default();
                for (member, link) in &kill.links {
                    if !links.contains(&link) {
                        problem(
                            &format!("{at}.links.{member}"),
                            format!(
                                "member \"{member}\" of database \"{db_name}\" is killed through Toxiproxy link \"{link}\", which is not defined"
                            ),
                            format!(
                                "define it under toxiproxy.links (known: {})",
                                one_of(&links)
                            ),
                        );
                    }
                }
                if let Some(pods) = &kill.pods {
                    if !self.safety.allow.kube_contexts.contains(&pods.context) {
                        problem(
                            &format!("{at}.pods.context"),
                            format!(
                                "kube context \"{}\" of the pods of database \"{db_name}\" is not in safety.allow.kube-contexts",
                                pods.context
                            ),
                            format!(
                                "add \"{}\" to safety.allow.kube-contexts if drills may delete those pods",
                                pods.context
                            ),
                        );
                    }
                    if pods.members.is_empty() {
                        problem(
                            &format!("{at}.pods.members"),
                            format!("database \"{db_name}\": `pods` maps no member to a pod"),
                            "map each member host:port to its pod name, e.g. mongo-0.mongo:27017: mongo-0".into(),
                        );
                    }
                }
                if let Some(restart) = &kill.restart
                    && !self.commands.contains_key(restart)
                {
                    problem(
                        &format!("{at}.restart"),
                        format!(
                            "database \"{db_name}\" restarts killed members with command \"{restart}\", which is not defined"
                        ),
                        format!(
                            "define it under `commands:` (known: {})",
                            one_of(&self.commands.keys().collect::<Vec<_>>())
                        ),
                    );
                }
                if kill.links.is_empty() && kill.pods.is_none() && kill.restart.is_none() {
                    problem(
                        &at,
                        format!("database \"{db_name}\": `kill` names no way to kill a member"),
                        "give `links`, `pods` or `restart`, or remove `kill`".into(),
                    );
                }
            }
        }

        if let Some(toxiproxy) = &self.toxiproxy {
            if url::Url::parse(&toxiproxy.url).is_err() {
                problem(
                    "toxiproxy.url",
                    format!("toxiproxy url \"{}\" is not a URL", echo(&toxiproxy.url)),
                    "write it like http://127.0.0.1:8474".into(),
                );
            }
            for (name, link) in &toxiproxy.links {
                if link.create && (link.listen.is_none() || link.upstream.is_none()) {
                    problem(
                        &format!("toxiproxy.links.{name}"),
                        format!(
                            "link \"{name}\" has `create: true` but no `listen` and `upstream`"
                        ),
                        "give both addresses, or create the proxy yourself and drop `create`"
                            .into(),
                    );
                }
            }
        }

        if let Some(traffic) = &self.traffic {
            if !self.probes.contains_key(&traffic.probe) {
                problem(
                    "traffic.probe",
                    format!("traffic probe \"{}\" is not defined", traffic.probe),
                    format!(
                        "name one of the probes: {}",
                        one_of(&self.probes.keys().collect::<Vec<_>>())
                    ),
                );
            }
            if traffic.switch.run.is_empty() {
                problem("traffic.switch.run", "the traffic switch command is empty".into(), "give the program and its arguments, e.g. [terraform, apply, -auto-approve, -var, \"active_region={region}\"]".into());
            }
            if !traffic.switch.run.iter().any(|a| a.contains("{region}")) {
                problem(
                    "traffic.switch.run",
                    "the traffic switch command never mentions {region}".into(),
                    "put {region} where the target region goes, e.g. -var active_region={region}"
                        .into(),
                );
            }
            if let Some(probe) = self.probes.get(&traffic.probe)
                && probe.region_header.is_none()
            {
                problem(
                    &format!("probes.{}.region-header", traffic.probe),
                    format!(
                        "probe \"{}\" checks the traffic switch but has no `region-header`",
                        traffic.probe
                    ),
                    "name the response header that carries the serving region".into(),
                );
            }
        }

        for (name, command) in &self.commands {
            if command.run.is_empty() {
                problem(
                    &format!("commands.{name}.run"),
                    format!("command \"{name}\" is empty"),
                    "give the program and its arguments as a list".into(),
                );
            }
        }
        for (name, fault) in &self.faults {
            for (part, command) in [("inject", &fault.inject), ("undo", &fault.undo)] {
                if command.run.is_empty() {
                    problem(
                        &format!("faults.{name}.{part}.run"),
                        format!("fault \"{name}\": the {part} command is empty"),
                        "give the program and its arguments as a list".into(),
                    );
                }
            }
        }

        for (name, probe) in &self.probes {
            if url::Url::parse(&probe.url).is_err() {
                problem(
                    &format!("probes.{name}.url"),
                    format!("probe \"{name}\": \"{}\" is not a URL", echo(&probe.url)),
                    "write it like https://shop.example.com/healthz".into(),
                );
            }
            if probe.interval.is_zero() {
                problem(
                    &format!("probes.{name}.interval"),
                    format!("probe \"{name}\" has a zero interval"),
                    "use e.g. 5s".into(),
                );
            }
            if probe.timeout.is_zero() {
                problem(
                    &format!("probes.{name}.timeout"),
                    format!("probe \"{name}\" has a zero timeout"),
                    "use e.g. 2s".into(),
                );
            }
            if let Some(slo) = &probe.slo
                && probe.slo_percent().is_none()
            {
                problem(
                    &format!("probes.{name}.slo"),
                    format!(
                        "probe \"{name}\": slo \"{}\" is not a percentage above 0 and at most 100",
                        echo(slo)
                    ),
                    "write the availability objective, e.g. slo: 99.9%".into(),
                );
            }
            if probe.stable_after == 0 {
                problem(
                    &format!("probes.{name}.stable-after"),
                    format!("probe \"{name}\": stable-after must be at least 1"),
                    "3 consecutive good answers is a common choice".into(),
                );
            }
            if probe.expect_status.is_empty()
                || probe.expect_status.iter().any(|s| !(100..=599).contains(s))
            {
                problem(
                    &format!("probes.{name}.expect-status"),
                    format!(
                        "probe \"{name}\": expect-status must list HTTP status codes (100..599)"
                    ),
                    "e.g. [200]".into(),
                );
            }
        }

        // A target is only ever read for a phase a step measures; any other key is a typo that
        // would silently leave the phase without its target.
        for name in self.targets.keys() {
            if !phase_names().any(|phase| phase == name) {
                let known: Vec<&str> = phase_names().collect();
                let hint = match closest(name, known.iter().copied(), 1).first() {
                    Some(near) => format!("did you mean \"{near}\"? Phases: {}", one_of(&known)),
                    None => format!("phases firedrill measures: {}", one_of(&known)),
                };
                problem(
                    &format!("targets.{name}"),
                    format!("target \"{}\" names no phase any step measures", echo(name)),
                    hint,
                );
            }
        }

        if self
            .regions
            .values()
            .filter(|r| r.role == Role::Failover)
            .count()
            == 0
            && !self.regions.is_empty()
        {
            problem(
                "regions",
                "no region has `role: failover`".into(),
                "mark the passive region with `role: failover`".into(),
            );
        }

        if let Some(halt) = &self.safety.halt {
            match (&halt.config_map, &halt.file) {
                (Some(_), Some(_)) | (None, None) => problem(
                    "safety.halt",
                    "safety.halt needs exactly one of `config-map:` or `file:`".into(),
                    "on Kubernetes name a ConfigMap every runner can read (config-map: { kube-context: in-cluster, namespace: firedrill }), else a file path".into(),
                ),
                (Some(cm), None) if !self.safety.allow.kube_contexts.contains(&cm.kube_context) => {
                    problem(
                        "safety.halt.config-map.kube-context",
                        format!(
                            "kube context \"{}\" of the halt marker is not in safety.allow.kube-contexts",
                            cm.kube_context
                        ),
                        "firedrill only talks to allowed contexts: add it there, or put the marker in a cluster that is".into(),
                    );
                }
                _ => {}
            }
            if halt.interval.is_some_and(|i| i.is_zero()) {
                problem(
                    "safety.halt.interval",
                    "the halt marker's interval is zero".into(),
                    "use e.g. 5s, or leave it out to look as often as the fastest probe".into(),
                );
            }
        }
        if let Some(blackout) = &self.safety.blackout {
            for i in blackout.empty_freezes() {
                problem(
                    &format!("safety.blackout.freezes.{i}"),
                    "this freeze ends before it begins".into(),
                    "dates are inclusive (from: 2026-12-24, to: 2026-12-26 freezes three days); a local time ends it exactly".into(),
                );
            }
        }
        self.validate_stop_conditions(&mut problems);

        if problems.is_empty() {
            Ok(())
        } else {
            problems.sort();
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use firedrill_core::diagnostic::Problems;

    const HEAD: &str = "name: t\nregions:\n  us-west1: { role: primary }\n  us-west2: { role: failover }\ntoxiproxy:\n  url: http://127.0.0.1:8474\n  links:\n    m0: { proxy: mongo-0 }\ncommands:\n  start-mongod: { run: [true] }\n";

    fn load(yaml: &str) -> Result<super::Platform, Problems> {
        crate::load_str(Path::new("p.yaml"), yaml, &|_| None)
    }

    #[test]
    fn a_kill_naming_what_the_platform_does_not_define_is_located_and_explained() {
        let yaml = format!(
            "{HEAD}databases:\n  prod-1:\n    replica-set: rs\n    uri: {{ env: U }}\n    kill:\n      links:\n        h0:27017: m0\n        h1:27017: nowhere\n      pods:\n        context: not-allowed\n        namespace: db\n        members: {{}}\n      restart: missing-command\n"
        );
        let problems = load(&yaml).expect_err("invalid kill").0;
        let found: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| {
                (
                    p.location.as_ref().map_or(0, |l| l.line),
                    p.message.as_str(),
                )
            })
            .collect();
        let expect = [
            (
                18,
                "member \"h1:27017\" of database \"prod-1\" is killed through Toxiproxy link \"nowhere\", which is not defined",
            ),
            (
                20,
                "kube context \"not-allowed\" of the pods of database \"prod-1\" is not in safety.allow.kube-contexts",
            ),
            (22, "database \"prod-1\": `pods` maps no member to a pod"),
            (
                23,
                "database \"prod-1\" restarts killed members with command \"missing-command\", which is not defined",
            ),
        ];
        for (line, message) in expect {
            assert!(
                found.contains(&(line, message)),
                "missing {line}: {message} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
    }

    #[test]
    fn a_target_for_no_phase_is_located_with_the_closest_phase() {
        let yaml =
            format!("{HEAD}targets:\n  failover: 20m..25m\n  detecton: 2m\n  zzzzzzzzzz: 1m\n");
        let problems = load(&yaml).expect_err("unknown targets").0;
        let text = Problems(problems.clone()).to_string();
        assert_eq!(problems.len(), 2, "{text}");
        assert!(
            text.contains("p.yaml:13:3: target \"detecton\" names no phase any step measures (hint: did you mean \"detection\"?"),
            "{text}"
        );
        assert!(
            text.contains("p.yaml:14:3: target \"zzzzzzzzzz\""),
            "{text}"
        );
        assert!(
            text.contains("\"failover\", \"recovery\", \"detection\" or \"switch\""),
            "{text}"
        );
        // Every phase a step measures may carry a target.
        let all: String = firedrill_core::timeline::phase_names()
            .map(|p| format!("  {p}: 5m\n"))
            .collect();
        load(&format!("{HEAD}targets:\n{all}")).unwrap_or_else(|p| panic!("{p}"));
    }

    #[test]
    fn a_valid_kill_loads_and_an_unknown_key_in_it_is_refused_with_its_line() {
        let yaml = format!(
            "{HEAD}databases:\n  prod-1:\n    replica-set: rs\n    uri: {{ env: U }}\n    kill:\n      links:\n        h0:27017: m0\n      restart: start-mongod\n"
        );
        let platform = load(&yaml).unwrap_or_else(|p| panic!("{p}"));
        let kill = platform.databases["prod-1"].kill.clone().expect("kill");
        assert_eq!(kill.links["h0:27017"], "m0");
        assert_eq!(kill.restart.as_deref(), Some("start-mongod"));

        let yaml = format!(
            "{HEAD}databases:\n  prod-1:\n    replica-set: rs\n    uri: {{ env: U }}\n    kill:\n      shutdown: true\n"
        );
        let problems = load(&yaml).expect_err("unknown key").0;
        let text = format!("{}", Problems(problems.clone()));
        assert!(text.contains("p.yaml:16"), "{text}");
        assert!(text.contains("unknown field `shutdown`"), "{text}");

        let yaml = format!(
            "{HEAD}databases:\n  prod-1:\n    replica-set: rs\n    uri: {{ env: U }}\n    kill: {{}}\n"
        );
        let problems = load(&yaml).expect_err("empty kill").0;
        assert!(
            problems[0]
                .message
                .contains("`kill` names no way to kill a member"),
            "{problems:?}"
        );
    }
}
