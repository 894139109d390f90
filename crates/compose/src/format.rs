//! Parsers for the short syntaxes and scalar formats of Compose files: volume mounts,
//! port mappings, shell command lines, durations and byte sizes.

use crate::value::{Map, Value};

/// A parsed short-syntax volume (`[source:]target[:options]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeSpec {
    /// `bind` or `volume`.
    pub kind: String,
    /// Host path or volume name.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// `ro` option.
    pub read_only: bool,
    /// Bind options: (selinux, propagation, create_host_path) when a bind section exists.
    pub bind: Option<(String, String, bool)>,
    /// Volume options: nocopy, when a volume section exists.
    pub volume: Option<bool>,
}

impl VolumeSpec {
    /// The canonical (long syntax) mapping of this volume.
    pub fn to_map(&self) -> Map {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(self.kind.as_str()));
        if !self.source.is_empty() {
            m.insert("source".into(), Value::from(self.source.as_str()));
        }
        if !self.target.is_empty() {
            m.insert("target".into(), Value::from(self.target.as_str()));
        }
        if self.read_only {
            m.insert("read_only".into(), Value::Bool(true));
        }
        if let Some((selinux, propagation, create)) = &self.bind {
            let mut b = Map::new();
            if !selinux.is_empty() {
                b.insert("selinux".into(), Value::from(selinux.as_str()));
            }
            if !propagation.is_empty() {
                b.insert("propagation".into(), Value::from(propagation.as_str()));
            }
            if *create {
                b.insert("create_host_path".into(), Value::Bool(true));
            }
            m.insert("bind".into(), Value::Map(b));
        }
        if let Some(nocopy) = self.volume {
            let mut v = Map::new();
            if nocopy {
                v.insert("nocopy".into(), Value::Bool(true));
            }
            m.insert("volume".into(), Value::Map(v));
        }
        m
    }
}

fn is_windows_drive(buffer: &[char], c: char) -> bool {
    c == ':' && buffer.len() == 1 && buffer[0].is_alphabetic()
}

fn is_file_path(source: &str) -> bool {
    let Some(first) = source.chars().next() else {
        return false;
    };
    if matches!(first, '.' | '/' | '~') {
        return true;
    }
    if source.starts_with("\\\\") {
        return true;
    }
    let mut it = source.chars();
    it.next();
    match it.next() {
        Some(second) => is_windows_drive(&[first], second),
        None => false,
    }
}

/// Parses a short-syntax volume like compose-go's `format.ParseVolume`.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, String> {
    let mut volume = VolumeSpec::default();
    let chars: Vec<char> = spec.chars().collect();
    match chars.len() {
        0 => return Err("invalid empty volume spec".to_string()),
        1 | 2 => {
            volume.target = spec.to_string();
            volume.kind = "volume".to_string();
            return Ok(volume);
        }
        _ => {}
    }
    let mut buffer: Vec<char> = Vec::new();
    let mut in_var = 0;
    let end = '\0';
    let mut all = chars.clone();
    all.push(end);
    for (i, &c) in all.iter().enumerate() {
        if c == '$' && i + 1 < chars.len() && chars[i + 1] == '{' {
            in_var += 1;
            buffer.push(c);
            continue;
        }
        if c == '}' && in_var > 0 {
            in_var -= 1;
            buffer.push(c);
            continue;
        }
        if is_windows_drive(&buffer, c) {
            buffer.push(c);
        } else if (c == ':' || c == end) && in_var == 0 {
            if let Err(e) = populate_field(c, &buffer, &mut volume) {
                populate_type(&mut volume);
                return Err(format!("invalid spec: {spec}: {e}"));
            }
            buffer.clear();
        } else {
            buffer.push(c);
        }
    }
    populate_type(&mut volume);
    Ok(volume)
}

