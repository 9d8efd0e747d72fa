//! Resource handlers: get, list, create, update, patch, delete,
//! deletecollection and the scale and status subresources, on top of the
//! store, with defaulting and validation on every write.

use std::sync::Arc;

use http::{Method, Request, Response, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::message::{Body, Query, json_response, parse_json, read_body};
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::DeleteOptions;
use crate::{defaults, fields, patch, table, validate};

pub async fn dispatch(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    target: super::Target,
    query: Query,
    accept: String,
) -> ApiResult<Response<Body>> {
    let method = req.method().clone();
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ns = target.ns.clone().unwrap_or_default();
    let rt = target.rt;
    let sub = target.sub.as_deref();
    let name = target.name.as_deref();
    match (&method, name, sub) {
        (&Method::GET, None, None) => {
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                super::watch::serve(shared.clone(), rt, target.ns.clone(), &query, &accept)
            } else {
                list(&shared, rt, target.ns.as_deref(), &query, &accept)
            }
        }
        (&Method::GET, Some(name), None | Some("status")) => {
            let obj = shared.store.get(rt, &ns, name)?;
            if table::wants_table(&accept) {
                let include = query
                    .get("includeObject")
                    .map(String::as_str)
                    .unwrap_or("Metadata");
                let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                return Ok(json_response(
                    200,
                    &table::table(rt, &[&obj], meta, include, true),
                ));
            }
            Ok(json_response(200, &obj))
        }
        (&Method::GET, Some(name), Some("scale")) => Ok(json_response(
            200,
            &scale_of(&shared.store.get(rt, &ns, name)?),
        )),
        (&Method::GET, Some(name), Some("log")) => {
            super::logs::serve(shared.clone(), &ns, name, &query).await
        }
        (&Method::POST, None, None) => {
            let body = read_body(req.into_body()).await?;
            let obj = parse_json(&body, &ct)?;
            let mut warnings = Vec::new();
            create(&shared, rt, &ns, obj, &query, &mut warnings)
                .map(|o| with_warnings(json_response(201, &o), &warnings))
        }
        (&Method::PUT, Some(name), sub) => {
            let body = read_body(req.into_body()).await?;
            let obj = parse_json(&body, &ct)?;
            let mut warnings = Vec::new();
            update(&shared, rt, &ns, name, sub, obj, &query, &mut warnings)
                .map(|o| with_warnings(json_response(200, &o), &warnings))
        }
        (&Method::PATCH, Some(name), sub) => {
            let body = read_body(req.into_body()).await?;
            let patch_doc = parse_json(&body, &ct)?;
            let mut warnings = Vec::new();
            patch_object(
                &shared,
                rt,
                &ns,
                name,
                sub,
                &ct,
                patch_doc,
                &query,
                &mut warnings,
            )
            .map(|response| with_warnings(response, &warnings))
        }
        (&Method::DELETE, Some(name), None) => {
            let body = read_body(req.into_body()).await?;
            let opts = delete_options(&body, &query)?;
            delete(&shared, rt, &ns, name, &opts, &query).map(|o| json_response(200, &o))
        }
        (&Method::DELETE, None, None) if rt.plural != "namespaces" => {
            let body = read_body(req.into_body()).await?;
            let opts = delete_options(&body, &query)?;
            delete_collection(&shared, rt, target.ns.as_deref(), &opts, &query)
        }
        _ => Err(ApiError::method_not_allowed(&format!(
            "{} {}",
            method,
            rt.qualified()
        ))),
    }
}

