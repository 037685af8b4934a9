//! `firedrill sim`: the embedded platform standalone, and the commands its platform file runs.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Exit;
use firedrill_core::clock::{Clock, format_duration};
use firedrill_sim::app::{RegionHealth, SwitchRequest};
use firedrill_sim::model::{Model, Ranges};

/// The sim commands.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Run the embedded platform until Ctrl-C, printing its endpoints.
    Up(UpArgs),
    /// Switch traffic like a Terraform apply (used by the embedded platform file).
    TrafficSwitch(SwitchArgs),
    /// Make a region's applications go dark or come back (used by the embedded platform file).
    Region(RegionArgs),
    /// Serve one region's application alone (the kind setup's storefront container).
    App(AppArgs),
    /// Serve the front door alone, forwarding to applications served elsewhere.
    FrontDoor(FrontDoorArgs),
    /// Start a replica-set member that was shut down, through the estate's control API (the
    /// embedded platform file's way back from a member kill).
    RestartMember(RestartMemberArgs),
}

/// Arguments of `sim restart-member`.
#[derive(Debug, clap::Args)]
pub struct RestartMemberArgs {
    /// The embedded estate's control API.
    #[arg(long, env = "FIREDRILL_SIM_CONTROL_URL")]
    pub control: String,
    /// The member, `host:port`.
    pub member: String,
}

/// Arguments of `sim app`.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    /// The region it answers for (header `x-served-by`).
    #[arg(long)]
    pub region: String,
    /// The namespace it serves (`/<namespace>/…` and `/`).
    #[arg(long)]
    pub namespace: String,
    /// Where to listen.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// The namespace's MongoDB, for `/<namespace>/orders` (credentials stay in the environment).
    #[arg(long, env = "FIREDRILL_MONGO_URI", hide_env_values = true)]
    pub mongo_uri: Option<String>,
}

/// Arguments of `sim front-door`.
#[derive(Debug, clap::Args)]
pub struct FrontDoorArgs {
    /// Where to listen.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// A region's application: `REGION=URL`, once per region.
    #[arg(long = "backend", value_name = "REGION=URL", required = true, value_parser = parse_backend)]
    pub backends: Vec<(String, String)>,
    /// The region traffic starts in.
    #[arg(long)]
    pub active: String,
    /// Seed of the load balancer's modelled propagation delay.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Platform seconds per wall second (the propagation delay is platform time).
    #[arg(long, env = "FIREDRILL_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,
}

fn parse_backend(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((region, url)) if !region.is_empty() && url.starts_with("http") => {
            Ok((region.to_owned(), url.trim_end_matches('/').to_owned()))
        }
        _ => Err(format!(
            "\"{text}\" is not REGION=URL (e.g. us-west1=http://storefront.prod-1:8080)"
        )),
    }
}

/// Arguments of `sim up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Platform seconds per wall second (1 is real time).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Seed of the timing model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The front door's address (with `--only toxiproxy`, the Toxiproxy API's).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Run only this component.
    #[arg(long, value_enum)]
    pub only: Option<Component>,
    /// Once ready, write the endpoints here as shell assignments, and the platform file beside
    /// it (`FILE.platform.yaml`, also named by FIREDRILL_PLATFORM in FILE).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// A Prometheus that scrapes this platform (its base URL): the platform file written with
    /// --env-file names it and measures its guards with it, `FILE.prometheus.yaml` beside it
    /// is a scrape configuration for it (`prometheus --config.file FILE.prometheus.yaml`), and
    /// synthetic users check out in every namespace every 5 s of platform time, so the metrics
    /// have traffic to judge.
    #[arg(long, value_name = "URL", conflicts_with = "only")]
    pub prometheus: Option<String>,
    /// Prefix of the kube context names (`<prefix>us-west1`), with --only kube.
    #[arg(long, default_value = "", requires = "only")]
    pub context_prefix: String,
    /// Also name a region's API server by this kube context, e.g. `us-west1=kind-primary`
    /// (repeatable), so a platform file written for other clusters runs here unchanged.
    #[arg(long = "context", value_name = "REGION=CONTEXT", value_parser = parse_context)]
    pub contexts: Vec<ContextName>,
    /// Write every Kubernetes API request the embedded servers receive to FILE, one JSON line
    /// each (cluster, verb, apiGroup, resource, subresource, namespace, name).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

