//! Smaller seccomp programs: libseccomp's, laid out again as a search over ranges.
//!
//! libseccomp compiles a profile to one comparison per syscall number (a binary tree
//! of them at optimize level 2): Docker's default profile on x86-64, with its three
//! ABIs, is 1237 instructions. The kernel translates and JIT-compiles the whole
//! program at every load — once per container and once per exec, ~0.35 ms of CPU
//! here — while most of its leaves say the same thing: syscall numbers come in long
//! runs with one decision (allowed, or the default errno).
//!
//! [`compact`] reads libseccomp's program as a function of the architecture and the
//! syscall number by running it ([`run`], a classic-BPF interpreter): the program's
//! path can only change where it compares one of the two with a constant, so running
//! it at every such boundary gives its decision for all 2^32 values of each. It then
//! emits a binary search over the architectures' ranges and, for each architecture,
//! over the ranges of syscall numbers with one decision (each decision written once,
//! after the comparisons that jump to it, where they reach); a syscall whose decision
//! depends on its arguments jumps to a second program, libseccomp's own from only the
//! profile's rules with arguments (see `seccomp::compile`). The result is checked
//! against the original at every boundary of either program, with arguments at every
//! boundary of the comparisons made on them; on any difference, or an instruction the
//! reading does not model (arithmetic or a bit test on the number, the instruction
//! pointer, a jump out of the program), the original program is used.

use std::collections::{BTreeMap, BTreeSet};

/// One classic-BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const JA: u16 = 0x05;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// `struct seccomp_data` offsets.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;
const DATA_LEN: u32 = 64;

pub fn parse(bytes: &[u8]) -> Option<Vec<Insn>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

pub fn to_bytes(prog: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend(i.code.to_le_bytes());
        out.extend([i.jt, i.jf]);
        out.extend(i.k.to_le_bytes());
    }
    out
}

/// What a register holds, as far as the reading goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Nr,
    Arch,
    /// A 32-bit half of an argument (offset in `seccomp_data`), possibly computed on.
    Arg(u32),
    Other,
}

/// The input of one run: syscall number, architecture, the six arguments.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// One run's decision, whether it read an argument, and the constants the input's
/// parts were compared with on the way.
#[derive(Debug, Default)]
pub struct Run {
    pub ret: u32,
    pub read_args: bool,
    consts: Vec<(Src, u32)>,
}

