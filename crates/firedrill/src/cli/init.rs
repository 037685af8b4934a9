//! `firedrill init`: a commented platform file written from what the kube contexts show (regions
//! and zones from the nodes' labels, the namespaces that run deployments, each deployment's
//! replicas now), with a `<fill: …>` placeholder for what Kubernetes cannot tell (databases,
//! Toxiproxy links, the traffic switch, probes). `validate` names every placeholder until it
//! is filled in. Read only: it lists and never writes to a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use firedrill_platform::placeholder;
use firedrill_providers::kube::discover::{self, Cluster, REGION_LABEL};
use firedrill_providers::kube::{KubeError, ZONE_LABEL};

use super::Exit;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// A kube context to read, one per region (repeat it); the one running the most replicas
    /// becomes the primary region, the others failover regions.
    #[arg(long = "context", short = 'c', required = true, value_name = "CONTEXT")]
    pub contexts: Vec<String>,
    /// The kubeconfig holding the contexts (default: FIREDRILL_KUBECONFIG, KUBECONFIG, then
    /// ~/.kube/config); when given, the platform file names it.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The region of a context whose nodes carry no `topology.kubernetes.io/region` label (a
    /// failover cluster with 0 nodes), e.g. `--region gke_shop_us-west2=us-west2`.
    #[arg(long = "region", value_name = "CONTEXT=REGION", value_parser = parse_region)]
    pub regions: Vec<(String, String)>,
    /// The platform's name, used in reports and metric labels.
    #[arg(long, default_value = "production")]
    pub name: String,
    /// Write the platform file here (default: standard output).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Overwrite --output when it exists.
    #[arg(long)]
    pub force: bool,
}

fn parse_region(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((context, region)) if !context.is_empty() && !region.is_empty() => {
            Ok((context.to_owned(), region.to_owned()))
        }
        _ => Err(format!(
            "\"{text}\" is not CONTEXT=REGION (e.g. gke_shop_us-west2=us-west2)"
        )),
    }
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A context could not be read.
    #[error("cannot read kube context \"{context}\": {source}")]
    Discover {
        /// The context.
        context: String,
        /// Why.
        source: Box<KubeError>,
    },
    /// One cluster's nodes name several regions.
    #[error(
        "the nodes of kube context \"{context}\" are in several regions ({regions}) (hint: a platform region is one cluster: give one context per region)"
    )]
    ManyRegions {
        /// The context.
        context: String,
        /// The regions, formatted.
        regions: String,
    },
    /// Two contexts are the same region.
    #[error(
        "kube contexts \"{first}\" and \"{second}\" are both region \"{region}\" (hint: give one context per region, or name one with --region CONTEXT=REGION)"
    )]
    SameRegion {
        /// The first context.
        first: String,
        /// The other.
        second: String,
        /// The region.
        region: String,
    },
    /// A context given twice.
    #[error("kube context \"{0}\" is given twice (hint: give each region's context once)")]
    Repeated(String),
    /// `--region` names a context that is not read.
    #[error(
        "--region names kube context \"{0}\", which is not one of the --context given (hint: give it with --context too)"
    )]
    UnknownRegionContext(String),
    /// The output exists.
    #[error("{} exists (hint: pass --force to overwrite it, or choose another --output)", .0.display())]
    Exists(PathBuf),
    /// The output cannot be written.
    #[error("cannot write {}: {source} (hint: check the folder exists and is writable)", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads the contexts and writes the platform file.
pub async fn init(args: InitArgs) -> Exit {
    match run(&args).await {
        Ok(()) => Exit::Passed,
        Err(e) => {
            errln!("error: {e}");
            Exit::Usage
        }
    }
}

