//! The build driver: walks the needed stages instruction by instruction, consults
//! the cache, and asks a [`Backend`] to run containers and store layers and images.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use berth_dockerfile::{expand_instruction_with, is_predefined_arg, Instruction, Lex, PROXY_ARGS};
use berth_errdefs::Result;
use berth_image::{History, ImageConfigFile, RootFs};

use crate::backend::RunMountKind;
pub use crate::backend::{Backend, BuildOptions, Failure, RunEvent, RunOutcome, RunSpec};
use crate::cache::{cache_key, KeyInput};
use crate::config::{self, StageFlags};
use crate::context::Context;
use crate::copy::{self, CopyRequest, InlineSource};
use crate::messages::{self as m, Msg};
use crate::plan;
use crate::remote;
use crate::runmount;

mod copy_step;

fn fail(msg: impl Into<String>) -> Failure {
    Failure::invalid(msg)
}

/// `COPY <<EOF` documents as files: mode 0644, created now (contents already expanded).
fn heredoc_sources(contents: &[berth_dockerfile::SourceContent]) -> Vec<InlineSource> {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    contents
        .iter()
        .map(|c| InlineSource {
            name: c.path.clone(),
            data: c.data.clone().into_bytes(),
            mode: 0o644,
            mtime: now,
            unpack: false,
        })
        .collect()
}

/// The state of the stage being built.
struct Stage {
    image: Option<String>,
    cfg: ImageConfigFile,
    flags: StageFlags,
    /// ARGs declared in this stage and their values (None: declared, unset).
    args: BTreeMap<String, Option<String>>,
    /// Consecutive ENV/LABEL/ARG/EXPOSE steps so far (see [`FOLD_AFTER`]).
    meta_run: usize,
    /// Steps applied to `cfg` but not committed yet (their history is in `cfg`):
    /// their texts, which key the image that [`Driver::flush`] commits for them.
    folded: Vec<String>,
}

/// The classic builder commits an image for every step, so a Dockerfile of n
/// metadata steps writes n configs of growing size: O(n²) time. After this many
/// consecutive ENV/LABEL/ARG/EXPOSE steps, further ones are applied in memory and
/// committed together, [`FOLD_CHUNK`] per image, which keeps long runs linear.
/// Shorter runs (every ordinary Dockerfile) build step by step exactly as dockerd's
/// classic builder does.
const FOLD_AFTER: usize = 16;
const FOLD_CHUNK: usize = 64;

/// Builds one stage at a time; several drivers (one per stage, each with its own
/// backend handle) run at once when stages are independent.
struct Driver<'a> {
    be: &'a mut dyn Backend,
    opts: &'a BuildOptions,
    out: &'a mut dyn FnMut(Msg),
    lex: &'a Lex,
    global: &'a BTreeMap<String, String>,
    /// Build args this driver used (merged over all stages at the end).
    consumed: BTreeSet<String>,
    /// Cache keys this driver's current step claimed on the board.
    claims: Vec<String>,
    cache_allowed: Option<&'a HashSet<String>>,
    /// The `--cache-from` images, for dockerd's history-based matching.
    cache_sources: &'a [(String, ImageConfigFile)],
    /// After a step was restored from one of them, the stage keeps to that one.
    cache_pin: Option<usize>,
    results: &'a Board,
    ctx: &'a Context,
}

/// The stages' results, shared by the drivers: a stage starts once the stages it
/// uses are built and a slot is free.
struct Board {
    state: Mutex<BoardState>,
    changed: Condvar,
    /// Set by the first stage that fails: the others stop.
    failed: AtomicBool,
    slots: usize,
}

struct BoardState {
    results: Vec<Option<String>>,
    running: usize,
    /// Cache keys a stage is computing now: another stage with the same step waits
    /// for that result instead of computing it twice.
    computing: HashSet<String>,
}

impl Board {
    fn new(stages: usize, slots: usize) -> Board {
        Board {
            state: Mutex::new(BoardState {
                results: vec![None; stages],
                running: 0,
                computing: HashSet::new(),
            }),
            changed: Condvar::new(),
            failed: AtomicBool::new(false),
            slots,
        }
    }

