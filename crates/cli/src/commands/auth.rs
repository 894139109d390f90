//! `login`/`logout` and the credentials store (~/.berth/config.json, docker's
//! config.json `auths` layout), plus the X-Registry-Auth header value.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use crate::cli::LoginArgs;
use crate::client::{json_body, Client, Query};
use crate::opts::Reference;

pub const DEFAULT_INDEX: &str = "https://index.docker.io/v1/";

pub fn config_path() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".berth").join("config.json")
}

fn load_config() -> Value {
    std::fs::read(config_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

fn save_config(v: &Value) -> Result<()> {
    let p = config_path();
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v)?)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// Normalises a server argument to the config key ("docker.io" → the index URL).
pub fn server_key(server: Option<&str>) -> String {
    match server {
        None
        | Some("")
        | Some("docker.io")
        | Some("index.docker.io")
        | Some("registry-1.docker.io") => DEFAULT_INDEX.to_string(),
        Some(s) => {
            let s = s
                .strip_prefix("https://")
                .or_else(|| s.strip_prefix("http://"))
                .unwrap_or(s);
            s.trim_end_matches('/').to_string()
        }
    }
}

/// Stored (username, password) for a config key.
pub fn credentials(key: &str) -> Option<(String, String)> {
    let cfg = load_config();
    let auth = cfg["auths"][key]["auth"].as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// base64url(JSON) of the credentials for `image`'s registry, or "e30=" ("{}").
pub fn registry_auth_header(image: &str) -> String {
    let key = Reference::parse(image)
        .map(|r| r.auth_key())
        .unwrap_or_else(|_| DEFAULT_INDEX.into());
    match credentials(&key) {
        Some((u, p)) => encode_auth(&u, &p, &key),
        None => "e30=".to_string(),
    }
}

pub fn encode_auth(user: &str, password: &str, server: &str) -> String {
    let j = json!({"username": user, "password": password, "serveraddress": server});
    base64::engine::general_purpose::URL_SAFE.encode(j.to_string())
}

pub async fn login(c: &Client, a: LoginArgs) -> Result<i32> {
    let key = server_key(a.server.as_deref());
    let username = match a.username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim().to_string()
        }
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        eprint!("Password: ");
        let stdin = std::io::stdin();
        let raw = crate::stream::RawMode::enable();
        let mut s = String::new();
        stdin.read_line(&mut s)?;
        drop(raw);
        eprintln!();
        s.trim_end_matches(['\n', '\r']).to_string()
    };
    if username.is_empty() || password.is_empty() {
        bail!("Username and password required");
    }
    let body = json!({"username": username, "password": password, "serveraddress": key});
    let resp: Value = c
        .post_json("/auth", &Query::new(), Some(json_body(&body)?))
        .await?;
    let mut cfg = load_config();
    if !cfg["auths"].is_object() {
        cfg["auths"] = json!({});
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    cfg["auths"][&key] = json!({"auth": token});
    save_config(&cfg)?;
    println!("{}", resp["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(0)
}

pub fn logout(server: Option<String>) -> Result<i32> {
    let key = server_key(server.as_deref());
    let mut cfg = load_config();
    let removed = cfg["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(&key))
        .is_some();
    if removed {
        save_config(&cfg)?;
        println!("Removing login credentials for {}", key);
    } else {
        println!("Not logged in to {key}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_encoding() {
        let h = encode_auth("tester", "secretpw", "127.0.0.1:5001");
        let d = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        let v: Value = serde_json::from_slice(&d).unwrap();
        assert_eq!(v["username"], "tester");
        assert_eq!(v["serveraddress"], "127.0.0.1:5001");
        assert_eq!(server_key(None), DEFAULT_INDEX);
        assert_eq!(server_key(Some("http://127.0.0.1:5000/")), "127.0.0.1:5000");
    }
}
