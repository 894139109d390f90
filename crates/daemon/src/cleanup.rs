//! Clean-up that does not compete with the next container's start.
//!
//! Removing what a removed container leaves (its rootfs mount, network namespace,
//! state and snapshot directories) is nobody's wait: its `rm` (or `run --rm`) has
//! already been told the container is gone. Done on the blocking pool at the daemon's
//! own priority it took CPU from the next `run` on a busy host, and a burst of removals
//! (`rm -f` of a hundred) ran a hundred of them at once, contending for the same
//! directories. Here it is queued for one thread that runs the jobs in order at the
//! lowest CPU priority (nice 19), so the scheduler gives the starts and the removals
//! still being answered the CPU first and the clean-up the time left over. A job that
//! has waited longer than [`MAX_LOW_WAIT`] (a host kept busy by its containers' own
//! work) runs at the daemon's priority again, so files and mounts never pile up;
//! shutdown drains the queue ([`Cleaner::drain`]), and what a killed daemon left
//! queued is found at start-up as runtime state without a record
//! (`warm::reap_leftovers`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A job that has waited this long runs at the daemon's priority.
pub const MAX_LOW_WAIT: Duration = Duration::from_secs(1);

/// The lowest priority (`nice`) a queued job runs at.
const LOW_NICE: i32 = 19;

struct Job {
    f: Box<dyn FnOnce() + Send>,
    queued_at: Instant,
    /// Told once the job has run (and no longer counts in the backlog).
    done: tokio::sync::oneshot::Sender<()>,
}

pub struct Cleaner {
    tx: Mutex<mpsc::Sender<Job>>,
    queued: Arc<AtomicUsize>,
}

impl Default for Cleaner {
    fn default() -> Self {
        Self::new()
    }
}

impl Cleaner {
    pub fn new() -> Self {
        Self::with_max_wait(MAX_LOW_WAIT)
    }

    /// A cleaner whose jobs run at the daemon's priority once they have waited
    /// `max_wait`.
    pub fn with_max_wait(max_wait: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        std::thread::Builder::new()
            .name("berth-cleanup".into())
            .spawn(move || work(rx, q, max_wait))
            .expect("start the clean-up thread");
        Self { tx: Mutex::new(tx), queued }
    }

    /// Queue `f`; the receiver hears when it has run (a caller that does not care
    /// drops it).
    pub fn run(&self, f: impl FnOnce() + Send + 'static) -> tokio::sync::oneshot::Receiver<()> {
        let (done, heard) = tokio::sync::oneshot::channel();
        self.queued.fetch_add(1, Ordering::SeqCst);
        let job = Job { f: Box::new(f), queued_at: Instant::now(), done };
        if let Err(mpsc::SendError(job)) = self.tx.lock().unwrap().send(job) {
            // The thread is gone: run the job here rather than lose it.
            self.queued.fetch_sub(1, Ordering::SeqCst);
            (job.f)();
            let _ = job.done.send(());
        }
        heard
    }

    /// Jobs queued and not finished.
    pub fn backlog(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Wait until every job queued so far has run (shutdown).
    pub async fn drain(&self) {
        let _ = self.run(|| {}).await;
    }
}

fn work(rx: mpsc::Receiver<Job>, queued: Arc<AtomicUsize>, max_wait: Duration) {
    let base = nice();
    let mut low = false;
    let mut stuck = false;
    for job in rx {
        let want_low = job.queued_at.elapsed() < max_wait;
        // Once raising failed, only lowering is tried again.
        if want_low != low && (want_low || !stuck) {
            match set_nice(if want_low { LOW_NICE.max(base) } else { base }) {
                Ok(()) => low = want_low,
                // Raising a priority back needs CAP_SYS_NICE: without it the jobs stay low.
                Err(e) => {
                    tracing::warn!(error = %e, "clean-up thread: cannot change its priority");
                    stuck = true;
                }
            }
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.f));
        queued.fetch_sub(1, Ordering::SeqCst);
        if r.is_err() {
            tracing::error!("a clean-up job panicked");
        }
        let _ = job.done.send(());
    }
}

/// The calling thread's nice value.
fn nice() -> i32 {
    // SAFETY: getpriority has no memory effects; -1 is a valid answer, told from an
    // error by errno, which is cleared first.
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, 0);
        if n == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            n
        }
    }
}

/// Set the calling thread's nice value (`PRIO_PROCESS` with id 0 is the calling thread
/// on Linux, not the whole process).
fn set_nice(n: i32) -> std::io::Result<()> {
    // SAFETY: setpriority has no memory effects.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn jobs_run_in_order_at_the_lowest_priority_and_drain_waits_for_them() {
        let c = Cleaner::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..5 {
            let s = seen.clone();
            drop(c.run(move || {
                std::thread::sleep(Duration::from_millis(2));
                s.lock().unwrap().push((i, nice()));
            }));
        }
        c.drain().await;
        assert_eq!(c.backlog(), 0);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(seen.iter().all(|(_, n)| *n == LOW_NICE), "{seen:?}");
    }

    #[tokio::test]
    async fn a_job_that_waited_runs_at_the_daemons_priority() {
        let base = nice();
        let c = Cleaner::with_max_wait(Duration::from_millis(100));
        let (open, gate) = std::sync::mpsc::channel::<()>();
        // The first job holds the thread while the next ones wait past the limit.
        drop(c.run(move || {
            let _ = gate.recv();
        }));
        let seen = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..3 {
            let s = seen.clone();
            drop(c.run(move || s.lock().unwrap().push(nice())));
        }
        std::thread::sleep(Duration::from_millis(150));
        open.send(()).unwrap();
        c.drain().await;
        // A job queued now has not waited: low again.
        let s = seen.clone();
        c.run(move || s.lock().unwrap().push(nice())).await.unwrap();
        let seen = seen.lock().unwrap();
        // Root may raise the priority back: the jobs that waited ran at the daemon's,
        // the last one at the lowest.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(seen[..3], [base; 3], "{seen:?}");
        }
        assert_eq!(seen.last(), Some(&LOW_NICE), "{seen:?}");
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_others() {
        let c = Cleaner::new();
        drop(c.run(|| panic!("boom")));
        let ran = c.run(|| {});
        tokio::time::timeout(Duration::from_secs(5), ran).await.unwrap().unwrap();
        assert_eq!(c.backlog(), 0);
    }
}
