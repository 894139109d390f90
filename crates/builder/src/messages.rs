//! The JSON-message stream of `POST /build` (one object per message, `\r\n` after
//! each on the wire).

use serde_json::{json, Value};

/// One message of the build stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Text for the terminal (`{"stream": ...}`).
    Stream(String),
    /// `{"aux":{"ID":"sha256:..."}}`: a stage (or the build) produced this image.
    Aux(String),
    /// The build failed; `code` is the failing RUN's exit code.
    Error { code: Option<i64>, message: String },
    /// A message of a pull the build made (`status`, `progress`, `id`...), as is.
    Progress(Value),
}

impl Msg {
    pub fn to_json(&self) -> Value {
        match self {
            Msg::Stream(s) => json!({ "stream": s }),
            Msg::Progress(v) => v.clone(),
            Msg::Aux(id) => json!({ "aux": { "ID": id } }),
            Msg::Error {
                code: Some(c),
                message,
            } => {
                json!({ "errorDetail": { "code": c, "message": message }, "error": message })
            }
            Msg::Error {
                code: None,
                message,
            } => json!({ "errorDetail": { "message": message }, "error": message }),
        }
    }
}

/// The 12-hex-digit short form of an id (`sha256:` dropped).
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

pub fn step(n: usize, total: usize, text: &str) -> [Msg; 2] {
    [
        Msg::Stream(format!("Step {n}/{total} : {text}")),
        Msg::Stream("\n".into()),
    ]
}

pub fn arrow(id: &str) -> Msg {
    Msg::Stream(format!(" ---> {}\n", short_id(id)))
}

pub fn using_cache() -> Msg {
    Msg::Stream(" ---> Using cache\n".into())
}

pub fn running_in(container: &str) -> Msg {
    Msg::Stream(format!(" ---> Running in {}\n", short_id(container)))
}

pub fn removing(container: &str) -> Msg {
    Msg::Stream(format!(
        "Removing intermediate container {}\n",
        short_id(container)
    ))
}

pub fn run_failed(cmd: &[String], code: i64) -> Msg {
    Msg::Error {
        code: Some(code),
        message: format!(
            "The command '{}' returned a non-zero code: {code}",
            cmd.join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        assert_eq!(
            arrow("sha256:6b5ceae3a2651234").to_json(),
            json!({"stream": " ---> 6b5ceae3a265\n"})
        );
        let e = run_failed(&["/bin/sh".into(), "-c".into(), "exit 3".into()], 3).to_json();
        assert_eq!(
            e,
            json!({"errorDetail":{"code":3,"message":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"},
                   "error":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"})
        );
        assert_eq!(
            step(2, 5, "RUN x")[0],
            Msg::Stream("Step 2/5 : RUN x".into())
        );
        assert_eq!(
            Msg::Aux("sha256:ab".into()).to_json(),
            json!({"aux":{"ID":"sha256:ab"}})
        );
    }
}
