//! Request bodies in the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which client-go's typed clients send for built-in kinds: `kubectl create namespace|secret|
//! configmap|deployment|service|serviceaccount|role|rolebinding|clusterrole|
//! clusterrolebinding|poddisruptionbudget`, `kubectl auth can-i|whoami`.
//!
//! A body is `k8s\0` and a `runtime.Unknown` (type meta, raw message). The raw message is decoded
//! into the object's JSON form with a field table per message ([`MESSAGES`], the field numbers and
//! names of the kinds' `generated.proto`). Go writes every non-pointer field, zero or not, so a
//! zero scalar or an empty message of a non-pointer field is the JSON's omitted field; a pointer
//! field ([`Field::opt`]) is written only when set and is kept even when zero.
//!
//! What the table does not cover is refused, never dropped: a kind without a table, or a
//! non-zero field the table does not name, answers `415 UnsupportedMediaType` (the refusal
//! client-go documents for a body the server cannot decode), so a client never gets an object
//! that silently lost a field it set.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::store::rfc3339;

/// The prefix of a Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// The media type of protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// How a field's value is encoded.
#[derive(Debug)]
pub enum Ty {
    /// A string.
    Str,
    /// A varint integer (int32 / int64).
    Int,
    /// A bool.
    Bool,
    /// Bytes, base64 in JSON.
    Bytes,
    /// `metav1.Time`: RFC 3339 with seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// A nested message.
    Msg(&'static Message),
    /// `map<string, V>`.
    Map(&'static Ty),
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    /// Field number.
    pub num: u64,
    /// JSON name.
    pub name: &'static str,
    /// Encoding.
    pub ty: Ty,
    /// `repeated`.
    pub repeated: bool,
    /// A Go pointer: written only when set, kept even when zero.
    pub opt: bool,
}

/// One message: its name (for messages) and fields.
#[derive(Debug)]
pub struct Message {
    /// Proto message name.
    pub name: &'static str,
    /// Known fields.
    pub fields: &'static [Field],
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
        opt: false,
    }
}

/// A pointer field.
const fn p(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
        opt: true,
    }
}

/// A repeated field.
const fn r(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
        opt: false,
    }
}

static STR: Ty = Ty::Str;
static BYTES: Ty = Ty::Bytes;
static QUANTITY: Ty = Ty::Quantity;

macro_rules! message {
    ($id:ident, $name:literal, [$($field:expr),* $(,)?]) => {
        static $id: Message = Message { name: $name, fields: &[$($field),*] };
    };
}

