//! The stage graph: global (meta) ARGs, which stages a target needs, and how a
//! stage or `--from` names another stage.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use berth_dockerfile::{Dockerfile, Instruction, Lex};
use berth_errdefs::{Error, Result};

/// Values of the ARGs before the first FROM: `--build-arg` wins over the default.
/// Marks the build args it used in `consumed`.
pub fn global_args(
    df: &Dockerfile,
    build_args: &HashMap<String, Option<String>>,
    consumed: &mut BTreeSet<String>,
) -> Result<BTreeMap<String, String>> {
    let lex = Lex::new(df.escape_token);
    // BuildKit's automatic platform ARGs (TARGETPLATFORM, BUILDARCH, ...) are in the
    // global scope; berth builds for the host platform.
    let host = host_platform();
    let mut out: BTreeMap<String, String> = berth_dockerfile::platform_args(&host, &host)
        .into_iter()
        .map(|(k, v)| match build_args.get(&k).cloned().flatten() {
            Some(given) => (k, given),
            None => (k, v),
        })
        .collect();
    for a in &df.meta_args {
        let given = build_args.get(&a.key).cloned().flatten();
        if build_args.contains_key(&a.key) {
            consumed.insert(a.key.clone());
        }
        let v = match (given, &a.value) {
            (Some(v), _) => Some(v),
            (None, Some(d)) => Some(lex.process_word(d, &out).map_err(|e| Error::invalid(e.0))?),
            (None, None) => None,
        };
        if let Some(v) = v {
            out.insert(a.key.clone(), v);
        }
    }
    Ok(out)
}

/// `linux/<arch>` of this machine (the only platform berth builds for).
pub fn host_platform() -> String {
    format!("linux/{}", berth_image::config::host_arch())
}

/// The platform `FROM --platform=` asks for, expanded with the global ARGs (None
/// when not given). Only the host platform can be built.
pub fn stage_platform(
    df: &Dockerfile,
    i: usize,
    global: &BTreeMap<String, String>,
) -> Result<Option<String>> {
    let Some(p) = df.stages[i].platform.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let lex = Lex::new(df.escape_token);
    let p = lex
        .process_word(p, global)
        .map_err(|e| Error::invalid(e.0))?;
    if p.is_empty() {
        return Ok(None);
    }
    check_platform(&p).map_err(|e| Error::invalid(format!("FROM --platform={p}: {}", e.message())))?;
    Ok(Some(p))
}

/// A platform the builder can build for: the host's (`linux`, `linux/amd64`,
/// `linux/amd64/v2`, `amd64` on an amd64 host).
pub fn check_platform(p: &str) -> Result<()> {
    let norm = p.to_ascii_lowercase();
    let host = host_platform();
    let same = norm == host
        || norm.strip_prefix(&host).is_some_and(|v| v.starts_with('/'))
        || norm == berth_image::config::host_arch()
        || host.split('/').next() == Some(norm.as_str());
    if !same {
        return Err(Error::invalid(format!("berth builds for the host platform ({host}) only, not {p}")));
    }
    Ok(())
}

/// The stage `name` refers to among the stages before `before`: a stage name
/// (case-insensitive) or an index.
pub fn stage_ref(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    if let Some(i) = df.stages[..before].iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }) {
        return Some(i);
    }
    name.parse::<usize>().ok().filter(|i| *i < before)
}

/// The expanded base of stage `i` (FROM arguments see only the global ARGs).
pub fn stage_base(df: &Dockerfile, i: usize, global: &BTreeMap<String, String>) -> Result<String> {
    let lex = Lex::new(df.escape_token);
    let b = lex
        .process_word(&df.stages[i].base, global)
        .map_err(|e| Error::invalid(e.0))?;
    if b.is_empty() {
        return Err(Error::invalid(format!(
            "base name ({}) should not be blank",
            df.stages[i].base
        )));
    }
    Ok(b)
}

/// The index of the target stage (`None`: the last one).
pub fn target_index(df: &Dockerfile, target: Option<&str>) -> Result<usize> {
    if df.stages.is_empty() {
        return Err(Error::invalid("file with no instructions"));
    }
    match target.filter(|t| !t.is_empty()) {
        None => Ok(df.stages.len() - 1),
        Some(t) => df.stage_index(t).ok_or_else(|| {
            Error::invalid(format!("failed to reach build target {t} in Dockerfile"))
        }),
    }
}

/// The stages the target needs (its base chain, `COPY --from` and `RUN --mount
/// from=` sources), in Dockerfile order.
pub fn needed_stages(
    df: &Dockerfile,
    target: usize,
    global: &BTreeMap<String, String>,
) -> Result<Vec<usize>> {
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if need.insert(i) {
            todo.extend(stage_deps(df, i, global)?);
        }
    }
    Ok(need.into_iter().collect())
}

/// The earlier stages stage `i` uses directly: its FROM (by name), `COPY --from`
/// and `RUN --mount=...,from=`.
pub fn stage_deps(
    df: &Dockerfile,
    i: usize,
    global: &BTreeMap<String, String>,
) -> Result<Vec<usize>> {
    let mut deps = BTreeSet::new();
    let base = stage_base(df, i, global)?;
    if let Some(j) = stage_ref_named(df, &base, i) {
        deps.insert(j);
    }
    for (ins, _) in &df.stages[i].instructions {
        let froms: Vec<&str> = match ins {
            Instruction::Copy(c) => vec![c.from.as_str()],
            Instruction::Run(r) => r.mounts.iter().map(|m| m.from.as_str()).collect(),
            _ => Vec::new(),
        };
        for from in froms.into_iter().filter(|f| !f.is_empty()) {
            if let Some(j) = stage_ref(df, from, i) {
                deps.insert(j);
            } else if df.stage_index(from).is_some() {
                return Err(Error::invalid(format!(
                    "invalid from flag value {from}: stage {from} is not defined before it is used"
                )));
            }
        }
    }
    Ok(deps.into_iter().collect())
}

