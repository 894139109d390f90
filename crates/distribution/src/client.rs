//! A small OCI distribution client on reqwest: Docker's credentials, the Bearer token
//! dance (`WWW-Authenticate` challenge → token endpoint) and Basic auth, plain HTTP
//! only for loopback and `--insecure-registry` hosts.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use berth_errdefs::{Error, Result};
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

/// Credentials as the `X-Registry-Auth` header and `POST /auth` carry them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, alias = "identitytoken")]
    pub identitytoken: String,
    #[serde(default, alias = "registrytoken")]
    pub registrytoken: String,
    #[serde(default)]
    pub serveraddress: String,
}

impl Credentials {
    /// Decode `X-Registry-Auth`: base64url (padding optional) of a JSON object; an
    /// absent or empty header means anonymous.
    pub fn from_header(h: Option<&str>) -> Result<Credentials> {
        let Some(h) = h.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(Credentials::default());
        };
        let h = h.trim_end_matches('=');
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(h))
            .map_err(|e| Error::invalid(format!("invalid X-Registry-Auth header: {e}")))?;
        serde_json::from_slice(&raw)
            .map_err(|e| Error::invalid(format!("invalid X-Registry-Auth header: {e}")))
    }

    /// Decode `X-Registry-Config` (a build's credentials: base64 of a JSON object
    /// of credentials by registry server address; absent or `{}`: none).
    pub fn from_registry_config(
        h: Option<&str>,
    ) -> Result<std::collections::HashMap<String, Credentials>> {
        let Some(h) = h.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(Default::default());
        };
        let h = h.trim_end_matches('=');
        let bad = |e: String| Error::invalid(format!("invalid X-Registry-Config header: {e}"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(h))
            .map_err(|e| bad(e.to_string()))?;
        serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))
    }

    /// The credentials for registry `domain` among `all` (keyed by server address:
    /// `localhost:5000`, `https://localhost:5000`, or Docker Hub's
    /// `https://index.docker.io/v1/`); anonymous when none matches.
    pub fn for_domain(
        all: &std::collections::HashMap<String, Credentials>,
        domain: &str,
    ) -> Credentials {
        let host = |k: &str| {
            let k = k
                .strip_prefix("https://")
                .or_else(|| k.strip_prefix("http://"))
                .unwrap_or(k);
            match k.split('/').next().unwrap_or(k) {
                "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
                h => h.to_owned(),
            }
        };
        all.iter()
            .find(|(k, _)| host(k) == domain)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    fn has_basic(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }
}

fn api_host(host: &str) -> &str {
    if host == "docker.io" || host == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

/// Loopback hosts and `--insecure-registry` entries (host[:port] or an IPv4 CIDR): TLS
/// is tried without verification, then plain HTTP, as Docker does.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let api = api_host(host);
    let name = api.rsplit_once(':').map(|(h, _)| h).unwrap_or(api);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let loopback = name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    loopback
        || insecure
            .iter()
            .any(|i| i == host || i == api || cidr_contains(i, name))
}

/// Where a registry host's API lives when nothing is probed: Docker Hub's API host,
/// plain HTTP for insecure hosts, HTTPS otherwise.
pub fn endpoint(host: &str, insecure: &[String]) -> String {
    let scheme = if is_insecure(host, insecure) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{}", api_host(host))
}

fn cidr_contains(cidr: &str, host: &str) -> bool {
    let (Some((net, bits)), Ok(ip)) = (cidr.split_once('/'), host.parse::<std::net::Ipv4Addr>())
    else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(net) & mask)
}

/// A connection to one registry.
pub struct Registry {
    http: reqwest::Client,
    /// `scheme://host[:port]`.
    pub base: String,
    creds: Credentials,
    /// The Authorization value per scope, once obtained.
    tokens: Mutex<HashMap<String, HeaderValue>>,
}

/// The HTTP client registries are reached with (`lax`: no certificate checks, for
/// insecure registries).
fn http_client(lax: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(lax)
        .no_proxy();
    for p in go_proxies() {
        b = b.proxy(p);
    }
    b.build().map_err(|e| Error::internal(format!("http client: {e}")))
}