// meta/v1
message!(
    OWNER_REFERENCE,
    "OwnerReference",
    [
        f(5, "apiVersion", Ty::Str),
        f(1, "kind", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        p(6, "controller", Ty::Bool),
        p(7, "blockOwnerDeletion", Ty::Bool),
    ]
);
message!(
    OBJECT_META,
    "ObjectMeta",
    [
        f(1, "name", Ty::Str),
        f(2, "generateName", Ty::Str),
        f(3, "namespace", Ty::Str),
        f(4, "selfLink", Ty::Str),
        f(5, "uid", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "generation", Ty::Int),
        f(8, "creationTimestamp", Ty::Time),
        f(9, "deletionTimestamp", Ty::Time),
        p(10, "deletionGracePeriodSeconds", Ty::Int),
        f(11, "labels", Ty::Map(&STR)),
        f(12, "annotations", Ty::Map(&STR)),
        r(13, "ownerReferences", Ty::Msg(&OWNER_REFERENCE)),
        r(14, "finalizers", Ty::Str),
    ]
);
message!(
    LABEL_SELECTOR_REQUIREMENT,
    "LabelSelectorRequirement",
    [
        f(1, "key", Ty::Str),
        f(2, "operator", Ty::Str),
        r(3, "values", Ty::Str),
    ]
);
message!(
    LABEL_SELECTOR,
    "LabelSelector",
    [
        f(1, "matchLabels", Ty::Map(&STR)),
        r(2, "matchExpressions", Ty::Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ]
);

// core/v1
message!(
    NAMESPACE_SPEC,
    "NamespaceSpec",
    [r(1, "finalizers", Ty::Str)]
);
message!(
    NAMESPACE_STATUS,
    "NamespaceStatus",
    [f(1, "phase", Ty::Str)]
);
message!(
    NAMESPACE,
    "Namespace",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&NAMESPACE_SPEC)),
        f(3, "status", Ty::Msg(&NAMESPACE_STATUS)),
    ]
);
message!(
    SECRET,
    "Secret",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        p(5, "immutable", Ty::Bool),
        f(2, "data", Ty::Map(&BYTES)),
        f(4, "stringData", Ty::Map(&STR)),
        f(3, "type", Ty::Str),
    ]
);
message!(
    CONFIG_MAP,
    "ConfigMap",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        p(4, "immutable", Ty::Bool),
        f(2, "data", Ty::Map(&STR)),
        f(3, "binaryData", Ty::Map(&BYTES)),
    ]
);
message!(
    OBJECT_REFERENCE,
    "ObjectReference",
    [
        f(1, "kind", Ty::Str),
        f(2, "namespace", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        f(5, "apiVersion", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "fieldPath", Ty::Str),
    ]
);
message!(
    LOCAL_OBJECT_REFERENCE,
    "LocalObjectReference",
    [f(1, "name", Ty::Str)]
);
message!(
    SERVICE_ACCOUNT,
    "ServiceAccount",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        r(2, "secrets", Ty::Msg(&OBJECT_REFERENCE)),
        r(3, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        p(4, "automountServiceAccountToken", Ty::Bool),
    ]
);
message!(
    SERVICE_PORT,
    "ServicePort",
    [
        f(1, "name", Ty::Str),
        f(2, "protocol", Ty::Str),
        p(6, "appProtocol", Ty::Str),
        f(3, "port", Ty::Int),
        f(4, "targetPort", Ty::IntOrString),
        f(5, "nodePort", Ty::Int),
    ]
);
message!(
    SERVICE_SPEC,
    "ServiceSpec",
    [
        r(1, "ports", Ty::Msg(&SERVICE_PORT)),
        f(2, "selector", Ty::Map(&STR)),
        f(3, "clusterIP", Ty::Str),
        r(18, "clusterIPs", Ty::Str),
        f(4, "type", Ty::Str),
        r(5, "externalIPs", Ty::Str),
        f(7, "sessionAffinity", Ty::Str),
        f(8, "loadBalancerIP", Ty::Str),
        r(9, "loadBalancerSourceRanges", Ty::Str),
        f(10, "externalName", Ty::Str),
        f(11, "externalTrafficPolicy", Ty::Str),
        f(12, "healthCheckNodePort", Ty::Int),
        f(13, "publishNotReadyAddresses", Ty::Bool),
        r(19, "ipFamilies", Ty::Str),
        p(17, "ipFamilyPolicy", Ty::Str),
        p(20, "allocateLoadBalancerNodePorts", Ty::Bool),
        p(21, "loadBalancerClass", Ty::Str),
        p(22, "internalTrafficPolicy", Ty::Str),
        p(23, "trafficDistribution", Ty::Str),
    ]
);
message!(EMPTY, "Status", []);
message!(
    SERVICE,
    "Service",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&SERVICE_SPEC)),
        f(3, "status", Ty::Msg(&EMPTY)),
    ]
);
message!(
    CONTAINER_PORT,
    "ContainerPort",
    [
        f(1, "name", Ty::Str),
        f(2, "hostPort", Ty::Int),
        f(3, "containerPort", Ty::Int),
        f(4, "protocol", Ty::Str),
        f(5, "hostIP", Ty::Str),
    ]
);
message!(
    ENV_VAR,
    "EnvVar",
    [f(1, "name", Ty::Str), f(2, "value", Ty::Str)]
);
message!(
    RESOURCE_REQUIREMENTS,
    "ResourceRequirements",
    [
        f(1, "limits", Ty::Map(&QUANTITY)),
        f(2, "requests", Ty::Map(&QUANTITY)),
    ]
);
message!(
    CONTAINER,
    "Container",
    [
        f(1, "name", Ty::Str),
        f(2, "image", Ty::Str),
        r(3, "command", Ty::Str),
        r(4, "args", Ty::Str),
        f(5, "workingDir", Ty::Str),
        r(6, "ports", Ty::Msg(&CONTAINER_PORT)),
        r(7, "env", Ty::Msg(&ENV_VAR)),
        f(8, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        p(24, "restartPolicy", Ty::Str),
        f(13, "terminationMessagePath", Ty::Str),
        f(20, "terminationMessagePolicy", Ty::Str),
        f(14, "imagePullPolicy", Ty::Str),
        f(16, "stdin", Ty::Bool),
        f(17, "stdinOnce", Ty::Bool),
        f(18, "tty", Ty::Bool),
    ]
);
message!(
    POD_SPEC,
    "PodSpec",
    [
        r(20, "initContainers", Ty::Msg(&CONTAINER)),
        r(2, "containers", Ty::Msg(&CONTAINER)),
        f(3, "restartPolicy", Ty::Str),
        p(4, "terminationGracePeriodSeconds", Ty::Int),
        p(5, "activeDeadlineSeconds", Ty::Int),
        f(6, "dnsPolicy", Ty::Str),
        f(7, "nodeSelector", Ty::Map(&STR)),
        f(8, "serviceAccountName", Ty::Str),
        f(9, "serviceAccount", Ty::Str),
        p(21, "automountServiceAccountToken", Ty::Bool),
        f(10, "nodeName", Ty::Str),
        f(11, "hostNetwork", Ty::Bool),
        f(12, "hostPID", Ty::Bool),
        f(13, "hostIPC", Ty::Bool),
        r(15, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Ty::Str),
        f(17, "subdomain", Ty::Str),
        f(19, "schedulerName", Ty::Str),
        f(24, "priorityClassName", Ty::Str),
        p(29, "runtimeClassName", Ty::Str),
        p(30, "enableServiceLinks", Ty::Bool),
    ]
);
message!(
    POD_TEMPLATE_SPEC,
    "PodTemplateSpec",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&POD_SPEC)),
    ]
);

