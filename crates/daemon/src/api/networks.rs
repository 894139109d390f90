//! Network endpoints (`/networks`, API 1.41).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use berth_api::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use berth_errdefs::{Error, Result as BResult};
use berth_network::Network;
use http::Request;
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::container::net;
use crate::http::{body_value, empty, json, Query, Result};
use crate::Daemon;

/// A network as dockerd 20.10 shows it; `containers`: with the containers on it.
pub fn network_json(d: &Daemon, n: &Network, containers: bool) -> Value {
    let config: Vec<Value> = n
        .subnets
        .iter()
        .map(|s| {
            let mut c = serde_json::Map::new();
            c.insert("Subnet".into(), s.subnet.to_string().into());
            if let Some(r) = s.ip_range {
                c.insert("IPRange".into(), r.to_string().into());
            }
            if !s.gateway_implied {
                c.insert("Gateway".into(), s.gateway.to_string().into());
            }
            if !s.aux.is_empty() {
                let aux: BTreeMap<String, String> = s.aux.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
                c.insert("AuxiliaryAddresses".into(), json!(aux));
            }
            Value::Object(c)
        })
        .collect();
    let mut on = serde_json::Map::new();
    if containers {
        for c in d.containers.all() {
            let r = c.record();
            for ep in r.endpoints.iter().filter(|e| e.network_id == n.id && e.is_active()) {
                let cidr = |ip: Option<std::net::IpAddr>, len: u8| ip.map(|a| format!("{a}/{len}")).unwrap_or_default();
                on.insert(
                    r.id.clone(),
                    json!({
                        "Name": r.name,
                        "EndpointID": ep.endpoint_id,
                        "MacAddress": ep.mac,
                        "IPv4Address": cidr(ep.ipv4, ep.prefix4),
                        "IPv6Address": cidr(ep.ipv6, ep.prefix6),
                    }),
                );
            }
        }
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {
            "Driver": "default",
            "Options": n.ipam_options,
            "Config": config,
        },
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": on,
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn matches(n: &Network, f: &berth_api::query::Filters) -> bool {
    let any = |k: &str, p: &dyn Fn(&String) -> bool| f.get(k).is_empty() || f.get(k).iter().any(p);
    let label = |k: &str| n.labels.get(k).map(String::as_str);
    any("driver", &|v| *v == n.driver)
        && any("id", &|v| n.id.starts_with(v.as_str()))
        && any("name", &|v| n.name.contains(v.as_str()))
        && any("scope", &|v| v == "local")
        && any("type", &|v| (v == "builtin") == n.predefined)
        && f.match_labels(label)
        && f.match_labels_not(label)
}

/// `GET /networks`. Clients before API 1.28 get each network's containers too
/// (dockerd's `Detailed` listing); later ones get them from inspect only.
pub fn list(d: &Arc<Daemon>, q: &Query, v: berth_api::version::ApiVersion) -> Result {
    let f = q.filters()?;
    f.validate(&["driver", "id", "label", "label!", "name", "scope", "type", "dangling"])?;
    f.validate_values("type", &["custom", "builtin"])?;
    f.validate_values("scope", &["local", "swarm", "global"])?;
    let dangling = f.bool_value("dangling")?;
    let used = used_networks(d);
    let out: Vec<Value> = d
        .networks
        .list()
        .iter()
        .filter(|n| matches(n, &f))
        .filter(|n| dangling.is_none_or(|want| want == (!n.predefined && !used.contains(&n.id))))
        .map(|n| network_json(d, n, v.before(28)))
        .collect();
    Ok(json(200, &out))
}

/// Networks any container (running or not) is on.
fn used_networks(d: &Daemon) -> std::collections::HashSet<String> {
    d.containers.all().iter().flat_map(|c| c.record().endpoints.into_iter().map(|e| e.network_id)).collect()
}

/// `GET /networks/{id}`.
pub fn inspect(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    if let Some(s) = q.get("scope").filter(|s| !s.is_empty()) {
        if s != "local" {
            return Err(Error::not_found(format!("network {id} not found")));
        }
    }
    let n = d.networks.get(id)?;
    Ok(json(200, &network_json(d, &n, true)))
}

/// `POST /networks/create`.
pub async fn create(d: &Arc<Daemon>, req: Request<Incoming>) -> Result {
    let body: Value = body_value(req.into_body()).await?;
    let r: NetworkCreateRequest =
        berth_api::gojson::from_value(body.clone()).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    if body.get("ConfigOnly").and_then(Value::as_bool) == Some(true) || r.config_from.is_some() {
        return Err(Error::invalid("config-only networks are not supported by berthd"));
    }
    if r.ingress == Some(true) {
        return Err(Error::forbidden("ingress networks need swarm mode, which berthd does not have"));
    }
    if r.scope.as_deref().is_some_and(|s| !s.is_empty() && s != "local") {
        return Err(Error::invalid(format!("scope {} is not supported: berthd networks are local", r.scope.unwrap_or_default())));
    }
    let ipam = r.ipam.clone().unwrap_or_default();
    let configs = ipam
        .config
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.subnet, c.ip_range, c.gateway, c.auxiliary_addresses.unwrap_or_default().into_iter().collect()))
        .collect();
    let cr = berth_network::CreateRequest {
        name: r.name.clone(),
        driver: r.driver.clone().unwrap_or_default(),
        internal: r.internal.unwrap_or(false),
        attachable: r.attachable.unwrap_or(false),
        enable_ipv6: r.enable_ipv6.unwrap_or(false),
        ipam_driver: ipam.driver.unwrap_or_default(),
        ipam_options: ipam.options.map(|o| o.into_iter().collect()),
        configs,
        options: r.options.unwrap_or_default().into_iter().collect(),
        labels: r.labels.unwrap_or_default().into_iter().collect(),
    };
    let d2 = d.clone();
    let n = tokio::task::spawn_blocking(move || d2.networks.create(cr))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    net::emit(d, "create", &n);
    Ok(json(201, &json!({"Id": n.id, "Warning": ""})))
}

