//! `--change` instructions (`docker import -c`, `docker commit -c`) applied to an image
//! config: a small subset of the Dockerfile language.

use std::collections::HashMap;

use berth_api::models::ImageConfig;
use berth_errdefs::{Error, Result};

/// Split the argument of a JSON-or-shell-form instruction into argv.
fn json_or_shell(arg: &str, shell_wrap: bool) -> Vec<String> {
    let t = arg.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    if shell_wrap {
        vec!["/bin/sh".into(), "-c".into(), t.to_owned()]
    } else {
        t.split_whitespace().map(str::to_owned).collect()
    }
}

/// Parse `K=V K2="v 2"` (or the legacy `K V`) into pairs.
fn key_values(arg: &str, what: &str) -> Result<Vec<(String, String)>> {
    let t = arg.trim();
    let first = t.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = t
            .split_once(char::is_whitespace)
            .ok_or_else(|| Error::invalid(format!("{what} must have two arguments")))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = Vec::new();
    let mut chars = t.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            chars.next();
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (q, '\\') if q != Some('\'') => {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
                (_, c) => word.push(c),
            }
        }
        let (k, v) = word.split_once('=').ok_or_else(|| {
            Error::invalid(format!("{what}: syntax error - can't find = in \"{word}\""))
        })?;
        if k.is_empty() {
            return Err(Error::invalid(format!("{what} names can not be blank")));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Apply one change line to `cfg`.
pub fn apply_change(cfg: &mut ImageConfig, line: &str) -> Result<()> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(());
    }
    let (ins, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let arg = arg.trim();
    match ins.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(json_or_shell(arg, true)),
        "ENTRYPOINT" => cfg.entrypoint = Some(json_or_shell(arg, true)),
        "WORKDIR" => cfg.working_dir = Some(arg.to_owned()),
        "USER" => cfg.user = Some(arg.to_owned()),
        "STOPSIGNAL" => cfg.stop_signal = Some(arg.to_owned()),
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(arg, "ENV")? {
                set_env(env, &k, &v);
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(HashMap::new);
            for (k, v) in key_values(arg, "LABEL")? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(Vec::new);
            for p in arg.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_owned()
                } else {
                    format!("{p}/tcp")
                };
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(Vec::new);
            for v in json_or_shell(arg, false) {
                if !vols.contains(&v) {
                    vols.push(v);
                }
            }
        }
        "ONBUILD" => cfg
            .on_build
            .get_or_insert_with(Vec::new)
            .push(arg.to_owned()),
        other => {
            return Err(Error::invalid(format!(
                "{} is not a valid change command",
                other
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_each_kind() {
        let mut c = ImageConfig::default();
        apply_change(&mut c, r#"CMD ["/bin/sh"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT echo hi").unwrap();
        apply_change(&mut c, "ENV A=1 B=\"two words\"").unwrap();
        apply_change(&mut c, "ENV A 3").unwrap();
        apply_change(&mut c, "WORKDIR /app").unwrap();
        apply_change(&mut c, "USER nobody").unwrap();
        apply_change(&mut c, "LABEL x=y").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut c, r#"VOLUME ["/data"]"#).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), ["A=3", "B=two words"]);
        assert_eq!(c.working_dir.unwrap(), "/app");
        assert_eq!(c.user.unwrap(), "nobody");
        assert_eq!(c.labels.unwrap()["x"], "y");
        assert_eq!(c.exposed_ports.unwrap(), ["80/tcp", "53/udp"]);
        assert_eq!(c.volumes.unwrap(), ["/data"]);
    }

    #[test]
    fn rejects_unknown_instruction() {
        let mut c = ImageConfig::default();
        assert!(apply_change(&mut c, "RUN echo").is_err());
    }
}