// apps/v1
message!(
    ROLLING_UPDATE_DEPLOYMENT,
    "RollingUpdateDeployment",
    [
        p(1, "maxUnavailable", Ty::IntOrString),
        p(2, "maxSurge", Ty::IntOrString),
    ]
);
message!(
    DEPLOYMENT_STRATEGY,
    "DeploymentStrategy",
    [
        f(1, "type", Ty::Str),
        p(2, "rollingUpdate", Ty::Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ]
);
message!(
    DEPLOYMENT_SPEC,
    "DeploymentSpec",
    [
        p(1, "replicas", Ty::Int),
        p(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Ty::Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", Ty::Int),
        p(6, "revisionHistoryLimit", Ty::Int),
        f(7, "paused", Ty::Bool),
        p(9, "progressDeadlineSeconds", Ty::Int),
    ]
);
message!(
    DEPLOYMENT,
    "Deployment",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Ty::Msg(&EMPTY)),
    ]
);

// rbac.authorization.k8s.io/v1
message!(
    POLICY_RULE,
    "PolicyRule",
    [
        r(1, "verbs", Ty::Str),
        r(2, "apiGroups", Ty::Str),
        r(3, "resources", Ty::Str),
        r(4, "resourceNames", Ty::Str),
        r(5, "nonResourceURLs", Ty::Str),
    ]
);
message!(
    AGGREGATION_RULE,
    "AggregationRule",
    [r(1, "clusterRoleSelectors", Ty::Msg(&LABEL_SELECTOR)),]
);
message!(
    ROLE,
    "Role",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        r(2, "rules", Ty::Msg(&POLICY_RULE)),
    ]
);
message!(
    CLUSTER_ROLE,
    "ClusterRole",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        r(2, "rules", Ty::Msg(&POLICY_RULE)),
        p(3, "aggregationRule", Ty::Msg(&AGGREGATION_RULE)),
    ]
);
message!(
    SUBJECT,
    "Subject",
    [
        f(1, "kind", Ty::Str),
        f(2, "apiGroup", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "namespace", Ty::Str),
    ]
);
message!(
    ROLE_REF,
    "RoleRef",
    [
        f(1, "apiGroup", Ty::Str),
        f(2, "kind", Ty::Str),
        f(3, "name", Ty::Str),
    ]
);
message!(
    ROLE_BINDING,
    "RoleBinding",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        r(2, "subjects", Ty::Msg(&SUBJECT)),
        f(3, "roleRef", Ty::Msg(&ROLE_REF)),
    ]
);

