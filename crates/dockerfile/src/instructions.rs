//! The typed instruction model and build stages.

use std::time::Duration;

pub use crate::mount::{Mount, MountType, ShareMode};

/// First and last physical line (1-based) of an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineRange {
    pub start: usize,
    pub end: usize,
}

/// A command line of RUN/CMD/ENTRYPOINT: exec form (JSON array) or shell form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// Exec form: the array; shell form: one element, the command text
    /// (empty when no command was given).
    pub args: Vec<String>,
    /// Shell form: the stage's SHELL is prepended when run.
    pub prepend_shell: bool,
}

impl CommandLine {
    pub fn exec<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Self {
        CommandLine {
            args: args.into_iter().map(Into::into).collect(),
            prepend_shell: false,
        }
    }
    pub fn shell(cmd: impl Into<String>) -> Self {
        CommandLine {
            args: vec![cmd.into()],
            prepend_shell: true,
        }
    }
    pub fn is_exec(&self) -> bool {
        !self.prepend_shell
    }
}

/// `key=value` of ENV and LABEL; `no_delim` for the legacy `KEY value` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub no_delim: bool,
}

/// One ARG definition: `name` or `name=default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    pub key: String,
    pub value: Option<String>,
}

/// A heredoc source of COPY/ADD (content already tab-stripped for `<<-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    pub path: String,
    pub data: String,
    /// Variables in `data` are expanded (terminator was unquoted).
    pub expand: bool,
}

/// A heredoc of RUN (written to a file or fed to the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    pub chomp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Run {
    pub cmd: CommandLine,
    pub files: Vec<InlineFile>,
    /// `--mount` values as written (re-parsed after expansion).
    pub mount_specs: Vec<String>,
    pub mounts: Vec<Mount>,
    /// `default`, `none` or `host`.
    pub network: String,
    /// `sandbox` or `insecure`.
    pub security: String,
    /// Names of the flags given, sorted.
    pub flags_used: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Add {
    pub sources: Vec<String>,
    pub contents: Vec<SourceContent>,
    pub dest: String,
    pub chown: String,
    pub chmod: String,
    pub link: bool,
    pub keep_git_dir: Option<bool>,
    pub checksum: String,
    pub unpack: Option<bool>,
    pub excludes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub sources: Vec<String>,
    pub contents: Vec<SourceContent>,
    pub dest: String,
    pub from: String,
    pub chown: String,
    pub chmod: String,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
}

/// HEALTHCHECK: `NONE` or a test with timings (zero = inherit/default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        /// `["CMD", args...]` (exec form) or `["CMD-SHELL", command]`.
        test: Vec<String>,
        interval: Duration,
        timeout: Duration,
        start_period: Duration,
        start_interval: Duration,
        retries: u32,
    },
}

impl Healthcheck {
    /// The image-config `Test` array (`["NONE"]` for NONE).
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".into()],
            Healthcheck::Check { test, .. } => test.clone(),
        }
    }
}

/// One Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell(Vec<String>),
    Label(Vec<KeyValue>),
    Expose(Vec<String>),
    Env(Vec<KeyValue>),
    Add(Add),
    Copy(Copy),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDef>),
    /// The trigger text, `ONBUILD` removed (heredoc bodies appended).
    Onbuild {
        expression: String,
    },
    StopSignal(String),
    Healthcheck(Healthcheck),
    Maintainer(String),
}

impl Instruction {
    /// The upper-case keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild { .. } => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// One build stage: its FROM and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The base image or stage name as written (not expanded).
    pub base: String,
    pub platform: Option<String>,
    /// Lines of the FROM instruction.
    pub line: LineRange,
    pub instructions: Vec<(Instruction, LineRange)>,
}

/// A parsed Dockerfile split into stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: crate::directives::Directives,
    pub escape_token: char,
    /// ARGs before the first FROM.
    pub meta_args: Vec<ArgDef>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// Index of the stage named `name` (case-insensitive).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}
