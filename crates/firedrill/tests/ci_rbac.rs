//! deploy/k8s's RBAC against what firedrill really calls: every Kubernetes step and the shipped
//! drills run against the embedded platform with its request audit on
//! (`sim up --audit-log`), then every recorded call must be allowed by the Roles and the
//! ClusterRole bound to firedrill's service account, and every granted verb on every resource
//! must have been used (least privilege: nothing more is granted). The same holds for the
//! people who halt and resume every drill (`firedrill halt`, `firedrill resume`): the Role
//! bound to the operators' group allows exactly the calls those two make.

mod ci_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ci_support::{BIN, documents, kustomize, root, run, sim_up, text};
use firedrill_sim::kube::audit::Entry;
use firedrill_testkit::SimUp;

/// Every Kubernetes step of the catalog, in scenarios that pass on the embedded platform. Add
/// a scenario here when a step with new Kubernetes calls is added. The untouched check runs
/// first: pods a later scenario's undo re-creates would count as touched.
const KUBE_STEPS: &str = r#"Feature: every Kubernetes step, for the RBAC audit

  Scenario: a fault elsewhere leaves the namespaces untouched
    When the fault "us-west1-dark" is injected
    Then namespaces "prod-1", "prod-2" and "prod-3" were never touched

  Scenario: a zone goes down and the failover cluster is scaled up
    When zone "us-west1-a" goes down
    And the failover cluster in "us-west2" is scaled up
    Then the failover pods in "us-west2" are ready within 15m

  Scenario: a zone is drained
    When zone "us-west1-b" is drained

  Scenario: a region goes dark
    When region "us-west1" goes dark

  Scenario: pods are killed
    When 2 pods of "app=storefront" in "prod-2" are killed

  Scenario: a zone's pods are deleted
    When the pods of zone "us-west1-c" are deleted

  Scenario: every zone of a region goes down
    When every zone of region "us-west1" goes down
"#;

/// Calls every authenticated user may make (Kubernetes' default `system:basic-user`
/// ClusterRole): (verb, API group, resource).
const BUILT_IN: [(&str, &str, &str); 1] =
    [("create", "authorization.k8s.io", "selfsubjectaccessreviews")];

/// The service account the CronJob runs as.
const SUBJECT: (&str, &str) = ("firedrill", "firedrill");

/// The group deploy/k8s lets halt and resume every drill.
const OPERATORS: &str = "firedrill-operators";

/// Who a binding binds.
#[derive(Clone, Copy, Debug)]
enum Subject {
    /// The CronJob's service account ([`SUBJECT`]).
    CronJob,
    /// The people who halt and resume ([`OPERATORS`]).
    Operators,
}

impl Subject {
    fn is(self, s: &serde_yaml::Value) -> bool {
        match self {
            Self::CronJob => {
                s["kind"] == "ServiceAccount"
                    && s["name"].as_str() == Some(SUBJECT.1)
                    && s["namespace"].as_str() == Some(SUBJECT.0)
            }
            Self::Operators => s["kind"] == "Group" && s["name"].as_str() == Some(OPERATORS),
        }
    }
}

/// One RBAC rule, flattened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    /// The Role's namespace; None for the ClusterRole.
    namespace: Option<String>,
    group: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    verb: String,
    /// Empty: any name.
    names: BTreeSet<String>,
}

/// A recorded call in RBAC terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    namespace: String,
    group: String,
    resource: String,
    verb: String,
    name: String,
}

impl From<&Entry> for Call {
    fn from(e: &Entry) -> Self {
        Call {
            namespace: e.namespace.clone(),
            group: e.api_group.clone(),
            resource: if e.subresource.is_empty() {
                e.resource.clone()
            } else {
                format!("{}/{}", e.resource, e.subresource)
            },
            verb: e.verb.clone(),
            name: e.name.clone(),
        }
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        let scope = if self.namespace.is_empty() {
            "cluster-wide".to_owned()
        } else {
            format!("in {}", self.namespace)
        };
        write!(f, "{} {} ({group}) {scope}", self.verb, self.resource)
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        let scope = self
            .namespace
            .as_ref()
            .map_or("cluster-wide".to_owned(), |ns| format!("in {ns}"));
        write!(f, "{} {} ({group}) {scope}", self.verb, self.resource)
    }
}