/// `POST /networks/{id}/connect`.
pub async fn connect(d: &Arc<Daemon>, id: &str, req: Request<Incoming>) -> Result {
    let r: NetworkConnectRequest = body_json_or_invalid(req).await?;
    let n = d.networks.get(id)?;
    let c = d.containers.get(&r.container)?;
    net::connect(d, &c, &n, r.endpoint_config.as_ref()).await?;
    Ok(empty(200))
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(d: &Arc<Daemon>, id: &str, req: Request<Incoming>) -> Result {
    let r: NetworkDisconnectRequest = body_json_or_invalid(req).await?;
    let n = d.networks.get(id)?;
    let c = d.containers.get(&r.container)?;
    net::disconnect(d, &c, &n, r.force.unwrap_or(false)).await?;
    Ok(empty(200))
}

async fn body_json_or_invalid<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> BResult<T> {
    let v: Value = body_value(req.into_body()).await?;
    if v.get("Container").is_none_or(|c| c.as_str().is_none_or(|s| s.is_empty())) {
        return Err(Error::invalid("a container must be given (Container)"));
    }
    berth_api::gojson::from_value(v).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))
}

/// `DELETE /networks/{id}`: warm sandboxes on it go first (they hold addresses).
pub async fn remove(d: &Arc<Daemon>, id: &str) -> Result {
    let n = d.networks.get(id)?;
    crate::container::warm::evict_network(d, &n.id).await;
    let d2 = d.clone();
    let key = n.id.clone();
    let n = tokio::task::spawn_blocking(move || d2.networks.remove(&key))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    net::emit(d, "destroy", &n);
    Ok(empty(204))
}

/// `POST /networks/prune`: every user-defined network no container is on, filtered
/// by `until`, `label`, `label!`.
pub async fn prune(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    f.validate(&["until", "label", "label!"])?;
    let now = chrono::Utc::now().timestamp();
    let until = f.get("until").iter().map(|u| berth_api::query::timestamp(u, now)).collect::<BResult<Vec<i64>>>()?;
    let used = used_networks(d);
    let mut deleted = Vec::new();
    for n in d.networks.list() {
        let label = |k: &str| n.labels.get(k).map(String::as_str);
        if n.predefined || used.contains(&n.id) || !f.match_labels(label) || !f.match_labels_not(label) {
            continue;
        }
        let created = chrono::DateTime::parse_from_rfc3339(&n.created).map(|t| t.timestamp()).unwrap_or(0);
        if until.iter().any(|u| created > *u) {
            continue;
        }
        if remove(d, &n.id).await.is_ok() {
            deleted.push(n.name.clone());
        }
    }
    let names: HashMap<&str, Value> = [("NetworksDeleted", if deleted.is_empty() { Value::Null } else { json!(deleted) })].into();
    Ok(json(200, &names))
}