/// A kube context name for one region's embedded API server (`--context REGION=CONTEXT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextName {
    /// The region (`us-west1`).
    pub region: String,
    /// The context name (`kind-primary`).
    pub context: String,
}

fn parse_context(text: &str) -> Result<ContextName, String> {
    let Some((region, context)) = text.split_once('=') else {
        return Err(format!(
            "expected REGION=CONTEXT, got {text:?} (hint: --context us-west1=kind-primary)"
        ));
    };
    if !firedrill_sim::REGIONS.contains(&region) {
        return Err(format!(
            "unknown region {region:?} (hint: the embedded regions are {})",
            firedrill_sim::REGIONS.join(", ")
        ));
    }
    if context.is_empty() {
        return Err(format!("empty context name for region {region}"));
    }
    Ok(ContextName {
        region: region.to_owned(),
        context: context.to_owned(),
    })
}

/// A component of the embedded platform that can run alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Component {
    /// The Toxiproxy-compatible server (its API address is printed, and written to --env-file
    /// as FIREDRILL_TOXIPROXY_URL).
    Toxiproxy,
    /// The MongoDB replica sets, one per namespace (connection strings printed, and written to
    /// --env-file as FIREDRILL_MONGO_URI_<NAMESPACE>).
    Mongo,
    /// The Kubernetes API servers, one per region (their kubeconfig is written beside
    /// --env-file as FILE.kubeconfig, else in the temp folder, and named by
    /// FIREDRILL_KUBECONFIG in FILE).
    Kube,
}

/// Arguments of `sim traffic-switch`.
#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    /// The front door's URL.
    #[arg(long, env = "FIREDRILL_FRONT_DOOR_URL")]
    pub front_door: String,
    /// The region to send traffic to.
    #[arg(long)]
    pub to: String,
    /// Seed of the apply's modelled duration.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Platform seconds per wall second (set by firedrill for the commands it runs).
    #[arg(long, env = "FIREDRILL_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,
}

/// Arguments of `sim region`.
#[derive(Debug, clap::Args)]
pub struct RegionArgs {
    /// The front door's URL.
    #[arg(long, env = "FIREDRILL_FRONT_DOOR_URL")]
    pub front_door: String,
    /// The region.
    pub region: String,
    /// Make it dark.
    #[arg(long, conflicts_with = "light", required_unless_present = "light")]
    pub dark: bool,
    /// Bring it back.
    #[arg(long)]
    pub light: bool,
}

/// Runs a sim command.
pub async fn sim(command: SimCommand) -> Exit {
    match command {
        SimCommand::Up(args) => up(args).await,
        SimCommand::TrafficSwitch(args) => traffic_switch(args).await,
        SimCommand::Region(args) => region(args).await,
        SimCommand::App(args) => app(args).await,
        SimCommand::FrontDoor(args) => front_door(args).await,
        SimCommand::RestartMember(args) => restart_member(args).await,
    }
}

async fn restart_member(args: RestartMemberArgs) -> Exit {
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let url = format!(
        "{}/mongo/members/{}/restart",
        args.control.trim_end_matches('/'),
        args.member
    );
    match client.post(&url).send().await {
        Ok(a) if a.status().is_success() => {
            outln!("member {} is up", args.member);
            Exit::Passed
        }
        Ok(a) => {
            let status = a.status();
            let body = a.text().await.unwrap_or_default();
            fail(&format!(
                "the control API refused to restart {}: {status} {body}",
                args.member
            ))
        }
        Err(e) => fail(&format!(
            "cannot reach the control API at {}: {e}",
            args.control
        )),
    }
}