    /// The image a built stage produced.
    fn get(&self, stage: usize) -> Option<String> {
        self.state.lock().unwrap().results[stage].clone()
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Wait until every stage in `deps` is built and a slot is free, and take the
    /// slot. False when the build failed meanwhile.
    fn start(&self, deps: &[usize]) -> bool {
        let mut st = self.state.lock().unwrap();
        loop {
            if self.failed() {
                return false;
            }
            if st.running < self.slots && deps.iter().all(|d| st.results[*d].is_some()) {
                st.running += 1;
                return true;
            }
            st = self.changed.wait(st).unwrap();
        }
    }

    /// Take `key` to compute it; false when another stage is computing it.
    fn claim(&self, key: &str) -> bool {
        self.state.lock().unwrap().computing.insert(key.to_owned())
    }

    /// Wait until no stage is computing `key` (or the build failed).
    fn wait_computed(&self, key: &str) {
        let mut st = self.state.lock().unwrap();
        while st.computing.contains(key) && !self.failed() {
            st = self.changed.wait(st).unwrap();
        }
    }

    fn release(&self, keys: &mut Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let mut st = self.state.lock().unwrap();
        for k in keys.drain(..) {
            st.computing.remove(&k);
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Record a stage built without threads.
    fn finish_sequential(&self, stage: usize, id: String) {
        self.state.lock().unwrap().results[stage] = Some(id);
    }

    /// Give the slot back, with the stage's image when it was built. Returns true
    /// when this is the build's first failure (the one to report).
    fn finish(&self, stage: usize, built: Option<String>) -> bool {
        let mut st = self.state.lock().unwrap();
        st.running -= 1;
        let first_failure = match built {
            Some(id) => {
                st.results[stage] = Some(id);
                false
            }
            None => !self.failed.swap(true, Ordering::SeqCst),
        };
        drop(st);
        self.changed.notify_all();
        first_failure
    }
}

/// A stage to build: where its steps start in the `Step N/M` numbering, its
/// instructions with their original text, and the stages it uses.
struct StageJob {
    idx: usize,
    first_step: usize,
    from_text: String,
    list: Vec<Step>,
    deps: Vec<usize>,
    /// The build's target: a target that is a bare `FROM scratch` makes no image.
    target: bool,
}

/// One instruction of a stage, with the text `Step N/M` shows.
struct Step {
    ins: Instruction,
    text: String,
    /// Not expanded (the `--label`s, which dockerd adds as literal LABEL steps).
    literal: bool,
}

/// How one stage of a concurrent build ended.
enum StageEnd {
    Built,
    /// The build's first failure: the one reported.
    Failed(Failure),
    /// Stopped because another stage failed (or the client left).
    Stopped(Failure),
}

/// Build `ctx` as `opts` say, sending progress to `out`. Returns the image id.
/// Errors are returned (not sent); the caller turns them into the final message.
///
/// Independent stages are built at the same time when the backend can be forked;
/// the messages still come in Dockerfile order, exactly as a sequential build
/// prints them (a stage's messages are held back until the ones before it are done).
pub fn build(
    be: &mut dyn Backend,
    mut ctx: Context,
    opts: &BuildOptions,
    out: &mut dyn FnMut(Msg),
) -> std::result::Result<String, Failure> {
    let name = if opts.dockerfile.is_empty() {
        "Dockerfile"
    } else {
        &opts.dockerfile
    };
    let src = ctx
        .read_file(name)
        .or_else(|| {
            (name == "Dockerfile")
                .then(|| ctx.read_file("dockerfile"))
                .flatten()
        })
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| fail(format!("Cannot locate specified Dockerfile: {name}")))?;
    if src.is_empty() {
        return Err(fail(format!("the Dockerfile ({name}) cannot be empty")));
    }
    ctx.apply_dockerignore(name);
    // dockerd's words: errors of the file as a whole ("file with no instructions") name
    // the file, an instruction's error its line.
    let df = berth_dockerfile::parse_stages(&src).map_err(|e| match e.syntax {
        true => fail(format!("failed to parse {name}: {}", e.message)),
        false => fail(e.to_string()),
    })?;
    let originals: HashMap<usize, String> = berth_dockerfile::parse(&src)
        .map(|r| {
            r.ast
                .children
                .iter()
                .map(|n| (n.start_line, n.original.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut consumed = BTreeSet::new();
    let global = plan::global_args(&df, &opts.build_args, &mut consumed)?;
    let target = plan::target_index(&df, opts.target.as_deref())?;
    let needed = plan::needed_stages(&df, target, &global)?;
    let total: usize = needed
        .iter()
        .map(|i| 1 + df.stages[*i].instructions.len())
        .sum::<usize>()
        + opts.labels.len();
    let mut jobs = Vec::new();
    let mut first_step = 1;
    for &i in &needed {
        let st = &df.stages[i];
        let mut list: Vec<Step> = st
            .instructions
            .iter()
            .map(|(ins, lines)| Step {
                ins: ins.clone(),
                text: originals.get(&lines.start).cloned().unwrap_or_default(),
                literal: false,
            })
            .collect();
        if i == target {
            list.extend(label_steps(&opts.labels));
        }
        jobs.push(StageJob {
            idx: i,
            first_step,
            from_text: originals
                .get(&st.line.start)
                .cloned()
                .unwrap_or_else(|| format!("FROM {}", st.base)),
            deps: plan::stage_deps(&df, i, &global)?,
            list,
            target: i == target,
        });
        first_step += 1 + st.instructions.len();
    }

    let common = Common {
        opts,
        lex: Lex::new(df.escape_token),
        global,
        cache_allowed: (!opts.cache_from.is_empty()).then(|| cache_from_set(be, opts)),
        cache_sources: opts.cache_from.iter().filter_map(|n| be.image(n).ok()).collect(),
        board: Board::new(
            df.stages.len(),
            std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
        ),
        ctx,
    };
    let deps: Vec<Vec<usize>> = jobs.iter().map(|j| j.deps.clone()).collect();
    let forks = if plan::has_independent_stages(&needed, &deps) {
        jobs.iter().map(|_| be.fork()).collect::<Option<Vec<_>>>()
    } else {
        None
    };
    match forks {
        None => {
            for job in &jobs {
                let mut d = common.driver(be, out);
                let built = d.build_stage(&df, job, total);
                consumed.append(&mut d.consumed);
                common.board.finish_sequential(job.idx, built?);
            }
        }
        Some(forks) => {
            let (mut used, end) = build_concurrently(&common, &df, &jobs, total, forks, out);
            consumed.append(&mut used);
            end?;
        }
    }
    let id = common.board.get(target).expect("target built");
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !consumed.contains(*k) && !is_predefined_arg(k))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        out(Msg::Stream(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            names.join(" ")
        )));
    }
    out(Msg::Stream(format!(
        "Successfully built {}\n",
        m::short_id(&id)
    )));
    for t in &opts.tags {
        let shown = be.tag(&id, t)?;
        out(Msg::Stream(format!("Successfully tagged {shown}\n")));
    }
    Ok(id)
}

/// `--label`s become LABEL steps at the end of the target stage, one per label in
/// key order, taken literally (a `$PATH` in a value stays `$PATH`), as dockerd adds them.
fn label_steps(labels: &BTreeMap<String, String>) -> impl Iterator<Item = Step> + '_ {
    labels.iter().map(|(k, v)| Step {
        ins: Instruction::Label(vec![berth_dockerfile::KeyValue {
            key: k.clone(),
            value: v.clone(),
            no_delim: false,
        }]),
        text: format!("LABEL {k}={v}"),
        literal: true,
    })
}

/// Images the cache may use with `--cache-from`: the listed images and their parents.
fn cache_from_set(be: &mut dyn Backend, opts: &BuildOptions) -> HashSet<String> {
    let mut set = HashSet::new();
    for name in &opts.cache_from {
        let mut cur = be.image(name).ok();
        while let Some((id, cfg)) = cur {
            if !set.insert(id) {
                break;
            }
            cur = cfg.parent.as_deref().and_then(|p| be.image(p).ok());
        }
    }
    set
}

/// What the drivers of one build share (read-only, but for the board).
struct Common<'a> {
    opts: &'a BuildOptions,
    lex: Lex,
    global: BTreeMap<String, String>,
    cache_allowed: Option<HashSet<String>>,
    cache_sources: Vec<(String, ImageConfigFile)>,
    board: Board,
    ctx: Context,
}

impl Common<'_> {
    fn driver<'b>(&'b self, be: &'b mut dyn Backend, out: &'b mut dyn FnMut(Msg)) -> Driver<'b> {
        Driver {
            be,
            opts: self.opts,
            out,
            lex: &self.lex,
            global: &self.global,
            consumed: BTreeSet::new(),
            claims: Vec::new(),
            cache_allowed: self.cache_allowed.as_ref(),
            cache_sources: &self.cache_sources,
            cache_pin: None,
            results: &self.board,
            ctx: &self.ctx,
        }
    }
}