/// Adds a `Warning` header for each warning, as the API server does.
fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for warning in warnings {
        if let Ok(value) = http::HeaderValue::from_str(warning) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// Unknown fields, as `fieldValidation` says: refused (Strict, with
/// `refusal` giving the words around the API server's list), or dropped
/// with a warning each (Warn) or silently (Ignore).
fn unknown_fields(
    rt: &ResourceType,
    obj: &mut Value,
    query: &Query,
    warnings: &mut Vec<String>,
    refusal: impl FnOnce(String) -> String,
) -> ApiResult<()> {
    let directive = fields::Directive::of(query.get("fieldValidation").map(String::as_str))?;
    let unknown = fields::unknown(rt, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    match directive {
        fields::Directive::Strict => {
            return Err(ApiError::bad_request(refusal(format!(
                "strict decoding error: {}",
                fields::describe(&unknown)
            ))));
        }
        fields::Directive::Warn => warnings.extend(unknown.iter().map(fields::warning)),
        fields::Directive::Ignore => {}
    }
    fields::remove(obj, &unknown);
    Ok(())
}

/// How the API server refuses a body it cannot decode.
fn cannot_handle(rt: &ResourceType) -> impl FnOnce(String) -> String {
    let (kind, version) = (rt.kind, rt.version);
    move |why| format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {why}")
}

fn is_dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

fn list(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: Option<&str>,
    query: &Query,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let labels =
        LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields =
        FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let (items, rv) = shared.store.list_shared(rt, ns);
    let mut items: Vec<std::sync::Arc<Value>> = items
        .into_iter()
        .filter(|o| labels.matches_object(o) && fields.matches(o))
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = query.get("continue").filter(|c| !c.is_empty()) {
        let (ns_after, name_after) = decode_continue(token)?;
        items.retain(|object| {
            let key = (
                object["metadata"]["namespace"].as_str().unwrap_or(""),
                object["metadata"]["name"].as_str().unwrap_or(""),
            );
            key > (ns_after.as_str(), name_after.as_str())
        });
    }
    if let Some(limit) = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = &items[limit - 1]["metadata"];
        meta["continue"] = json!(encode_continue(
            rv,
            last["namespace"].as_str().unwrap_or(""),
            last["name"].as_str().unwrap_or("")
        ));
        meta["remainingItemCount"] = json!(remaining);
    }
    if table::wants_table(accept) {
        let include = query
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        let refs: Vec<&Value> = items.iter().map(|a| a.as_ref()).collect();
        return Ok(json_response(
            200,
            &table::table(rt, &refs, meta, include, true),
        ));
    }
    // Written piece by piece: the stored objects are shared, not copied.
    let head = json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": meta,
    });
    let mut body = serde_json::to_vec(&head).unwrap_or_default();
    body.pop();
    body.extend_from_slice(br#","items":["#);
    for (i, object) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let _ = serde_json::to_writer(&mut body, object.as_ref());
    }
    body.extend_from_slice(b"]}");
    let mut response = Response::new(super::message::full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    format!(
        "{rv}-{}",
        format!("{ns}/{name}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn decode_continue(token: &str) -> ApiResult<(String, String)> {
    let bad = || ApiError::bad_request("invalid continue token");
    let (_, hex) = token.split_once('-').ok_or_else(bad)?;
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    let decoded = String::from_utf8(bytes.ok_or_else(bad)?).map_err(|_| bad())?;
    let (ns, name) = decoded.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

fn check_type(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the body ({kind}) does not match the resource ({})",
            rt.kind
        )));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && !av.is_empty()
        && av != rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if !obj["metadata"].is_null() && !obj["metadata"].is_object() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

fn check_namespace(rt: &ResourceType, ns: &str, obj: &mut Value) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    match obj["metadata"]["namespace"].as_str() {
        Some(given) if !given.is_empty() && given != ns => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Drops the empty metadata maps and lists a real API server drops: it
/// decodes every body into Go types whose `labels`, `annotations`,
/// `finalizers` and `ownerReferences` are omitted when empty, so
/// `annotations: {}` (what `kubectl diff` and `kubectl apply` send for an
/// object made by `kubectl create`) never shows up in the stored object.
fn drop_empty_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match meta.get(field) {
                Some(Value::Object(map)) => map.is_empty(),
                Some(Value::Array(list)) => list.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(field);
            }
        }
    }
}

/// The node-port allocation lock, for a write to a Service.
fn node_port_allocation(rt: &ResourceType) -> Option<std::sync::MutexGuard<'static, ()>> {
    (rt.plural == "services").then(|| {
        crate::node_ports::ALLOCATION
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    })
}

/// Creates an object through the API path: defaulting, validation, store.
pub fn create(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    mut obj: Value,
    query: &Query,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    check_type(rt, &obj)?;
    unknown_fields(rt, &mut obj, query, warnings, cannot_handle(rt))?;
    check_namespace(rt, ns, &mut obj)?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    crate::namespace_lifecycle::admit(&shared.store, rt, ns, &name)?;
    if obj["metadata"].is_null() {
        obj["metadata"] = json!({});
    }
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("uid");
        meta.remove("managedFields");
    }
    drop_empty_metadata(&mut obj);
    validate::check_shape(rt, &obj)?;
    if std::ptr::eq(rt, resources::jobs()) {
        // The selector and pod labels a Job gets are made from its uid.
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
    }
    defaults::apply(rt, &mut obj, &shared.store);
    // Held until the Service is stored.
    let _allocation = node_port_allocation(rt);
    if std::ptr::eq(rt, resources::services()) {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        crate::node_ports::allocate(&shared.store, ns, &name, &mut obj, None)?;
    }
    validate::validate(rt, &obj, None)?;
    if std::ptr::eq(rt, resources::pods()) {
        crate::pod_security::admit(&shared.store, ns, &obj)?;
        crate::quota::admit(&shared.store, ns, &obj)?;
    }
    if is_dry_run(query) {
        return Ok(obj);
    }
    shared.store.create(rt, ns, obj)
}

