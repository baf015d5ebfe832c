//! The threads a trial's matrix products share: the calling thread and `threads − 1` helpers,
//! which take the bands of one product at a time.
//!
//! A training step at width 256 runs five products of about 0.1 ms each, with a few microseconds
//! of elementwise work between them. A thread pool that puts idle threads to sleep (rayon does
//! after a few dozen yields) spends much of that waking them: on a virtual machine a futex
//! wake-up takes tens of microseconds. The helpers here spin for a while after each product
//! instead, as OpenMP's threads do under MKL, and only then park.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a helper keeps polling for the next product before it parks.
const SPIN: Duration = Duration::from_micros(200);
/// Polls between two readings of the clock while spinning.
const POLLS_PER_CLOCK_READING: u32 = 256;

/// Whether a thread that has polled `polls` times since `since` should stop spinning.
fn spun_long_enough(polls: u32, since: Instant) -> bool {
    polls.is_multiple_of(POLLS_PER_CLOCK_READING) && since.elapsed() >= SPIN
}

thread_local! {
    /// The team of the trial running on this thread, while [`on_threads`] runs it.
    static CURRENT: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// Runs `work` on the calling thread with a team of `threads` threads (itself and `threads − 1`
/// helpers) for the products inside it; with `threads` at most 1 there are no helpers.
pub fn on_threads<R>(threads: usize, work: impl FnOnce() -> R) -> std::io::Result<R> {
    if threads <= 1 {
        return Ok(work());
    }
    let team = Team::start(threads - 1)?;
    // Declared after `team`, so dropped before it, even when `work` panics.
    let _restore = RestoreTeam(CURRENT.with(|current| current.replace(&team)));
    Ok(work())
}

/// Puts back the calling thread's team when dropped.
struct RestoreTeam(*const Team);

impl Drop for RestoreTeam {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.0));
    }
}

/// Runs `band(0)`, …, `band(count − 1)`, shared between the calling thread and the helpers of
/// its team; all on the calling thread when it has none.
pub fn share_out(count: usize, band: &(dyn Fn(usize) + Sync)) {
    let team = CURRENT.with(Cell::get);
    if team.is_null() || count <= 1 {
        (0..count).for_each(band);
        return;
    }
    // A band that shares out work of its own runs it alone: the team is busy with this product.
    let _restore = RestoreTeam(CURRENT.with(|current| current.replace(std::ptr::null())));
    // SAFETY: `CURRENT` points at a team only while `on_threads`, which owns it, runs on this
    // thread.
    unsafe { &*team }.run(count, band);
}

/// Runs `work(index, chunk)` for each chunk of `chunk_len` values of `values` (the last one
/// shorter), the chunks shared out as [`share_out`] shares bands.
pub fn share_out_chunks(
    values: &mut [f32],
    chunk_len: usize,
    work: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let chunks: Vec<Mutex<&mut [f32]>> = values
        .chunks_mut(chunk_len.max(1))
        .map(Mutex::new)
        .collect();
    share_out(chunks.len(), &|index| {
        let mut chunk = chunks[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(index, &mut chunk);
    });
}

struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

struct Shared {
    /// Bumped for every product handed out; helpers wait for it to change.
    generation: AtomicUsize,
    /// The product being shared out, or null.
    task: AtomicPtr<Task<'static>>,
    /// Helpers that may be reading `task`.
    inside: AtomicUsize,
    stop: AtomicBool,
}

/// One product's bands: taken in order by whichever thread is free.
struct Task<'a> {
    band: &'a (dyn Fn(usize) + Sync),
    count: usize,
    next: AtomicUsize,
    finished: AtomicUsize,
    panicked: AtomicBool,
}

impl Task<'_> {
    /// Takes and runs bands until none is left.
    fn help(&self) {
        loop {
            let band = self.next.fetch_add(1, Ordering::Relaxed);
            if band >= self.count {
                return;
            }
            if catch_unwind(AssertUnwindSafe(|| (self.band)(band))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            self.finished.fetch_add(1, Ordering::Release);
        }
    }
}

impl Team {
    fn start(helpers: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            task: AtomicPtr::new(std::ptr::null_mut()),
            inside: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let mut team = Self {
            shared: Arc::clone(&shared),
            helpers: Vec::with_capacity(helpers),
        };
        for index in 0..helpers {
            let shared = Arc::clone(&shared);
            // On an error `team` is dropped, which stops the helpers already started.
            team.helpers.push(
                thread::Builder::new()
                    .name(format!("products-{}", index + 1))
                    .spawn(move || shared.serve())?,
            );
        }
        Ok(team)
    }