/// Whether some of `stages` (in Dockerfile order, `deps[k]` the direct
/// dependencies of `stages[k]`) could be built at the same time: false when each
/// one (transitively) uses the one before it, a single chain.
pub fn has_independent_stages(stages: &[usize], deps: &[Vec<usize>]) -> bool {
    let mut uses: HashMap<usize, BTreeSet<usize>> = HashMap::new();
    for (k, &s) in stages.iter().enumerate() {
        let mut all = BTreeSet::new();
        for d in &deps[k] {
            all.insert(*d);
            all.extend(uses.get(d).into_iter().flatten().copied());
        }
        if k > 0 && !all.contains(&stages[k - 1]) {
            return true;
        }
        uses.insert(s, all);
    }
    false
}

/// A FROM refers to an earlier stage by name only (an index would be an image tag).
pub fn stage_ref_named(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    df.stages[..before].iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::parse_stages;

    const DF: &str = "ARG BASE=busybox\nARG V\nFROM $BASE AS a\nRUN a\nFROM busybox AS b\nRUN b\nFROM a AS c\nCOPY --from=b /x /x\nFROM busybox AS d\nCOPY --from=0 /y /y\n";

    #[test]
    fn pruning_follows_bases_and_copy_from() {
        let df = parse_stages(DF).unwrap();
        let mut used = BTreeSet::new();
        let g = global_args(&df, &HashMap::new(), &mut used).unwrap();
        assert_eq!(g.get("BASE").map(String::as_str), Some("busybox"));
        assert!(!g.contains_key("V"));
        assert_eq!(
            needed_stages(&df, target_index(&df, Some("c")).unwrap(), &g).unwrap(),
            [0, 1, 2]
        );
        assert_eq!(
            needed_stages(&df, target_index(&df, None).unwrap(), &g).unwrap(),
            [0, 3]
        );
        assert_eq!(
            needed_stages(&df, target_index(&df, Some("B")).unwrap(), &g).unwrap(),
            [1]
        );
        let e = target_index(&df, Some("nope")).unwrap_err();
        assert_eq!(
            e.message(),
            "failed to reach build target nope in Dockerfile"
        );
    }

    #[test]
    fn independent_stages_are_found() {
        let df = parse_stages(DF).unwrap();
        let g = global_args(&df, &HashMap::new(), &mut BTreeSet::new()).unwrap();
        // c is FROM a and copies from b: a and b are independent.
        assert_eq!(stage_deps(&df, 2, &g).unwrap(), [0, 1]);
        assert_eq!(stage_deps(&df, 3, &g).unwrap(), [0]);
        let deps = |s: &[usize]| -> Vec<Vec<usize>> {
            s.iter().map(|i| stage_deps(&df, *i, &g).unwrap()).collect()
        };
        assert!(has_independent_stages(&[0, 1, 2], &deps(&[0, 1, 2])));
        // a chain: d uses a only
        assert!(!has_independent_stages(&[0, 3], &deps(&[0, 3])));
        assert!(!has_independent_stages(&[1], &deps(&[1])));
        let chain = parse_stages("FROM busybox AS a\nFROM a AS b\nFROM busybox\nCOPY --from=b /x /x\nCOPY --from=a /y /y\n").unwrap();
        let d: Vec<Vec<usize>> = (0..3).map(|i| stage_deps(&chain, i, &g).unwrap()).collect();
        assert!(!has_independent_stages(&[0, 1, 2], &d));
    }

    #[test]
    fn platform_args_are_global_and_from_platform_is_checked() {
        let df = parse_stages(
            "FROM --platform=$BUILDPLATFORM busybox AS a\nFROM --platform=linux/s390x-nope busybox\n",
        )
        .unwrap();
        let g = global_args(&df, &HashMap::new(), &mut BTreeSet::new()).unwrap();
        let host = host_platform();
        assert_eq!(g["TARGETPLATFORM"], host);
        assert_eq!(g["BUILDOS"], "linux");
        assert_eq!(g["TARGETARCH"], berth_image::config::host_arch());
        assert_eq!(stage_platform(&df, 0, &g).unwrap(), Some(host));
        let e = stage_platform(&df, 1, &g).unwrap_err();
        assert!(e.message().contains("host platform"), "{e:?}");
    }

    #[test]
    fn build_args_override_meta_defaults() {
        let df = parse_stages(DF).unwrap();
        let mut used = BTreeSet::new();
        let ba: HashMap<String, Option<String>> = [
            ("BASE".to_owned(), Some("alpine".to_owned())),
            ("OTHER".to_owned(), Some("1".to_owned())),
        ]
        .into();
        let g = global_args(&df, &ba, &mut used).unwrap();
        assert_eq!(stage_base(&df, 0, &g).unwrap(), "alpine");
        assert!(used.contains("BASE") && !used.contains("OTHER"));
    }
}