/// Run `prog` on `input` (the kernel's classic-BPF semantics for seccomp). None for
/// anything the reading does not model (see the module's doc).
pub fn run(prog: &[Insn], input: &Input) -> Option<Run> {
    let load = |off: u32| -> Option<(u32, Src)> {
        match off {
            NR => Some((input.nr, Src::Nr)),
            ARCH => Some((input.arch, Src::Arch)),
            o if (ARGS..DATA_LEN).contains(&o) && o.is_multiple_of(4) => {
                let a = input.args[((o - ARGS) / 8) as usize];
                Some((if (o - ARGS).is_multiple_of(8) { a as u32 } else { (a >> 32) as u32 }, Src::Arg(o)))
            }
            // The instruction pointer, or out of bounds.
            _ => None,
        }
    };
    let (mut a, mut x) = ((0u32, Src::Other), (0u32, Src::Other));
    let mut mem = [(0u32, Src::Other); 16];
    let mut out = Run::default();
    let mut pc = 0usize;
    loop {
        let i = prog.get(pc)?;
        pc += 1;
        let k = i.k;
        match i.code & 0x07 {
            // LD
            0x00 => {
                a = match i.code {
                    0x20 => {
                        let v = load(k)?;
                        out.read_args |= matches!(v.1, Src::Arg(_));
                        v
                    }
                    0x00 => (k, Src::Other),
                    0x60 => *mem.get(k as usize)?,
                    0x80 => (DATA_LEN, Src::Other),
                    _ => return None,
                }
            }
            // LDX
            0x01 => {
                x = match i.code {
                    0x01 => (k, Src::Other),
                    0x61 => *mem.get(k as usize)?,
                    0x81 => (DATA_LEN, Src::Other),
                    _ => return None,
                }
            }
            0x02 => *mem.get_mut(k as usize)? = a,
            0x03 => *mem.get_mut(k as usize)? = x,
            // ALU: only on what is neither the number nor the architecture.
            0x04 => {
                let (src, s_src) = if i.code & 0x08 != 0 { x } else { (k, Src::Other) };
                if matches!(a.1, Src::Nr | Src::Arch) || matches!(s_src, Src::Nr | Src::Arch) {
                    return None;
                }
                let v = a.0;
                a.0 = match i.code & 0xf0 {
                    0x00 => v.wrapping_add(src),
                    0x10 => v.wrapping_sub(src),
                    0x20 => v.wrapping_mul(src),
                    0x30 => v.checked_div(src)?,
                    0x40 => v | src,
                    0x50 => v & src,
                    0x60 => v.checked_shl(src).unwrap_or(0),
                    0x70 => v.checked_shr(src).unwrap_or(0),
                    0x80 => v.wrapping_neg(),
                    0x90 => v.checked_rem(src)?,
                    0xa0 => v ^ src,
                    _ => return None,
                };
            }
            // JMP
            0x05 => {
                if i.code == JA {
                    pc = pc.checked_add(k as usize)?;
                    continue;
                }
                let by_x = i.code & 0x08 != 0;
                if by_x && (matches!(a.1, Src::Nr | Src::Arch) || matches!(x.1, Src::Nr | Src::Arch)) {
                    return None;
                }
                let src = if by_x { x.0 } else { k };
                let taken = match i.code & 0xf0 {
                    0x10 => a.0 == src,
                    0x20 => a.0 > src,
                    0x30 => a.0 >= src,
                    0x40 => {
                        if matches!(a.1, Src::Nr | Src::Arch) {
                            return None;
                        }
                        a.0 & src != 0
                    }
                    _ => return None,
                };
                if !by_x && a.1 != Src::Other {
                    out.consts.push((a.1, k));
                }
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            // RET
            0x06 => {
                out.ret = match i.code {
                    RET_K => k,
                    0x16 if a.1 == Src::Other => a.0,
                    _ => return None,
                };
                return Some(out);
            }
            // MISC: TAX, TXA
            0x07 => match i.code {
                0x07 => x = a,
                0x87 => a = x,
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// The starts of the ranges over which a program's path cannot change, from the
/// constants a value was compared with (a comparison with k can only change at k and
/// k + 1).
fn starts(consts: &BTreeSet<u32>) -> BTreeSet<u32> {
    let mut s = BTreeSet::from([0]);
    for &k in consts {
        s.insert(k);
        if let Some(n) = k.checked_add(1) {
            s.insert(n);
        }
    }
    s
}

/// The constants the architecture, the number and each argument half are compared
/// with.
#[derive(Default)]
struct Consts {
    arch: BTreeSet<u32>,
    nr: BTreeSet<u32>,
    args: BTreeMap<u32, BTreeSet<u32>>,
}

impl Consts {
    fn record(&mut self, r: &Run) {
        for &(src, k) in &r.consts {
            match src {
                Src::Arch => self.arch.insert(k),
                Src::Nr => self.nr.insert(k),
                Src::Arg(o) => self.args.entry(o).or_default().insert(k),
                Src::Other => false,
            };
        }
    }

    fn len(&self) -> usize {
        self.arch.len() + self.nr.len() + self.args.values().map(BTreeSet::len).sum::<usize>()
    }
}

/// Every constant `progs` compare the architecture, the number and each argument half
/// with: run at every boundary found so far until no run finds another (each run
/// reveals the comparisons on its path). None if a run was not modelled.
fn explore(progs: &[&[Insn]]) -> Option<Consts> {
    let mut c = Consts::default();
    let mut done = std::collections::HashSet::new();
    let mut reading = Vec::new();
    loop {
        let before = c.len();
        // Every architecture and number boundary, with the arguments at zero...
        let nrs = starts(&c.nr);
        for arch in starts(&c.arch) {
            for &nr in &nrs {
                if !done.insert((arch, nr)) {
                    continue;
                }
                let mut reads = false;
                for p in progs {
                    let r = run(p, &Input { nr, arch, args: [0; 6] })?;
                    c.record(&r);
                    reads |= r.read_args;
                }
                if reads {
                    reading.push((arch, nr));
                }
            }
        }
        // ...and, for the syscalls that compare arguments, at their boundaries.
        for args in arg_vectors(&c.args) {
            for &(arch, nr) in &reading {
                for p in progs {
                    c.record(&run(p, &Input { nr, arch, args })?);
                }
            }
        }
        if c.len() == before {
            return Some(c);
        }
    }
}

/// Argument vectors for checking decisions that read arguments: all zero, and each
/// argument half at each constant compared with it, one below and one above.
fn arg_vectors(arg_c: &BTreeMap<u32, BTreeSet<u32>>) -> Vec<[u64; 6]> {
    let mut v = vec![[0u64; 6]];
    for (&off, ks) in arg_c {
        let (i, hi) = (((off - ARGS) / 8) as usize, !(off - ARGS).is_multiple_of(8));
        for &k in ks {
            for val in [k.wrapping_sub(1), k, k.wrapping_add(1), u32::MAX] {
                let mut a = [0u64; 6];
                a[i] = if hi { u64::from(val) << 32 } else { u64::from(val) };
                v.push(a);
            }
        }
    }
    v
}

/// A leaf of a search: a decision, or a jump to a labelled block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Ret(u32),
    Goto(usize),
}

/// An instruction whose jump target is a block, resolved at layout.
#[derive(Debug, Clone, Copy)]
enum Emit {
    Insn(Insn),
    Goto(usize),
}

/// A binary search on the value loaded in A over `ranges` (start, leaf), the first
/// starting at 0. Conditional jumps reach 255 instructions at most: a subtree further
/// away is reached through an unconditional jump.
fn search(ranges: &[(u32, Leaf)]) -> Vec<Emit> {
    if ranges.len() == 1 {
        return vec![leaf_emit(ranges[0].1)];
    }
    let mid = ranges.len() / 2;
    let (left, right) = (search(&ranges[..mid]), search(&ranges[mid..]));
    let k = ranges[mid].0;
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        Ok(jt) => out.push(Emit::Insn(Insn { code: JGE_K, jt, jf: 0, k })),
        Err(_) => {
            out.push(Emit::Insn(Insn { code: JGE_K, jt: 0, jf: 1, k }));
            out.push(Emit::Insn(Insn { code: JA, jt: 0, jf: 0, k: left.len() as u32 }));
        }
    }
    out.extend(left);
    out.extend(right);
    out
}

/// [`search`] with each distinct leaf emitted once, after the comparisons, which jump
/// to it: about one instruction per range instead of two. None when a comparison
/// would be more than 255 instructions from what it jumps to (then [`search`]).
fn search_shared(ranges: &[(u32, Leaf)]) -> Option<Vec<Emit>> {
    #[derive(Clone, Copy)]
    enum Child {
        Node(usize),
        Leaf(usize),
    }
    struct Tree {
        leaves: Vec<Leaf>,
        // (constant, child when below it, child when at or above it), in preorder.
        nodes: Vec<(u32, Child, Child)>,
    }
    fn build(t: &mut Tree, ranges: &[(u32, Leaf)]) -> Child {
        if let [(_, leaf)] = ranges {
            let i = t.leaves.iter().position(|l| l == leaf).unwrap_or_else(|| {
                t.leaves.push(*leaf);
                t.leaves.len() - 1
            });
            return Child::Leaf(i);
        }
        let mid = ranges.len() / 2;
        let at = t.nodes.len();
        t.nodes.push((ranges[mid].0, Child::Leaf(0), Child::Leaf(0)));
        let below = build(t, &ranges[..mid]);
        let above = build(t, &ranges[mid..]);
        t.nodes[at] = (ranges[mid].0, below, above);
        Child::Node(at)
    }
    let mut t = Tree { leaves: Vec::new(), nodes: Vec::new() };
    if let Child::Leaf(i) = build(&mut t, ranges) {
        return Some(vec![leaf_emit(t.leaves[i])]);
    }
    let n = t.nodes.len();
    let offset = |from: usize, to: Child| -> Option<u8> {
        let target = match to {
            Child::Node(j) => j,
            Child::Leaf(i) => n + i,
        };
        u8::try_from(target.checked_sub(from + 1)?).ok()
    };
    let mut out = Vec::with_capacity(n + t.leaves.len());
    for (at, &(k, below, above)) in t.nodes.iter().enumerate() {
        out.push(Emit::Insn(Insn { code: JGE_K, jt: offset(at, above)?, jf: offset(at, below)?, k }));
    }
    out.extend(t.leaves.iter().map(|l| leaf_emit(*l)));
    Some(out)
}

fn leaf_emit(l: Leaf) -> Emit {
    match l {
        Leaf::Ret(k) => Emit::Insn(Insn { code: RET_K, jt: 0, jf: 0, k }),
        Leaf::Goto(b) => Emit::Goto(b),
    }
}

/// Merge neighbouring ranges with one leaf.
fn merged(ranges: impl IntoIterator<Item = (u32, Leaf)>) -> Vec<(u32, Leaf)> {
    let mut out: Vec<(u32, Leaf)> = Vec::new();
    for (s, l) in ranges {
        if out.last().is_none_or(|p| p.1 != l) {
            out.push((s, l));
        }
    }
    out
}

/// The program `full` compiled again as range searches (see the module's doc), with
/// `args_part` — libseccomp's program of only the rules that read arguments — for the
/// syscalls whose decision reads them. None when that is not smaller, not modelled,
/// or not the same decision everywhere it was checked.
pub fn compact(full: &[Insn], args_part: Option<&[Insn]>) -> Option<Vec<Insn>> {
    let c = explore(&[full])?;
    const ARGS_BLOCK: usize = usize::MAX;
    // Per architecture range: its decision for every range of numbers.
    let mut sections: Vec<Vec<(u32, Leaf)>> = Vec::new();
    let mut arch_ranges = Vec::new();
    let nrs = starts(&c.nr);
    for arch in starts(&c.arch) {
        let mut nr_ranges = Vec::new();
        for &nr in &nrs {
            let r = run(full, &Input { nr, arch, args: [0; 6] })?;
            let leaf = if r.read_args { Leaf::Goto(ARGS_BLOCK) } else { Leaf::Ret(r.ret) };
            if leaf == Leaf::Goto(ARGS_BLOCK) && args_part.is_none() {
                return None;
            }
            nr_ranges.push((nr, leaf));
        }
        let nr_ranges = merged(nr_ranges);
        let leaf = match nr_ranges.as_slice() {
            [(_, Leaf::Ret(k))] => Leaf::Ret(*k),
            _ => {
                // An architecture range with the same decisions as one before shares its block.
                let b = sections.iter().position(|s| *s == nr_ranges).unwrap_or_else(|| {
                    sections.push(nr_ranges);
                    sections.len() - 1
                });
                Leaf::Goto(b)
            }
        };
        arch_ranges.push((arch, leaf));
    }
    // Blocks: the architecture search, each section (loads the number, searches it),
    // then the argument program.
    let mut blocks: Vec<Vec<Emit>> = Vec::new();
    let mut head = vec![Emit::Insn(Insn { code: LD_W_ABS, jt: 0, jf: 0, k: ARCH })];
    let arch_ranges = merged(arch_ranges);
    head.extend(search_shared(&arch_ranges).unwrap_or_else(|| search(&arch_ranges)));
    blocks.push(head);
    for s in &sections {
        let mut b = vec![Emit::Insn(Insn { code: LD_W_ABS, jt: 0, jf: 0, k: NR })];
        b.extend(search_shared(s).unwrap_or_else(|| search(s)));
        blocks.push(b);
    }
    let args_at = blocks.len();
    if let Some(p) = args_part {
        blocks.push(p.iter().copied().map(Emit::Insn).collect());
    }
    let mut starts_at = Vec::with_capacity(blocks.len());
    let mut pos = 0;
    for b in &blocks {
        starts_at.push(pos);
        pos += b.len();
    }
    let mut prog = Vec::with_capacity(pos);
    for b in &blocks {
        for e in b {
            prog.push(match *e {
                Emit::Insn(i) => i,
                Emit::Goto(t) => {
                    let target = if t == ARGS_BLOCK { starts_at[args_at] } else { starts_at[t + 1] };
                    Insn { code: JA, jt: 0, jf: 0, k: u32::try_from(target.checked_sub(prog.len() + 1)?).ok()? }
                }
            });
        }
    }
    if prog.len() >= full.len() || !same_decisions(full, &prog, args_part) {
        return None;
    }
    Some(prog)
}

/// Whether `a` and `b` decide alike at every boundary either one (or the argument
/// program) compares the architecture, the number or an argument with.
fn same_decisions(a: &[Insn], b: &[Insn], args_part: Option<&[Insn]>) -> bool {
    let mut progs = vec![a, b];
    progs.extend(args_part);
    let Some(c) = explore(&progs) else { return false };
    let vectors = arg_vectors(&c.args);
    let nrs: Vec<u32> = starts(&c.nr).into_iter().chain([u32::MAX]).collect();
    for arch in starts(&c.arch).into_iter().chain([u32::MAX]) {
        for &nr in &nrs {
            for (n, &args) in vectors.iter().enumerate() {
                let input = Input { nr, arch, args };
                let (x, y) = match (run(a, &input), run(b, &input)) {
                    (Some(x), Some(y)) => (x, y),
                    _ => return false,
                };
                if x.ret != y.ret {
                    return false;
                }
                // Other arguments only where a decision reads them.
                if n == 0 && !x.read_args && !y.read_args {
                    break;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const JEQ_K: u16 = 0x15;
    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const KILL: u32 = 0;
    const X86_64: u32 = 0xc000_003e;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// A libseccomp-like program: x86-64 only, a chain of single numbers (0..=99
    /// allowed but 50), personality (135) allowed for arg0 == 0 only.
    fn chain() -> Vec<Insn> {
        let mut p = vec![i(LD_W_ABS, 0, 0, ARCH), i(JEQ_K, 1, 0, X86_64), i(RET_K, 0, 0, KILL), i(LD_W_ABS, 0, 0, NR)];
        let allowed: Vec<u32> = (0..100).filter(|n| *n != 50).collect();
        let n = allowed.len();
        for (j, nr) in allowed.iter().enumerate() {
            // Jump to the allow at the end of the chain.
            p.push(i(JEQ_K, (n - j + 2) as u8, 0, *nr));
        }
        p.push(i(JEQ_K, 0, 1, 135));
        p.push(i(JA, 0, 0, 2));
        p.push(i(RET_K, 0, 0, EPERM));
        p.push(i(RET_K, 0, 0, ALLOW));
        p.extend(personality());
        p
    }

    /// personality's rule: allowed when arg0's low and high words are both 0.
    fn personality() -> [Insn; 6] {
        [
            i(LD_W_ABS, 0, 0, ARGS + 4),
            i(JEQ_K, 0, 3, 0),
            i(LD_W_ABS, 0, 0, ARGS),
            i(JEQ_K, 0, 1, 0),
            i(RET_K, 0, 0, ALLOW),
            i(RET_K, 0, 0, EPERM),
        ]
    }

    fn args_only() -> Vec<Insn> {
        let mut p = vec![
            i(LD_W_ABS, 0, 0, ARCH),
            i(JEQ_K, 1, 0, X86_64),
            i(RET_K, 0, 0, KILL),
            i(LD_W_ABS, 0, 0, NR),
            i(JEQ_K, 1, 0, 135),
            i(RET_K, 0, 0, EPERM),
        ];
        p.extend(personality());
        p
    }

    fn decide(p: &[Insn], arch: u32, nr: u32, arg0: u64) -> u32 {
        run(p, &Input { nr, arch, args: [arg0, 0, 0, 0, 0, 0] }).unwrap().ret
    }

    #[test]
    fn the_compact_program_decides_as_the_original_everywhere() {
        let full = chain();
        let args = args_only();
        let c = compact(&full, Some(&args)).expect("compacted");
        assert!(c.len() < full.len() / 3, "{} of {} instructions", c.len(), full.len());
        for arch in [X86_64, 0x4000_0003, 0, u32::MAX] {
            for nr in (0..300).chain([0x4000_0000, u32::MAX]) {
                for arg0 in [0, 1, 1 << 32, u64::MAX] {
                    assert_eq!(decide(&c, arch, nr, arg0), decide(&full, arch, nr, arg0), "arch {arch:#x} nr {nr} arg {arg0:#x}");
                }
            }
        }
        assert_eq!(decide(&c, X86_64, 50, 0), EPERM);
        assert_eq!(decide(&c, X86_64, 135, 0), ALLOW);
        assert_eq!(decide(&c, X86_64, 135, 1 << 32), EPERM);
        assert_eq!(decide(&c, 0x4000_0003, 1, 0), KILL);
    }

    #[test]
    fn bytes_round_trip() {
        let p = chain();
        assert_eq!(parse(&to_bytes(&p)).unwrap(), p);
        assert!(parse(&[0; 7]).is_none());
    }

    /// A program whose argument-reading syscall has no argument program to go to, one
    /// that tests bits of the number, and an argument program that decides otherwise
    /// are all left as they are.
    #[test]
    fn what_cannot_be_shown_the_same_is_left_alone() {
        assert!(compact(&chain(), None).is_none());
        let mut bits = chain();
        bits[4] = i(0x45, 0, 0, 0x4000_0000);
        assert!(compact(&bits, Some(&args_only())).is_none());
        let mut other = args_only();
        other[10] = i(RET_K, 0, 0, EPERM);
        assert!(compact(&chain(), Some(&other)).is_none());
    }

    fn assembled(emits: Vec<Emit>) -> Vec<Insn> {
        let mut p = vec![i(LD_W_ABS, 0, 0, NR)];
        p.extend(emits.into_iter().map(|e| match e {
            Emit::Insn(x) => x,
            Emit::Goto(_) => unreachable!(),
        }));
        p
    }

    /// With each decision emitted once after the comparisons, a search is one
    /// instruction per range (plus the decisions) and decides as the plain one; past
    /// the conditional jumps' reach it is refused.
    #[test]
    fn shared_leaves_halve_the_search_and_decide_alike() {
        let decisions = [ALLOW, EPERM, KILL];
        let ranges: Vec<(u32, Leaf)> = (0..150u32).map(|n| (n * 3, Leaf::Ret(decisions[(n % 3) as usize]))).collect();
        let shared = assembled(search_shared(&ranges).unwrap());
        let plain = assembled(search(&ranges));
        assert_eq!(shared.len(), 1 + 149 + 3);
        assert!(plain.len() > 2 * 149);
        for nr in 0..500 {
            assert_eq!(decide(&shared, X86_64, nr, 0), decide(&plain, X86_64, nr, 0), "nr {nr}");
        }
        let many: Vec<(u32, Leaf)> = (0..600u32).map(|n| (n, Leaf::Ret(decisions[(n % 2) as usize]))).collect();
        assert!(search_shared(&many).is_none());
    }

    #[test]
    fn far_subtrees_are_reached_by_unconditional_jumps() {
        // 600 alternating ranges: the search's top levels span more than 255 instructions.
        let ranges: Vec<(u32, Leaf)> = (0..600u32).map(|n| (n * 2, Leaf::Ret(if n % 2 == 0 { ALLOW } else { EPERM }))).collect();
        let mut p = vec![i(LD_W_ABS, 0, 0, NR)];
        p.extend(search(&ranges).into_iter().map(|e| match e {
            Emit::Insn(x) => x,
            Emit::Goto(_) => unreachable!(),
        }));
        assert!(p.len() > 600, "{}", p.len());
        for nr in 0..1300 {
            // The last range (599, odd) runs to the end of the numbers.
            let want = if nr >= 1198 || (nr / 2) % 2 == 1 { EPERM } else { ALLOW };
            assert_eq!(decide(&p, X86_64, nr, 0), want, "nr {nr}");
        }
    }
}