async fn run(args: &InitArgs) -> Result<(), InitError> {
    if let Some(path) = &args.output
        && path.exists()
        && !args.force
    {
        return Err(InitError::Exists(path.clone()));
    }
    let kubeconfig = args
        .kubeconfig
        .clone()
        .unwrap_or_else(firedrill_providers::kube::default_kubeconfig);
    let mut clusters = Vec::new();
    for context in &args.contexts {
        if clusters.iter().any(|c: &Cluster| &c.context == context) {
            return Err(InitError::Repeated(context.clone()));
        }
        let cluster = discover::discover(&kubeconfig, context)
            .await
            .map_err(|source| InitError::Discover {
                context: context.clone(),
                source: Box::new(source),
            })?;
        clusters.push(cluster);
    }
    let named: BTreeMap<String, String> = args.regions.iter().cloned().collect();
    if let Some(unknown) = named.keys().find(|c| !args.contexts.contains(c)) {
        return Err(InitError::UnknownRegionContext(unknown.clone()));
    }
    let estate = Estate::from_clusters(clusters, &named)?;
    let kubeconfig_key = args
        .kubeconfig
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    let text = estate.render(&args.name, kubeconfig_key.as_deref());
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|source| InitError::Write {
                path: path.clone(),
                source,
            })?;
            let to_fill = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .map(|l| l.matches(firedrill_platform::PLACEHOLDER).count())
                .sum::<usize>();
            errln!(
                "wrote {}: {} region(s), {} namespace(s), {} service(s); {to_fill} placeholder(s) to fill in (`firedrill validate --platform {}` names each)",
                path.display(),
                estate.regions.len(),
                estate.namespaces.len(),
                estate.namespaces.values().map(BTreeMap::len).sum::<usize>(),
                path.display()
            );
        }
        None => out!("{text}"),
    }
    Ok(())
}

/// Namespaces Kubernetes itself runs; a drill has no business there.
fn is_system(namespace: &str) -> bool {
    namespace.starts_with("kube-")
}

/// One region as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RegionSeen {
    context: String,
    /// None when neither the nodes nor --region tell.
    name: Option<String>,
    /// How the name was found, for the comment.
    from_flag: bool,
    zones: BTreeSet<String>,
    nodes: usize,
    primary: bool,
    /// Replicas over every workload namespace.
    replicas: i64,
}

/// What the clusters showed, arranged as a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Estate {
    /// In the order the contexts were given.
    regions: Vec<RegionSeen>,
    /// Namespace → deployment → replicas per context.
    namespaces: BTreeMap<String, BTreeMap<String, BTreeMap<String, i32>>>,
    /// Namespaces left out (Kubernetes' own, or running no deployment).
    skipped: Vec<String>,
}