#[allow(clippy::too_many_arguments)]
fn update(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    mut obj: Value,
    query: &Query,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    if sub == Some("scale") {
        return update_scale(shared, rt, ns, name, &obj);
    }
    check_type(rt, &obj)?;
    unknown_fields(rt, &mut obj, query, warnings, cannot_handle(rt))?;
    check_namespace(rt, ns, &mut obj)?;
    if let Some(given) = obj["metadata"]["name"].as_str()
        && given != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    // Held until the Service is stored.
    let _allocation = node_port_allocation(rt);
    let old = shared.store.get(rt, ns, name)?;
    match sub {
        Some("status") => {}
        Some("finalize") => {
            let fins = obj["spec"]["finalizers"].clone();
            return shared.store.modify(rt, ns, name, |stored| {
                stored["spec"]["finalizers"] = if fins.is_null() { json!([]) } else { fins };
                Ok(())
            });
        }
        _ => {
            if obj["metadata"].is_null() {
                obj["metadata"] = json!({});
            }
            obj["metadata"]["name"] = json!(name);
            drop_empty_metadata(&mut obj);
            validate::check_shape(rt, &obj)?;
            defaults::apply(rt, &mut obj, &shared.store);
            // Fields the server owns are carried over before validation:
            // a namespace's finalizers change only through `finalize`.
            if rt.plural == "namespaces" {
                obj["spec"]["finalizers"] = old["spec"]["finalizers"].clone();
            }
            if rt.plural == "services"
                && obj["spec"]["clusterIP"] != old["spec"]["clusterIP"]
                && obj["spec"].get("clusterIP").is_none()
            {
                obj["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
            }
            if rt.plural == "services" {
                crate::node_ports::allocate(&shared.store, ns, name, &mut obj, Some(&old))?;
            }
            validate::validate(rt, &obj, Some(&old))?;
        }
    }
    if is_dry_run(query) {
        return Ok(obj);
    }
    shared.store.update(rt, ns, name, obj, sub)
}

fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": crate::selectors::to_query(&obj["spec"]["selector"]),
        },
    })
}

