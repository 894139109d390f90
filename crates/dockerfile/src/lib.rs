//! Dockerfile front-end for berth's builder: the parser (BuildKit-compatible
//! node tree and dump), parser directives, heredocs, the typed instruction
//! model with build stages, and the shell-word lexer with expansion rules.

mod convert;
pub mod directives;
pub mod dump;
pub mod error;
pub mod expand;
pub mod heredoc;
pub mod instructions;
mod line_parsers;
pub mod mount;
pub mod parser;
pub mod shell;

pub use convert::{parse_instruction, parse_onbuild_trigger, parse_stages};
pub use directives::{Directive, Directives};
pub use dump::{go_quote, parse_and_dump};
pub use error::ParseError;
pub use expand::{
    expand_instruction, expand_instruction_with, is_predefined_arg, platform_args, PLATFORM_ARGS,
    PROXY_ARGS,
};
pub use heredoc::{chomp_heredoc_content, Heredoc};
pub use instructions::{
    Add, ArgDef, CommandLine, Copy, Dockerfile, Healthcheck, InlineFile, Instruction, KeyValue,
    LineRange, Run, SourceContent, Stage,
};
pub use mount::{parse_mount, Mount, MountType, ShareMode};
pub use parser::{parse, parse_bytes, Node, ParseResult};
pub use shell::{process_word, process_words, EmptyEnv, Env, EnvList, Lex, LexError};