/// The proxies of the environment as Go's `http.ProxyFromEnvironment` (dockerd's)
/// uses them: `HTTP_PROXY` for http, `HTTPS_PROXY` for https (or their lower-case
/// names), except for the hosts `NO_PROXY` names, and never for `localhost` or a
/// loopback address (a local registry is reached directly). For a client built with
/// `no_proxy()` (which turns reqwest's own reading of the environment off).
pub fn go_proxies() -> Vec<reqwest::Proxy> {
    let var = |names: [&str; 2]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
    let mut no_proxy = String::from("localhost,127.0.0.0/8,::1");
    if let Some(extra) = var(["NO_PROXY", "no_proxy"]) {
        no_proxy = format!("{no_proxy},{extra}");
    }
    let mut out = Vec::new();
    for (https, names) in [(false, ["HTTP_PROXY", "http_proxy"]), (true, ["HTTPS_PROXY", "https_proxy"])] {
        let Some(url) = var(names) else { continue };
        let p = if https { reqwest::Proxy::https(&url) } else { reqwest::Proxy::http(&url) };
        match p {
            Ok(p) => out.push(p.no_proxy(reqwest::NoProxy::from_string(&no_proxy))),
            Err(e) => tracing::warn!(proxy = %url, "ignoring an unusable proxy setting: {e}"),
        }
    }
    out
}

/// A registry error body: `{"errors":[{"code":..,"message":..}]}` as Docker prints it.
pub fn registry_error_text(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct E {
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(Deserialize)]
    struct Es {
        errors: Vec<E>,
    }
    let es: Es = serde_json::from_slice(body).ok()?;
    let e = es.errors.first()?;
    Some(format!(
        "{}: {}",
        e.code.to_lowercase().replace('_', " "),
        e.message
    ))
}

fn parse_challenge(h: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((k, v)) = s.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_lowercase();
        let v = v.trim_start();
        let (val, rest) = if let Some(v) = v.strip_prefix('"') {
            let end = v.find('"').unwrap_or(v.len());
            (v[..end].to_owned(), &v[(end + 1).min(v.len())..])
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (v[..end].trim().to_owned(), &v[end..])
        };
        params.insert(k, val);
        s = rest.trim_start_matches(',').trim();
    }
    (scheme.to_lowercase(), params)
}