    fn run(&self, count: usize, band: &(dyn Fn(usize) + Sync)) {
        let task = Task {
            band,
            count,
            next: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        };
        let shared = &self.shared;
        shared.task.store(
            (&task as *const Task<'_>).cast_mut().cast(),
            Ordering::SeqCst,
        );
        shared.generation.fetch_add(1, Ordering::SeqCst);
        for helper in &self.helpers {
            helper.thread().unpark();
        }
        task.help();
        // A helper still on a band may have lost its core (a busy host, or more threads than
        // cores): after a while, yield it.
        let waiting_since = Instant::now();
        let mut polls = 0u32;
        while task.finished.load(Ordering::Acquire) < count {
            polls = polls.wrapping_add(1);
            if spun_long_enough(polls, waiting_since) {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // No helper may still hold `task` once this returns.
        shared.task.store(std::ptr::null_mut(), Ordering::SeqCst);
        while shared.inside.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        if task.panicked.load(Ordering::Relaxed) {
            resume_unwind(Box::new(
                "a band of a matrix product panicked on a helper thread",
            ));
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for helper in self.helpers.drain(..) {
            helper.thread().unpark();
            // A helper only panics if its own code does; the trial's result stands either way.
            let _ = helper.join();
        }
    }
}

impl Shared {
    /// A helper's life: wait for a product, help with it, repeat until stopped.
    fn serve(&self) {
        let mut seen = self.generation.load(Ordering::SeqCst);
        loop {
            let idle_since = Instant::now();
            let mut polls = 0u32;
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    return;
                }
                let generation = self.generation.load(Ordering::SeqCst);
                if generation != seen {
                    seen = generation;
                    break;
                }
                polls = polls.wrapping_add(1);
                if spun_long_enough(polls, idle_since) {
                    thread::park();
                } else {
                    std::hint::spin_loop();
                }
            }
            self.inside.fetch_add(1, Ordering::SeqCst);
            let task = self.task.load(Ordering::SeqCst);
            if !task.is_null() {
                // SAFETY: the caller keeps the task alive until `inside` is back to zero, and
                // counted this helper before it loaded the pointer.
                unsafe { &*task }.help();
            }
            self.inside.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many times each band ran, over `products` products of `count` bands each.
    fn band_runs(threads: usize, products: usize, count: usize) -> Vec<usize> {
        let runs: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
        on_threads(threads, || {
            for _ in 0..products {
                share_out(count, &|band| {
                    runs[band].fetch_add(1, Ordering::Relaxed);
                });
            }
        })
        .expect("the helpers start");
        runs.into_iter().map(AtomicUsize::into_inner).collect()
    }

    #[test]
    fn every_band_of_every_product_runs_once() {
        for threads in [1, 2, 3, 8] {
            for count in [1, 2, 5, 16] {
                assert_eq!(
                    band_runs(threads, 2_000, count),
                    vec![2_000; count],
                    "{threads} threads, {count} bands"
                );
            }
        }
    }

    #[test]
    fn helpers_that_have_parked_take_bands_again() {
        on_threads(2, || {
            for _ in 0..3 {
                thread::sleep(SPIN * 5);
                // Each band waits for the other to start, which only a second thread can do.
                let started = AtomicUsize::new(0);
                let threads = std::sync::Mutex::new(std::collections::HashSet::new());
                share_out(2, &|_| {
                    threads
                        .lock()
                        .expect("no band panics")
                        .insert(thread::current().id());
                    started.fetch_add(1, Ordering::SeqCst);
                    let waiting_since = Instant::now();
                    while started.load(Ordering::SeqCst) < 2
                        && waiting_since.elapsed() < Duration::from_secs(10)
                    {
                        thread::yield_now();
                    }
                });
                assert_eq!(threads.into_inner().expect("no band panics").len(), 2);
            }
        })
        .expect("the helpers start");
    }

    #[test]
    fn a_panic_in_a_band_reaches_the_caller_and_the_team_is_stopped() {
        let outcome = catch_unwind(|| {
            on_threads(3, || {
                share_out(8, &|band| assert_ne!(band, 5, "band 5 fails"))
            })
        });
        assert!(outcome.is_err());
        // The calling thread has no team left: bands run on it alone.
        let caller = thread::current().id();
        share_out(3, &|_| assert_eq!(thread::current().id(), caller));
    }

    #[test]
    fn a_band_that_shares_out_work_runs_it_alone() {
        let inner_runs = AtomicUsize::new(0);
        on_threads(2, || {
            share_out(2, &|_| {
                let thread = thread::current().id();
                share_out(3, &|_| {
                    assert_eq!(thread::current().id(), thread);
                    inner_runs.fetch_add(1, Ordering::Relaxed);
                });
            });
            // The team is back for the next product.
            assert!(!CURRENT.with(Cell::get).is_null());
        })
        .expect("the helpers start");
        assert_eq!(inner_runs.into_inner(), 6);
    }

    #[test]
    fn without_a_team_bands_run_in_order_on_the_calling_thread() {
        let order = std::sync::Mutex::new(Vec::new());
        share_out(4, &|band| order.lock().expect("no band panics").push(band));
        assert_eq!(
            order.into_inner().expect("no band panics"),
            vec![0, 1, 2, 3]
        );
    }
}
