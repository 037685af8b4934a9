//! The OpenAPI documents of the served kinds, and the field validation they allow.
//!
//! The schemas come from `k8s-openapi` (the Kubernetes 1.34 OpenAPI definitions as Rust types,
//! with their descriptions, through its `schemars` feature): no schema is written here. From
//! them the server builds `/openapi/v3` (the index and one document per group-version, with
//! each kind's paths carrying `x-kubernetes-group-version-kind` and the `fieldValidation`
//! parameter, so `kubectl apply` validates on the server and `kubectl explain` reads them) and
//! `/openapi/v2` (the same definitions in one Swagger 2.0 document, JSON only).
//!
//! Writes are checked against the schema as the real server's decoder checks them: a field the
//! schema does not declare is dropped (a typed decode drops it), and refused with `400` when the
//! request asks `fieldValidation=Strict` (what kubectl sends), in the real server's words.

use std::sync::OnceLock;

use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::resources::{RESOURCES, ResourceId, ResourceType};

/// The schemas of every served kind: definitions, and each kind's definition name.
struct Schemas {
    definitions: Map<String, Value>,
    kinds: Vec<String>,
}

fn name_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    let reference = generator.subschema_for::<T>();
    reference
        .as_value()
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_owned)
        .unwrap_or_else(|| T::schema_name().into_owned())
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        use k8s_openapi::api::{
            apps::v1 as apps, coordination::v1 as coordination, core::v1 as core,
            discovery::v1 as discovery, networking::v1 as networking, policy::v1 as policy,
            rbac::v1 as rbac,
        };
        let mut g = SchemaSettings::openapi3().into_generator();
        // In the order of RESOURCES (a test ties the two).
        let kinds = vec![
            name_of::<core::Namespace>(&mut g),
            name_of::<core::Node>(&mut g),
            name_of::<core::Pod>(&mut g),
            name_of::<core::Service>(&mut g),
            name_of::<core::ConfigMap>(&mut g),
            name_of::<core::Event>(&mut g),
            name_of::<core::ServiceAccount>(&mut g),
            name_of::<core::Secret>(&mut g),
            name_of::<apps::Deployment>(&mut g),
            name_of::<apps::ReplicaSet>(&mut g),
            name_of::<networking::Ingress>(&mut g),
            name_of::<policy::PodDisruptionBudget>(&mut g),
            name_of::<core::Endpoints>(&mut g),
            name_of::<discovery::EndpointSlice>(&mut g),
            name_of::<core::PersistentVolumeClaim>(&mut g),
            name_of::<coordination::Lease>(&mut g),
            name_of::<rbac::Role>(&mut g),
            name_of::<rbac::RoleBinding>(&mut g),
            name_of::<rbac::ClusterRole>(&mut g),
            name_of::<rbac::ClusterRoleBinding>(&mut g),
        ];
        let mut definitions = g.take_definitions(true);
        for (rt, name) in RESOURCES.iter().zip(&kinds) {
            if let Some(Value::Object(schema)) = definitions.get_mut(name) {
                schema.insert(
                    "x-kubernetes-group-version-kind".to_owned(),
                    json!([gvk(rt)]),
                );
                // k8s-openapi makes `metadata` required (its Rust field is not optional); the
                // real definitions do not.
                if let Some(Value::Array(required)) = schema.get_mut("required") {
                    required.retain(|r| r != "metadata");
                    if required.is_empty() {
                        schema.remove("required");
                    }
                }
            }
        }
        definitions.insert(
            "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".to_owned(),
            json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"}),
        );
        Schemas { definitions, kinds }
    })
}

fn gvk(rt: &ResourceType) -> Value {
    json!({"group": rt.group, "version": rt.version, "kind": rt.kind})
}

/// The path of a group-version in the documents: `api/v1`, `apis/apps/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn served_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for rt in RESOURCES {
        if !gvs.contains(&(rt.group, rt.version)) {
            gvs.push((rt.group, rt.version));
        }
    }
    gvs
}