/// Progress of a concurrent build, sent by the stage threads to the caller's thread.
enum Event {
    Msg(usize, Msg),
    Done(usize, StageEnd, BTreeSet<String>),
}

/// Build `jobs` on threads, one backend fork each, each stage as soon as the
/// stages it uses are built. This thread forwards the messages in stage order.
/// Returns the build args used and the build's outcome (its first failure).
fn build_concurrently(
    common: &Common<'_>,
    df: &berth_dockerfile::Dockerfile,
    jobs: &[StageJob],
    total: usize,
    forks: Vec<Box<dyn Backend + Send>>,
    out: &mut dyn FnMut(Msg),
) -> (BTreeSet<String>, std::result::Result<(), Failure>) {
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let mut consumed = BTreeSet::new();
    let mut ends: Vec<Option<StageEnd>> = jobs.iter().map(|_| None).collect();
    std::thread::scope(|s| {
        for (k, (job, mut be)) in jobs.iter().zip(forks).enumerate() {
            let tx = tx.clone();
            s.spawn(move || {
                let end = if common.board.start(&job.deps) {
                    let mut send = |m: Msg| {
                        let _ = tx.send(Event::Msg(k, m));
                    };
                    let mut d = common.driver(&mut *be, &mut send);
                    let built = d.build_stage(df, job, total);
                    let used = std::mem::take(&mut d.consumed);
                    let end = match built {
                        Ok(id) => {
                            common.board.finish(job.idx, Some(id.clone()));
                            StageEnd::Built
                        }
                        Err(f) => {
                            if common.board.finish(job.idx, None) {
                                // Stop the other stages, and what they are running.
                                be.cancel();
                                StageEnd::Failed(f)
                            } else {
                                StageEnd::Stopped(f)
                            }
                        }
                    };
                    let _ = tx.send(Event::Done(k, end, used));
                    return;
                } else {
                    StageEnd::Stopped(fail("build stopped: another stage failed"))
                };
                let _ = tx.send(Event::Done(k, end, BTreeSet::new()));
            });
        }
        drop(tx);
        // Forward stage `cur` live; hold the later ones' messages until it is done.
        let mut held: Vec<Vec<Msg>> = jobs.iter().map(|_| Vec::new()).collect();
        let mut cur = 0;
        for ev in rx {
            match ev {
                Event::Msg(k, m) if k == cur => out(m),
                Event::Msg(k, m) => held[k].push(m),
                Event::Done(k, end, mut used) => {
                    consumed.append(&mut used);
                    ends[k] = Some(end);
                }
            }
            while cur < jobs.len() && ends[cur].is_some() {
                cur += 1;
                if let Some(h) = held.get_mut(cur) {
                    for m in h.drain(..) {
                        out(m);
                    }
                }
            }
        }
    });
    let mut stopped = None;
    for end in ends.into_iter().flatten() {
        match end {
            StageEnd::Built => {}
            StageEnd::Failed(f) => return (consumed, Err(f)),
            StageEnd::Stopped(f) => {
                stopped.get_or_insert(f);
            }
        }
    }
    (consumed, stopped.map_or(Ok(()), Err))
}

