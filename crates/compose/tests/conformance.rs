//! Runs every Compose file of the conformance corpus through the loader, the way
//! `compare.sh` runs `docker compose -f FILE config --format json` (in the file's
//! directory, with a clean environment), and compares with Docker Compose's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Cases that must match; raise it when the loader gets better.
const MIN_PASSING: usize = 264;

fn corpus_root() -> PathBuf {
    if let Ok(dir) = std::env::var("BERTH_CONFORMANCE_DIR") {
        return PathBuf::from(dir).join("compose");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/compose")
}

fn collect(dir: &Path, base: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, base, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}

#[test]
fn conformance() {
    let root = corpus_root();
    let corpus = root.join("corpus");
    let golden = root.join("golden");
    assert!(
        corpus.is_dir() && golden.is_dir(),
        "conformance corpus not found at {} (set BERTH_CONFORMANCE_DIR to the folder holding compose/)",
        root.display()
    );
    let corpus = std::fs::canonicalize(&corpus).expect("canonical corpus path");
    let mut cases = Vec::new();
    for top in ["e2e", "v1", "composego"] {
        collect(&corpus.join(top), &corpus, &mut cases);
    }
    cases.sort();
    let corpus_str = corpus.to_string_lossy().into_owned();
    let (mut pass, mut fail) = (0usize, 0usize);
    for case in &cases {
        let id = case.replace(['/'], "~").replace(' ', "_");
        let want_rc = std::fs::read_to_string(golden.join(format!("{id}.rc"))).unwrap_or_default();
        let file = corpus.join(case);
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            "/usr/bin:/bin:/usr/local/bin".to_string(),
        );
        env.insert("HOME".to_string(), "/nonexistent".to_string());
        env.insert(
            "COMPOSE_PROJECT_NAME".to_string(),
            "conformance".to_string(),
        );
        let opts = berth_compose::Options {
            working_dir: dir,
            files: vec![file.clone()],
            env,
            ..Default::default()
        };
        let got = berth_compose::load(&opts).and_then(|p| p.to_json());
        if want_rc.trim() != "0" {
            match got {
                Err(_) => pass += 1,
                Ok(_) => {
                    fail += 1;
                    println!("FAIL (should reject) {case}");
                }
            }
            continue;
        }
        let out = match got {
            Ok(out) => out,
            Err(e) => {
                fail += 1;
                println!("FAIL (rejected) {case}: {e}");
                continue;
            }
        };
        let want_text = std::fs::read_to_string(golden.join(format!("{id}.json")))
            .unwrap_or_default()
            .replace("@CORPUS@", &corpus_str);
        let want: serde_json::Value =
            serde_json::from_str(&want_text).unwrap_or(serde_json::Value::Null);
        let got: serde_json::Value = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
        if want == got {
            pass += 1;
        } else {
            fail += 1;
            println!("FAIL (differs) {case}");
            if std::env::var("CONFORMANCE_VERBOSE").is_ok() {
                println!(
                    "--- want\n{}\n--- got\n{}",
                    serde_json::to_string_pretty(&want).unwrap_or_default(),
                    out
                );
            }
        }
    }
    println!("conformance: {pass} passed, {fail} failed");
    assert!(
        pass >= MIN_PASSING,
        "only {pass} of {} conformance cases pass (expected >= {MIN_PASSING})",
        cases.len()
    );
}