/// A stable hash of a document (the index names each document with one, as the real one does).
fn hash(text: &str) -> String {
    format!("{:016X}", super::controller::fnv(text.as_bytes()))
}

/// `/openapi/v3`: the index of the per-group-version documents.
#[must_use]
pub fn v3_index() -> Value {
    let mut paths = Map::new();
    for (group, version) in served_group_versions() {
        let path = gv_path(group, version);
        let doc = v3_document(group, version)
            .map(|d| d.to_string())
            .unwrap_or_default();
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc))}),
        );
    }
    json!({"paths": paths})
}

fn operation(rt: &ResourceType, action: &str, schema: &str, body: bool) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{schema}")});
    let mut op = json!({
        "tags": [rt.group],
        "operationId": format!("{action}{}", rt.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(rt),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
    });
    if body {
        let field_validation = json!({
            "name": "fieldValidation",
            "in": "query",
            "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn (the default) or Strict.",
            "schema": {"type": "string", "uniqueItems": true},
        });
        let dry_run = json!({"name": "dryRun", "in": "query", "description": "When present, indicates that modifications should not be persisted: All.", "schema": {"type": "string", "uniqueItems": true}});
        let field_manager = json!({"name": "fieldManager", "in": "query", "description": "fieldManager is a name associated with the actor or entity that is making these changes.", "schema": {"type": "string", "uniqueItems": true}});
        op["parameters"] = json!([dry_run, field_manager, field_validation]);
        // Strategic merge patch is served, but not advertised: kubectl then builds its patches
        // from its compiled-in types, whose patch strategies the schemas here do not carry.
        let content = if action == "patch" {
            let patch = json!({"schema": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}});
            json!({
                "application/json-patch+json": patch,
                "application/merge-patch+json": patch,
                "application/apply-patch+yaml": patch,
            })
        } else {
            json!({"application/json": {"schema": reference}})
        };
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`, or None when not served.
#[must_use]
pub fn v3_document(group: &str, version: &str) -> Option<Value> {
    static DOCUMENTS: OnceLock<Vec<((&'static str, &'static str), Value)>> = OnceLock::new();
    let documents = DOCUMENTS.get_or_init(|| {
        let s = schemas();
        served_group_versions()
            .into_iter()
            .map(|(g, v)| {
                let mut paths = Map::new();
                for (rt, schema) in RESOURCES.iter().zip(&s.kinds) {
                    if rt.group != g || rt.version != v {
                        continue;
                    }
                    let base = format!("/{}", gv_path(g, v));
                    let collection = if rt.namespaced {
                        format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
                    } else {
                        format!("{base}/{}", rt.plural)
                    };
                    paths.insert(
                        collection.clone(),
                        json!({"get": operation(rt, "list", schema, false), "post": operation(rt, "post", schema, true)}),
                    );
                    paths.insert(
                        format!("{collection}/{{name}}"),
                        json!({
                            "get": operation(rt, "get", schema, false),
                            "put": operation(rt, "put", schema, true),
                            "patch": operation(rt, "patch", schema, true),
                            "delete": operation(rt, "delete", schema, false),
                        }),
                    );
                }
                let doc = json!({
                    "openapi": "3.0.0",
                    "info": {"title": "Kubernetes", "version": "v1.34.0"},
                    "paths": paths,
                    "components": {"schemas": s.definitions},
                });
                ((g, v), doc)
            })
            .collect()
    });
    documents
        .iter()
        .find(|((g, v), _)| *g == group && *v == version)
        .map(|(_, d)| d.clone())
}

/// `/openapi/v2`: every definition in one Swagger 2.0 document (JSON).
#[must_use]
pub fn v2_document() -> Value {
    let definitions = Value::Object(schemas().definitions.clone())
        .to_string()
        .replace("#/components/schemas/", "#/definitions/");
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.34.0"},
        "paths": {},
        "definitions": serde_json::from_str::<Value>(&definitions).unwrap_or_default(),
    })
}

/// How a write treats fields its schema does not declare (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them (the server's default; the real one also answers a warning header).
    Warn,
    /// Refuse the write.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter (absent: Warn).
    ///
    /// # Errors
    ///
    /// `400` for another value, in the real server's words.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("" | "Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}"
            ))),
        }
    }
}

fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    let mut s = schema;
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r.rsplit('/').next().and_then(|n| defs.get(n)) {
                Some(d) => s = d,
                None => return s,
            }
        } else if let Some(first) = s.get("allOf").and_then(|a| a.get(0)) {
            s = first;
        } else {
            return s;
        }
    }
    s
}

/// Removes from `value` the fields `schema` does not declare; returns their dotted paths.
fn prune(
    value: &mut Value,
    schema: &Value,
    defs: &Map<String, Value>,
    at: &str,
    out: &mut Vec<String>,
) {
    let schema = resolve(schema, defs);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let unknown: Vec<String> = map
                    .keys()
                    .filter(|k| !props.contains_key(*k))
                    .cloned()
                    .collect();
                for k in unknown {
                    map.remove(&k);
                    out.push(if at.is_empty() {
                        k
                    } else {
                        format!("{at}.{k}")
                    });
                }
                for (k, v) in map.iter_mut() {
                    if let Some(sub) = props.get(k) {
                        let here = if at.is_empty() {
                            k.clone()
                        } else {
                            format!("{at}.{k}")
                        };
                        prune(v, sub, defs, &here, out);
                    }
                }
            } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for (k, v) in map.iter_mut() {
                    prune(v, extra, defs, &format!("{at}.{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    prune(v, item, defs, &format!("{at}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Checks a written object against its kind's schema: drops undeclared fields, or refuses
/// them when `mode` is Strict.
///
/// # Errors
///
/// `400 BadRequest` naming the unknown fields, as the real server's strict decoding does.
pub fn check_fields(
    res: ResourceId,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<(), ApiError> {
    let s = schemas();
    let Some(def) = s.kinds.get(res).and_then(|k| s.definitions.get(k)) else {
        return Ok(());
    };
    let mut unknown = Vec::new();
    prune(obj, def, &s.definitions, "", &mut unknown);
    if mode == FieldValidation::Strict && !unknown.is_empty() {
        let rt = &RESOURCES[res];
        let fields: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            fields.join(", "),
            kind = rt.kind,
            version = rt.version
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_has_its_schema_with_its_gvk() {
        let s = schemas();
        assert_eq!(s.kinds.len(), RESOURCES.len());
        for (rt, name) in RESOURCES.iter().zip(&s.kinds) {
            let def = &s.definitions[name];
            assert_eq!(
                def["x-kubernetes-group-version-kind"],
                json!([gvk(rt)]),
                "{name}"
            );
            assert!(
                name.ends_with(&format!(".{}", rt.kind)),
                "{name} is not {}",
                rt.kind
            );
        }
    }

    #[test]
    fn unknown_fields_are_dropped_or_refused_when_strict() {
        let services = RESOURCES
            .iter()
            .position(|r| r.plural == "services")
            .expect("served");
        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"prots": [], "ports": [{"port": 80, "bogus": 1}]}});
        check_fields(services, &mut svc, FieldValidation::Warn).expect("warn drops");
        assert_eq!(svc["spec"], json!({"ports": [{"port": 80}]}));
        assert_eq!(
            svc["metadata"]["labels"],
            json!({"x": "1"}),
            "map values are kept"
        );
        let mut svc = json!({"spec": {"prots": []}});
        let err =
            check_fields(services, &mut svc, FieldValidation::Strict).expect_err("strict refuses");
        assert_eq!(
            err.message,
            "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.prots\""
        );
    }

    #[test]
    fn the_v3_index_names_a_document_per_group_version() {
        let index = v3_index();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps/v1");
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
        let doc = v3_document("apps", "v1").expect("apps/v1 served");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(v3_document("batch", "v1").is_none());
    }
}
