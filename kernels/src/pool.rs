//! A persistent worker pool (crossbeam parkers, spin-then-park): one call
//! hands `tasks` indices to the caller thread and the workers, which take
//! them from a shared counter. Workers spin briefly after a job so the
//! back-to-back jobs of one planning call do not pay a wake-up each.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::sync::{Parker, Unparker};
use crossbeam::utils::CachePadded;

type Job<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// A job with its lifetime erased; only dereferenced while `Pool::run` waits.
#[derive(Clone, Copy)]
struct RawJob(*const (dyn Fn(usize, usize) + Sync + 'static));
// SAFETY: the pointee is `Sync` and outlives every use (see `Pool::run`).
unsafe impl Send for RawJob {}

struct Shared {
    /// Incremented (Release) after a job is published.
    epoch: CachePadded<AtomicUsize>,
    /// The current job: a type-erased `Job` (fat pointer halves).
    job: Mutex<Option<RawJob>>,
    next: CachePadded<AtomicUsize>,
    tasks: AtomicUsize,
    /// Workers still inside the current job.
    busy: CachePadded<AtomicUsize>,
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
            busy: CachePadded::new(AtomicUsize::new(0)),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let mut unparkers = Vec::new();
        let mut handles = Vec::new();
        for id in 1..threads {
            let parker = Parker::new();
            unparkers.push(parker.unparker().clone());
            let sh = shared.clone();
            let h = std::thread::Builder::new().name(format!("ami-kernels-{id}")).spawn(move || worker(id, sh, parker));
            match h {
                Ok(h) => handles.push(h),
                Err(_) => {
                    unparkers.pop();
                    break;
                }
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
    /// threads (`thread` in `0..threads()`, unique among concurrent calls of
    /// `f`). Returns when all tasks are done. A panic in `f` is re-raised.
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
        // SAFETY: the fat pointer is only dereferenced by workers between the
        // epoch increment below and their `busy` decrement, and this function
        // does not return before `busy` is 0, so `f` outlives every use.
        let raw = RawJob(unsafe { std::mem::transmute::<Job<'_>, Job<'static>>(f) } as *const _);
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(raw);
        sh.next.store(0, Ordering::Relaxed);
        sh.tasks.store(tasks, Ordering::Relaxed);
        sh.busy.store(self.threads - 1, Ordering::Relaxed);
        sh.epoch.fetch_add(1, Ordering::Release);
        for u in &self.unparkers {
            u.unpark();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| loop {
            let i = sh.next.fetch_add(1, Ordering::Relaxed);
            if i >= tasks {
                break;
            }
            f(i, 0);
        }));
        // Spin briefly, then yield: on a busy machine a preempted worker
        // needs the core more than this thread does.
        let mut spins = 0u32;
        while sh.busy.load(Ordering::Acquire) != 0 {
            if spins < 4096 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Err(p) = mine {
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
        loop {
            if sh.shutdown.load(Ordering::Acquire) {
                return;
            }
            let e = sh.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                parker.park_timeout(Duration::from_millis(50));
            } else {
                std::hint::spin_loop();
            }
        }
        let raw = *sh.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(raw) = raw {
            // SAFETY: `raw` was made from a live `Job` by `Pool::run`, which
            // waits for this worker's `busy` decrement before returning.
            let f: Job<'_> = unsafe { &*raw.0 };
            let tasks = sh.tasks.load(Ordering::Relaxed);
            let r = catch_unwind(AssertUnwindSafe(|| loop {
                let i = sh.next.fetch_add(1, Ordering::Relaxed);
                if i >= tasks {
                    break;
                }
                f(i, id);
            }));
            if r.is_err() {
                sh.panicked.store(true, Ordering::Relaxed);
            }
        }
        sh.busy.fetch_sub(1, Ordering::Release);
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