impl Grant {
    fn allows(&self, call: &Call) -> bool {
        let scope = match &self.namespace {
            None => true,
            Some(ns) => *ns == call.namespace,
        };
        scope
            && self.group == call.group
            && self.resource == call.resource
            && self.verb == call.verb
            && (self.names.is_empty() || self.names.contains(&call.name))
    }
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The grants of deploy/k8s bound to the CronJob's service account.
fn grants() -> Vec<Grant> {
    grants_of(Subject::CronJob)
}

/// The grants of deploy/k8s bound to `subject`. Every Role is bound to one of the two
/// subjects, and wildcards are refused: least privilege names every verb and resource.
fn grants_of(subject: Subject) -> Vec<Grant> {
    let docs = documents(&kustomize(&root().join("deploy/k8s")));
    let binds = |d: &serde_yaml::Value, who: Subject| {
        d["subjects"]
            .as_sequence()
            .is_some_and(|subjects| subjects.iter().any(|s| who.is(s)))
    };
    let binds_subject = |d: &serde_yaml::Value| binds(d, subject);
    // (binding namespace or None, role kind, role name)
    let bound: BTreeSet<(Option<String>, String, String)> = docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
        .filter(|d| binds_subject(d))
        .map(|d| {
            (
                d["metadata"]["namespace"].as_str().map(str::to_owned),
                d["roleRef"]["kind"]
                    .as_str()
                    .expect("roleRef kind")
                    .to_owned(),
                d["roleRef"]["name"]
                    .as_str()
                    .expect("roleRef name")
                    .to_owned(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or_default();
        if kind != "Role" && kind != "ClusterRole" {
            continue;
        }
        let name = d["metadata"]["name"]
            .as_str()
            .expect("role name")
            .to_owned();
        let role_ns = d["metadata"]["namespace"].as_str().map(str::to_owned);
        // A Role applies in its namespace when bound there; a ClusterRole cluster-wide when a
        // ClusterRoleBinding binds it (RoleBindings of ClusterRoles are not used here).
        let scope = if kind == "Role" {
            let bound_here = bound.contains(&(role_ns.clone(), "Role".to_owned(), name.clone()));
            let bound_elsewhere = docs.iter().any(|b| {
                b["kind"] == "RoleBinding"
                    && b["metadata"]["namespace"].as_str() == role_ns.as_deref()
                    && b["roleRef"]["name"].as_str() == Some(name.as_str())
                    && (binds(b, Subject::CronJob) || binds(b, Subject::Operators))
            });
            assert!(
                bound_here || bound_elsewhere,
                "Role {name} in {role_ns:?} is bound to neither {SUBJECT:?} nor the group {OPERATORS}"
            );
            if !bound_here {
                continue;
            }
            Some(role_ns.expect("a Role has a namespace"))
        } else {
            if !bound.contains(&(None, "ClusterRole".to_owned(), name.clone())) {
                assert!(
                    matches!(subject, Subject::Operators),
                    "ClusterRole {name} is not bound to {SUBJECT:?}"
                );
                continue;
            }
            None
        };
        for rule in d["rules"].as_sequence().expect("rules") {
            let names: BTreeSet<String> = strings(&rule["resourceNames"]).into_iter().collect();
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        assert!(
                            !group.contains('*') && !resource.contains('*') && verb != "*",
                            "{kind} {name} grants a wildcard ({verb} {resource} in group {group:?})"
                        );
                        out.push(Grant {
                            namespace: scope.clone(),
                            group: group.clone(),
                            resource: resource.clone(),
                            verb,
                            names: names.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// `sim up` in `dir` writing its Kubernetes audit log, and that log's path.
fn audited_sim(dir: &Path) -> (SimUp, PathBuf) {
    let audit = dir.join("audit.jsonl");
    let sim = sim_up(
        dir,
        &[
            "--time-scale",
            "200",
            "--audit-log",
            audit.to_str().expect("UTF-8 path"),
        ],
    );
    (sim, audit)
}

/// The firedrill binary in `sim`'s environment (which names its platform file as
/// FIREDRILL_PLATFORM, as `sim up`'s env file does), its ledger in `dir`.
fn firedrill_against(sim: &SimUp, dir: &Path) -> Command {
    let mut command = Command::new(BIN.path());
    command
        .env("FIREDRILL_LEDGER", dir.join("ledger.jsonl"))
        .envs(sim.env().iter().map(|(k, v)| (k, v)));
    command
}

/// Runs the Kubernetes steps, then every shipped drill (but those killing a Mongo member, as
/// on kind), against `sim up --audit-log`, and returns the audit.
fn audit_of_the_kube_drills() -> Vec<Entry> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sim, audit) = audited_sim(dir.path());
    let feature = dir.path().join("kube.feature");
    std::fs::write(&feature, KUBE_STEPS).expect("write the feature");
    let firedrill = |paths: &[&std::path::Path]| {
        let mut command = firedrill_against(&sim, dir.path());
        command
            .arg("run")
            .args(paths)
            .args(["--tags", "not @member-kill", "--yes"])
            .current_dir(root());
        run(&mut command)
    };
    let steps = firedrill(&[&feature]);
    assert_eq!(
        steps.status.code(),
        Some(0),
        "the Kubernetes steps did not pass:\n{}\nsim:\n{}",
        text(&steps),
        sim.log()
    );
    // The shipped drills too, for the calls of their own: a drill may fail its targets here
    // (exit 1), but it must run and undo everything (not 2 or 4).
    let shipped = firedrill(&[std::path::Path::new("drills")]);
    assert!(
        matches!(shipped.status.code(), Some(0 | 1)),
        "the shipped drills did not run:\n{}\nsim:\n{}",
        text(&shipped),
        sim.log()
    );
    drop(sim);
    let entries = firedrill_sim::kube::audit::read(&audit).expect("read the audit log");
    // The audit saw the Kubernetes side at work, in both clusters.
    let clusters: BTreeSet<&str> = entries.iter().map(|e| e.cluster.as_str()).collect();
    assert_eq!(clusters, BTreeSet::from(["us-west1", "us-west2"]));
    entries
}

fn built_in(call: &Call) -> bool {
    BUILT_IN
        .iter()
        .any(|(v, g, r)| *v == call.verb && *g == call.group && *r == call.resource)
}

#[test]
fn every_kubernetes_call_is_allowed_and_every_grant_is_used() {
    let grants = grants();
    let calls: BTreeSet<Call> = audit_of_the_kube_drills().iter().map(Call::from).collect();
    assert!(
        calls.iter().any(|c| c.resource == "pods/eviction")
            && calls
                .iter()
                .any(|c| c.resource == "configmaps" && c.name == "firedrill-halt")
            && calls.iter().any(|c| c.resource == "deployments/scale")
            && calls
                .iter()
                .any(|c| c.resource == "nodes" && c.verb == "patch"),
        "the drills made none of the fault calls: {calls:#?}"
    );

    let refused = not_allowed(&calls, &grants);
    assert!(
        refused.is_empty(),
        "deploy/k8s/rbac.yaml does not allow calls firedrill makes:\n  {}",
        refused.join("\n  ")
    );

    // A Role grant is used when a call in its namespace needs it; a ClusterRole grant only when
    // a call needs it that no Role allows (otherwise a Role would do).
    let unused: Vec<String> = grants
        .iter()
        .filter(|g| {
            !calls.iter().any(|c| {
                g.allows(c)
                    && (g.namespace.is_some()
                        || !grants.iter().any(|r| r.namespace.is_some() && r.allows(c)))
            })
        })
        .map(ToString::to_string)
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/k8s/rbac.yaml grants what firedrill never calls:\n  {}",
        unused.join("\n  ")
    );
}

/// Preflight asks the API server, by SelfSubjectAccessReview, whether each verb is allowed.
/// Asked without a namespace, the question would be "allowed in every namespace", which
/// namespaced Roles answer "no": preflight would refuse a drill the Role allows.
#[test]
fn every_preflight_question_is_answered_yes_by_the_role() {
    let grants = grants();
    let mut denied = BTreeSet::new();
    for entry in audit_of_the_kube_drills() {
        let Some(review) = &entry.review else {
            continue;
        };
        let field = |k: &str| review[k].as_str().unwrap_or_default().to_owned();
        let sub = field("subresource");
        let question = Call {
            namespace: field("namespace"),
            group: field("group"),
            resource: if sub.is_empty() {
                field("resource")
            } else {
                format!("{}/{sub}", field("resource"))
            },
            verb: field("verb"),
            name: field("name"),
        };
        if !grants.iter().any(|g| g.allows(&question)) {
            denied.insert(question.to_string());
        }
    }
    assert!(
        denied.is_empty(),
        "the Role would answer no to these preflight questions:\n  {}",
        denied.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

/// Names the calls of `calls` no grant of `grants` (nor Kubernetes' built-in role) allows.
fn not_allowed(calls: &BTreeSet<Call>, grants: &[Grant]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| !built_in(c) && !grants.iter().any(|g| g.allows(c)))
        .map(ToString::to_string)
        .collect()
}

/// Names the grants of `grants` no call of `calls` needed.
fn unused(grants: &[Grant], calls: &BTreeSet<Call>) -> Vec<String> {
    grants
        .iter()
        .filter(|g| !calls.iter().any(|c| g.allows(c)))
        .map(ToString::to_string)
        .collect()
}

/// `firedrill halt` and `resume` against the embedded platform (whose platform file names the
/// ConfigMap firedrill/firedrill-halt, as deploy/k8s/platform.yaml does): their calls are
/// allowed by the operators' Role and use all of it, and the run they refuse in between reads
/// the marker with the CronJob's grants only.
#[test]
fn halt_and_resume_need_exactly_the_operators_role() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sim, audit) = audited_sim(dir.path());
    let feature = dir.path().join("calm.feature");
    std::fs::write(
        &feature,
        "Feature: calm\n  Scenario: nothing is injected\n    Then namespaces \"prod-1\", \"prod-2\" and \"prod-3\" were never touched\n",
    )
    .expect("write the feature");
    let firedrill = |args: &[&str]| {
        let mut command = firedrill_against(&sim, dir.path());
        command
            .args(args)
            .current_dir(dir.path())
            .env("FIREDRILL_OPERATOR", "alice");
        run(&mut command)
    };
    let seen = || firedrill_sim::kube::audit::read(&audit).map_or(0, |e| e.len());
    let feature = feature.to_str().expect("UTF-8 path");

    let before_halt = seen();
    let halted = firedrill(&["halt", "--reason", "incident 4711"]);
    assert_eq!(halted.status.code(), Some(0), "halt:\n{}", text(&halted));
    let after_halt = seen();
    let refused = firedrill(&["run", feature, "--yes"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a halted estate refuses:\n{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("halted: emergency halt by alice")
            && text(&refused).contains("incident 4711"),
        "the refusal says who halted and why:\n{}",
        text(&refused)
    );
    let after_refusal = seen();
    let resumed = firedrill(&["resume", "--reason", "incident closed"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "resume:\n{}",
        text(&resumed)
    );
    let after_resume = seen();
    let ran = firedrill(&["run", feature, "--yes"]);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "resumed, it runs:\n{}\nsim:\n{}",
        text(&ran),
        sim.log()
    );
    drop(sim);

    let entries = firedrill_sim::kube::audit::read(&audit).expect("read the audit log");
    let of = |range: std::ops::Range<usize>| -> BTreeSet<Call> {
        entries[range].iter().map(Call::from).collect()
    };
    let operators: BTreeSet<Call> = of(before_halt..after_halt)
        .into_iter()
        .chain(of(after_refusal..after_resume))
        .collect();
    let operator_grants = grants_of(Subject::Operators);
    let refused_calls = not_allowed(&operators, &operator_grants);
    assert!(
        refused_calls.is_empty(),
        "the Role firedrill-halt does not allow calls halt or resume make:\n  {}",
        refused_calls.join("\n  ")
    );
    let unused = unused(&operator_grants, &operators);
    assert!(
        unused.is_empty(),
        "the Role firedrill-halt grants what halt and resume never call:\n  {}",
        unused.join("\n  ")
    );
    let cronjob = grants();
    let run_calls = of(after_halt..after_refusal);
    assert!(
        run_calls
            .iter()
            .any(|c| c.resource == "configmaps" && c.verb == "get"),
        "the refused run read the marker: {run_calls:#?}"
    );
    let refused_run = not_allowed(&run_calls, &cronjob);
    assert!(
        refused_run.is_empty(),
        "the CronJob's grants do not allow what a refused run calls:\n  {}",
        refused_run.join("\n  ")
    );
}