impl Driver<'_> {
    fn emit(&mut self, msg: Msg) {
        (self.out)(msg)
    }

    fn emit_all(&mut self, msgs: impl IntoIterator<Item = Msg>) {
        for msg in msgs {
            (self.out)(msg)
        }
    }

    /// Build one stage: its FROM, then each instruction. Returns the stage's image.
    fn build_stage(
        &mut self,
        df: &berth_dockerfile::Dockerfile,
        job: &StageJob,
        total: usize,
    ) -> std::result::Result<String, Failure> {
        let i = job.idx;
        let mut n = job.first_step;
        self.emit_all(m::step(n, total, &job.from_text));
        let base = plan::stage_base(df, i, self.global)?;
        plan::stage_platform(df, i, self.global)?;
        let from = self.from(df, i, &base);
        self.results.release(&mut self.claims);
        let mut stage = from?;
        for Step { ins, text, literal } in &job.list {
            n += 1;
            if self.results.failed() {
                return Err(fail("build stopped: another stage failed"));
            }
            if self.be.cancelled() {
                return Err(fail("build cancelled: the client disconnected"));
            }
            self.emit_all(m::step(n, total, text));
            let done = if *literal {
                self.dispatch_expanded(df, i, &mut stage, ins.clone())
            } else {
                self.dispatch(df, i, &mut stage, ins)
            };
            self.results.release(&mut self.claims);
            done?;
        }
        let flushed = self.flush(&mut stage);
        self.results.release(&mut self.claims);
        flushed?;
        let id = match &stage.image {
            Some(id) => id.clone(),
            None if job.target && job.list.is_empty() && base == "scratch" => {
                return Err(fail("No image was generated. Is your Dockerfile empty?"));
            }
            None => self.be.create_image(&stage.cfg)?,
        };
        self.emit(Msg::Aux(id.clone()));
        Ok(id)
    }

    /// An image by reference: the local one, else (or, with `always`, first) pulled
    /// from its registry, as dockerd's classic builder gets `FROM` and `COPY --from`
    /// images. The pull's progress goes to the build's output.
    fn image_or_pull(
        &mut self,
        name: &str,
        always: bool,
    ) -> std::result::Result<(String, ImageConfigFile), Failure> {
        if !always {
            match self.be.image(name) {
                Err(e) if e.is_not_found() => {}
                found => return found.map_err(Failure::from),
            }
        }
        let out = &mut *self.out;
        self.be.pull(name, &mut |v| out(Msg::Progress(v)))?;
        Ok(self.be.image(name)?)
    }

    fn from(
        &mut self,
        df: &berth_dockerfile::Dockerfile,
        i: usize,
        base: &str,
    ) -> std::result::Result<Stage, Failure> {
        let (image, cfg) = if let Some(j) = plan::stage_ref_named(df, base, i) {
            let id = self
                .results
                .get(j)
                .ok_or_else(|| fail(format!("stage {base} was not built")))?;
            let (id, cfg) = self.be.image(&id)?;
            (Some(id), cfg)
        } else if base.eq_ignore_ascii_case("scratch") {
            let cfg = ImageConfigFile {
                architecture: berth_image::config::host_arch().into(),
                os: "linux".into(),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..Default::default()
            };
            (None, cfg)
        } else {
            let (id, cfg) = self.image_or_pull(base, self.opts.pull)?;
            (Some(id), cfg)
        };
        if let Some(id) = &image {
            self.emit(m::arrow(id));
        }
        let mut stage = Stage {
            image,
            cfg,
            flags: StageFlags::default(),
            args: BTreeMap::new(),
            meta_run: 0,
            folded: Vec::new(),
        };
        // dockerd's `setDefaultPath`: a stage whose base sets no PATH (scratch, an
        // imported rootfs) gets Linux's default, in its RUN steps and in the image.
        let env = stage.cfg.config.env.get_or_insert_with(Vec::new);
        if config::get_env(env, "PATH").is_none() {
            env.push(format!("PATH={}", berth_image::config::DEFAULT_PATH_ENV));
        }
        // ONBUILD triggers of the base run now, and are not inherited.
        let triggers = stage.cfg.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            let s = if triggers.len() == 1 { "" } else { "s" };
            self.emit(Msg::Stream(format!(
                "# Executing {} build trigger{s}\n",
                triggers.len()
            )));
            for t in triggers {
                let ins = berth_dockerfile::parse_onbuild_trigger(&t, df.escape_token)
                    .map_err(|e| fail(e.to_string()))?;
                self.dispatch(df, i, &mut stage, &ins)?;
            }
        }
        Ok(stage)
    }

    /// Variables visible to expansion: the stage's ARGs, then ENV (which wins).
    fn expansion_env(st: &Stage) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = st
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for e in st.cfg.config.env.as_deref().unwrap_or_default() {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            env.insert(k.to_owned(), v.to_owned());
        }
        env
    }

    /// Build args RUN sees, as `K=V` sorted (dockerd sorts them for the history text):
    /// those declared with a value, and the predefined proxy args (`HTTP_PROXY`,
    /// `no_proxy`, ...) given with `--build-arg` even when undeclared; none that ENV
    /// shadows. The second list is the ones the history text and the cache key name:
    /// all but undeclared proxy args, which dockerd keeps out of both (a proxy is a
    /// property of the builder's host, not of the image).
    fn run_args(&self, st: &Stage) -> (Vec<String>, Vec<String>) {
        let env = st.cfg.config.env.as_deref().unwrap_or_default();
        let declared = st.args.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v, true)));
        let proxies = PROXY_ARGS.iter().filter(|p| !st.args.contains_key(**p)).filter_map(|p| {
            let v = self.opts.build_args.get(*p)?.as_ref()?;
            Some((*p, v, false))
        });
        let mut all: Vec<(String, bool)> = declared
            .map(|(k, v, d)| (k.as_str(), v, d))
            .chain(proxies)
            .filter(|(k, _, _)| config::get_env(env, k).is_none())
            .map(|(k, v, d)| (format!("{k}={v}"), d))
            .collect();
        all.sort();
        let shown = all.iter().filter(|(_, d)| *d).map(|(a, _)| a.clone()).collect();
        (all.into_iter().map(|(a, _)| a).collect(), shown)
    }

    fn dispatch(
        &mut self,
        df: &berth_dockerfile::Dockerfile,
        stage_idx: usize,
        st: &mut Stage,
        ins: &Instruction,
    ) -> std::result::Result<(), Failure> {
        // Variables are only looked up for a `$`: without one, skip building the map
        // (it costs O(ENV count) per step, which long Dockerfiles feel).
        let env = if format!("{ins:?}").contains('$') { Self::expansion_env(st) } else { BTreeMap::new() };
        let ins = expand_instruction_with(ins, &env, self.lex).map_err(|e| fail(e.0))?;
        self.dispatch_expanded(df, stage_idx, st, ins)
    }

    /// Run one instruction whose words are expanded already.
    fn dispatch_expanded(
        &mut self,
        df: &berth_dockerfile::Dockerfile,
        stage_idx: usize,
        st: &mut Stage,
        ins: Instruction,
    ) -> std::result::Result<(), Failure> {
        if matches!(ins, Instruction::Env(_) | Instruction::Label(_) | Instruction::Arg(_) | Instruction::Expose(_)) {
            st.meta_run += 1;
        } else {
            st.meta_run = 0;
            // Every other step works on a committed image.
            self.flush(st)?;
            self.results.release(&mut self.claims);
        }
        match &ins {
            Instruction::Arg(defs) => {
                let mut resolved = Vec::new();
                for a in defs {
                    let given = self.opts.build_args.get(&a.key).cloned().flatten();
                    if self.opts.build_args.contains_key(&a.key) {
                        self.consumed.insert(a.key.clone());
                    }
                    let v = given
                        .or_else(|| a.value.clone())
                        .or_else(|| self.global.get(&a.key).cloned());
                    st.args.insert(a.key.clone(), v.clone());
                    resolved.push(berth_dockerfile::ArgDef {
                        key: a.key.clone(),
                        value: v,
                    });
                }
                // Like Docker, the ARG step itself does not depend on the value;
                // the steps that see it do (RUN keys include the build args).
                let _ = resolved;
                self.commit_meta(st, &Instruction::Arg(defs.clone()), "")
            }
            Instruction::Run(r) => self.run(df, stage_idx, st, r),
            Instruction::Copy(c) => {
                let req = CopyRequest {
                    sources: c.sources.clone(),
                    dest: c.dest.clone(),
                    workdir: st.cfg.config.working_dir.clone().unwrap_or_default(),
                    chown: None,
                    chmod: if c.chmod.is_empty() {
                        None
                    } else {
                        Some(copy::parse_chmod(&c.chmod)?)
                    },
                    add: false,
                    from_image: !c.from.is_empty(),
                    inline: heredoc_sources(&c.contents),
                    parents: c.parents,
                    excludes: c.excludes.clone(),
                    unpack: None,
                };
                self.copy(df, stage_idx, st, "COPY", req, &c.chown, &c.from)
            }
            Instruction::Add(a) => {
                if a.keep_git_dir.is_some() && !a.sources.iter().any(|s| remote::is_git(s)) {
                    // BuildKit accepts the flag only for git sources.
                    return Err(fail("ADD --keep-git-dir is only valid for git sources"));
                }
                let mut inline = heredoc_sources(&a.contents);
                let mut sources = Vec::new();
                for s in &a.sources {
                    if remote::is_git(s) {
                        return Err(fail(format!(
                            "ADD {s}: adding git repositories is not supported by berth's builder"
                        )));
                    } else if remote::is_url(s) {
                        let f = remote::fetch(s, &a.checksum, a.unpack == Some(true))?;
                        inline.push(f);
                    } else {
                        sources.push(s.clone());
                    }
                }
                if !a.checksum.is_empty() && !sources.is_empty() {
                    return Err(fail("checksum can't be specified for non-HTTP(S) sources"));
                }
                let req = CopyRequest {
                    sources,
                    dest: a.dest.clone(),
                    workdir: st.cfg.config.working_dir.clone().unwrap_or_default(),
                    chown: None,
                    chmod: if a.chmod.is_empty() {
                        None
                    } else {
                        Some(copy::parse_chmod(&a.chmod)?)
                    },
                    add: true,
                    from_image: false,
                    inline,
                    parents: false,
                    excludes: a.excludes.clone(),
                    unpack: a.unpack,
                };
                self.copy(df, stage_idx, st, "ADD", req, &a.chown, "")
            }
            Instruction::From { .. } => Err(fail("FROM is not allowed here")),
            Instruction::Workdir(_) => self.workdir(st, &ins),
            other => self.commit_meta(st, other, ""),
        }
    }

    /// Reuse a cached image for `key` if there is one. On a miss the key is claimed
    /// until the step is done; if another stage is computing the same key, wait for
    /// its result instead.
    fn cached(&mut self, key: &str) -> Option<(String, ImageConfigFile)> {
        if self.opts.no_cache {
            return None;
        }
        loop {
            // Claim first, then look: a stage that finished this key just before
            // the claim has already recorded its result.
            let held = self.claims.iter().any(|k| k == key);
            let mine = held || self.results.claim(key);
            if let Some(found) = self.lookup(key) {
                if mine && !held {
                    self.results.release(&mut vec![key.to_owned()]);
                }
                return Some(found);
            }
            if mine {
                if !held {
                    self.claims.push(key.to_owned());
                }
                return None;
            }
            self.results.wait_computed(key);
            if self.results.failed() {
                return None;
            }
        }
    }

    fn lookup(&mut self, key: &str) -> Option<(String, ImageConfigFile)> {
        for id in self.be.cache_get(key) {
            if self.cache_allowed.is_some_and(|a| !a.contains(&id)) {
                continue;
            }
            if let Ok(found) = self.be.image(&id) {
                return Some(found);
            }
        }
        None
    }

    /// Take the step from the cache if it can: the local cache by `key`, else (with
    /// `--cache-from`) an image whose history continues the stage's with this step,
    /// `step` being the step's history text and the config it leaves.
    fn use_cache(&mut self, st: &mut Stage, key: &str, step: Option<(&str, &ImageConfigFile)>) -> bool {
        let found = match self.cached(key) {
            Some(found) => Some(found),
            None => match step {
                Some((created_by, cfg)) if !self.opts.no_cache => self.history_match(st, created_by, cfg),
                _ => None,
            },
        };
        match found {
            Some((id, cfg)) => {
                self.emit(m::using_cache());
                self.emit(m::arrow(&id));
                st.image = Some(id);
                st.cfg = cfg;
                true
            }
            None => false,
        }
    }

    /// dockerd's classic `--cache-from` (`image/cache`): a source image T continues
    /// the stage's image P when P's history and layers are a prefix of T's and T's
    /// next history entry was made by this step. If that entry is T's last, the step
    /// gives T itself; otherwise an image is made of P plus that entry (and its layer,
    /// if it has one) with the step's config. Pulled images have no parent links, so
    /// this is how a CI build reuses the image it pulled.
    fn history_match(
        &mut self,
        st: &Stage,
        created_by: &str,
        cfg: &ImageConfigFile,
    ) -> Option<(String, ImageConfigFile)> {
        if self.cache_sources.is_empty() || !st.folded.is_empty() {
            return None;
        }
        let parent = st.image.as_ref().map(|_| &st.cfg);
        let n = parent.map_or(0, |p| p.history.len());
        let continues = |t: &ImageConfigFile| {
            if t.history.len() <= n || t.history[n].created_by.as_deref() != Some(created_by) {
                return false;
            }
            let Some(p) = parent else { return true };
            if p.history.is_empty() && p.rootfs.diff_ids.is_empty() {
                return true;
            }
            p.rootfs.diff_ids.len() <= t.rootfs.diff_ids.len()
                && t.rootfs.diff_ids.starts_with(&p.rootfs.diff_ids)
                && t.history.starts_with(&p.history)
        };
        let candidates: Vec<usize> = match self.cache_pin {
            Some(i) => vec![i],
            None => (0..self.cache_sources.len()).collect(),
        };
        let i = candidates.into_iter().find(|&i| continues(&self.cache_sources[i].1))?;
        let (tid, t) = &self.cache_sources[i];
        if t.history.len() == n + 1 {
            return Some((tid.clone(), t.clone()));
        }
        let entry = t.history[n].clone();
        let mut made = cfg.clone();
        made.history = parent.map(|p| p.history.clone()).unwrap_or_default();
        made.rootfs.diff_ids = parent.map(|p| p.rootfs.diff_ids.clone()).unwrap_or_default();
        if made.rootfs.kind.is_empty() {
            made.rootfs.kind = "layers".into();
        }
        if !entry.empty_layer {
            let layer = t.history[..n].iter().filter(|h| !h.empty_layer).count();
            made.rootfs.diff_ids.push(t.rootfs.diff_ids.get(layer)?.clone());
        }
        made.created = entry.created.clone();
        made.history.push(entry);
        made.parent = st.image.clone();
        // as dockerd's restoreCachedImage: no container of its own
        made.container = None;
        made.container_config = None;
        made.architecture = t.architecture.clone();
        made.os = t.os.clone();
        let id = self.be.create_image(&made).ok()?;
        self.cache_pin = Some(i);
        Some((id, made))
    }

    /// A new image from `st` with `cfg` changes, an optional new layer and a history
    /// entry. `cmd` is the step's command as dockerd records it in `container_config`
    /// (`None`: the `#(nop)` form of `created_by`); `container` the step's container.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        st: &mut Stage,
        new_cfg: ImageConfigFile,
        diff_id: Option<String>,
        created_by: String,
        key: &str,
        cmd: Option<Vec<String>>,
        container: Option<&str>,
    ) -> std::result::Result<(), Failure> {
        let now = berth_image::config::now_rfc3339();
        let mut cfg = new_cfg;
        cfg.created = Some(now.clone());
        cfg.parent = st.image.clone();
        cfg.container = container.map(str::to_owned);
        cfg.container_config = Some(config::container_config(
            &cfg.config,
            cmd.unwrap_or_else(|| config::nop_cmd(&created_by)),
            st.image.as_deref().unwrap_or(""),
            container.map(crate::messages::short_id).unwrap_or(""),
        ));
        if let Some(d) = &diff_id {
            let dig = d
                .parse()
                .map_err(|_| fail(format!("invalid diff id {d}")))?;
            cfg.rootfs.diff_ids.push(dig);
        }
        if cfg.rootfs.kind.is_empty() {
            cfg.rootfs.kind = "layers".into();
        }
        cfg.history.push(History {
            created: Some(now),
            created_by: Some(created_by),
            empty_layer: diff_id.is_none(),
            ..Default::default()
        });
        let id = self.be.create_image(&cfg)?;
        self.be.cache_put(key, &id)?;
        st.image = Some(id);
        st.cfg = cfg;
        Ok(())
    }

    fn emit_result(&mut self, st: &Stage) {
        if let Some(id) = st.image.clone() {
            self.emit(m::arrow(&id));
        }
    }

    fn commit_meta(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        extra_key: &str,
    ) -> std::result::Result<(), Failure> {
        if st.meta_run > FOLD_AFTER {
            return self.fold_meta(st, ins, extra_key);
        }
        let mut cfg = st.cfg.clone();
        let mut flags = st.flags.clone();
        let applied = config::apply(&mut cfg.config, &mut cfg.author, &mut flags, ins)?;
        st.flags = flags;
        let parent = st.image.clone().unwrap_or_default();
        let text = format!("{}\n{extra_key}", applied.created_by);
        let key = cache_key(&KeyInput {
            parent: &parent,
            text: &text,
            args: &[],
            content: None,
        });
        if self.use_cache(st, &key, Some((&applied.created_by, &cfg))) {
            return Ok(());
        }
        let cid = self.nop_container(st, &applied.created_by)?;
        self.commit(st, cfg, None, applied.created_by, &key, None, cid.as_deref())?;
        self.done_container(cid)?;
        self.emit_result(st);
        Ok(())
    }

    /// A metadata step deep in a long run: applied to the stage's config in place (no
    /// copy, no image yet); every [`FOLD_CHUNK`] steps the run so far is committed.
    fn fold_meta(&mut self, st: &mut Stage, ins: &Instruction, extra_key: &str) -> std::result::Result<(), Failure> {
        let applied = config::apply(&mut st.cfg.config, &mut st.cfg.author, &mut st.flags, ins)?;
        st.cfg.history.push(History {
            created: Some(berth_image::config::now_rfc3339()),
            created_by: Some(applied.created_by.clone()),
            empty_layer: true,
            ..Default::default()
        });
        st.folded.push(format!("{}\n{extra_key}", applied.created_by));
        if st.folded.len() >= FOLD_CHUNK {
            self.flush(st)?;
        }
        Ok(())
    }

    /// Commit the folded steps of `st` as one image (or take it from the cache: its
    /// key is its parent and every folded step's text).
    fn flush(&mut self, st: &mut Stage) -> std::result::Result<(), Failure> {
        if st.folded.is_empty() {
            return Ok(());
        }
        let text = format!("#(folded)\n{}", st.folded.join("\n"));
        st.folded.clear();
        let parent = st.image.clone().unwrap_or_default();
        let key = cache_key(&KeyInput {
            parent: &parent,
            text: &text,
            args: &[],
            content: None,
        });
        if self.use_cache(st, &key, None) {
            return Ok(());
        }
        st.cfg.created = st.cfg.history.last().and_then(|h| h.created.clone());
        st.cfg.parent = st.image.clone();
        if st.cfg.rootfs.kind.is_empty() {
            st.cfg.rootfs.kind = "layers".into();
        }
        let id = self.be.create_image(&st.cfg)?;
        self.be.cache_put(&key, &id)?;
        st.image = Some(id);
        self.emit_result(st);
        Ok(())
    }

    /// The container Docker creates (and never starts) for a metadata step.
    fn nop_container(
        &mut self,
        st: &Stage,
        created_by: &str,
    ) -> std::result::Result<Option<String>, Failure> {
        let Some(image) = st.image.clone() else {
            return Ok(None);
        };
        let text = created_by.strip_prefix("/bin/sh -c ").unwrap_or(created_by);
        let cmd = vec!["/bin/sh".to_owned(), "-c".to_owned(), text.to_owned()];
        let cid = self.be.create_container(&image, &cmd)?;
        self.emit(m::running_in(&cid));
        Ok(Some(cid))
    }

    fn done_container(&mut self, cid: Option<String>) -> std::result::Result<(), Failure> {
        if let Some(cid) = cid {
            if self.opts.rm || self.opts.force_rm {
                self.be.remove_container(&cid)?;
                self.emit(m::removing(&cid));
            }
        }
        Ok(())
    }

    fn workdir(&mut self, st: &mut Stage, ins: &Instruction) -> std::result::Result<(), Failure> {
        let mut cfg = st.cfg.clone();
        let mut flags = st.flags.clone();
        let applied = config::apply(&mut cfg.config, &mut cfg.author, &mut flags, ins)?;
        let parent = st.image.clone().unwrap_or_default();
        let key = cache_key(&KeyInput {
            parent: &parent,
            text: &applied.created_by,
            args: &[],
            content: None,
        });
        if self.use_cache(st, &key, Some((&applied.created_by, &cfg))) {
            return Ok(());
        }
        let wd = cfg.config.working_dir.clone().unwrap_or_else(|| "/".into());
        let rel = crate::context::clean(&wd);
        let mut missing = Vec::new();
        if !rel.is_empty() {
            let mut check = |root: &Path| -> Result<()> {
                let mut cur = String::new();
                for seg in rel.split('/') {
                    cur = if cur.is_empty() {
                        seg.to_owned()
                    } else {
                        format!("{cur}/{seg}")
                    };
                    if std::fs::symlink_metadata(root.join(&cur)).is_err() {
                        missing.push(cur.clone());
                    }
                }
                Ok(())
            };
            match &st.image {
                Some(id) => {
                    let id = id.clone();
                    self.be.with_rootfs(&id, &mut check)?;
                }
                None => {
                    let empty = std::path::PathBuf::from("/nonexistent-berth-scratch");
                    check(&empty)?;
                }
            }
        }
        let diff = if missing.is_empty() {
            None
        } else {
            let now = chrono::Utc::now().timestamp().max(0) as u64;
            let entries = missing
                .iter()
                .map(|p| {
                    (
                        p.clone(),
                        copy::OutEntry {
                            kind: crate::context::Kind::Dir,
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                            mtime: now,
                            data: Vec::new(),
                        },
                    )
                })
                .collect();
            Some(self.be.add_layer(&copy::write_layer(&entries)?)?)
        };
        let cid = self.nop_container(st, &applied.created_by)?;
        self.commit(st, cfg, diff, applied.created_by, &key, None, cid.as_deref())?;
        self.done_container(cid)?;
        self.emit_result(st);
        Ok(())
    }

    fn run(
        &mut self,
        df: &berth_dockerfile::Dockerfile,
        stage_idx: usize,
        st: &mut Stage,
        r: &berth_dockerfile::Run,
    ) -> std::result::Result<(), Failure> {
        if r.security == "insecure" {
            return Err(fail(
                "granting entitlement security.insecure is not allowed by build daemon configuration",
            ));
        }
        let shell_cfg = st.cfg.config.clone();
        let with_shell = |args: Vec<String>| {
            config::argv(
                &berth_dockerfile::CommandLine {
                    args,
                    prepend_shell: true,
                },
                &shell_cfg,
            )
        };
        let (argv, script) = if r.files.is_empty() {
            (config::argv(&r.cmd, &st.cfg.config), None)
        } else {
            runmount::heredoc_command(r, &with_shell)?
        };
        // `RUN []`: dockerd runs the image's own entrypoint and command (the step's
        // command is empty, so its container gets the image's defaults).
        let run_argv = if argv.is_empty() {
            let c = &st.cfg.config;
            let d: Vec<String> =
                c.entrypoint.iter().flatten().chain(c.cmd.iter().flatten()).cloned().collect();
            if d.is_empty() {
                return Err(fail("No command specified"));
            }
            d
        } else {
            argv.clone()
        };
        // `from=` of bind mounts: a stage (built before) or an image.
        let mut froms: HashMap<String, String> = HashMap::new();
        for m in &r.mounts {
            if m.from.is_empty() || froms.contains_key(&m.from) {
                continue;
            }
            let id = match plan::stage_ref(df, &m.from, stage_idx) {
                Some(j) => self
                    .results
                    .get(j)
                    .ok_or_else(|| fail(format!("stage {} was not built", m.from)))?,
                None => self.image_or_pull(&m.from, false)?.0,
            };
            froms.insert(m.from.clone(), id);
        }
        let workdir = st.cfg.config.working_dir.clone().unwrap_or_default();
        let mut resolved = runmount::resolve_mounts(
            &r.mounts,
            runmount::MountEnv {
                workdir: &workdir,
                ctx: self.ctx,
                secrets: &self.opts.secrets,
                from_image: &mut |f| {
                    froms
                        .get(f)
                        .cloned()
                        .ok_or_else(|| fail(format!("no image for {f}")))
                },
            },
        )?;
        let mut extra_key = resolved.key.clone();
        if let Some(m) = &script {
            if let RunMountKind::Files(files) = &m.kind {
                extra_key.push_str(&format!("script={}\n", copy::hash_entries(files)));
            }
            resolved.mounts.insert(0, m.clone());
        }
        let network = match r.network.as_str() {
            "none" | "host" => r.network.clone(),
            _ => self.opts.network_mode.clone(),
        };
        if r.network != "default" && !r.network.is_empty() {
            extra_key.push_str(&format!("network={}\n", r.network));
        }
        let (env_args, hist_args) = self.run_args(st);
        let created_by = if hist_args.is_empty() {
            argv.join(" ")
        } else {
            format!(
                "|{} {} {}",
                hist_args.len(),
                hist_args.join(" "),
                argv.join(" ")
            )
        };
        let parent = st.image.clone().unwrap_or_default();
        let mut text = format!("RUN {}", serde_json::to_string(&argv).unwrap_or_default());
        if !extra_key.is_empty() {
            text.push_str("\nmounts:\n");
            text.push_str(&extra_key);
        }
        let key = cache_key(&KeyInput {
            parent: &parent,
            text: &text,
            args: &hist_args,
            content: (!resolved.content.is_empty()).then_some(resolved.content.as_str()),
        });
        // `--cache-from` matches a RUN by its history text, which names no mounts:
        // only a plain RUN (as dockerd's classic builder has) may match that way.
        let stage_cfg = st.cfg.clone();
        let step = extra_key.is_empty().then_some((created_by.as_str(), &stage_cfg));
        if self.use_cache(st, &key, step) {
            return Ok(());
        }
        let image = match &st.image {
            Some(id) => id.clone(),
            None => {
                let id = self.be.create_image(&st.cfg)?;
                st.image = Some(id.clone());
                id
            }
        };
        let spec = RunSpec {
            cmd: run_argv.clone(),
            env: env_args,
            network_mode: network,
            mounts: resolved.mounts,
            secret_env: resolved.secret_env,
        };
        let out = &mut *self.out;
        let outcome = self.be.run(&image, &spec, &mut |ev| match ev {
            RunEvent::Started(cid) => out(m::running_in(cid)),
            RunEvent::Output(b) => out(Msg::Stream(String::from_utf8_lossy(b).into_owned())),
            // dockerd's stderr writer: each write between "bright red" and "reset".
            RunEvent::ErrOutput(b) => out(Msg::Stream(format!("\x1b[91m{}\x1b[0m", String::from_utf8_lossy(b)))),
        })?;
        if outcome.exit_code != 0 {
            if self.opts.force_rm {
                let _ = self.be.remove_container(&outcome.container_id);
            }
            let Msg::Error { code, message } = m::run_failed(&run_argv, outcome.exit_code) else {
                unreachable!()
            };
            return Err(Failure { code, message, kind: berth_errdefs::Kind::Internal });
        }
        let cfg = st.cfg.clone();
        // dockerd's step command: the build args RUN saw (those it names), then argv.
        let step_cmd = if hist_args.is_empty() {
            argv.clone()
        } else {
            std::iter::once(format!("|{}", hist_args.len())).chain(hist_args.iter().cloned()).chain(argv.iter().cloned()).collect()
        };
        self.commit(st, cfg, outcome.diff_id.clone(), created_by, &key, Some(step_cmd), Some(&outcome.container_id))?;
        if self.opts.rm || self.opts.force_rm {
            self.be.remove_container(&outcome.container_id)?;
            self.emit(m::removing(&outcome.container_id));
        }
        self.emit_result(st);
        Ok(())
    }
}
