//! `network create|ls|inspect|rm|connect|disconnect|prune`.

use anyhow::Result;
use http::Method;
use serde_json::{json, Value};

use crate::cli::NetworkCmd;
use crate::client::{empty, filters_json, json_body, Client, Query};
use crate::commands::{api_message, confirm};
use crate::format::{print_table, short_id, Template};
use crate::opts::parse_kv_list;

pub async fn network(c: &Client, cmd: NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create {
            driver,
            subnet,
            gateway,
            ip_range,
            aux_address,
            ipam_driver,
            ipam_opt,
            internal,
            attachable,
            ipv6,
            label,
            opt,
            name,
        } => {
            let config: Vec<Value> = subnet
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut m = json!({"Subnet": s});
                    if let Some(g) = gateway.get(i) {
                        m["Gateway"] = json!(g);
                    }
                    if let Some(r) = ip_range.get(i) {
                        m["IPRange"] = json!(r);
                    }
                    // Auxiliary addresses go with the subnet that holds them (the
                    // daemon checks); with one subnet, all of them.
                    if i == 0 && !aux_address.is_empty() {
                        m["AuxiliaryAddresses"] = json!(parse_kv_list(&aux_address));
                    }
                    m
                })
                .collect();
            if subnet.is_empty() && (!gateway.is_empty() || !ip_range.is_empty() || !aux_address.is_empty()) {
                anyhow::bail!("--gateway, --ip-range and --aux-address need a --subnet");
            }
            let body = json!({
                "Name": name, "Driver": driver, "Scope": "",
                "IPAM": {"Driver": ipam_driver, "Options": parse_kv_list(&ipam_opt), "Config": config},
                "Internal": internal, "Attachable": attachable, "Ingress": false, "ConfigOnly": false,
                "ConfigFrom": null, "EnableIPv6": ipv6,
                "Options": parse_kv_list(&opt), "Labels": parse_kv_list(&label), "CheckDuplicate": true,
            });
            let v: Value = c
                .post_json("/networks/create", &Query::new(), Some(json_body(&body)?))
                .await?;
            println!("{}", v["Id"].as_str().unwrap_or(""));
            Ok(0)
        }
        NetworkCmd::Ls {
            quiet,
            no_trunc,
            filter,
            format,
        } => {
            let mut nets: Vec<Value> = c
                .get_json(
                    "/networks",
                    &Query::new().opt("filters", filters_json(&filter)),
                )
                .await?;
            nets.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
            let id = |n: &Value| {
                let i = n["Id"].as_str().unwrap_or("");
                if no_trunc {
                    i.to_string()
                } else {
                    short_id(i)
                }
            };
            if quiet {
                nets.iter().for_each(|n| println!("{}", id(n)));
                return Ok(0);
            }
            if let Some(f) = format {
                let t = Template::parse(&f)?;
                if t.table {
                    println!("{}", t.header(&[("ID", "NETWORK ID")]));
                }
                for n in &nets {
                    let mut x = n.clone();
                    x["ID"] = json!(id(n));
                    println!("{}", t.render(&x));
                }
                return Ok(0);
            }
            let mut rows = vec![vec![
                "NETWORK ID".to_string(),
                "NAME".into(),
                "DRIVER".into(),
                "SCOPE".into(),
            ]];
            for n in &nets {
                rows.push(vec![
                    id(n),
                    n["Name"].as_str().unwrap_or("").into(),
                    n["Driver"].as_str().unwrap_or("").into(),
                    n["Scope"].as_str().unwrap_or("").into(),
                ]);
            }
            print_table(&rows);
            Ok(0)
        }
        NetworkCmd::Inspect { format, names } => {
            super::inspect_each(
                c,
                &names,
                format.as_deref(),
                |n| (format!("/networks/{n}"), Query::new()),
                |_, e| eprintln!("Error response from daemon: {}", api_message(e)),
            )
            .await
        }
        NetworkCmd::Rm { names } => {
            let mut rc = 0;
            for n in &names {
                let _ = c
                    .get_json::<Value>(&format!("/networks/{n}"), &Query::new())
                    .await;
                match c
                    .request(
                        Method::DELETE,
                        &format!("/networks/{n}"),
                        &Query::new(),
                        &[],
                        empty(),
                    )
                    .await
                {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", api_message(&e));
                        rc = 1;
                    }
                }
            }
            Ok(rc)
        }
        NetworkCmd::Connect {
            alias,
            ip,
            ip6,
            link_local_ip,
            link,
            driver_opt,
            network,
            container,
        } => {
            let mut ep = json!({"IPAMConfig": {}, "Links": if link.is_empty() { Value::Null } else { json!(link) },
                "Aliases": if alias.is_empty() { Value::Null } else { json!(alias) }, "DriverOpts": parse_kv_list(&driver_opt)});
            if ip.is_some() || ip6.is_some() || !link_local_ip.is_empty() {
                ep["IPAMConfig"] = json!({"IPv4Address": ip.unwrap_or_default(), "IPv6Address": ip6.unwrap_or_default(),
                    "LinkLocalIPs": if link_local_ip.is_empty() { Value::Null } else { json!(link_local_ip) }});
            }
            let body = json!({"Container": container, "EndpointConfig": ep});
            c.request(
                Method::POST,
                &format!("/networks/{network}/connect"),
                &Query::new(),
                &[("Content-Type", "application/json".into())],
                json_body(&body)?,
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Disconnect {
            force,
            network,
            container,
        } => {
            let body = json!({"Container": container, "Force": force});
            c.request(
                Method::POST,
                &format!("/networks/{network}/disconnect"),
                &Query::new(),
                &[("Content-Type", "application/json".into())],
                json_body(&body)?,
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Prune(a) => {
            if !a.force && !confirm("WARNING! This will remove all custom networks not used by at least one container.")? {
                return Ok(0);
            }
            let v: Value = c
                .post_json(
                    "/networks/prune",
                    &Query::new().opt("filters", filters_json(&a.filter)),
                    None,
                )
                .await?;
            if let Some(l) = v["NetworksDeleted"].as_array().filter(|l| !l.is_empty()) {
                println!("Deleted Networks:");
                l.iter()
                    .for_each(|x| println!("{}", x.as_str().unwrap_or("")));
            }
            Ok(0)
        }
    }
}
