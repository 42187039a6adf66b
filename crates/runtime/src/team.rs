//! A session's worker threads: a team that the thread running the plan hands each parallel
//! section to, working on the section's tasks itself alongside the workers.
//!
//! Between sections the workers spin for [`SPIN`] before they sleep, so that the next
//! section of a run starts without waking a sleeping thread: that hand-over (a futex wake and
//! the scheduler's latency, tens of microseconds on a virtual machine) costs about as much as
//! a batch-1 layer's work. ONNX Runtime's intra-op pool and OpenMP teams spin the same way.
//!
//! Tasks are claimed one at a time from a shared counter, so uneven tasks balance. The
//! caller never waits for a worker that has not claimed a task: it claims whatever is left
//! itself, so a busy, descheduled or sleeping worker costs time, never progress. Tasks are
//! leaves: a section entered inside a task (or while another thread has the team) runs its
//! tasks in order on the thread that entered it.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a worker spins for the next section after the last one it saw ended, before it
/// sleeps until woken.
pub(crate) const SPIN: Duration = Duration::from_micros(200);

/// Bits of the section state given to the task count and to the next task's index.
const COUNT_BITS: u32 = 20;
/// Most tasks one published round holds; a section with more runs in rounds.
const MAX_ROUND: usize = (1 << COUNT_BITS) - 1;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