fn update_scale(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    scale: &Value,
) -> ApiResult<Value> {
    let Some(replicas) = scale["spec"]["replicas"].as_i64() else {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![("spec.replicas".into(), "Required value".into())],
        ));
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![(
                "spec.replicas".into(),
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let want_rv = scale["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let qualified = rt.qualified();
    let updated = shared.store.modify(rt, ns, name, |stored| {
        if !want_rv.is_empty() && stored["metadata"]["resourceVersion"] != want_rv.as_str() {
            return Err(ApiError::conflict(&qualified, name));
        }
        stored["spec"]["replicas"] = json!(replicas);
        Ok(())
    })?;
    Ok(scale_of(&updated))
}

#[derive(Clone, Copy, PartialEq)]
enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

#[allow(clippy::too_many_arguments)]
fn patch_object(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    ct: &str,
    patch_doc: Value,
    query: &Query,
    warnings: &mut Vec<String>,
) -> ApiResult<Response<Body>> {
    let media = ct.split(';').next().unwrap_or("").trim();
    let kind = match media {
        "application/json-patch+json" => PatchKind::Json,
        "application/merge-patch+json" => PatchKind::Merge,
        "application/strategic-merge-patch+json" => PatchKind::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
        other => return Err(ApiError::unsupported_media(other)),
    };
    if kind != PatchKind::Json && !patch_doc.is_object() {
        return Err(ApiError::bad_request("the patch must be a JSON object"));
    }
    for _ in 0..8 {
        let current = match shared.store.get(rt, ns, name) {
            Ok(found) => found,
            Err(e) if e.code == 404 && kind == PatchKind::Apply && sub.is_none() => {
                let mut obj = patch_doc.clone();
                check_type(rt, &obj)?;
                obj["metadata"]["name"] = json!(name);
                return create(shared, rt, ns, obj, query, warnings)
                    .map(|o| json_response(201, &o));
            }
            Err(e) => return Err(e),
        };
        let base = if sub == Some("scale") {
            scale_of(&current)
        } else {
            current.clone()
        };
        let mut new = base.clone();
        match kind {
            PatchKind::Json => patch::json_patch(&mut new, &patch_doc)?,
            PatchKind::Merge => patch::merge_patch(&mut new, &patch_doc),
            PatchKind::Strategic | PatchKind::Apply => {
                patch::strategic_merge(&mut new, &patch_doc)?
            }
        }
        if !new.is_object() || !(new["metadata"].is_object() || new["metadata"].is_null()) {
            return Err(ApiError::bad_request(
                "the patched object is not a valid object",
            ));
        }
        // The version the patch asks for, or the one it was computed
        // against: a patch that names none is computed again on a conflict.
        let explicit_rv = patch_doc["metadata"]["resourceVersion"].as_str().is_some();
        if sub == Some("scale") {
            match update_scale(shared, rt, ns, name, &new) {
                Err(e) if e.reason == "Conflict" && !explicit_rv => continue,
                result => return result.map(|o| json_response(200, &o)),
            }
        }
        if !explicit_rv {
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        }
        // The patched object is decoded as a body is; a patch's refusal
        // has no words around the list.
        let mut found = Vec::new();
        unknown_fields(rt, &mut new, query, &mut found, |why| why)?;
        match update(shared, rt, ns, name, sub, new, query, &mut Vec::new()) {
            Err(e) if e.reason == "Conflict" && !explicit_rv => continue,
            result => {
                warnings.extend(found);
                return result.map(|o| json_response(200, &o));
            }
        }
    }
    Err(ApiError::conflict(&rt.qualified(), name))
}

fn delete_options(body: &[u8], query: &Query) -> ApiResult<DeleteOptions> {
    let mut options = DeleteOptions::default();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let body_json: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        options.grace_period = body_json["gracePeriodSeconds"].as_i64();
        options.propagation = body_json["propagationPolicy"].as_str().map(String::from);
        if body_json["orphanDependents"] == true {
            options.propagation = Some("Orphan".into());
        }
        options.precondition_uid = body_json["preconditions"]["uid"].as_str().map(String::from);
        options.precondition_rv = body_json["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
    }
    if let Some(grace) = query.get("gracePeriodSeconds") {
        options.grace_period = Some(
            grace
                .parse()
                .map_err(|_| ApiError::bad_request("gracePeriodSeconds must be a number"))?,
        );
    }
    if let Some(policy) = query.get("propagationPolicy") {
        options.propagation = Some(policy.clone());
    }
    if query
        .get("orphanDependents")
        .is_some_and(|value| value == "true")
    {
        options.propagation = Some("Orphan".into());
    }
    if let Some(policy) = &options.propagation
        && !["Foreground", "Background", "Orphan"].contains(&policy.as_str())
    {
        return Err(ApiError::invalid(
            "DeleteOptions",
            "",
            "",
            vec![(
                "propagationPolicy".into(),
                format!(
                    "Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
            )],
        ));
    }
    Ok(options)
}

fn delete(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
    query: &Query,
) -> ApiResult<Value> {
    if rt.plural == "namespaces" && ["default", "kube-system", "kube-public"].contains(&name) {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    if is_dry_run(query) {
        return shared.store.get(rt, ns, name);
    }
    shared.store.delete(rt, ns, name, opts).map(|(o, _)| o)
}

fn delete_collection(
    shared: &Shared,
    rt: &'static ResourceType,
    ns: Option<&str>,
    opts: &DeleteOptions,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let labels =
        LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields =
        FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let (items, _) = shared.store.list(rt, ns);
    let mut deleted = Vec::new();
    for object in items
        .iter()
        .filter(|object| labels.matches_object(object) && fields.matches(object))
    {
        let ons = object["metadata"]["namespace"].as_str().unwrap_or("");
        let oname = object["metadata"]["name"].as_str().unwrap_or("");
        if let Ok(removed) = delete(shared, rt, ons, oname, opts, query) {
            deleted.push(removed);
        }
    }
    let list = json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": shared.store.current_rv().to_string()},
        "items": deleted,
    });
    Ok(json_response(200, &list))
}