async fn app(args: AppArgs) -> Exit {
    let mut databases = firedrill_sim::app::Databases::new();
    if let Some(uri) = &args.mongo_uri {
        match firedrill_sim::app::database_client(uri).await {
            Ok(client) => {
                databases.insert(args.namespace.clone(), client);
            }
            Err(e) => return fail(&e.to_string()),
        }
    }
    let app = match firedrill_sim::app::RegionApp::start(
        &args.region,
        std::slice::from_ref(&args.namespace),
        args.listen,
        firedrill_sim::app::always_healthy(),
        databases,
        Clock::real(),
    )
    .await
    {
        Ok(app) => app,
        Err(e) => return fail(&e.to_string()),
    };
    outln!(
        "application of {} ({}) on {}",
        args.region,
        args.namespace,
        app.url
    );
    until_ctrl_c(None, &[]).await
}

async fn front_door(args: FrontDoorArgs) -> Exit {
    let clock = match Clock::scaled(args.time_scale) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let backends: std::collections::BTreeMap<String, String> = args.backends.into_iter().collect();
    let door = match firedrill_sim::app::FrontDoor::forward_to(
        backends.clone(),
        &args.active,
        args.listen,
        clock,
        Model::new(args.seed, Ranges::default()),
    )
    .await
    {
        Ok(door) => door,
        Err(e) => return fail(&e.to_string()),
    };
    outln!("front door on {} (traffic to {})", door.url, args.active);
    for (region, url) in &backends {
        outln!("  {region}: {url}");
    }
    until_ctrl_c(None, &[]).await
}