thread_local! {
    /// Set on a team's workers, and on the caller while it runs one of a section's tasks.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs a task of a section (where kernels must stay single-threaded).
pub(crate) fn in_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// A section's task body, its lifetime erased while it is published (see [`Shared::run`]).
type TaskFn = &'static (dyn Fn(usize) + Sync);

/// The section state, in one word so that it changes atomically: a generation (bumped per
/// published round) and the round's unclaimed tasks, `next..end`. The caller claims from the
/// front and the workers from the back, so that with two threads each works through one
/// contiguous run of tasks (neighbouring rows share input rows and prefetched lines).
fn pack(generation: u64, end: u64, next: u64) -> u64 {
    (generation << (2 * COUNT_BITS)) | (end << COUNT_BITS) | next
}

fn unpack(state: u64) -> (u64, u64, u64) {
    (
        state >> (2 * COUNT_BITS),
        (state >> COUNT_BITS) & COUNT_MASK,
        state & COUNT_MASK,
    )
}

/// What the caller and the workers share.
pub(crate) struct Shared {
    /// Generation and unclaimed tasks (see [`pack`]).
    state: AtomicU64,
    /// The published round's task body: points at a [`TaskFn`] on the publishing caller's
    /// stack, valid until the round's `remaining` reaches 0.
    job: AtomicPtr<TaskFn>,
    /// Tasks of the published round not yet finished.
    remaining: AtomicUsize,
    /// The first panic of a task of the running section, for the caller to resume.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Held by the thread publishing sections: one caller at a time.
    publishing: Mutex<()>,
    /// Workers asleep (or about to be) on `wake`.
    sleepers: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    /// Threads working on a section: the workers and the caller.
    threads: usize,
}

impl Shared {
    /// The threads a section is spread over, the caller included.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(i)` for every `i` in `0..tasks`, each exactly once, spread over the team and
    /// this thread; returns when all have finished. Runs them in order on this thread when
    /// it is inside a task or another thread is using the team. A panic in a task is resumed
    /// here once every task has finished.
    pub(crate) fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if tasks == 0 {
            return;
        }
        let publishing = if tasks < 2 || in_task() {
            None
        } else {
            match self.publishing.try_lock() {
                Ok(guard) => Some(guard),
                // A task's panic resumed on a caller poisoned the lock; the team is fine.
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        };
        let Some(_publishing) = publishing else {
            let was_in_task = IN_TASK.with(|t| t.replace(true));
            let result = catch_unwind(AssertUnwindSafe(|| (0..tasks).for_each(f)));
            IN_TASK.with(|t| t.set(was_in_task));
            if let Err(payload) = result {
                resume_unwind(payload);
            }
            return;
        };
        let mut first = 0;
        while first < tasks {
            let round = (tasks - first).min(MAX_ROUND);
            let offset = first;
            self.run_round(round, &|i| f(offset + i));
            first += round;
        }
    }

    /// One published round of at most [`MAX_ROUND`] tasks (the caller holds `publishing`).
    #[allow(unsafe_code)] // erasing the lifetime of the published task body
    fn run_round(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        // SAFETY: only the lifetime changes. Workers reach `body` through `job` only after
        // claiming one of this round's tasks, and this function returns only when every
        // claimed task has finished (`remaining` 0, below): no use outlives `f` or `body`.
        let body: TaskFn = unsafe {
            std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f)
        };
        self.remaining.store(tasks, Ordering::Relaxed);
        self.job
            .store(std::ptr::from_ref(&body).cast_mut(), Ordering::Relaxed);
        let (generation, _, _) = unpack(self.state.load(Ordering::Relaxed));
        // SeqCst: ordered before the `sleepers` load below (see `Shared::sleep`); also a
        // release of `job` and `remaining` to whoever claims a task.
        self.state
            .store(pack(generation + 1, tasks as u64, 0), Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.sleep_lock.lock();
            self.wake.notify_all();
        }
        self.work(false);
        let mut spins = 0u32;
        while self.remaining.load(Ordering::Acquire) > 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let panic = self.panic.lock().ok().and_then(|mut p| p.take());
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }

    /// Claims and runs tasks of the published round, from the back of the unclaimed ones or
    /// the front, until none is left.
    #[allow(unsafe_code)] // reading the published task body
    fn work(&self, from_back: bool) {
        loop {
            let state = self.state.load(Ordering::Acquire);
            let (_, end, next) = unpack(state);
            if next >= end {
                return;
            }
            let (claimed, task) = if from_back {
                (state - (1 << COUNT_BITS), end - 1)
            } else {
                (state + 1, next)
            };
            if self
                .state
                .compare_exchange_weak(state, claimed, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // SAFETY: the claim succeeded on this round's state, which the publisher stored
            // (release) after `job`; the publisher waits for this task's `remaining`
            // decrement before it returns or publishes again, so `job` points at this
            // round's live task body.
            let body: TaskFn = unsafe { *self.job.load(Ordering::Acquire) };
            let was_in_task = IN_TASK.with(|t| t.replace(true));
            let result = catch_unwind(AssertUnwindSafe(|| body(task as usize)));
            IN_TASK.with(|t| t.set(was_in_task));
            if let Err(payload) = result {
                if let Ok(mut slot) = self.panic.lock() {
                    slot.get_or_insert(payload);
                }
            }
            self.remaining.fetch_sub(1, Ordering::Release);
        }
    }

    /// Sleeps until the state leaves `seen` or the team shuts down.
    fn sleep(&self, seen: u64) {
        let Ok(mut guard) = self.sleep_lock.lock() else {
            return;
        };
        // SeqCst pairs with the publisher's store of `state` and load of `sleepers`: either
        // it sees this worker counted and wakes it (under `sleep_lock`, so not before the
        // wait below), or this load sees its new state.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        while self.state.load(Ordering::SeqCst) == seen && !self.shutdown.load(Ordering::SeqCst) {
            guard = match self.wake.wait(guard) {
                Ok(g) => g,
                Err(_) => break,
            };
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// A worker's life: run tasks, spin for the next round, sleep when none comes.
    fn worker(&self) {
        IN_TASK.with(|t| t.set(true));
        while !self.shutdown.load(Ordering::Acquire) {
            self.work(true);
            let seen = self.state.load(Ordering::Acquire);
            let since = Instant::now();
            let mut spins = 0u32;
            loop {
                if self.state.load(Ordering::Acquire) != seen
                    || self.shutdown.load(Ordering::Acquire)
                {
                    break;
                }
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(256) {
                    if since.elapsed() > SPIN {
                        self.sleep(seen);
                        break;
                    }
                    // Let a thread that needs this core (the caller, when threads
                    // outnumber cores) have it.
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

/// The worker threads of a session with more than one thread; dropping it stops and joins
/// them.
pub(crate) struct Team {
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Team {
    /// A team spreading sections over `threads` threads: the caller and `threads - 1`
    /// workers. Errors with the operating system's message when a thread cannot be spawned.
    pub(crate) fn new(threads: usize) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            remaining: AtomicUsize::new(0),
            panic: Mutex::new(None),
            publishing: Mutex::new(()),
            sleepers: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            threads: threads.max(1),
        });
        let mut team = Team {
            shared,
            workers: Vec::new(),
        };
        for i in 1..threads.max(1) {
            let shared = Arc::clone(&team.shared);
            let handle = std::thread::Builder::new()
                .name(format!("ckpt-worker-{i}"))
                .spawn(move || shared.worker())?;
            team.workers.push(handle);
        }
        Ok(team)
    }

    /// What the caller's thread hands sections to.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team")
            .field("threads", &self.shared.threads)
            .finish_non_exhaustive()
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Ok(_guard) = self.shared.sleep_lock.lock() {
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_task_runs_once_and_some_on_the_workers() {
        let Ok(team) = Team::new(3) else {
            return;
        };
        let caller = std::thread::current().id();
        for tasks in [0usize, 1, 2, 7, 1000] {
            let counts: Vec<AtomicU32> = (0..tasks).map(|_| AtomicU32::new(0)).collect();
            let elsewhere = AtomicUsize::new(0);
            team.shared().run(tasks, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
                if std::thread::current().id() != caller {
                    elsewhere.fetch_add(1, Ordering::Relaxed);
                }
                // Inside a task, kernels see one thread, and nested sections run in order.
                assert!(in_task());
                let order = Mutex::new(Vec::new());
                team.shared().run(3, &|j| {
                    if let Ok(mut o) = order.lock() {
                        o.push(j);
                    }
                });
                assert_eq!(
                    order.lock().map(|o| o.clone()).unwrap_or_default(),
                    [0, 1, 2]
                );
                std::thread::sleep(Duration::from_micros(50));
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
            // A thousand tasks of 50 µs give the workers 50 ms to join in, even on a
            // loaded machine.
            if tasks >= 1000 {
                assert!(elsewhere.load(Ordering::Relaxed) > 0, "{tasks} tasks");
            }
        }
        assert!(!in_task());
    }

    /// Runs `tasks` tasks of 200 µs each on `team`, checks each ran once, and returns how
    /// many ran off the calling thread.
    fn sleeping_tasks_off_the_caller(team: &Team, tasks: usize) -> usize {
        let caller = std::thread::current().id();
        let counts: Vec<AtomicU32> = (0..tasks).map(|_| AtomicU32::new(0)).collect();
        let elsewhere = AtomicUsize::new(0);
        team.shared().run(tasks, &|i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
            if std::thread::current().id() != caller {
                elsewhere.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_micros(200));
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        elsewhere.load(Ordering::Relaxed)
    }

    #[test]
    fn sleeping_workers_wake_for_the_next_section() {
        let Ok(team) = Team::new(2) else {
            return;
        };
        for _ in 0..3 {
            std::thread::sleep(SPIN * 5);
            assert!(sleeping_tasks_off_the_caller(&team, 200) > 0);
        }
    }

    #[test]
    fn a_panicking_task_panics_the_caller_after_the_others_finish() {
        let Ok(team) = Team::new(2) else {
            return;
        };
        let finished = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.shared().run(16, &|i| {
                if i == 3 {
                    panic!("task 3");
                }
                std::thread::sleep(Duration::from_micros(100));
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 15);
        assert!(!in_task());
        // The team still works, its workers included.
        assert!(sleeping_tasks_off_the_caller(&team, 100) > 0);
    }

    #[test]
    fn two_callers_share_a_team() {
        let Ok(team) = Team::new(2) else {
            return;
        };
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..200 {
                        team.shared().run(8, &|i| {
                            total.fetch_add(i, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 2 * 200 * 28);
    }
}
