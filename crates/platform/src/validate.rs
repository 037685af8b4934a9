//! Checks of a parsed platform that need no I/O.

use std::collections::BTreeMap;

use super::{Atlas, Platform, SecretRef};
use firedrill_core::diagnostic::{Problem, Problems, closest, echo, one_of, redact_userinfo};
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

        // Regions, and a primary and a failover among them, are not required here: a platform
        // of probes and command faults is complete. A step that needs a region with a role
        // declares it (`Need::Region`), and the drill is refused then (`Platform::unmet`).
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
            if let Some(atlas) = &db.atlas {
                self.validate_atlas(db_name, atlas, db.kill.is_some(), &mut problem);
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

    /// The `atlas:` block of database `db_name`: an API it can reach, credentials it can read
    /// (never inline), and every region named in the platform's and Atlas's terms.
    fn validate_atlas(
        &self,
        db_name: &str,
        atlas: &Atlas,
        has_kill: bool,
        problem: &mut dyn FnMut(&str, String, String),
    ) {
        let at = format!("databases.{db_name}.atlas");
        match url::Url::parse(&atlas.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.password().is_none() => {}
            _ => problem(
                &format!("{at}.url"),
                format!(
                    "database \"{db_name}\": Atlas url \"{}\" is not an http(s) URL without credentials",
                    echo(&redact_userinfo(&atlas.url))
                ),
                "write it like https://cloud.mongodb.com; credentials go under api-key or service-account".into(),
            ),
        }
        if atlas.project_id.len() != 24 || !atlas.project_id.chars().all(|c| c.is_ascii_hexdigit())
        {
            problem(
                &format!("{at}.project-id"),
                format!(
                    "database \"{db_name}\": Atlas project id \"{}\" is not 24 hexadecimal digits",
                    echo(&atlas.project_id)
                ),
                "copy it from the project's settings in Atlas (or `atlas projects list`)".into(),
            );
        }
        let name_ok = atlas
            .cluster
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && atlas
                .cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !name_ok {
            problem(
                &format!("{at}.cluster"),
                format!(
                    "database \"{db_name}\": \"{}\" is not an Atlas cluster name",
                    echo(&atlas.cluster)
                ),
                "Atlas cluster names are letters, digits and hyphens, starting with a letter or digit".into(),
            );
        }
        let secrets: Vec<(&str, &SecretRef)> = match (&atlas.api_key, &atlas.service_account) {
            (Some(key), None) => vec![
                ("api-key.public-key", &key.public_key),
                ("api-key.private-key", &key.private_key),
            ],
            (None, Some(account)) => vec![
                ("service-account.client-id", &account.client_id),
                ("service-account.client-secret", &account.client_secret),
            ],
            _ => {
                problem(
                    &at,
                    format!(
                        "database \"{db_name}\": the Atlas block needs exactly one of `api-key` or `service-account`"
                    ),
                    "api-key: { public-key: { env: ATLAS_PUBLIC_KEY }, private-key: { env: ATLAS_PRIVATE_KEY } }, or service-account: { client-id: …, client-secret: … }".into(),
                );
                Vec::new()
            }
        };
        for (key, secret) in secrets {
            if secret.env.is_some() == secret.file.is_some() {
                problem(
                    &format!("{at}.{key}"),
                    format!("database \"{db_name}\": Atlas `{key}` needs exactly one of `env:` or `file:`"),
                    "Atlas credentials come from the environment or a file, never from the platform file".into(),
                );
            }
        }
        if !matches!(atlas.provider.as_str(), "GCP" | "AWS" | "AZURE") {
            problem(
                &format!("{at}.provider"),
                format!(
                    "database \"{db_name}\": Atlas provider \"{}\" is none of GCP, AWS, AZURE",
                    echo(&atlas.provider)
                ),
                "the estate runs on GCP: provider: GCP".into(),
            );
        }
        if atlas.regions.is_empty() {
            problem(
                &format!("{at}.regions"),
                format!("database \"{db_name}\": the Atlas block names no region"),
                "map each platform region to its Atlas name, e.g. us-west1: WESTERN_US".into(),
            );
        }
        for (region, name) in &atlas.regions {
            if !self.regions.contains_key(region) {
                problem(
                    &format!("{at}.regions.{region}"),
                    format!(
                        "database \"{db_name}\": Atlas region map names region \"{region}\", which is not defined"
                    ),
                    format!("known regions: {}", one_of(&self.region_names())),
                );
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                problem(
                    &format!("{at}.regions.{region}"),
                    format!(
                        "database \"{db_name}\": \"{}\" is not an Atlas region name",
                        echo(name)
                    ),
                    "Atlas names regions in capitals, e.g. WESTERN_US (GCP us-west1) or US_WEST_2 (GCP us-west2)".into(),
                );
            }
        }
        for (key, value) in [
            ("update-within", atlas.update_within),
            ("simulation-within", atlas.simulation_within),
        ] {
            if value.is_zero() {
                problem(
                    &format!("{at}.{key}"),
                    format!("database \"{db_name}\": Atlas `{key}` is zero"),
                    "give the longest the change may take, e.g. 30m".into(),
                );
            }
        }
        if has_kill {
            problem(
                &format!("databases.{db_name}.kill"),
                format!(
                    "database \"{db_name}\" is managed by Atlas, which has no way to kill one of its members"
                ),
                "remove `kill`; on Atlas, lose the primary with `When Atlas fails over the primary of …` or a region with `When Atlas simulates an outage of region …`".into(),
            );
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
    fn a_platform_of_one_probe_and_one_command_fault_is_valid_without_regions() {
        let yaml = "name: minimal\nprobes:\n  site: { url: \"http://127.0.0.1:8080/health\" }\nfaults:\n  stop-worker:\n    description: stop the worker\n    inject: { run: [systemctl, stop, worker] }\n    undo: { run: [systemctl, start, worker] }\n";
        let platform = load(yaml).unwrap_or_else(|p| panic!("{p}"));
        assert!(platform.regions.is_empty());
        assert_eq!(platform.primary_region(), None);
        assert_eq!(platform.probes["site"].url, "http://127.0.0.1:8080/health");
        assert_eq!(platform.faults["stop-worker"].undo.run[0], "systemctl");

        // Regions without a failover one are valid too: only a drill can need one.
        let one = load("name: one\nregions:\n  here: { role: primary }\n")
            .unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(one.primary_region(), Some("here"));
        assert_eq!(one.region_with(crate::Role::Failover), None);
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

    const ATLAS: &str = "databases:\n  prod-1:\n    replica-set: rs\n    uri: { env: U }\n    atlas:\n      project-id: 5f1d7a3c2b4e6f8091a2b3c4\n      cluster: prod-1\n";

    #[test]
    fn an_atlas_block_loads_with_its_defaults_and_says_the_database_is_atlas_managed() {
        let yaml = format!(
            "{HEAD}{ATLAS}      api-key:\n        public-key: {{ env: ATLAS_PUBLIC }}\n        private-key: {{ file: atlas.key }}\n      regions: {{ us-west1: WESTERN_US, us-west2: US_WEST_2 }}\n"
        );
        let platform = load(&yaml).unwrap_or_else(|p| panic!("{p}"));
        let db = &platform.databases["prod-1"];
        assert_eq!(db.management(), crate::Management::Atlas);
        let atlas = db.atlas.as_ref().expect("atlas");
        assert_eq!(atlas.url, "https://cloud.mongodb.com");
        assert_eq!(atlas.provider, "GCP");
        assert_eq!(atlas.regions["us-west2"], "US_WEST_2");
        assert_eq!(atlas.update_within, std::time::Duration::from_secs(1800));
    }

    #[test]
    fn an_inline_atlas_key_is_refused_and_never_echoed() {
        let yaml = format!(
            "{HEAD}{ATLAS}      api-key:\n        public-key: {{ env: ATLAS_PUBLIC }}\n        private-key: \"c0ffee-private-s3cret\"\n      regions: {{ us-west1: WESTERN_US }}\n"
        );
        let problems = load(&yaml).expect_err("inline key").0;
        let text = Problems(problems.clone()).to_string();
        assert!(!text.contains("c0ffee-private-s3cret"), "{text}");
        assert!(text.contains("p.yaml:20"), "{text}");
        assert!(text.contains("expected struct SecretRef"), "{text}");
    }

    #[test]
    fn an_atlas_block_with_bad_values_gets_each_problem_located() {
        let yaml = format!(
            "{HEAD}databases:\n  prod-1:\n    replica-set: rs\n    uri: {{ env: U }}\n    kill: {{ restart: start-mongod }}\n    atlas:\n      url: http://u:pw@atlas.example\n      project-id: not-hex\n      cluster: -bad\n      provider: IBM\n      regions: {{ us-east9: EASTERN_US, us-west1: western-us }}\n      update-within: 0s\n"
        );
        let problems = load(&yaml).expect_err("bad atlas").0;
        let text = Problems(problems.clone()).to_string();
        for expected in [
            "p.yaml:15:5: database \"prod-1\" is managed by Atlas, which has no way to kill one of its members",
            "p.yaml:16:5: database \"prod-1\": the Atlas block needs exactly one of `api-key` or `service-account`",
            "p.yaml:17:7: database \"prod-1\": Atlas url \"http://****@atlas.example\" is not an http(s) URL without credentials",
            "p.yaml:18:7: database \"prod-1\": Atlas project id \"not-hex\" is not 24 hexadecimal digits",
            "p.yaml:19:7: database \"prod-1\": \"-bad\" is not an Atlas cluster name",
            "p.yaml:20:7: database \"prod-1\": Atlas provider \"IBM\" is none of GCP, AWS, AZURE",
            "p.yaml:21:18: database \"prod-1\": Atlas region map names region \"us-east9\", which is not defined",
            "database \"prod-1\": \"western-us\" is not an Atlas region name",
            "p.yaml:22:7: database \"prod-1\": Atlas `update-within` is zero",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        assert!(!text.contains(":pw@"), "{text}");
        assert_eq!(problems.len(), 9, "{text}");
    }
}