// policy/v1
message!(
    PDB_SPEC,
    "PodDisruptionBudgetSpec",
    [
        p(1, "minAvailable", Ty::IntOrString),
        p(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        p(3, "maxUnavailable", Ty::IntOrString),
        p(4, "unhealthyPodEvictionPolicy", Ty::Str),
    ]
);
message!(
    PDB,
    "PodDisruptionBudget",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&PDB_SPEC)),
        f(3, "status", Ty::Msg(&EMPTY)),
    ]
);

// authorization.k8s.io/v1 and authentication.k8s.io/v1
message!(
    RESOURCE_ATTRIBUTES,
    "ResourceAttributes",
    [
        f(1, "namespace", Ty::Str),
        f(2, "verb", Ty::Str),
        f(3, "group", Ty::Str),
        f(4, "version", Ty::Str),
        f(5, "resource", Ty::Str),
        f(6, "subresource", Ty::Str),
        f(7, "name", Ty::Str),
    ]
);
message!(
    NON_RESOURCE_ATTRIBUTES,
    "NonResourceAttributes",
    [f(1, "path", Ty::Str), f(2, "verb", Ty::Str),]
);
message!(
    ACCESS_REVIEW_SPEC,
    "SelfSubjectAccessReviewSpec",
    [
        p(1, "resourceAttributes", Ty::Msg(&RESOURCE_ATTRIBUTES)),
        p(
            2,
            "nonResourceAttributes",
            Ty::Msg(&NON_RESOURCE_ATTRIBUTES)
        ),
    ]
);
message!(
    ACCESS_REVIEW,
    "SelfSubjectAccessReview",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&ACCESS_REVIEW_SPEC)),
        f(3, "status", Ty::Msg(&EMPTY)),
    ]
);
message!(
    RULES_REVIEW_SPEC,
    "SelfSubjectRulesReviewSpec",
    [f(1, "namespace", Ty::Str)]
);
message!(
    RULES_REVIEW,
    "SelfSubjectRulesReview",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&RULES_REVIEW_SPEC)),
        f(3, "status", Ty::Msg(&EMPTY)),
    ]
);
message!(
    SELF_SUBJECT_REVIEW,
    "SelfSubjectReview",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "status", Ty::Msg(&EMPTY)),
    ]
);

// coordination.k8s.io/v1
message!(
    LEASE_SPEC,
    "LeaseSpec",
    [
        p(1, "holderIdentity", Ty::Str),
        p(2, "leaseDurationSeconds", Ty::Int),
        p(3, "acquireTime", Ty::MicroTime),
        p(4, "renewTime", Ty::MicroTime),
        p(5, "leaseTransitions", Ty::Int),
        p(6, "strategy", Ty::Str),
        p(7, "preferredHolder", Ty::Str),
    ]
);
message!(
    LEASE,
    "Lease",
    [
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&LEASE_SPEC)),
    ]
);

/// The kinds whose protobuf bodies decode: (apiVersion, kind, message).
pub static MESSAGES: &[(&str, &str, &Message)] = &[
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "Secret", &SECRET),
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "Service", &SERVICE),
    ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
    ("apps/v1", "Deployment", &DEPLOYMENT),
    ("rbac.authorization.k8s.io/v1", "Role", &ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", &CLUSTER_ROLE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", &ROLE_BINDING),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &ROLE_BINDING,
    ),
    ("policy/v1", "PodDisruptionBudget", &PDB),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &RULES_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &SELF_SUBJECT_REVIEW,
    ),
    ("coordination.k8s.io/v1", "Lease", &LEASE),
];

/// A protobuf body the server refuses.
fn refuse(what: String) -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        message: format!(
            "the embedded API server cannot decode this {MEDIA_TYPE} body: {what}; send it as application/json instead"
        ),
        details: None,
    }
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("the protobuf body is malformed: {what}"))
}

/// One wire value.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &mut &[u8]) -> Result<u64, ApiError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf
            .split_first()
            .ok_or_else(|| malformed("a varint runs past the end"))?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(malformed("a varint is longer than 10 bytes"))
}

