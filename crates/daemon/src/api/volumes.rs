//! Volume endpoints (`/volumes`, API 1.41).

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::models::VolumeCreateRequest;
use berth_errdefs::{Error, Result as BResult};
use berth_volume::Volume;
use http::Request;
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::container::volumes::users;
use crate::http::{body_json, empty, json, Query, Result};
use crate::Daemon;

/// A volume as dockerd 20.10 shows it; `usage`: with `UsageData` (`system df`).
pub fn volume_json(d: &Daemon, v: &Volume, usage: bool) -> Value {
    let mut out = json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Mountpoint": d.volumes.path(&v.name).display().to_string(),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    });
    if usage {
        out["UsageData"] = json!({"Size": d.volumes.size(&v.name), "RefCount": users(d, &v.name).len()});
    }
    out
}

fn matches(d: &Daemon, v: &Volume, f: &berth_api::query::Filters, dangling: Option<bool>) -> bool {
    let any = |k: &str, p: &dyn Fn(&String) -> bool| f.get(k).is_empty() || f.get(k).iter().any(p);
    let label = |k: &str| v.labels.get(k).map(String::as_str);
    any("name", &|n| v.name.contains(n.as_str()))
        && any("driver", &|n| *n == v.driver)
        && f.match_labels(label)
        && f.match_labels_not(label)
        && dangling.is_none_or(|want| want == users(d, &v.name).is_empty())
}

/// `GET /volumes`.
pub fn list(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    f.validate(&["dangling", "driver", "label", "label!", "name"])?;
    let dangling = f.bool_value("dangling")?;
    let vols: Vec<Value> = d.volumes.list().iter().filter(|v| matches(d, v, &f, dangling)).map(|v| volume_json(d, v, false)).collect();
    Ok(json(200, &json!({"Volumes": vols, "Warnings": null})))
}

/// `GET /volumes/{name}`.
pub fn inspect(d: &Arc<Daemon>, name: &str) -> Result {
    let v = d.volumes.get(name)?;
    Ok(json(200, &volume_json(d, &v, false)))
}

/// `POST /volumes/create`: an existing volume of that name is returned as it is.
pub async fn create(d: &Arc<Daemon>, req: Request<Incoming>) -> Result {
    let r: VolumeCreateRequest = body_json(req.into_body()).await?;
    if r.cluster_volume_spec.is_some() {
        return Err(Error::invalid("cluster volumes need swarm mode, which berthd does not have"));
    }
    let name = r.name.filter(|n| !n.is_empty()).unwrap_or_else(berth_volume::spec::random_id);
    let opts: BTreeMap<String, String> = r.driver_opts.unwrap_or_default().into_iter().collect();
    let labels: BTreeMap<String, String> = r.labels.unwrap_or_default().into_iter().collect();
    let existed = d.volumes.get(&name).is_ok();
    let v = d.volumes.create(&name, r.driver.as_deref().unwrap_or(""), opts, labels, false)?;
    if !existed {
        emit(d, "create", &v.name);
    }
    Ok(json(201, &volume_json(d, &v, false)))
}

fn emit(d: &Daemon, action: &str, name: &str) {
    let mut attrs = std::collections::HashMap::new();
    attrs.insert("driver".to_owned(), "local".to_owned());
    d.events.emit(berth_api::models::EventMessageTypeEnum::VOLUME, action, name, attrs);
}

/// `DELETE /volumes/{name}`: a volume any container uses is a 409 (`force` only makes
/// a missing one not an error, as in dockerd).
pub async fn remove(d: &Arc<Daemon>, name: &str, q: &Query) -> Result {
    let force = q.bool("force");
    let who = users(d, name);
    let d2 = d.clone();
    let n = name.to_owned();
    let r = tokio::task::spawn_blocking(move || d2.volumes.remove(&n, &who)).await.map_err(|e| Error::internal(e.to_string()))?;
    match r {
        Ok(()) => emit(d, "destroy", name),
        Err(e) if e.is_not_found() && force => {}
        Err(e) => return Err(e),
    }
    Ok(empty(204))
}

/// `POST /volumes/prune` (API 1.41: every volume no container uses, named ones too;
/// as dockerd 20.10 does, not those made with driver options).
pub async fn prune(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    f.validate(&["label", "label!", "all"])?;
    // API 1.42's `all`: false keeps named volumes (1.41's prune takes them: true).
    let anonymous_only = f.bool_value("all")? == Some(false);
    let mut deleted = Vec::new();
    let mut reclaimed = 0i64;
    for v in d.volumes.list() {
        let label = |k: &str| v.labels.get(k).map(String::as_str);
        if (anonymous_only && !v.anonymous)
            || !v.options.is_empty()
            || !users(d, &v.name).is_empty()
            || !f.match_labels(label)
            || !f.match_labels_not(label)
        {
            continue;
        }
        let size = d.volumes.size(&v.name);
        let d2 = d.clone();
        let n = v.name.clone();
        let r: BResult<()> = tokio::task::spawn_blocking(move || d2.volumes.remove(&n, &[]))
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        if r.is_ok() {
            emit(d, "destroy", &v.name);
            reclaimed += size;
            deleted.push(v.name.clone());
        }
    }
    Ok(json(
        200,
        &json!({"VolumesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}),
    ))
}

/// `system df`'s volumes (with usage; not those with driver options, as dockerd 20.10).
pub fn usage(d: &Daemon) -> Vec<Value> {
    d.volumes.list().iter().filter(|v| v.options.is_empty()).map(|v| volume_json(d, v, true)).collect()
}
