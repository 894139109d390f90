//! The Dockerfile parser (`berth_dockerfile::parse_bytes`, `parse_stages`), the typed
//! instructions (`parse_instruction`), the ONBUILD trigger parser and the expansion the
//! builder applies to each instruction (`expand_instruction`).
#![no_main]

use berth_dockerfile::{
    expand_instruction_with, parse_bytes, parse_instruction, parse_onbuild_trigger, parse_stages,
    EnvList, Instruction, Lex,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The node tree, its dump and every node as a typed instruction.
    if let Ok(res) = parse_bytes(data) {
        let _ = res.ast.dump();
        for n in &res.ast.children {
            let _ = n.dump();
            let _ = parse_instruction(n);
        }
    }
    let src = String::from_utf8_lossy(data);
    // What the builder does: stages, then each instruction expanded with the stage's
    // environment and the build args (an environment with a few variables set).
    if let Ok(df) = parse_stages(&src) {
        let env = EnvList::from_slice(&[
            "PWD=/home",
            "SHELL=bash",
            "KOREAN=한국어",
            "NULL=",
            "TARGETPLATFORM=linux/amd64",
        ]);
        let lex = Lex::new(df.escape_token);
        let _ = df.stage_index("build");
        for st in &df.stages {
            for (ins, _) in &st.instructions {
                let _ = expand_instruction_with(ins, &env, &lex);
                if let Instruction::Onbuild { expression: expr, .. } = ins {
                    let _ = parse_onbuild_trigger(expr, df.escape_token);
                }
            }
        }
    }
    // An ONBUILD trigger as it comes back from an image config.
    if src.len() < 4096 {
        let _ = parse_onbuild_trigger(&src, '\\');
        let _ = parse_onbuild_trigger(&src, '`');
    }
});