/// The fields of one message, in wire order.
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(&mut buf)?),
            1 => {
                buf = buf
                    .get(8..)
                    .ok_or_else(|| malformed("a fixed64 runs past the end"))?;
                Wire::Fixed
            }
            5 => {
                buf = buf
                    .get(4..)
                    .ok_or_else(|| malformed("a fixed32 runs past the end"))?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?)
                    .map_err(|_| malformed("a length does not fit"))?;
                let (value, rest) = (
                    buf.get(..len)
                        .ok_or_else(|| malformed("a field runs past the end"))?,
                    buf.get(len..).unwrap_or_default(),
                );
                buf = rest;
                Wire::Bytes(value)
            }
            other => {
                return Err(malformed(&format!(
                    "wire type {other} is not used by Kubernetes"
                )));
            }
        };
        out.push((key >> 3, wire));
    }
    Ok(out)
}

/// Whether `bytes` is empty or a message whose fields are all zero (what Go writes for an unset
/// non-pointer struct: `status: {userInfo: {username: ""}}`). A non-empty string is not.
fn all_zero(bytes: &[u8], depth: usize) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if depth > 8 {
        return false;
    }
    fields(bytes).is_ok_and(|fs| {
        fs.into_iter().all(|(_, w)| match w {
            Wire::Varint(v) => v == 0,
            Wire::Bytes(b) => all_zero(b, depth + 1),
            Wire::Fixed => false,
        })
    })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn utf8(bytes: &[u8], at: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(&format!("{at} is not UTF-8")))
}

fn time(bytes: &[u8], micro: bool) -> Result<Value, ApiError> {
    let (mut seconds, mut nanos) = (0u64, 0u64);
    for (num, wire) in fields(bytes)? {
        match (num, wire) {
            (1, Wire::Varint(v)) => seconds = v,
            (2, Wire::Varint(v)) => nanos = v,
            _ => {}
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let stamp = rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds));
    if micro {
        let micros = (nanos / 1_000) % 1_000_000;
        return Ok(json!(stamp.replace('Z', &format!(".{micros:06}Z"))));
    }
    Ok(json!(stamp))
}

fn value(ty: &Ty, wire: Wire<'_>, at: &str) -> Result<Value, ApiError> {
    let wrong = || malformed(&format!("{at} has the wrong wire type"));
    Ok(match (ty, wire) {
        (Ty::Int, Wire::Varint(v)) => {
            // int32 and int64 are sign-extended varints.
            json!(v as i64)
        }
        (Ty::Bool, Wire::Varint(v)) => json!(v != 0),
        (Ty::Str, Wire::Bytes(b)) => json!(utf8(b, at)?),
        (Ty::Bytes, Wire::Bytes(b)) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        (Ty::Time, Wire::Bytes(b)) => time(b, false)?,
        (Ty::MicroTime, Wire::Bytes(b)) => time(b, true)?,
        (Ty::Quantity, Wire::Bytes(b)) => {
            let mut s = String::new();
            for (num, w) in fields(b)? {
                if let (1, Wire::Bytes(v)) = (num, w) {
                    s = utf8(v, at)?;
                }
            }
            json!(s)
        }
        (Ty::IntOrString, Wire::Bytes(b)) => {
            let (mut kind, mut int, mut string) = (0u64, 0i64, String::new());
            for (num, w) in fields(b)? {
                match (num, w) {
                    (1, Wire::Varint(v)) => kind = v,
                    (2, Wire::Varint(v)) => int = v as i64,
                    (3, Wire::Bytes(v)) => string = utf8(v, at)?,
                    _ => {}
                }
            }
            if kind == 1 { json!(string) } else { json!(int) }
        }
        (Ty::Msg(m), Wire::Bytes(b)) => Value::Object(message(m, b, at)?),
        _ => return Err(wrong()),
    })
}