fn populate_field(c: char, buffer: &[char], volume: &mut VolumeSpec) -> Result<(), String> {
    let s: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons".to_string());
    }
    if volume.source.is_empty() && c == '\0' {
        volume.target = s;
        return Ok(());
    }
    if volume.source.is_empty() {
        volume.source = s;
        return Ok(());
    }
    if volume.target.is_empty() {
        volume.target = s;
        return Ok(());
    }
    if c == ':' {
        return Err("too many colons".to_string());
    }
    for option in s.split(',') {
        match option {
            "ro" => volume.read_only = true,
            "rw" => volume.read_only = false,
            "nocopy" => volume.volume = Some(true),
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                let b = volume
                    .bind
                    .get_or_insert((String::new(), String::new(), false));
                b.1 = option.to_string();
            }
            "z" | "Z" => {
                let b = volume
                    .bind
                    .get_or_insert((String::new(), String::new(), false));
                b.0 = option.to_string();
            }
            _ => {}
        }
    }
    Ok(())
}

fn populate_type(volume: &mut VolumeSpec) {
    if is_file_path(&volume.source) {
        volume.kind = "bind".to_string();
        let b = volume
            .bind
            .get_or_insert((String::new(), String::new(), false));
        b.2 = true;
    } else {
        volume.kind = "volume".to_string();
        if volume.volume.is_none() {
            volume.volume = Some(false);
        }
    }
}

// ---------------------------------------------------------------------------------------
// ports

/// A port published by the short syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    /// Host IP.
    pub host_ip: String,
    /// Container port.
    pub target: u32,
    /// Host port or range, possibly empty.
    pub published: String,
    /// Lower-case protocol.
    pub protocol: String,
}

impl PortSpec {
    /// The canonical (long syntax) mapping of this port.
    pub fn to_map(&self) -> Map {
        let mut m = Map::new();
        m.insert("mode".into(), Value::from("ingress"));
        if !self.host_ip.is_empty() {
            m.insert("host_ip".into(), Value::from(self.host_ip.as_str()));
        }
        m.insert("target".into(), Value::Int(i64::from(self.target)));
        if !self.published.is_empty() {
            m.insert("published".into(), Value::from(self.published.as_str()));
        }
        m.insert("protocol".into(), Value::from(self.protocol.as_str()));
        m
    }
}

fn parse_port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("Empty string specified for ports.".to_string());
    }
    let parse = |s: &str| -> Result<u64, String> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("invalid port {s:?}"));
        }
        let v: u64 = s.parse().map_err(|_| format!("invalid port {s:?}"))?;
        if v > 65535 {
            return Err(format!("invalid port {s:?}"));
        }
        Ok(v)
    };
    if !ports.contains('-') {
        let v = parse(ports)?;
        return Ok((v, v));
    }
    let parts: Vec<&str> = ports.split('-').collect();
    let start = parse(parts[0])?;
    let end = parse(parts.get(1).copied().unwrap_or(""))?;
    if end < start {
        return Err(format!("Invalid range specified for the Port: {ports}"));
    }
    Ok((start, end))
}

