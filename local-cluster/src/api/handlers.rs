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
use crate::{defaults, patch, table, validate};

pub async fn dispatch(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    t: super::Target,
    q: Query,
    accept: String,
) -> ApiResult<Response<Body>> {
    let method = req.method().clone();
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ns = t.ns.clone().unwrap_or_default();
    let rt = t.rt;
    let sub = t.sub.as_deref();
    let name = t.name.as_deref();
    let s = &shared;
    match (&method, name, sub) {
        (&Method::GET, None, None) => {
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                super::watch::serve(shared.clone(), rt, t.ns.clone(), &q, &accept)
            } else {
                list(s, rt, t.ns.as_deref(), &q, &accept)
            }
        }
        (&Method::GET, Some(n), None | Some("status")) => {
            let obj = s.store.get(rt, &ns, n)?;
            if table::wants_table(&accept) {
                let include = q
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
        (&Method::GET, Some(n), Some("scale")) => {
            Ok(json_response(200, &scale_of(&s.store.get(rt, &ns, n)?)))
        }
        (&Method::GET, Some(n), Some("log")) => {
            super::logs::serve(shared.clone(), &ns, n, &q).await
        }
        (&Method::POST, None, None) => {
            let body = read_body(req.into_body()).await?;
            let obj = parse_json(&body, &ct)?;
            create(s, rt, &ns, obj, &q).map(|o| json_response(201, &o))
        }
        (&Method::PUT, Some(n), sub) => {
            let body = read_body(req.into_body()).await?;
            let obj = parse_json(&body, &ct)?;
            update(s, rt, &ns, n, sub, obj, &q).map(|o| json_response(200, &o))
        }
        (&Method::PATCH, Some(n), sub) => {
            let body = read_body(req.into_body()).await?;
            let p = parse_json(&body, &ct)?;
            patch_object(s, rt, &ns, n, sub, &ct, p, &q)
        }
        (&Method::DELETE, Some(n), None) => {
            let body = read_body(req.into_body()).await?;
            let opts = delete_options(&body, &q)?;
            delete(s, rt, &ns, n, &opts, &q).map(|o| json_response(200, &o))
        }
        (&Method::DELETE, None, None) if rt.plural != "namespaces" => {
            let body = read_body(req.into_body()).await?;
            let opts = delete_options(&body, &q)?;
            delete_collection(s, rt, t.ns.as_deref(), &opts, &q)
        }
        _ => Err(ApiError::method_not_allowed(&format!(
            "{} {}",
            method,
            rt.qualified()
        ))),
    }
}

fn is_dry_run(q: &Query) -> bool {
    q.get("dryRun").is_some_and(|d| d == "All")
}

fn list(
    s: &Shared,
    rt: &'static ResourceType,
    ns: Option<&str>,
    q: &Query,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let (items, rv) = s.store.list_shared(rt, ns);
    let mut items: Vec<std::sync::Arc<Value>> = items
        .into_iter()
        .filter(|o| labels.matches_object(o) && fields.matches(o))
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = q.get("continue").filter(|c| !c.is_empty()) {
        let (ns_after, name_after) = decode_continue(token)?;
        items.retain(|o| {
            let key = (
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or(""),
            );
            key > (ns_after.as_str(), name_after.as_str())
        });
    }
    if let Some(limit) = q
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
        let include = q
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
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let _ = serde_json::to_writer(&mut body, o.as_ref());
    }
    body.extend_from_slice(b"]}");
    let mut r = Response::new(super::message::full(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
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
    let s = String::from_utf8(bytes.ok_or_else(bad)?).map_err(|_| bad())?;
    let (ns, name) = s.split_once('/').ok_or_else(bad)?;
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
        Some(n) if !n.is_empty() && n != ns => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Creates an object through the API path: defaulting, validation, store.
pub fn create(
    s: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    mut obj: Value,
    q: &Query,
) -> ApiResult<Value> {
    check_type(rt, &obj)?;
    check_namespace(rt, ns, &mut obj)?;
    if rt.namespaced {
        match s.store.try_get(resources::namespaces(), "", ns) {
            None => return Err(ApiError::not_found("namespaces", ns)),
            Some(n)
                if n["metadata"]
                    .get("deletionTimestamp")
                    .is_some_and(|v| !v.is_null()) =>
            {
                let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
                let mut e = ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.qualified()
                    ),
                );
                e.details = Some(
                    json!({"name": name, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
                );
                return Err(e);
            }
            _ => {}
        }
    }
    if obj["metadata"].is_null() {
        obj["metadata"] = json!({});
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("uid");
        m.remove("managedFields");
    }
    validate::check_shape(rt, &obj)?;
    defaults::apply(rt, &mut obj, &s.store);
    validate::validate(rt, &obj, None)?;
    if is_dry_run(q) {
        return Ok(obj);
    }
    s.store.create(rt, ns, obj)
}

fn update(
    s: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    mut obj: Value,
    q: &Query,
) -> ApiResult<Value> {
    if sub == Some("scale") {
        return update_scale(s, rt, ns, name, &obj);
    }
    check_type(rt, &obj)?;
    check_namespace(rt, ns, &mut obj)?;
    if let Some(n) = obj["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let old = s.store.get(rt, ns, name)?;
    match sub {
        Some("status") => {}
        Some("finalize") => {
            let fins = obj["spec"]["finalizers"].clone();
            return s.store.modify(rt, ns, name, |o| {
                o["spec"]["finalizers"] = if fins.is_null() { json!([]) } else { fins };
                Ok(())
            });
        }
        _ => {
            if obj["metadata"].is_null() {
                obj["metadata"] = json!({});
            }
            obj["metadata"]["name"] = json!(name);
            validate::check_shape(rt, &obj)?;
            defaults::apply(rt, &mut obj, &s.store);
            // Fields the server owns are carried over before validation.
            if rt.plural == "services"
                && obj["spec"]["clusterIP"] != old["spec"]["clusterIP"]
                && obj["spec"].get("clusterIP").is_none()
            {
                obj["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
            }
            validate::validate(rt, &obj, Some(&old))?;
        }
    }
    if is_dry_run(q) {
        return Ok(obj);
    }
    s.store.update(rt, ns, name, obj, sub)
}

fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": crate::selectors::to_query(&obj["spec"]["selector"]),
        },
    })
}

fn update_scale(
    s: &Shared,
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
    let updated = s.store.modify(rt, ns, name, |o| {
        if !want_rv.is_empty() && o["metadata"]["resourceVersion"] != want_rv.as_str() {
            return Err(ApiError::conflict(&qualified, name));
        }
        o["spec"]["replicas"] = json!(replicas);
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
    s: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    ct: &str,
    p: Value,
    q: &Query,
) -> ApiResult<Response<Body>> {
    let media = ct.split(';').next().unwrap_or("").trim();
    let kind = match media {
        "application/json-patch+json" => PatchKind::Json,
        "application/merge-patch+json" => PatchKind::Merge,
        "application/strategic-merge-patch+json" => PatchKind::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
        other => return Err(ApiError::unsupported_media(other)),
    };
    if kind != PatchKind::Json && !p.is_object() {
        return Err(ApiError::bad_request("the patch must be a JSON object"));
    }
    for _ in 0..8 {
        let current = match s.store.get(rt, ns, name) {
            Ok(c) => c,
            Err(e) if e.code == 404 && kind == PatchKind::Apply && sub.is_none() => {
                let mut obj = p.clone();
                check_type(rt, &obj)?;
                obj["metadata"]["name"] = json!(name);
                return create(s, rt, ns, obj, q).map(|o| json_response(201, &o));
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
            PatchKind::Json => patch::json_patch(&mut new, &p)?,
            PatchKind::Merge => patch::merge_patch(&mut new, &p),
            PatchKind::Strategic | PatchKind::Apply => patch::strategic_merge(&mut new, &p)?,
        }
        if !new.is_object() || !(new["metadata"].is_object() || new["metadata"].is_null()) {
            return Err(ApiError::bad_request(
                "the patched object is not a valid object",
            ));
        }
        // The version the patch asks for, or the one it was computed
        // against: a patch that names none is computed again on a conflict.
        let explicit_rv = p["metadata"]["resourceVersion"].as_str().is_some();
        if sub == Some("scale") {
            match update_scale(s, rt, ns, name, &new) {
                Err(e) if e.reason == "Conflict" && !explicit_rv => continue,
                r => return r.map(|o| json_response(200, &o)),
            }
        }
        if !explicit_rv {
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        }
        match update(s, rt, ns, name, sub, new, q) {
            Err(e) if e.reason == "Conflict" && !explicit_rv => continue,
            r => return r.map(|o| json_response(200, &o)),
        }
    }
    Err(ApiError::conflict(&rt.qualified(), name))
}

fn delete_options(body: &[u8], q: &Query) -> ApiResult<DeleteOptions> {
    let mut o = DeleteOptions::default();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        o.grace_period = v["gracePeriodSeconds"].as_i64();
        o.propagation = v["propagationPolicy"].as_str().map(String::from);
        if v["orphanDependents"] == true {
            o.propagation = Some("Orphan".into());
        }
        o.precondition_uid = v["preconditions"]["uid"].as_str().map(String::from);
        o.precondition_rv = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        o.grace_period = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request("gracePeriodSeconds must be a number"))?,
        );
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation = Some(p.clone());
    }
    if q.get("orphanDependents").is_some_and(|v| v == "true") {
        o.propagation = Some("Orphan".into());
    }
    if let Some(p) = &o.propagation
        && !["Foreground", "Background", "Orphan"].contains(&p.as_str())
    {
        return Err(ApiError::invalid(
            "DeleteOptions",
            "",
            "",
            vec![(
                "propagationPolicy".into(),
                format!(
                    "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
            )],
        ));
    }
    Ok(o)
}

fn delete(
    s: &Shared,
    rt: &'static ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
    q: &Query,
) -> ApiResult<Value> {
    if rt.plural == "namespaces" && ["default", "kube-system", "kube-public"].contains(&name) {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    if is_dry_run(q) {
        return s.store.get(rt, ns, name);
    }
    s.store.delete(rt, ns, name, opts).map(|(o, _)| o)
}

fn delete_collection(
    s: &Shared,
    rt: &'static ResourceType,
    ns: Option<&str>,
    opts: &DeleteOptions,
    q: &Query,
) -> ApiResult<Response<Body>> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let (items, _) = s.store.list(rt, ns);
    let mut deleted = Vec::new();
    for o in items
        .iter()
        .filter(|o| labels.matches_object(o) && fields.matches(o))
    {
        let ons = o["metadata"]["namespace"].as_str().unwrap_or("");
        let oname = o["metadata"]["name"].as_str().unwrap_or("");
        if let Ok(d) = delete(s, rt, ons, oname, opts, q) {
            deleted.push(d);
        }
    }
    let list = json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": s.store.current_rv().to_string()},
        "items": deleted,
    });
    Ok(json_response(200, &list))
}