fn message(m: &Message, bytes: &[u8], at: &str) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let mut present: Vec<&'static str> = Vec::new();
    for (num, wire) in fields(bytes)? {
        let Some(field) = m.fields.iter().find(|f| f.num == num) else {
            let zero = match wire {
                Wire::Varint(v) => v == 0,
                Wire::Bytes(b) => all_zero(b, 0),
                Wire::Fixed => false,
            };
            if zero {
                continue;
            }
            return Err(refuse(format!(
                "field {num} of {} ({at}) is not one the embedded server knows",
                m.name
            )));
        };
        let here = format!("{at}.{}", field.name);
        if let Ty::Map(v) = &field.ty {
            let Wire::Bytes(entry) = wire else {
                return Err(malformed(&format!("{here} has the wrong wire type")));
            };
            let (mut key, mut val) = (String::new(), Value::Null);
            for (n, w) in fields(entry)? {
                match (n, w) {
                    (1, Wire::Bytes(k)) => key = utf8(k, &here)?,
                    (2, w) => val = value(v, w, &here)?,
                    _ => {}
                }
            }
            if val.is_null() {
                val = match v {
                    Ty::Bytes | Ty::Str | Ty::Quantity => json!(""),
                    _ => Value::Null,
                };
            }
            let map = out
                .entry(field.name)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(map) = map.as_object_mut() {
                map.insert(key, val);
            }
            continue;
        }
        let v = value(&field.ty, wire, &here)?;
        if field.repeated {
            let list = out
                .entry(field.name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = list.as_array_mut() {
                list.push(v);
            }
        } else {
            present.push(field.name);
            out.insert(field.name.to_owned(), v);
        }
    }
    // Non-pointer fields are always on the wire; their zero values are JSON's omitted fields.
    out.retain(|name, v| {
        let opt = m
            .fields
            .iter()
            .any(|f| f.name == name && f.opt && !matches!(f.ty, Ty::Map(_)));
        !is_zero(v) || (opt && present.contains(&name.as_str()) && !v.is_null())
    });
    Ok(out)
}

