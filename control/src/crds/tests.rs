use super::*;

/// Validates `value` against a structural OpenAPI v3 schema (the subset CRDs use), strictly:
/// where a schema lists `properties` and does not preserve unknown fields, any other field is
/// an error (the API server would silently prune it; here it means the types miss a field).
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let ok = any.iter().any(|s| {
            let mut e = Vec::new();
            validate(s, value, path, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{path}: matches no alternative"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            errors.push(format!("{path}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, v) in values.iter().enumerate() {
            validate(items, v, &format!("{path}[{i}]"), errors);
        }
    }
    let Some(object) = value.as_object() else { return };
    for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        if let Some(r) = r.as_str() {
            if !object.contains_key(r) {
                errors.push(format!("{path}: missing required field {r}"));
            }
        }
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in object {
            match props.get(k) {
                Some(s) => validate(s, v, &format!("{path}.{k}"), errors),
                None if preserve => {}
                None => errors.push(format!("{path}: unknown field {k}")),
            }
        }
    } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        for (k, v) in object {
            validate(extra, v, &format!("{path}.{k}"), errors);
        }
    }
}

/// The object without `apiVersion`, `kind` and `metadata`, which the API server checks itself
/// (CRD schemas do not list them).
fn without_type_meta(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            m.remove(k);
        }
    }
    v
}

fn schemas() -> Vec<(String, Value)> {
    all()
        .into_iter()
        .map(|crd| {
            let kind = crd["spec"]["names"]["kind"].as_str().expect("kind").to_string();
            (kind, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone())
        })
        .collect()
}

#[test]
fn crds_are_well_formed() {
    let crds = all();
    assert_eq!(crds.len(), 10);
    for crd in &crds {
        let kind = crd["spec"]["names"]["kind"].as_str().expect("kind");
        assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1", "{kind}");
        assert_eq!(crd["spec"]["group"], "traefik.io", "{kind}");
        assert_eq!(crd["spec"]["scope"], "Namespaced", "{kind}");
        let plural = crd["spec"]["names"]["plural"].as_str().expect("plural");
        assert_eq!(crd["metadata"]["name"], format!("{plural}.traefik.io"));
        assert_eq!(plural, format!("{}s", kind.to_ascii_lowercase()), "the plurals weir watches");
        let version = &crd["spec"]["versions"][0];
        assert_eq!((version["name"].as_str(), version["served"].as_bool()), (Some("v1alpha1"), Some(true)));
        // Structural: no $ref left.
        assert!(!crd.to_string().contains("$ref"), "{kind}");
    }
}

#[test]
fn every_seed_example_fits_the_schemas() {
    let schemas = schemas();
    let text = include_str!("seed_examples.yaml");
    let mut checked = 0;
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc).expect("example YAML");
        let kind = value["kind"].as_str().expect("kind");
        let (_, schema) =
            schemas.iter().find(|(k, _)| k == kind).unwrap_or_else(|| panic!("no CRD for {kind}"));
        let mut errors = Vec::new();
        validate(schema, &without_type_meta(&value), kind, &mut errors);
        assert!(errors.is_empty(), "{kind} {}: {errors:?}", value["metadata"]["name"]);
        checked += 1;
    }
    assert_eq!(checked, 46);
}

#[test]
fn schemas_reject_what_traefik_rejects() {
    let schemas = schemas();
    let route = &schemas.iter().find(|(k, _)| k == "IngressRoute").expect("IngressRoute").1;
    let cases = [
        (serde_json::json!({"spec": {"routes": [{"match": "Host(`a`)", "kind": "Rule"}]}}), true),
        (serde_json::json!({"spec": {}}), false),
        (serde_json::json!({"spec": {"routes": [{"kind": "Rule"}]}}), false),
        (serde_json::json!({"spec": {"routes": [{"match": "x", "kind": "Other"}]}}), false),
        (
            serde_json::json!({"spec": {"routes": [{"match": "x", "services": [{"name": "s", "port": "http"}]}]}}),
            true,
        ),
        (
            serde_json::json!({"spec": {"routes": [{"match": "x", "services": [{"name": "s", "port": 80}]}]}}),
            true,
        ),
        (
            serde_json::json!({"spec": {"routes": [{"match": "x", "services": [{"name": "s", "port": true}]}]}}),
            false,
        ),
        (serde_json::json!({"spec": {"routes": "x"}}), false),
    ];
    for (doc, ok) in cases {
        let mut errors = Vec::new();
        validate(route, &doc, "IngressRoute", &mut errors);
        assert_eq!(errors.is_empty(), ok, "{doc}: {errors:?}");
    }
}

#[test]
fn deploy_crds_match_weir_crds() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds.yaml");
    let on_disk = std::fs::read_to_string(&path).expect("deploy/crds.yaml");
    assert!(on_disk == yaml(), "deploy/crds.yaml is stale: run `weir crds > deploy/crds.yaml`");
}