impl Registry {
    pub fn new(host: &str, creds: Credentials, insecure: &[String]) -> Result<Registry> {
        let http = http_client(false)?;
        Ok(Registry {
            http,
            base: endpoint(host, insecure),
            creds,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Connect to a registry: for insecure hosts, HTTPS without certificate checks when
    /// the host speaks TLS, else plain HTTP; verified HTTPS for all others.
    pub async fn connect(host: &str, creds: Credentials, insecure: &[String]) -> Result<Registry> {
        let mut reg = Registry::new(host, creds, insecure)?;
        if is_insecure(host, insecure) {
            let lax = http_client(true)?;
            let https = format!("https://{}", api_host(host));
            let probe = lax
                .get(format!("{https}/v2/"))
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await;
            if probe.is_ok() {
                reg.http = lax;
                reg.base = https;
            }
        }
        Ok(reg)
    }

    /// A pull-through mirror of Docker Hub at `url` (`http[s]://host[:port]`, as
    /// `--registry-mirror` takes it). No credentials are sent to it: the user's Docker
    /// Hub login is for Docker Hub. An `https` mirror that is insecure (loopback or
    /// `--insecure-registry`) is reached without certificate checks.
    pub fn mirror(url: &str, insecure: &[String]) -> Result<Registry> {
        let host = url
            .split_once("://")
            .map_or(url, |(_, h)| h)
            .trim_end_matches('/');
        Ok(Registry {
            http: http_client(url.starts_with("https://") && is_insecure(host, insecure))?,
            base: url.trim_end_matches('/').to_owned(),
            creds: Credentials::default(),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// GET a blob from a URL outside the registry (a foreign layer's `urls`): plain
    /// http(s) only, with no registry credentials, certificates verified.
    pub async fn get_external(&self, url: &str) -> Result<Response> {
        let u = reqwest::Url::parse(url)
            .map_err(|e| Error::invalid(format!("invalid url {url}: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Error::invalid(format!("unsupported url scheme in {url}")));
        }
        http_client(false)?
            .get(u)
            .send()
            .await
            .map_err(|e| self.transport_err(&Method::GET, url, e))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport_err(&self, method: &Method, url: &str, e: reqwest::Error) -> Error {
        let mut msg = format!("{} \"{url}\": {e}", titled(method));
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        Error::internal(msg)
    }

    /// Send a request (built afresh for each attempt), authenticating for `scope`
    /// (`repository:name:pull,push`) when the registry challenges.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        let cached = self.tokens.lock().expect("tokens").get(scope).cloned();
        let mut rb = build(self.http.request(method.clone(), url));
        if let Some(t) = &cached {
            rb = rb.header(AUTHORIZATION, t.clone());
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| self.transport_err(&method, url, e))?;
        if resp.status() != StatusCode::UNAUTHORIZED || cached.is_some() {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let auth = self.authorize(&method, url, &challenge, scope).await?;
        self.tokens
            .lock()
            .expect("tokens")
            .insert(scope.to_owned(), auth.clone());
        let rb = build(self.http.request(method.clone(), url)).header(AUTHORIZATION, auth);
        rb.send()
            .await
            .map_err(|e| self.transport_err(&method, url, e))
    }

    fn basic(&self) -> HeaderValue {
        let raw = format!("{}:{}", self.creds.username, self.creds.password);
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        HeaderValue::from_str(&v).expect("base64 is a valid header")
    }

    async fn authorize(
        &self,
        method: &Method,
        url: &str,
        challenge: &str,
        scope: &str,
    ) -> Result<HeaderValue> {
        let (scheme, params) = parse_challenge(challenge);
        match scheme.as_str() {
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| Error::internal("bearer challenge without realm"))?;
                let mut q: Vec<(&str, String)> = Vec::new();
                if let Some(s) = params.get("service") {
                    q.push(("service", s.clone()));
                }
                if !scope.is_empty() {
                    for s in scope.split(' ') {
                        q.push(("scope", s.to_owned()));
                    }
                } else if let Some(s) = params.get("scope") {
                    q.push(("scope", s.clone()));
                }
                let mut rb = self.http.get(realm).query(&q);
                if !self.creds.registrytoken.is_empty() {
                    return HeaderValue::from_str(&format!("Bearer {}", self.creds.registrytoken))
                        .map_err(|e| Error::invalid(e.to_string()));
                }
                if self.creds.has_basic() {
                    rb = rb.header(AUTHORIZATION, self.basic());
                }
                let resp = rb
                    .send()
                    .await
                    .map_err(|e| self.transport_err(&Method::GET, realm, e))?;
                if !resp.status().is_success() {
                    return Err(Error::internal(format!(
                        "{} \"{url}\": unauthorized: authentication required",
                        titled(method)
                    )));
                }
                #[derive(Deserialize)]
                struct Tok {
                    #[serde(default)]
                    token: String,
                    #[serde(default)]
                    access_token: String,
                }
                let t: Tok = resp
                    .json()
                    .await
                    .map_err(|e| Error::internal(format!("token response: {e}")))?;
                let t = if t.token.is_empty() {
                    t.access_token
                } else {
                    t.token
                };
                HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|e| Error::internal(e.to_string()))
            }
            "basic" if self.creds.has_basic() => Ok(self.basic()),
            "basic" => Err(Error::internal(format!(
                "{} \"{url}\": no basic auth credentials",
                titled(method)
            ))),
            _ => Err(Error::internal(format!(
                "{} \"{url}\": unauthorized",
                titled(method)
            ))),
        }
    }

    /// Check credentials against `/v2/` (what `docker login` does).
    pub async fn login(&self) -> Result<()> {
        let url = self.url("/v2/");
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_err(&Method::GET, &url, e))?;
        if resp.status().is_success() {
            return Ok(());
        }
        let fail = |st: StatusCode| {
            Error::internal(format!(
                "login attempt to {url} failed with status: {} {}",
                st.as_u16(),
                st.canonical_reason().unwrap_or("")
            ))
        };
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Err(fail(resp.status()));
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (scheme, _) = parse_challenge(&challenge);
        let auth = match scheme.as_str() {
            "basic" => self.basic(),
            _ => self
                .authorize(&Method::GET, &url, &challenge, "")
                .await
                .map_err(|_| fail(StatusCode::UNAUTHORIZED))?,
        };
        let resp = self
            .http
            .get(&url)
            .header(AUTHORIZATION, auth)
            .send()
            .await
            .map_err(|e| self.transport_err(&Method::GET, &url, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(fail(resp.status()))
        }
    }
}

fn titled(m: &Method) -> String {
    let s = m.as_str();
    format!("{}{}", &s[..1], s[1..].to_lowercase())
}

/// Turn a non-success response into an error with Docker's wording.
pub async fn status_error(resp: Response, what: &str) -> Error {
    let st = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let detail = registry_error_text(&body).unwrap_or_else(|| {
        format!(
            "unexpected status {} {}",
            st.as_u16(),
            st.canonical_reason().unwrap_or("")
        )
    });
    let msg = format!("{what}: {detail}");
    match st {
        StatusCode::NOT_FOUND => Error::not_found(msg),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::internal(msg),
        _ => Error::internal(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_docker_auth_header() {
        let h = "eyJ1c2VybmFtZSI6InRlc3RlciIsInBhc3N3b3JkIjoic2VjcmV0cHciLCJzZXJ2ZXJhZGRyZXNzIjoiMTI3LjAuMC4xOjUwMDEifQ==";
        let c = Credentials::from_header(Some(h)).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("tester", "secretpw")
        );
        assert_eq!(
            Credentials::from_header(Some("e30=")).unwrap(),
            Credentials::default()
        );
        assert_eq!(
            Credentials::from_header(None).unwrap(),
            Credentials::default()
        );
    }

    #[test]
    fn scheme_by_host() {
        assert_eq!(endpoint("127.0.0.1:5000", &[]), "http://127.0.0.1:5000");
        assert_eq!(endpoint("localhost:5000", &[]), "http://localhost:5000");
        assert_eq!(endpoint("docker.io", &[]), "https://registry-1.docker.io");
        assert_eq!(
            endpoint("reg.example:5000", &[]),
            "https://reg.example:5000"
        );
        assert_eq!(
            endpoint("reg.example:5000", &["reg.example:5000".into()]),
            "http://reg.example:5000"
        );
        assert_eq!(
            endpoint("10.1.2.3:5000", &["10.0.0.0/8".into()]),
            "http://10.1.2.3:5000"
        );
    }

    #[test]
    fn challenge_parsing() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="http://a/token",service="reg",scope="repository:x:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "http://a/token");
        assert_eq!(p["scope"], "repository:x:pull");
        assert_eq!(
            registry_error_text(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
            )
            .unwrap(),
            "manifest unknown: manifest unknown"
        );
    }

    /// A one-thread fake registry: `/v2/` wants a Bearer token from `/token`, which
    /// wants Basic `u:p`.
    fn fake_token_registry() -> String {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let a2 = addr.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_lowercase().strip_prefix("authorization: ") {
                        auth = v.trim().to_owned();
                    }
                }
                let basic = format!(
                    "basic {}",
                    base64::engine::general_purpose::STANDARD.encode("u:p")
                )
                .to_lowercase();
                let (status, extra, body) = if line.starts_with("GET /token") {
                    if auth == basic {
                        ("200 OK", String::new(), r#"{"token":"tok"}"#.to_owned())
                    } else {
                        ("401 Unauthorized", String::new(), String::new())
                    }
                } else if auth == "bearer tok" {
                    ("200 OK", String::new(), "{}".to_owned())
                } else {
                    (
                        "401 Unauthorized",
                        format!("WWW-Authenticate: Bearer realm=\"http://{a2}/token\",service=\"reg\"\r\n"),
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_owned(),
                    )
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn bearer_token_flow() {
        let addr = fake_token_registry();
        let good = Credentials {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        Registry::new(&addr, good.clone(), &[])
            .unwrap()
            .login()
            .await
            .unwrap();
        let bad = Credentials {
            username: "u".into(),
            password: "x".into(),
            ..Default::default()
        };
        let e = Registry::new(&addr, bad, &[])
            .unwrap()
            .login()
            .await
            .unwrap_err();
        assert_eq!(
            e.message(),
            format!("login attempt to http://{addr}/v2/ failed with status: 401 Unauthorized")
        );
        // Requests retry once with the token, which is then reused for the scope.
        let reg = Registry::new(&addr, good, &[]).unwrap();
        let url = reg.url("/v2/x/manifests/1");
        let r = reg
            .send(Method::GET, &url, "repository:x:pull", &|rb| rb)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = reg
            .send(Method::GET, &url, "repository:x:pull", &|rb| rb)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let anon = Registry::new(&addr, Credentials::default(), &[]).unwrap();
        let e = anon
            .send(Method::GET, &url, "repository:x:pull", &|rb| rb)
            .await
            .unwrap_err();
        assert!(e.message().contains("unauthorized"), "{e}");
    }
}
