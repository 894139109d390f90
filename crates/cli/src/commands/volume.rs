//! `volume create|ls|inspect|rm|prune`.

use anyhow::Result;
use http::Method;
use serde_json::{json, Value};

use crate::cli::VolumeCmd;
use crate::client::{empty, filters_json, json_body, Client, Query};
use crate::commands::{api_message, confirm};
use crate::format::{human_size, print_table, Template};
use crate::opts::parse_kv_list;

pub async fn volume(c: &Client, cmd: VolumeCmd) -> Result<i32> {
    match cmd {
        VolumeCmd::Create {
            driver,
            opt,
            label,
            name,
        } => {
            let mut body = json!({"Driver": driver});
            if let Some(n) = &name {
                body["Name"] = json!(n);
            }
            if !opt.is_empty() {
                body["DriverOpts"] = json!(parse_kv_list(&opt));
            }
            if !label.is_empty() {
                body["Labels"] = json!(parse_kv_list(&label));
            }
            let v: Value = c
                .post_json("/volumes/create", &Query::new(), Some(json_body(&body)?))
                .await?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(0)
        }
        VolumeCmd::Ls {
            quiet,
            filter,
            format,
        } => {
            let v: Value = c
                .get_json(
                    "/volumes",
                    &Query::new().opt("filters", filters_json(&filter)),
                )
                .await?;
            let mut vols = v["Volumes"].as_array().cloned().unwrap_or_default();
            vols.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
            if quiet {
                vols.iter()
                    .for_each(|x| println!("{}", x["Name"].as_str().unwrap_or("")));
                return Ok(0);
            }
            if let Some(f) = format {
                let t = Template::parse(&f)?;
                if t.table {
                    println!("{}", t.header(&[("Name", "VOLUME NAME")]));
                }
                vols.iter().for_each(|x| println!("{}", t.render(x)));
                return Ok(0);
            }
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
            for x in &vols {
                rows.push(vec![
                    x["Driver"].as_str().unwrap_or("").into(),
                    x["Name"].as_str().unwrap_or("").into(),
                ]);
            }
            print_table(&rows);
            Ok(0)
        }
        VolumeCmd::Inspect { format, names } => {
            super::inspect_each(
                c,
                &names,
                format.as_deref(),
                |n| (format!("/volumes/{n}"), Query::new()),
                |_, e| eprintln!("Error response from daemon: {}", api_message(e)),
            )
            .await
        }
        VolumeCmd::Rm { force, names } => {
            let mut rc = 0;
            for n in &names {
                match c
                    .request(
                        Method::DELETE,
                        &format!("/volumes/{n}"),
                        &Query::new().add_if(force, "force", 1),
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
        VolumeCmd::Prune(a) => {
            if !a.force && !confirm("WARNING! This will remove anonymous local volumes not used by at least one container.")? {
                return Ok(0);
            }
            let mut f = a.filter.clone();
            if a.all {
                f.push("all=true".into());
            }
            let v: Value = c
                .post_json(
                    "/volumes/prune",
                    &Query::new().opt("filters", filters_json(&f)),
                    None,
                )
                .await?;
            if let Some(l) = v["VolumesDeleted"].as_array().filter(|l| !l.is_empty()) {
                println!("Deleted Volumes:");
                l.iter()
                    .for_each(|x| println!("{}", x.as_str().unwrap_or("")));
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
            );
            Ok(0)
        }
    }
}
