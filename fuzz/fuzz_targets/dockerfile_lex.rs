//! The shell-word lexer (`berth_dockerfile::Lex::process_word` / `process_words`) with
//! every option combination, and the `RUN --mount` parser (`parse_mount`), which runs
//! each value through the lexer.
//!
//! Input: one option byte (escape token and `Lex` flags), then the word.
#![no_main]

use berth_dockerfile::{parse_mount, EnvList, Lex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, rest)) = data.split_first() else {
        return;
    };
    let word = String::from_utf8_lossy(rest);
    let mut lex = Lex::new(if opts & 1 == 0 { '\\' } else { '`' });
    lex.raw_quotes = opts & 2 != 0;
    lex.raw_escapes = opts & 4 != 0;
    lex.skip_process_quotes = opts & 8 != 0;
    lex.skip_unset_env = opts & 16 != 0;
    // The environment of the conformance cases (BuildKit's envVarTest).
    let env = EnvList::from_slice(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let _ = lex.process_word(&word, &env);
    let _ = lex.process_words(&word, &env);
    if opts & 32 != 0 {
        let mut expand = |v: &str| lex.process_word(v, &env).map_err(|e| e.to_string());
        let _ = parse_mount(&word, &mut expand);
    }
});