/// Decodes a protobuf body (`k8s\0` + `runtime.Unknown`) into the object's JSON.
///
/// # Errors
///
/// `415` for a kind or a field the embedded server cannot decode, `400` for a malformed body.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not start with the k8s\\0 prefix"))?;
    let (mut api_version, mut kind, mut raw, mut encoding) =
        (String::new(), String::new(), &[][..], String::new());
    for (num, wire) in fields(unknown)? {
        match (num, wire) {
            (1, Wire::Bytes(meta)) => {
                for (n, w) in fields(meta)? {
                    match (n, w) {
                        (1, Wire::Bytes(v)) => api_version = utf8(v, "typeMeta.apiVersion")?,
                        (2, Wire::Bytes(v)) => kind = utf8(v, "typeMeta.kind")?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(v)) => raw = v,
            (3, Wire::Bytes(v)) => encoding = utf8(v, "contentEncoding")?,
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(refuse(format!("content encoding {encoding:?}")));
    }
    let Some((_, _, m)) = MESSAGES
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    else {
        return Err(refuse(format!("kind {kind} of {api_version}")));
    };
    let mut obj = message(m, raw, &kind)?;
    obj.insert("apiVersion".to_owned(), json!(api_version));
    obj.insert("kind".to_owned(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(num: u64, wire: u64, out: &mut Vec<u8>) {
        varint_to(num << 3 | wire, out);
    }

    fn varint_to(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes(num: u64, value: &[u8], out: &mut Vec<u8>) {
        key(num, 2, out);
        varint_to(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    fn int(num: u64, value: u64, out: &mut Vec<u8>) {
        key(num, 0, out);
        varint_to(value, out);
    }

    fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut meta = Vec::new();
        bytes(1, api_version.as_bytes(), &mut meta);
        bytes(2, kind.as_bytes(), &mut meta);
        let mut unknown = MAGIC.to_vec();
        bytes(1, &meta, &mut unknown);
        bytes(2, raw, &mut unknown);
        unknown
    }

    fn meta(name: &str) -> Vec<u8> {
        // As Go writes it: every non-pointer field, the empty ones too.
        let mut m = Vec::new();
        bytes(1, name.as_bytes(), &mut m);
        bytes(2, b"", &mut m);
        bytes(3, b"", &mut m);
        int(7, 0, &mut m);
        bytes(8, b"", &mut m);
        m
    }

    #[test]
    fn a_namespace_decodes_to_its_json_without_the_zero_fields() {
        let mut raw = Vec::new();
        bytes(1, &meta("team-a"), &mut raw);
        bytes(2, b"", &mut raw);
        bytes(3, b"", &mut raw);
        let obj = decode(&body("v1", "Namespace", &raw)).expect("decodes");
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
        );
    }

    #[test]
    fn secret_bytes_become_base64_and_pointer_zeros_are_kept() {
        let mut entry = Vec::new();
        bytes(1, b"password", &mut entry);
        bytes(2, b"s3cr3t", &mut entry);
        let mut raw = Vec::new();
        bytes(1, &meta("db"), &mut raw);
        int(5, 0, &mut raw); // immutable: false, a pointer that was set
        bytes(2, &entry, &mut raw);
        bytes(3, b"Opaque", &mut raw);
        let obj = decode(&body("v1", "Secret", &raw)).expect("decodes");
        assert_eq!(obj["data"], json!({"password": "czNjcjN0"}));
        assert_eq!(obj["immutable"], json!(false));
        assert_eq!(obj["type"], "Opaque");
    }

    #[test]
    fn replicas_zero_is_kept_and_int_or_string_decodes_both_ways() {
        let mut max_surge = Vec::new();
        int(1, 1, &mut max_surge);
        int(2, 0, &mut max_surge);
        bytes(3, b"25%", &mut max_surge);
        let mut max_unavailable = Vec::new();
        int(1, 0, &mut max_unavailable);
        int(2, 0, &mut max_unavailable);
        bytes(3, b"", &mut max_unavailable);
        let mut rolling = Vec::new();
        bytes(1, &max_unavailable, &mut rolling);
        bytes(2, &max_surge, &mut rolling);
        let mut strategy = Vec::new();
        bytes(1, b"RollingUpdate", &mut strategy);
        bytes(2, &rolling, &mut strategy);
        let mut spec = Vec::new();
        int(1, 0, &mut spec);
        bytes(4, &strategy, &mut spec);
        int(5, 0, &mut spec);
        let mut raw = Vec::new();
        bytes(1, &meta("web"), &mut raw);
        bytes(2, &spec, &mut raw);
        bytes(3, b"", &mut raw);
        let obj = decode(&body("apps/v1", "Deployment", &raw)).expect("decodes");
        assert_eq!(obj["spec"]["replicas"], json!(0));
        assert_eq!(
            obj["spec"]["strategy"]["rollingUpdate"],
            json!({"maxUnavailable": 0, "maxSurge": "25%"})
        );
        assert!(obj["spec"].get("minReadySeconds").is_none());
    }

    #[test]
    fn an_unknown_set_field_or_kind_is_refused_with_415() {
        let mut raw = Vec::new();
        bytes(1, &meta("x"), &mut raw);
        bytes(99, b"something", &mut raw);
        let err = decode(&body("v1", "Namespace", &raw)).expect_err("unknown field");
        assert_eq!((err.code, err.reason), (415, "UnsupportedMediaType"));
        assert!(
            err.message.contains("field 99 of Namespace"),
            "{}",
            err.message
        );
        let err = decode(&body("batch/v1", "Job", &[])).expect_err("unknown kind");
        assert_eq!(err.code, 415);
        // A zero-valued unknown field is what Go writes for an unset non-pointer field, also
        // a nested struct of zero fields.
        let mut nested = Vec::new();
        bytes(1, b"", &mut nested);
        int(2, 0, &mut nested);
        let mut raw = Vec::new();
        bytes(1, &meta("x"), &mut raw);
        bytes(99, b"", &mut raw);
        bytes(98, &nested, &mut raw);
        assert!(decode(&body("v1", "Namespace", &raw)).is_ok());
        let mut raw = Vec::new();
        bytes(1, &meta("x"), &mut raw);
        bytes(97, b"ab", &mut raw);
        assert_eq!(
            decode(&body("v1", "Namespace", &raw))
                .expect_err("a set string")
                .code,
            415
        );
    }

    #[test]
    fn a_truncated_body_is_a_bad_request() {
        let mut b = body("v1", "Namespace", &meta("x"));
        b.truncate(b.len() - 2);
        assert_eq!(decode(&b).expect_err("truncated").code, 400);
    }
}
