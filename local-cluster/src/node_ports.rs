//! NodePort allocation, as the API server does it for Services of `type:
//! NodePort` and `LoadBalancer`: each port gets a node port in
//! 30000–32767, unique in the cluster; a requested one is honoured when it
//! is free and in range, and refused in the API server's words when not;
//! an update keeps the ports' node ports; a Service that stops being a
//! NodePort one releases them. The node ports are allocated and shown,
//! not opened: nothing listens on them on this machine (see the README).

use std::ops::RangeInclusive;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::resources;
use crate::store::Store;

/// The API server's default `--service-node-port-range`.
pub const RANGE: RangeInclusive<i64> = 30000..=32767;

/// Held from allocation until the Service is stored, so two writes at
/// once never take the same port.
pub static ALLOCATION: Mutex<()> = Mutex::new(());

fn uses_node_ports(service: &Value) -> bool {
    matches!(
        service["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    )
}

/// Fills in (or checks) the node ports of `service` (named `name` in
/// `ns`), given the stored version `old` of an update. Call with
/// [`ALLOCATION`] held until the Service is stored.
pub fn allocate(
    store: &Store,
    ns: &str,
    name: &str,
    service: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let wanted = uses_node_ports(service);
    let service_type = service["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    let Some(ports) = service["spec"]["ports"].as_array_mut() else {
        return Ok(());
    };
    let old_ports: Vec<Value> = old
        .filter(|old| uses_node_ports(old))
        .and_then(|old| old["spec"]["ports"].as_array().cloned())
        .unwrap_or_default();
    if !wanted {
        let mut causes = Vec::new();
        for (i, port) in ports.iter_mut().enumerate() {
            let Some(node_port) = port.get("nodePort").and_then(Value::as_i64) else {
                continue;
            };
            // Kept from when the Service was a NodePort one: released.
            if old_ports
                .iter()
                .any(|o| o["nodePort"].as_i64() == Some(node_port))
            {
                if let Some(fields) = port.as_object_mut() {
                    fields.remove("nodePort");
                }
            } else if node_port != 0 {
                causes.push((
                    format!("spec.ports[{i}].nodePort"),
                    format!("Forbidden: may not be used when `type` is '{service_type}'"),
                ));
            }
        }
        return refuse(name, causes);
    }
    // Node ports of every other Service.
    let (services, _) = store.list(resources::services(), None);
    let mut taken: Vec<i64> = services
        .iter()
        .filter(|other| {
            !(other["metadata"]["namespace"] == ns && other["metadata"]["name"] == name)
        })
        .flat_map(|other| {
            other["spec"]["ports"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|port| port["nodePort"].as_i64())
        .collect();
    let mut causes = Vec::new();
    let mut missing = Vec::new();
    for (i, port) in ports.iter_mut().enumerate() {
        let requested = port["nodePort"].as_i64().filter(|p| *p != 0);
        // An update keeps a port's node port (matched by port and protocol).
        let kept = || {
            old_ports
                .iter()
                .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"])
                .and_then(|o| o["nodePort"].as_i64())
        };
        match requested.or_else(kept) {
            Some(node_port) if !RANGE.contains(&node_port) => causes.push((
                format!("spec.ports[{i}].nodePort"),
                format!(
                    "Invalid value: {node_port}: provided port is not in the valid range. The range of valid ports is {}-{}",
                    RANGE.start(),
                    RANGE.end()
                ),
            )),
            Some(node_port) if taken.contains(&node_port) => causes.push((
                format!("spec.ports[{i}].nodePort"),
                format!("Invalid value: {node_port}: provided port is already allocated"),
            )),
            Some(node_port) => {
                port["nodePort"] = json!(node_port);
                taken.push(node_port);
            }
            None => missing.push(i),
        }
    }
    refuse(name, causes)?;
    for i in missing {
        let start = rand::random_range(RANGE);
        let span = RANGE.end() - RANGE.start() + 1;
        let free = (0..span)
            .map(|offset| RANGE.start() + (start - RANGE.start() + offset) % span)
            .find(|candidate| !taken.contains(candidate))
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "failed to allocate a nodePort: range is full ({}-{} all taken)",
                    RANGE.start(),
                    RANGE.end()
                ))
            })?;
        ports[i]["nodePort"] = json!(free);
        taken.push(free);
    }
    Ok(())
}

fn refuse(name: &str, causes: Vec<(String, String)>) -> ApiResult<()> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Service", "", name, causes))
    }
}
