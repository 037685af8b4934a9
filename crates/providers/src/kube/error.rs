//! Why a Kubernetes call or check failed: [`KubeError`], naming the context and the object of
//! the call ([`ObjectCall`]) and ending with a hint.

use std::path::PathBuf;

use super::ZONE_LABEL;

/// A Kubernetes call or check that failed; names the context and the object.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The context is not in the allow-list.
    #[error(
        "kube context \"{context}\" is not allowed (allowed: {allowed}) (hint: add it to safety.allow.kube-contexts in the platform file)"
    )]
    NotAllowed {
        /// The context.
        context: String,
        /// The allow-list, formatted.
        allowed: String,
    },
    /// The region names no context.
    #[error(
        "region \"{region}\" has no kube-context (hint: set regions.{region}.kube-context in the platform file)"
    )]
    NoContext {
        /// The region.
        region: String,
    },
    /// The kubeconfig cannot be read.
    #[error(
        "cannot read the kubeconfig {path}: {message} (hint: set FIREDRILL_KUBECONFIG or KUBECONFIG)"
    )]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The kubeconfig has no usable context of that name.
    #[error(
        "kube context \"{context}\" cannot be used from {path}: {message} (hint: `kubectl config get-contexts` lists the known ones)"
    )]
    Context {
        /// The context.
        context: String,
        /// The kubeconfig.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// RBAC refused a verb.
    #[error(
        "[{}] forbidden: cannot {} {} \"{}\" in namespace \"{}\": {message} (hint: grant the verb `{}` on {} to firedrill's user)",
        call.context, call.verb, call.kind, call.object, call.namespace, call.verb, call.kind
    )]
    Forbidden {
        /// The refused call.
        call: Box<ObjectCall>,
        /// The server's message.
        message: String,
    },
    /// Any other API failure.
    #[error(
        "[{}] {} {} \"{}\" in namespace \"{}\" failed: {message} (hint: is the API server reachable and the object there?)",
        call.context, call.verb, call.kind, call.object, call.namespace
    )]
    Api {
        /// The failed call.
        call: Box<ObjectCall>,
        /// What the client said.
        message: String,
    },
    /// A zone without nodes.
    #[error(
        "[{context}] zone \"{zone}\" has no nodes (label {ZONE_LABEL}) (hint: check the zone name against `kubectl get nodes -L {ZONE_LABEL}`)"
    )]
    EmptyZone {
        /// The context.
        context: String,
        /// The zone.
        zone: String,
    },
    /// Evictions refused by a PodDisruptionBudget.
    #[error(
        "[{context}] eviction blocked by a PodDisruptionBudget for {pods} (hint: the zone's nodes stay cordoned; undo uncordons them)"
    )]
    EvictionBlocked {
        /// The context.
        context: String,
        /// `namespace/pod` of each blocked pod.
        pods: String,
    },
    /// The API server did not answer (connection refused or reset, 5xx) through every retry.
    #[error(
        "[{}] the API server is unreachable: {} {} \"{}\" in namespace \"{}\" failed {attempts} times over {waited} (platform time): {message} (hint: the drill aborts and undoes what it can; once the API server answers again, `firedrill recover` applies any undo left in the ledger)",
        call.context, call.verb, call.kind, call.object, call.namespace
    )]
    Unreachable {
        /// The call that kept failing.
        call: Box<ObjectCall>,
        /// How many times it was tried.
        attempts: u32,
        /// How long the retries took, formatted.
        waited: String,
        /// The last transport error.
        message: String,
    },
    /// No pod matched a pod kill's selector.
    #[error(
        "[{context}] no pod matches \"{selector}\" in namespace \"{namespace}\" (hint: check the selector with `kubectl get pods -n {namespace} -l {selector}`)"
    )]
    NoPods {
        /// The context.
        context: String,
        /// The namespace.
        namespace: String,
        /// The label selector.
        selector: String,
    },
    /// A traffic switch's object lacks what it should change.
    #[error(
        "[{}] {} \"{}/{}\" cannot be switched: {problem} (hint: {hint})",
        call.context, call.kind, call.namespace, call.object
    )]
    Switch {
        /// The object (`kind` is `Service`, `Ingress` or `ConfigMap`).
        call: Box<ObjectCall>,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: &'static str,
    },
    /// Replaced pods were not Ready again in time (the undo of a pod kill or pod delete).
    #[error(
        "[{context}] {namespace} pods \"{selector}\": {ready} Ready of the {wanted} before the fault, after waiting {within} (hint: check the deployment's events; `firedrill recover` checks again)"
    )]
    NotReplaced {
        /// The context.
        context: String,
        /// The namespace.
        namespace: String,
        /// The label selector ("" for every pod).
        selector: String,
        /// Ready pods now.
        ready: usize,
        /// Ready pods before the fault.
        wanted: usize,
        /// The deadline, formatted.
        within: String,
    },
    /// Scaled-back deployments not rolled out in time (the undo of a scale).
    #[error(
        "[{context}] scaled back, but not settled within {within}: {waiting} (hint: check the deployment's events with `kubectl describe deployment`; the undo stays in the ledger, and `firedrill recover` checks again)"
    )]
    NotRolledOut {
        /// The context.
        context: String,
        /// The deadline, formatted.
        within: String,
        /// The deployment still settling and its last state.
        waiting: String,
    },
    /// Pods not Ready in time.
    #[error(
        "[{context}] pods not Ready within {within}: {waiting} (hint: `kubectl describe pods` in their namespace says why; raise the step's deadline if they are only slow)"
    )]
    NotReady {
        /// The context.
        context: String,
        /// The deadline, formatted.
        within: String,
        /// What was still waiting.
        waiting: String,
    },
}

/// The call an error names: context, namespace, kind, object and RBAC verb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectCall {
    /// The context.
    pub context: String,
    /// The namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// The resource (`nodes`, `pods/eviction`, `deployments/scale`).
    pub kind: String,
    /// The object name (empty for lists).
    pub object: String,
    /// The RBAC verb.
    pub verb: String,
}

/// Which call an error comes from, to name it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The context.
    pub context: &'a str,
    /// The namespace ("" for cluster-scoped).
    pub namespace: &'a str,
    /// The resource.
    pub kind: &'a str,
    /// The object.
    pub object: &'a str,
    /// The RBAC verb.
    pub verb: &'a str,
}

impl Call<'_> {
    pub(super) fn owned(&self) -> ObjectCall {
        ObjectCall {
            context: self.context.to_owned(),
            namespace: self.namespace.to_owned(),
            kind: self.kind.to_owned(),
            object: self.object.to_owned(),
            verb: self.verb.to_owned(),
        }
    }

    pub(super) fn error(&self, e: &::kube::Error) -> KubeError {
        let (forbidden, message) = match e {
            ::kube::Error::Api(status) => (status.code == 403, status.message.clone()),
            other => (false, other.to_string()),
        };
        let call = Box::new(self.owned());
        if forbidden {
            KubeError::Forbidden { call, message }
        } else {
            KubeError::Api { call, message }
        }
    }
}
