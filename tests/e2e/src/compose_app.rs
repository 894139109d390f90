//! The three-service application the compose tests bring up with each client: a
//! web service built from a Dockerfile (busybox httpd) with a healthcheck, a worker
//! that waits for it to be healthy and for a one-shot job, a volume, a network, a
//! published port, an env_file and a `.env`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

pub const APP: &str = r#"
services:
  web:
    build: ./web
    ports:
      - "127.0.0.1::8080"
    networks: [back]
    volumes:
      - data:/data
    env_file: web.env
  worker:
    image: busybox
    command: ["sh", "-c", "while true; do wget -q -O- http://web:8080/ > /data/last 2>/dev/null; sleep 0.3; done"]
    depends_on:
      web:
        condition: service_healthy
      job:
        condition: service_completed_successfully
    networks: [back]
    volumes:
      - data:/data
    environment:
      GREETING: ${GREETING:-hi}
  job:
    image: busybox
    command: ["sh", "-c", "echo job done"]
networks:
  back: {}
volumes:
  data: {}
"#;

pub const DOCKERFILE: &str = "FROM busybox
RUN mkdir -p /www && hostname > /dev/null && echo hello-from-web > /www/index.html
HEALTHCHECK --interval=300ms --timeout=2s --retries=10 CMD wget -q -O- http://127.0.0.1:8080/ || exit 1
CMD [\"sh\", \"-c\", \"hostname > /www/host && exec httpd -f -p 8080 -h /www\"]
";

/// The application in a new directory.
pub fn app_dir() -> PathBuf {
    crate::dir_with(
        "berth-compose-app",
        &[("compose.yaml", APP), ("web/Dockerfile", DOCKERFILE), ("web.env", "MODE=prod\n"), (".env", "GREETING=hello\n")],
    )
}

/// `GET path` on a loopback port: the body.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split("\r\n\r\n").nth(1).map(|b| b.trim().to_owned())
}