impl Estate {
    fn from_clusters(
        clusters: Vec<Cluster>,
        named: &BTreeMap<String, String>,
    ) -> Result<Self, InitError> {
        let mut namespaces: BTreeMap<String, BTreeMap<String, BTreeMap<String, i32>>> =
            BTreeMap::new();
        let mut all_namespaces = BTreeSet::new();
        let mut regions = Vec::new();
        for cluster in clusters {
            let labelled: Vec<&String> = cluster.regions.keys().filter(|r| !r.is_empty()).collect();
            if labelled.len() > 1 {
                return Err(InitError::ManyRegions {
                    context: cluster.context.clone(),
                    regions: labelled
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let (name, from_flag) = match named.get(&cluster.context) {
                Some(region) => (Some(region.clone()), true),
                None => (labelled.first().map(|r| (*r).clone()), false),
            };
            for deployment in &cluster.deployments {
                if !is_system(&deployment.namespace) {
                    namespaces
                        .entry(deployment.namespace.clone())
                        .or_default()
                        .entry(deployment.name.clone())
                        .or_default()
                        .insert(cluster.context.clone(), deployment.replicas);
                }
            }
            all_namespaces.extend(cluster.namespaces.iter().cloned());
            regions.push(RegionSeen {
                replicas: cluster
                    .deployments
                    .iter()
                    .filter(|d| !is_system(&d.namespace))
                    .map(|d| i64::from(d.replicas.max(0)))
                    .sum(),
                context: cluster.context,
                name,
                from_flag,
                zones: cluster.regions.into_values().flatten().collect(),
                nodes: cluster.nodes,
                primary: false,
            });
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for region in &regions {
            if let Some(name) = &region.name
                && let Some(first) = seen.insert(name, &region.context)
            {
                return Err(InitError::SameRegion {
                    first: first.to_owned(),
                    second: region.context.clone(),
                    region: name.clone(),
                });
            }
        }
        // The primary serves traffic: the cluster running the most replicas (the first given
        // on a tie); every other is a failover region.
        let primary = regions
            .iter()
            .enumerate()
            .max_by_key(|(i, r)| (r.replicas, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        if let Some(i) = primary {
            regions[i].primary = true;
        }
        let skipped = all_namespaces
            .into_iter()
            .filter(|n| !namespaces.contains_key(n))
            .collect();
        Ok(Self {
            regions,
            namespaces,
            skipped,
        })
    }

    fn primary(&self) -> Option<&RegionSeen> {
        self.regions.iter().find(|r| r.primary)
    }

    /// The region's name in the file: its own, or a placeholder.
    fn region_name(region: &RegionSeen) -> String {
        region.name.clone().unwrap_or_else(|| {
            placeholder(&format!(
                "the region of kube context {} (its nodes carry no {REGION_LABEL} label; or pass --region {}=REGION)",
                region.context, region.context
            ))
        })
    }

    /// The platform file.
    fn render(&self, name: &str, kubeconfig: Option<&Path>) -> String {
        let mut out = String::new();
        let contexts: Vec<&str> = self.regions.iter().map(|r| r.context.as_str()).collect();
        let _ = write!(
            out,
            "# A platform file written by `firedrill init` from kube contexts {}.\n\
             #\n\
             # What Kubernetes showed is filled in: regions and zones from the nodes' {REGION_LABEL}\n\
             # and {ZONE_LABEL} labels, the namespaces running deployments, each deployment's replicas\n\
             # now, and safety allow-lists holding exactly those contexts and namespaces. What it\n\
             # cannot tell is a placeholder \"{} …>\": `firedrill validate --platform <this file>`\n\
             # names each one until it is filled in. Remove a section no drill of yours uses\n\
             # (databases, toxiproxy, traffic, probes) instead of filling it.\n\
             #\n\
             # Keys are kebab-case; unknown keys are errors. ${{NAME}} is replaced from the environment;\n\
             # secrets never go in this file. fixtures/platforms/production.example.yaml explains\n\
             # every key.\n\n",
            contexts.join(", "),
            firedrill_platform::PLACEHOLDER,
        );
        let _ = writeln!(
            out,
            "# A short name, used in reports and metric labels.\nname: {}\n",
            yaml(name)
        );
        if let Some(path) = kubeconfig {
            let _ = writeln!(
                out,
                "# The kubeconfig holding the contexts below.\nkubeconfig: {}\n",
                yaml(&path.display().to_string())
            );
        }
        self.render_regions(&mut out);
        self.render_namespaces(&mut out);
        self.render_placeholders(&mut out);
        let _ = writeln!(
            out,
            "# What drills may touch; anything else is refused. Limited to what `init` found.\n\
             safety:\n  allow:\n    kube-contexts: [{}]\n    namespaces: [{}]\n    replica-sets: [{}]",
            contexts
                .iter()
                .map(|c| yaml(c))
                .collect::<Vec<_>>()
                .join(", "),
            self.namespaces
                .keys()
                .map(|n| yaml(n))
                .collect::<Vec<_>>()
                .join(", "),
            self.namespaces
                .keys()
                .map(|n| format!("*{}", anchor(n)))
                .collect::<Vec<_>>()
                .join(", "),
        );
        out
    }

    fn render_regions(&self, out: &mut String) {
        out.push_str("regions:\n");
        for region in &self.regions {
            let _ = writeln!(out, "  {}:", yaml(&Self::region_name(region)));
            let role = if region.primary {
                format!(
                    "primary                  # serves traffic: runs {} replica(s) now",
                    region.replicas
                )
            } else if region.replicas == 0 {
                "failover                 # passive: runs 0 replicas now; scaled up on failover"
                    .to_owned()
            } else {
                format!(
                    "failover                 # runs {} replica(s) now; a passive failover region runs 0",
                    region.replicas
                )
            };
            let _ = writeln!(out, "    role: {role}");
            let _ = writeln!(out, "    kube-context: {}", yaml(&region.context));
            if region.zones.is_empty() {
                let _ = writeln!(
                    out,
                    "    zones: [{}]   # {} node(s) carry a {ZONE_LABEL} label now",
                    yaml(&placeholder(&format!(
                        "the zones of {} (none of its nodes names one now); or [] when no drill faults a zone there",
                        Self::region_name(region)
                    ))),
                    region.nodes
                );
            } else {
                let _ = writeln!(
                    out,
                    "    zones: [{}]",
                    region
                        .zones
                        .iter()
                        .map(|z| yaml(z))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if region.from_flag {
                out.push_str("    # named by --region: its nodes carry no region label\n");
            }
        }
        out.push('\n');
    }

    fn render_namespaces(&self, out: &mut String) {
        let primary = self.primary();
        let failover = self
            .regions
            .iter()
            .find(|r| !r.primary)
            .map_or_else(|| "the failover region".to_owned(), Self::region_name);
        out.push_str("# The namespaces running deployments, each with its database (a key of `databases`).\n");
        if !self.skipped.is_empty() {
            let _ = writeln!(
                out,
                "# Left out (Kubernetes' own, or running no deployment): {}.",
                self.skipped.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "# failover-replicas: what {failover} runs of each service on failover (the primary's count now)."
        );
        out.push_str("namespaces:");
        if self.namespaces.is_empty() {
            out.push_str(" {}");
        }
        out.push('\n');
        for (namespace, services) in &self.namespaces {
            let _ = writeln!(out, "  {}:", yaml(namespace));
            let _ = writeln!(out, "    database: {}", yaml(namespace));
            out.push_str("    services:\n");
            for (service, counts) in services {
                let failover_replicas = primary
                    .and_then(|p| counts.get(&p.context))
                    .copied()
                    .unwrap_or_else(|| counts.values().copied().max().unwrap_or(0))
                    .max(0);
                let now: Vec<String> = self
                    .regions
                    .iter()
                    .map(|r| {
                        format!(
                            "{} in {}",
                            counts.get(&r.context).copied().unwrap_or(0),
                            r.name.as_deref().unwrap_or(&r.context)
                        )
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "      {}: {{ failover-replicas: {failover_replicas} }}   # now: {}",
                    yaml(service),
                    now.join(", ")
                );
            }
        }
        out.push('\n');
    }

    fn render_placeholders(&self, out: &mut String) {
        let first = self.namespaces.keys().next().cloned();
        out.push_str(
            "# One MongoDB replica set per namespace. The connection string comes from the environment\n\
             # variable named here (it may hold a password); the replica set name is allowed below.\n\
             databases:",
        );
        if self.namespaces.is_empty() {
            out.push_str(" {}");
        }
        out.push('\n');
        for namespace in self.namespaces.keys() {
            let _ = writeln!(
                out,
                "  {}:\n    replica-set: &{} {}\n    uri: {{ env: {} }}",
                yaml(namespace),
                anchor(namespace),
                yaml(&placeholder(&format!(
                    "the replica set name (replSetName) of {namespace}'s database"
                ))),
                env_var(namespace)
            );
        }
        out.push('\n');
        out.push_str(
            "# The Toxiproxy server and one link per namespace between its application and its\n\
             # database (create the proxies, or give listen/upstream and `create: true`).\n\
             toxiproxy:\n",
        );
        let _ = writeln!(
            out,
            "  url: {}\n  allow-reset: false                        # never wipe toxics others added\n  links:{}",
            yaml(&placeholder(
                "the Toxiproxy API, e.g. http://toxiproxy.chaos.svc:8474"
            )),
            if self.namespaces.is_empty() {
                " {}"
            } else {
                ""
            }
        );
        for namespace in self.namespaces.keys() {
            let _ = writeln!(
                out,
                "    {}:\n      proxy: {}",
                yaml(&format!("{namespace}-to-database")),
                yaml(&placeholder(&format!(
                    "the Toxiproxy proxy between {namespace}'s application and its database"
                )))
            );
        }
        out.push('\n');
        let probe = first.unwrap_or_else(|| "service".to_owned());
        let _ = writeln!(
            out,
            "# How traffic moves between regions: {{region}} in the command is the region it goes to.\n\
             traffic:\n  probe: {}                               # a key of `probes`\n  switch:\n    run: [{}, {}]\n    timeout: 20m\n",
            yaml(&probe),
            yaml(&placeholder(
                "the program that moves traffic, e.g. terraform"
            )),
            yaml(&placeholder(
                "its arguments, one item each, with {region} where the target region goes"
            )),
        );
        let _ = writeln!(
            out,
            "# What the drills watch: an HTTP probe per namespace.\nprobes:\n  {}:\n    url: {}\n    region-header: {}\n    interval: 5s\n    timeout: 2s\n    stable-after: 3                         # consecutive good answers before \"answering\"",
            yaml(&probe),
            yaml(&placeholder(&format!(
                "the URL a customer of {probe} reaches, e.g. https://shop.example.com/healthz"
            ))),
            yaml(&placeholder(
                "the response header naming the region that answered"
            )),
        );
        for namespace in self.namespaces.keys().skip(1) {
            let _ = writeln!(
                out,
                "  {}:\n    url: {}\n    interval: 5s\n    timeout: 2s",
                yaml(namespace),
                yaml(&placeholder(&format!(
                    "the URL a customer of {namespace} reaches"
                ))),
            );
        }
        out.push_str(
            "\n# Targets for the phases firedrill measures (detection, switch, failover, recovery); 20m..25m\n# is the reference estate's regional failover target: set your own.\n\
             targets:\n  failover: 20m..25m\n\n",
        );
    }
}

/// The environment variable a namespace's connection string comes from.
fn env_var(namespace: &str) -> String {
    format!(
        "MONGO_URI_{}",
        namespace
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            })
            .collect::<String>()
    )
}

/// The YAML anchor of a namespace's replica set name.
fn anchor(namespace: &str) -> String {
    let safe: String = namespace
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{safe}-replica-set")
}

/// `text` as a YAML scalar: plain when it reads back as the same string, else double-quoted.
fn yaml(text: &str) -> String {
    let plain = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_providers::kube::discover::Deployment;

    fn cluster(context: &str, region: &str, zones: &[&str], replicas: i32) -> Cluster {
        Cluster {
            context: context.to_owned(),
            regions: [(
                region.to_owned(),
                zones.iter().map(|z| (*z).to_owned()).collect(),
            )]
            .into(),
            nodes: zones.len(),
            namespaces: vec!["kube-system".into(), "prod-1".into(), "tools".into()],
            deployments: vec![
                Deployment {
                    namespace: "prod-1".into(),
                    name: "storefront".into(),
                    replicas,
                },
                Deployment {
                    namespace: "kube-system".into(),
                    name: "coredns".into(),
                    replicas: 2,
                },
            ],
        }
    }

    #[test]
    fn the_cluster_running_the_most_replicas_is_primary_and_system_namespaces_are_left_out() {
        let estate = Estate::from_clusters(
            vec![
                cluster("b", "us-west2", &["us-west2-a"], 0),
                cluster("a", "us-west1", &["us-west1-a", "us-west1-b"], 4),
            ],
            &BTreeMap::new(),
        )
        .expect("estate");
        assert_eq!(estate.primary().map(|r| r.context.as_str()), Some("a"));
        assert_eq!(estate.namespaces.keys().collect::<Vec<_>>(), vec!["prod-1"]);
        assert_eq!(estate.skipped, vec!["kube-system", "tools"]);
        let text = estate.render("x", None);
        assert!(
            text.contains(
                "storefront: { failover-replicas: 4 }   # now: 0 in us-west2, 4 in us-west1"
            ),
            "{text}"
        );
        assert!(text.contains("kube-contexts: [b, a]"), "{text}");
        assert!(text.contains("namespaces: [prod-1]\n"), "{text}");
    }

    #[test]
    fn a_cluster_over_two_regions_and_two_contexts_of_one_region_are_refused() {
        let mut two = cluster("a", "us-west1", &["us-west1-a"], 1);
        two.regions.insert("us-east1".into(), BTreeSet::new());
        let err = Estate::from_clusters(vec![two], &BTreeMap::new())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("\"a\" are in several regions (\"us-east1\", \"us-west1\")"),
            "{err}"
        );
        let err = Estate::from_clusters(
            vec![
                cluster("a", "us-west1", &[], 1),
                cluster("b", "us-west1", &[], 0),
            ],
            &BTreeMap::new(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("\"a\" and \"b\" are both region \"us-west1\""),
            "{err}"
        );
    }

    #[test]
    fn a_region_no_node_names_is_a_placeholder_unless_named() {
        let mut bare = cluster("b", "", &[], 0);
        bare.nodes = 0;
        let estate = Estate::from_clusters(
            vec![cluster("a", "us-west1", &["us-west1-a"], 1), bare.clone()],
            &BTreeMap::new(),
        )
        .expect("estate");
        let text = estate.render("x", None);
        assert!(
            text.contains("\"<fill: the region of kube context b (its nodes carry no topology.kubernetes.io/region label; or pass --region b=REGION)>\":"),
            "{text}"
        );
        let named = Estate::from_clusters(
            vec![cluster("a", "us-west1", &["us-west1-a"], 1), bare],
            &[("b".to_owned(), "us-west2".to_owned())].into(),
        )
        .expect("estate");
        assert!(
            named
                .render("x", None)
                .contains("  us-west2:\n    role: failover")
        );
    }

    #[test]
    fn scalars_are_quoted_only_when_plain_would_read_differently() {
        assert_eq!(yaml("us-west1"), "us-west1");
        assert_eq!(yaml("no"), "\"no\"");
        assert_eq!(yaml("123"), "\"123\"");
        assert_eq!(
            yaml("arn:aws:eks:us-west-2:1:cluster/x"),
            "\"arn:aws:eks:us-west-2:1:cluster/x\""
        );
        assert_eq!(env_var("prod-1"), "MONGO_URI_PROD_1");
    }
}