fn is_valid_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Parses a short-syntax port (`[[ip:]published:]target[/proto]`), expanding ranges, like
/// compose-go's `types.ParsePortConfig` (docker/go-connections `nat.ParsePortSpecs`).
pub fn parse_port_config(value: &str) -> Result<Vec<PortSpec>, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (raw_ip, host_port) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    // SplitProtoPort
    let (proto, container_port) = {
        let pp: Vec<&str> = container.split('/').collect();
        if container.is_empty() || pp[0].is_empty() {
            ("".to_string(), "".to_string())
        } else if pp.len() == 1 {
            ("tcp".to_string(), container.to_string())
        } else if pp[1].is_empty() {
            ("tcp".to_string(), pp[0].to_string())
        } else {
            (pp[1].to_string(), pp[0].to_string())
        }
    };
    // net.SplitHostPort(rawIP + ":")
    let ip = if raw_ip.starts_with('[') {
        match raw_ip.find(']') {
            Some(end) if end == raw_ip.len() - 1 => raw_ip[1..end].to_string(),
            _ => return Err(format!("Invalid ip address {raw_ip}")),
        }
    } else {
        if raw_ip.contains(':') {
            return Err(format!("Invalid ip address {raw_ip}: too many colons"));
        }
        raw_ip.clone()
    };
    if !ip.is_empty() && !is_valid_ip(&ip) {
        return Err(format!("Invalid ip address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("No port specified: {value}<empty>"));
    }
    let (start, end) = parse_port_range(&container_port)
        .map_err(|_| format!("Invalid containerPort: {container_port}"))?;
    let (mut hstart, mut hend) = (0u64, 0u64);
    if !host_port.is_empty() {
        let (a, b) =
            parse_port_range(host_port).map_err(|_| format!("Invalid hostPort: {host_port}"))?;
        hstart = a;
        hend = b;
    }
    if !host_port.is_empty() && (end - start) != (hend.wrapping_sub(hstart)) && end != start {
        return Err(format!(
            "Invalid ranges specified for container and host Ports: {container_port} and {host_port}"
        ));
    }
    let proto_l = proto.to_ascii_lowercase();
    if !matches!(proto_l.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    let mut mappings: Vec<(String, PortSpec)> = Vec::new();
    for i in 0..=(end - start) {
        let cport = start + i;
        let mut hp = String::new();
        if !host_port.is_empty() {
            hp = (hstart + i).to_string();
        }
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        mappings.push((
            format!("{cport}/{proto_l}"),
            PortSpec {
                host_ip: ip.clone(),
                target: cport as u32,
                published: hp,
                protocol: proto_l.clone(),
            },
        ));
    }
    // compose-go sorts the exposed ports as strings ("80/tcp" < "9/tcp").
    mappings.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(mappings.into_iter().map(|(_, p)| p).collect())
}

// ---------------------------------------------------------------------------------------
// shell words

/// Splits a command line like mattn/go-shellwords' default parser (no env or backtick
/// expansion; parsing stops at an unquoted `;`, `&`, `|`, `<` or `>`).
pub fn split_shell_words(line: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum Got {
        No,
        Single,
        Quoted,
    }
    let mut args = Vec::new();
    let mut buf = String::new();
    let (mut escaped, mut double_q, mut single_q, mut back_q, mut dollar_q) =
        (false, false, false, false, false);
    let mut got = Got::No;
    for r in line.chars() {
        if escaped {
            buf.push(r);
            escaped = false;
            got = Got::Single;
            continue;
        }
        if r == '\\' {
            if single_q {
                buf.push(r);
            } else {
                escaped = true;
            }
            continue;
        }
        if matches!(r, ' ' | '\t' | '\r' | '\n') {
            if single_q || double_q || back_q || dollar_q {
                buf.push(r);
            } else if got != Got::No {
                args.push(std::mem::take(&mut buf));
                got = Got::No;
            }
            continue;
        }
        match r {
            '`' if !single_q && !double_q && !dollar_q => back_q = !back_q,
            ')' if !single_q && !double_q && !back_q => dollar_q = !dollar_q,
            '(' if !single_q && !double_q && !back_q => {
                if !dollar_q && buf.ends_with('$') {
                    dollar_q = true;
                    buf.push('(');
                    continue;
                }
                return Err("invalid command line string".to_string());
            }
            '"' if !single_q && !dollar_q => {
                if double_q {
                    got = Got::Quoted;
                }
                double_q = !double_q;
                continue;
            }
            '\'' if !double_q && !dollar_q => {
                if single_q {
                    got = Got::Quoted;
                }
                single_q = !single_q;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if !(single_q || double_q || back_q || dollar_q) => {
                if r == '>' && buf.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    got = Got::No;
                }
                break;
            }
            _ => {}
        }
        got = Got::Single;
        buf.push(r);
    }
    if got != Got::No {
        args.push(buf);
    }
    if escaped || single_q || double_q || back_q || dollar_q {
        return Err("invalid command line string".to_string());
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------
// durations

/// Parses a duration like xhit/go-str2duration (Go's `time.ParseDuration` plus `d` and
/// `w` units), returning nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let err = || format!("time: invalid duration {orig:?}");
    let mut s = s;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(err());
        }
        let mut i = 0;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let num = &s[..i];
        if num == "." {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        s = &s[i..];
        let unit_end = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit = &s[..unit_end];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let mult: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 604800e9,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
        };
        total += value * mult;
        s = &s[unit_end..];
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let v = total.round() as i64;
    Ok(if neg { -v } else { v })
}

fn fmt_frac(v: u64, prec: usize) -> (String, u64) {
    // returns the fractional digits (without trailing zeros, with leading '.') and v / 10^prec
    let mut digits = String::new();
    let mut v = v;
    let mut printed = false;
    for _ in 0..prec {
        let d = v % 10;
        printed = printed || d != 0;
        if printed {
            digits.insert(0, char::from(b'0' + d as u8));
        }
        v /= 10;
    }
    if printed {
        digits.insert(0, '.');
    }
    (digits, v)
}

/// Formats nanoseconds like Go's `time.Duration.String()` ("1m30s", "500ms", "0s").
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".to_string();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // sub-second: use smaller units
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (frac, int) = fmt_frac(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (frac, secs_total) = fmt_frac(u, 9);
        let secs = secs_total % 60;
        let mins_total = secs_total / 60;
        let mut s = format!("{secs}{frac}s");
        if mins_total > 0 {
            let mins = mins_total % 60;
            let hours = mins_total / 60;
            s = format!("{mins}m{s}");
            if hours > 0 {
                s = format!("{hours}h{s}");
            }
        }
        out.push_str(&s);
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

// ---------------------------------------------------------------------------------------
// sizes

/// Parses a size like docker/go-units `RAMInBytes` ("50M" = 50 MiB).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
    let Some(sep) = sep else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] != b' ' {
        (&s[..=sep], &s[sep + 1..])
    } else {
        (&s[..sep], &s[sep + 1..])
    };
    let size: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size: '{s}'"))?;
    if num.trim() != num || size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{sfx}'");
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_ascii_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        if b.len() > 1 {
            return Err(bad());
        }
        return Ok(size as i64);
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0f64.powi(4),
        b'p' => 1024.0f64.powi(5),
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &lower[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * mul) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v = parse_volume("./data:/data:ro").expect("parse");
        assert_eq!(v.kind, "bind");
        assert_eq!(v.source, "./data");
        assert!(v.read_only);
        assert_eq!(v.bind, Some((String::new(), String::new(), true)));
        let v = parse_volume("/data").expect("parse");
        assert_eq!(
            (v.kind.as_str(), v.target.as_str(), v.volume),
            ("volume", "/data", Some(false))
        );
        let v = parse_volume("named:/data:nocopy").expect("parse");
        assert_eq!(v.volume, Some(true));
        let v = parse_volume("${SRC:-/a}:/b").expect("parse");
        assert_eq!(v.source, "${SRC:-/a}");
        let v = parse_volume("C:\\data:/data").expect("parse");
        assert_eq!(v.source, "C:\\data");
        assert!(parse_volume(":/data").is_err());
        assert!(parse_volume("ab:cd:ef:gh").is_err());
    }

    #[test]
    fn ports() {
        let p = parse_port_config("127.0.0.1:8080:80/udp").expect("parse");
        assert_eq!(
            p,
            vec![PortSpec {
                host_ip: "127.0.0.1".into(),
                target: 80,
                published: "8080".into(),
                protocol: "udp".into()
            }]
        );
        let p = parse_port_config("3000-3001:4000-4001").expect("parse");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].published, "3001");
        let p = parse_port_config("8000-8010:80").expect("parse");
        assert_eq!(p[0].published, "8000-8010");
        let p = parse_port_config("80").expect("parse");
        assert_eq!(p[0].published, "");
        assert!(parse_port_config("abc").is_err());
        assert!(parse_port_config("80/foo").is_err());
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            split_shell_words("sh -c \"echo hi && exit 1\"").expect("parse"),
            vec!["sh", "-c", "echo hi && exit 1"]
        );
        assert_eq!(
            split_shell_words("echo 'a b' c\\ d").expect("parse"),
            vec!["echo", "a b", "c d"]
        );
        assert_eq!(
            split_shell_words("echo a; echo b").expect("parse"),
            vec!["echo", "a"]
        );
        assert_eq!(
            split_shell_words("echo ''").expect("parse"),
            vec!["echo", ""]
        );
        assert!(split_shell_words("echo \"unterminated").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000_000_000));
        assert!(parse_duration("10").is_err());
        assert_eq!(format_duration(60_000_000_000), "1m0s");
        assert_eq!(format_duration(10_000_000_000), "10s");
        assert_eq!(format_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(500_000_000), "500ms");
        assert_eq!(format_duration(1_500), "1.5µs");
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("50M"), Ok(52_428_800));
        assert_eq!(ram_in_bytes("1gb"), Ok(1_073_741_824));
        assert_eq!(ram_in_bytes("512"), Ok(512));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert!(ram_in_bytes("12x").is_err());
    }
}
