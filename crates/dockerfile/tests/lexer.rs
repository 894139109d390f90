//! Runs BuildKit's shell lexer cases: `lex-word-cases.json` (228, ProcessWord)
//! and `lex-words-cases.json` (24, ProcessWords).

mod common;

use berth_dockerfile::shell::{EnvList, Lex};
use serde_json::Value;

fn load(name: &str) -> (char, Vec<Value>) {
    let p = common::conformance_dir().join(name);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let esc = v["escape"].as_str().unwrap().chars().next().unwrap();
    (esc, v["cases"].as_array().unwrap().clone())
}

fn env_of(c: &Value) -> EnvList {
    let items: Vec<String> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    EnvList::from_slice(&items)
}

#[test]
fn word_cases() {
    let (esc, cases) = load("lex-word-cases.json");
    assert_eq!(cases.len(), 228);
    let lex = Lex::new(esc);
    let mut failed = Vec::new();
    for c in &cases {
        let input = c["input"].as_str().unwrap();
        let got = lex.process_word(input, &env_of(c));
        let ok = if c.get("error").and_then(Value::as_bool) == Some(true) {
            got.is_err()
        } else {
            got.as_deref().ok() == c["expected"].as_str()
        };
        if !ok {
            failed.push(format!(
                "line {}: {input:?} => {got:?}, want {}",
                c["line"], c
            ));
        }
    }
    eprintln!(
        "lexer word: {} passed, {} failed",
        cases.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn words_cases() {
    let (esc, cases) = load("lex-words-cases.json");
    assert_eq!(cases.len(), 24);
    let lex = Lex::new(esc);
    let mut failed = Vec::new();
    for c in &cases {
        let input = c["input"].as_str().unwrap();
        let got = lex.process_words(input, &env_of(c));
        let ok = if c.get("error").and_then(Value::as_bool) == Some(true) {
            got.is_err()
        } else {
            let want: Vec<String> = c["expected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            got.as_ref().ok() == Some(&want)
        };
        if !ok {
            failed.push(format!(
                "line {}: {input:?} => {got:?}, want {}",
                c["line"], c
            ));
        }
    }
    eprintln!(
        "lexer words: {} passed, {} failed",
        cases.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
