//! Runs the BuildKit parser conformance cases: 33 accepted files whose dump
//! must equal `result`, 4 rejected files, and the line-range file.

mod common;

use std::fs;
use std::path::Path;

fn case_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn positive_cases_match_result() {
    let root = common::conformance_dir().join("testfiles");
    let dirs = case_dirs(&root);
    assert_eq!(dirs.len(), 33, "expected 33 positive cases");
    let mut failed = Vec::new();
    for d in &dirs {
        let want = fs::read_to_string(d.join("result")).unwrap();
        match berth_dockerfile::parse_and_dump(&d.join("Dockerfile")) {
            Ok(got) if got == want => {}
            Ok(got) => failed.push(format!("{}:\n--- want\n{want}--- got\n{got}", d.display())),
            Err(e) => failed.push(format!("{}: error {e}", d.display())),
        }
    }
    eprintln!(
        "parser positive: {} passed, {} failed",
        dirs.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn negative_cases_are_rejected() {
    let root = common::conformance_dir().join("testfiles-negative");
    let dirs = case_dirs(&root);
    assert_eq!(dirs.len(), 4, "expected 4 negative cases");
    let mut failed = Vec::new();
    for d in &dirs {
        match berth_dockerfile::parse_and_dump(&d.join("Dockerfile")) {
            Err(e) => eprintln!("{}: rejected: {e}", d.display()),
            Ok(out) => failed.push(format!("{} accepted:\n{out}", d.display())),
        }
    }
    eprintln!(
        "parser negative: {} passed, {} failed",
        dirs.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn negative_messages() {
    let root = common::conformance_dir().join("testfiles-negative");
    let err = |name: &str| {
        berth_dockerfile::parser::parse_bytes(
            &fs::read(root.join(name).join("Dockerfile")).unwrap(),
        )
        .unwrap_err()
    };
    let e = err("env_no_value");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "ENV must have two arguments")
    );
    let e = err("shykes-nested-json");
    assert_eq!(
        e.message,
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(err("empty_dockerfile").message, "file with no instructions");
    assert_eq!(err("only_comments").message, "file with no instructions");
}

#[test]
fn line_ranges() {
    let path = common::conformance_dir().join("testfile-line/Dockerfile");
    let res = berth_dockerfile::parser::parse_bytes(&fs::read(path).unwrap()).unwrap();
    assert_eq!((res.ast.start_line, res.ast.end_line), (5, 31));
    let got: Vec<(usize, usize)> = res
        .ast
        .children
        .iter()
        .map(|c| (c.start_line, c.end_line))
        .collect();
    assert_eq!(got, vec![(5, 5), (11, 12), (17, 31)]);
}