async fn up(args: UpArgs) -> Exit {
    let clock = match Clock::scaled(args.time_scale) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    if let Some(log) = &args.audit_log
        && let Err(e) = firedrill_sim::kube::audit::enable(log)
    {
        return fail(&e.to_string());
    }
    match args.only {
        Some(Component::Mongo) => return up_mongo(clock, &args).await,
        Some(Component::Toxiproxy) => return toxiproxy_only(&args, clock).await,
        Some(Component::Kube) => return kube_only(&args, clock).await,
        None => {}
    }
    let sim = match firedrill_sim::Embedded::start(clock, args.seed, args.listen).await {
        Ok(sim) => sim,
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = name_contexts(&sim.kube, "", &args.contexts) {
        return fail(&e.to_string());
    }
    let _scale_down = AbortOnDrop(tokio::spawn(firedrill_sim::scale_down_loop(
        sim.kube.clusters.clone(),
        clock,
    )));
    outln!(
        "embedded platform up (time scale {}x, seed {})",
        clock.scale(),
        args.seed
    );
    outln!("  front door: {}", sim.front_door.url);
    outln!("  toxiproxy: {}", sim.toxiproxy.url());
    outln!("  kubeconfig: {}", sim.kube.kubeconfig.display());
    print_contexts(&args.contexts);
    for m in &sim.mongo {
        outln!("  mongo {}: {}", m.namespace, m.set.connection_string());
    }
    outln!("  metrics: {}", sim.metrics_targets().join(", "));
    let _users = match &args.prometheus {
        Some(url) => {
            outln!("  prometheus: {url}");
            match firedrill_sim::users::Users::start(
                &sim.front_door.url,
                &firedrill_sim::NAMESPACES,
                firedrill_sim::users::EVERY,
                clock,
            ) {
                Ok(users) => Some(users),
                Err(e) => return fail(&format!("cannot start the synthetic users: {e}")),
            }
        }
        None => None,
    };
    if let Some(env_file) = &args.env_file {
        // The platform file (with the connection-string files it reads) first, so a script
        // that waits for the env file finds both.
        let platform_file = match sim.write_platform_with(env_file, args.prometheus.as_deref()) {
            Ok(path) => path,
            Err(e) => {
                return fail(&format!(
                    "cannot write the platform file beside {}: {e}",
                    env_file.display()
                ));
            }
        };
        let mut env: Vec<(String, String)> = sim.env();
        env.push((
            "FIREDRILL_PLATFORM".into(),
            platform_file.display().to_string(),
        ));
        if let Err(e) = write_env_file(env_file, &env) {
            return fail(&format!("cannot write {}: {e}", env_file.display()));
        }
        outln!(
            "  env file: {}\n  platform file: {}",
            env_file.display(),
            platform_file.display()
        );
    }
    outln!("press Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    Exit::Passed
}

/// `sim up --only mongo`: the replica sets alone, one connection string per set.
async fn up_mongo(clock: Clock, args: &UpArgs) -> Exit {
    let sets = match firedrill_sim::start_mongo(clock, args.seed).await {
        Ok(sets) => sets,
        Err(e) => return fail(&e.to_string()),
    };
    outln!(
        "embedded replica sets up (time scale {}x, seed {})",
        clock.scale(),
        args.seed
    );
    for m in &sets {
        outln!(
            "  {} ({}): {}",
            m.namespace,
            m.set.name(),
            m.set.connection_string()
        );
    }
    // Members killed by `shutdown` come back through the control API, as in the whole estate.
    let control = match firedrill_sim::control::Control::start(
        sets.iter().map(|m| std::sync::Arc::clone(&m.set)).collect(),
    )
    .await
    {
        Ok(control) => control,
        Err(e) => return fail(&format!("cannot start the control API: {e}")),
    };
    outln!("  control: {}", control.url);
    let mut env: Vec<(String, String)> = sets
        .iter()
        .map(|m| (m.env_var(), m.set.connection_string()))
        .collect();
    env.push(("FIREDRILL_SIM_CONTROL_URL".to_owned(), control.url.clone()));
    until_ctrl_c(args.env_file.as_deref(), &env).await
}

/// `sim up --only toxiproxy`: the Toxiproxy server alone, until Ctrl-C.
async fn toxiproxy_only(args: &UpArgs, clock: Clock) -> Exit {
    let server =
        match firedrill_sim::toxiproxy::ToxiproxyServer::start(args.listen, clock, args.seed).await
        {
            Ok(server) => server,
            Err(e) => return fail(&e.to_string()),
        };
    outln!("embedded Toxiproxy up (time scale {}x)", clock.scale());
    outln!("  toxiproxy: {}", server.url());
    let env = [("FIREDRILL_TOXIPROXY_URL".to_owned(), server.url())];
    let served = until_ctrl_c(args.env_file.as_deref(), &env).await;
    if served != Exit::Passed {
        return served;
    }
    match server.shutdown().await {
        Ok(()) => Exit::Passed,
        Err(e) => fail(&e.to_string()),
    }
}

/// `sim up --only kube`: the Kubernetes API servers alone, with their kubeconfig.
async fn kube_only(args: &UpArgs, clock: Clock) -> Exit {
    let kubeconfig = args
        .env_file
        .as_ref()
        .map_or_else(firedrill_sim::temp_kubeconfig, |f| {
            PathBuf::from(format!("{}.kubeconfig", f.display()))
        });
    let estate = match firedrill_sim::KubeEstate::start(
        clock,
        args.seed,
        &|region| format!("{}{region}", args.context_prefix),
        kubeconfig,
    )
    .await
    {
        Ok(estate) => estate,
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = name_contexts(&estate, &args.context_prefix, &args.contexts) {
        return fail(&e.to_string());
    }
    outln!(
        "embedded Kubernetes API servers up (time scale {}x, seed {})",
        clock.scale(),
        args.seed
    );
    for cluster in &estate.clusters {
        outln!(
            "  context {}{}: {}",
            args.context_prefix,
            cluster.region(),
            cluster.url()
        );
    }
    print_contexts(&args.contexts);
    outln!("  kubeconfig: {}", estate.kubeconfig.display());
    let env = [(
        "FIREDRILL_KUBECONFIG".to_owned(),
        estate.kubeconfig.display().to_string(),
    )];
    until_ctrl_c(args.env_file.as_deref(), &env).await
}

/// Rewrites the estate's kubeconfig so it names each cluster `<prefix><region>` and also by
/// every chosen context name: the platform file written beside the env file keeps working, and
/// a platform file for other clusters (`kind-primary`) finds its contexts.
fn name_contexts(
    estate: &firedrill_sim::KubeEstate,
    prefix: &str,
    contexts: &[ContextName],
) -> Result<(), firedrill_sim::kube::SimError> {
    if contexts.is_empty() {
        return Ok(());
    }
    let mut names: Vec<(String, String)> = estate
        .clusters
        .iter()
        .map(|c| (format!("{prefix}{}", c.region()), c.url()))
        .collect();
    for c in contexts {
        if let Some(cluster) = estate.cluster(&c.region) {
            names.push((c.context.clone(), cluster.url()));
        }
    }
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, u)| (n.as_str(), u.as_str()))
        .collect();
    firedrill_sim::kube::write_kubeconfig(&estate.kubeconfig, &pairs)
}

fn print_contexts(contexts: &[ContextName]) {
    for c in contexts {
        outln!("  context {} = {}", c.context, c.region);
    }
}

/// Writes the env file when asked, then runs until Ctrl-C.
async fn until_ctrl_c(env_file: Option<&std::path::Path>, env: &[(String, String)]) -> Exit {
    if let Some(env_file) = env_file {
        if let Err(e) = write_env_file(env_file, env) {
            return fail(&format!("cannot write {}: {e}", env_file.display()));
        }
        outln!("  env file: {}", env_file.display());
    }
    outln!("press Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    Exit::Passed
}

/// Writes shell assignments atomically (a reader never sees half a file).
fn write_env_file(path: &std::path::Path, env: &[(String, String)]) -> std::io::Result<()> {
    let text: String = env
        .iter()
        .map(|(k, v)| format!("{k}={}\n", shell_quote(v)))
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path))
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

async fn traffic_switch(args: SwitchArgs) -> Exit {
    let clock = match Clock::scaled(args.time_scale) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let apply = Model::new(args.seed, Ranges::default()).terraform_apply();
    outln!(
        "Terraform will perform the following actions:\n  ~ google_compute_url_map.global\n      ~ default_service = \"…\" -> \"{}\"\nPlan: 0 to add, 1 to change, 0 to destroy.",
        args.to
    );
    clock.sleep(apply).await;
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let answer = client
        .post(format!("{}/_firedrill/switch", args.front_door))
        .json(&SwitchRequest {
            to: args.to.clone(),
        })
        .send()
        .await;
    match answer {
        Ok(a) if a.status().is_success() => {
            outln!(
                "Apply complete! Resources: 0 added, 1 changed, 0 destroyed. ({} platform time)",
                format_duration(apply)
            );
            Exit::Passed
        }
        Ok(a) => fail(&format!(
            "the front door refused the switch to {}: {}",
            args.to,
            a.status()
        )),
        Err(e) => fail(&format!(
            "cannot reach the front door at {}: {e}",
            args.front_door
        )),
    }
}

async fn region(args: RegionArgs) -> Exit {
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let body = RegionHealth {
        region: args.region.clone(),
        dark: args.dark,
    };
    match client
        .post(format!("{}/_firedrill/region", args.front_door))
        .json(&body)
        .send()
        .await
    {
        Ok(a) if a.status().is_success() => {
            outln!(
                "region {} is {}",
                args.region,
                if args.dark { "dark" } else { "back" }
            );
            Exit::Passed
        }
        Ok(a) => fail(&format!("the front door refused: {}", a.status())),
        Err(e) => fail(&format!(
            "cannot reach the front door at {}: {e}",
            args.front_door
        )),
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn fail(message: &str) -> Exit {
    errln!("error: {message}");
    Exit::Failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_names_an_embedded_region() {
        assert_eq!(
            parse_context("us-west1=kind-primary"),
            Ok(ContextName {
                region: "us-west1".into(),
                context: "kind-primary".into(),
            })
        );
        let unknown = parse_context("eu-west1=kind-primary").expect_err("unknown region");
        assert!(unknown.contains("us-west1, us-west2"), "{unknown}");
        let shape = parse_context("kind-primary").expect_err("no region");
        assert!(shape.contains("REGION=CONTEXT"), "{shape}");
        assert!(parse_context("us-west2=").is_err());
    }
}
