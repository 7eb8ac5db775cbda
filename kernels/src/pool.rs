//! A persistent worker pool (crossbeam parkers, spin-then-park): one call
//! hands `tasks` indices to the caller thread and the workers, which claim
//! them from a shared counter. Workers spin briefly after a job so the
//! back-to-back jobs of one planning call do not pay a wake-up each.
//!
//! The caller waits for the *tasks*, not for the workers: a worker that is
//! not running when a job is published (parked, or preempted on a busy
//! machine) simply finds no task left when it wakes, so a loaded machine
//! degrades towards single-thread speed instead of waiting for a time slice.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::sync::{Parker, Unparker};
use crossbeam::utils::CachePadded;

type Job<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// A job with its lifetime erased; only dereferenced by workers registered
/// in `Shared::active`, which `Pool::run` waits for before returning.
#[derive(Clone, Copy)]
struct RawJob(*const (dyn Fn(usize, usize) + Sync + 'static));
// SAFETY: the pointee is `Sync` and outlives every use (see `Pool::run`).
unsafe impl Send for RawJob {}

struct Shared {
    /// Incremented (Release) after a job is published.
    epoch: CachePadded<AtomicUsize>,
    /// The current job and its epoch; `None` once its tasks are done.
    job: Mutex<Option<(RawJob, usize)>>,
    /// Next task index to claim.
    next: CachePadded<AtomicUsize>,
    tasks: AtomicUsize,
    /// Tasks finished.
    done: CachePadded<AtomicUsize>,
    /// Workers holding the current job.
    active: CachePadded<AtomicUsize>,
    panicked: AtomicBool,
    shutdown: AtomicBool,
}

/// A pool of `threads - 1` persistent workers plus the calling thread.
pub struct Pool {
    threads: usize,
    shared: Arc<Shared>,
    unparkers: Vec<Unparker>,
    handles: Vec<JoinHandle<()>>,
    call: Mutex<()>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("threads", &self.threads).finish()
    }
}

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// Spins a little, then yields, until `cond` holds.
fn wait_until(cond: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !cond() {
        if spins < 4096 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

impl Pool {
    /// A pool running jobs on `threads` threads (at least 1; the caller is
    /// one of them).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            epoch: CachePadded::new(AtomicUsize::new(0)),
            job: Mutex::new(None),
            next: CachePadded::new(AtomicUsize::new(0)),
            tasks: AtomicUsize::new(0),
            done: CachePadded::new(AtomicUsize::new(0)),
            active: CachePadded::new(AtomicUsize::new(0)),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let mut unparkers = Vec::new();
        let mut handles = Vec::new();
        for id in 1..threads {
            let parker = Parker::new();
            let unparker = parker.unparker().clone();
            let sh = shared.clone();
            match std::thread::Builder::new().name(format!("ami-kernels-{id}")).spawn(move || worker(id, sh, parker)) {
                Ok(h) => {
                    handles.push(h);
                    unparkers.push(unparker);
                }
                Err(_) => break,
            }
        }
        let threads = handles.len() + 1;
        Self { threads, shared, unparkers, handles, call: Mutex::new(()) }
    }

    /// Threads that run jobs (workers + the caller).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(task, thread)` for every `task` in `0..tasks`, spread over the
    /// threads (`thread` in `0..threads()`, never used by two concurrent calls
    /// of `f`). Returns when all tasks are done. A panic in `f` is re-raised.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        if tasks == 0 {
            return;
        }
        if self.threads == 1 || tasks == 1 {
            for i in 0..tasks {
                f(i, 0);
            }
            return;
        }
        let _guard = self.call.lock().unwrap_or_else(|e| e.into_inner());
        let sh = &*self.shared;
        // SAFETY: only the lifetime is erased. Workers dereference the job
        // only after registering in `active` under the `job` lock while the
        // job is published, and this function unpublishes it and waits for
        // `active` to drop to 0 before returning, so `f` outlives every use.
        let raw = RawJob(unsafe { std::mem::transmute::<Job<'_>, Job<'static>>(f) } as *const _);
        sh.next.store(0, Ordering::Relaxed);
        sh.done.store(0, Ordering::Relaxed);
        sh.tasks.store(tasks, Ordering::Relaxed);
        let epoch = sh.epoch.load(Ordering::Relaxed) + 1;
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = Some((raw, epoch));
        sh.epoch.store(epoch, Ordering::Release);
        for u in &self.unparkers {
            u.unpark();
        }
        let mut payload = None;
        loop {
            let i = sh.next.fetch_add(1, Ordering::Relaxed);
            if i >= tasks {
                break;
            }
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i, 0))) {
                payload.get_or_insert(p);
            }
            sh.done.fetch_add(1, Ordering::Release);
        }
        wait_until(|| sh.done.load(Ordering::Acquire) >= tasks);
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        wait_until(|| sh.active.load(Ordering::Acquire) == 0);
        if let Some(p) = payload {
            std::panic::resume_unwind(p);
        }
        if sh.panicked.swap(false, Ordering::Relaxed) {
            panic!("a kernel worker thread panicked");
        }
    }
}

fn worker(id: usize, sh: Arc<Shared>, parker: Parker) {
    let mut seen = 0usize;
    loop {
        // Wait for a new epoch: spin a while, then park.
        let start = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            if sh.shutdown.load(Ordering::Acquire) {
                return;
            }
            let e = sh.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                parker.park_timeout(Duration::from_millis(50));
            } else {
                std::hint::spin_loop();
            }
        };
        seen = epoch;
        let job = {
            let guard = sh.job.lock().unwrap_or_else(|e| e.into_inner());
            match *guard {
                Some((raw, e)) if e == epoch => {
                    sh.active.fetch_add(1, Ordering::AcqRel);
                    Some(raw)
                }
                _ => None,
            }
        };
        let Some(raw) = job else { continue };
        // SAFETY: registered in `active` while the job was published; the
        // caller of `Pool::run` keeps `f` alive until `active` is 0.
        let f: Job<'_> = unsafe { &*raw.0 };
        let tasks = sh.tasks.load(Ordering::Relaxed);
        loop {
            let i = sh.next.fetch_add(1, Ordering::Relaxed);
            if i >= tasks {
                break;
            }
            if catch_unwind(AssertUnwindSafe(|| f(i, id))).is_err() {
                sh.panicked.store(true, Ordering::Relaxed);
            }
            sh.done.fetch_add(1, Ordering::Release);
        }
        sh.active.fetch_sub(1, Ordering::Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for u in &self.unparkers {
            u.unpark();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_and_panics_propagate() {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads);
            for tasks in [0, 1, 3, 100] {
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                let seen_threads = Mutex::new(std::collections::BTreeSet::new());
                pool.run(tasks, &|i, t| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                    seen_threads.lock().unwrap().insert(t);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                assert!(seen_threads.lock().unwrap().iter().all(|&t| t < pool.threads()));
            }
            let r = catch_unwind(AssertUnwindSafe(|| pool.run(8, &|i, _| assert!(i != 5, "task 5 fails"))));
            assert!(r.is_err());
            // The pool still works after a panic.
            let n = AtomicUsize::new(0);
            pool.run(10, &|_, _| {
                n.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(n.load(Ordering::Relaxed), 10);
        }
    }
}
