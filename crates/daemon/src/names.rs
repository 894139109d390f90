//! Generated container names, `adjective_noun` as Docker makes them.

use rand::seq::IndexedRandom;

const LEFT: &[&str] = &[
    "agile", "amber", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager", "fancy",
    "gentle", "golden", "happy", "humble", "jolly", "keen", "lively", "lucid", "merry", "mighty", "nimble",
    "noble", "patient", "proud", "quick", "quiet", "rapid", "serene", "sharp", "silent", "steady", "sunny",
    "swift", "tender", "vivid", "wise", "witty", "zealous",
];

const RIGHT: &[&str] = &[
    "anchor", "beacon", "berth", "buoy", "cabin", "canal", "cargo", "compass", "coral", "current", "delta",
    "dock", "ferry", "fjord", "galley", "harbor", "hull", "island", "keel", "lagoon", "lantern", "mast",
    "mooring", "ocean", "pier", "pilot", "quay", "reef", "rudder", "sail", "schooner", "skiff", "tide",
    "voyage", "wharf",
];

/// A random name; `taken` says whether a candidate is already in use.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    for attempt in 0..100 {
        let mut n = format!("{}_{}", LEFT.choose(&mut rng).unwrap(), RIGHT.choose(&mut rng).unwrap());
        if attempt > 10 {
            n.push_str(&rand::random_range(0..1000).to_string());
        }
        if !taken(&n) {
            return n;
        }
    }
    format!("berth_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_free() {
        let n = generate(|c| c.starts_with('a'));
        assert!(valid(&n));
        assert!(!n.starts_with('a'));
        assert!(!valid("-x"));
        assert!(!valid("a"));
        assert!(valid("web-1.a_b"));
    }
}
