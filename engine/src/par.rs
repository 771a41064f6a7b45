//! CPU work spread over scoped threads in small chunks that each thread claims when it is free,
//! so that all threads finish together: halves fixed in advance left one core idle at the end
//! of every large ingest while the other finished its half (a preempted thread, or a last
//! chunk shorter than the rest). Threads for CPU parallelism only; no I/O.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The cores this process may use, asked once: the standard library reads the cgroup files on
/// every call, which cost about 0.13 ms per ingest of one message (measured on the latency path).
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

/// How many chunks each thread gets on average: enough that the last one to finish ends at
/// most a quarter of its share after the others.
const CHUNKS_PER_THREAD: usize = 4;

/// A chunk size for `n` items on `threads` threads, within `min..=max` (a lower bound keeps a
/// batch verification worth its set-up; an upper bound keeps the first error early). One
/// thread gains nothing from finer chunks: it gets `max`.
pub fn chunk_size(n: usize, threads: usize, min: usize, max: usize) -> usize {
    let (min, max) = (min.max(1), max.max(min).max(1));
    if threads <= 1 {
        return max;
    }
    n.div_ceil(threads * CHUNKS_PER_THREAD).clamp(min, max)
}

/// Runs `f(offset, chunk)` over `items` cut into chunks of `chunk`, on up to `threads` threads,
/// the calling thread among them. Returns each chunk's result in order; `None` for a chunk whose
/// `f` panicked (the thread goes on with the next chunk).
pub fn map_chunks<T, R, F>(items: &[T], chunk: usize, threads: usize, f: F) -> Vec<Option<R>>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &[T]) -> R + Sync,
{
    let chunk = chunk.max(1);
    let count = items.len().div_ceil(chunk);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return done;
            }
            let part = &items[i * chunk..((i + 1) * chunk).min(items.len())];
            done.push((i, catch_unwind(AssertUnwindSafe(|| f(i * chunk, part))).ok()));
        }
    };
    let threads = threads.clamp(1, count.max(1));
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(count).collect();
    let mut place = |done: Vec<(usize, Option<R>)>| {
        for (i, r) in done {
            out[i] = r;
        }
    };
    if threads == 1 {
        place(work());
        return out;
    }
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        place(work());
        // `work` catches every panic of `f`, so a helper cannot fail; if one did, its chunks
        // stay `None`, as if `f` had panicked on them.
        for h in helpers {
            if let Ok(done) = h.join() {
                place(done);
            }
        }
    });
    out
}

/// Lowers the calling thread's priority by [`NICER`] (Linux; elsewhere a no-op), for threads
/// of background upkeep that nobody waits on directly (fjall's flush and compaction workers):
/// under contention the writer, which holds the node while it commits, runs first. Helpers
/// that verify and open incoming entries keep their priority: delivery waits on them.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = Some(rustix::thread::gettid());
        let now = rustix::process::getpriority_process(me).unwrap_or(0);
        let _ = rustix::process::setpriority_process(me, (now + NICER).min(19));
    }
}

/// How much lower than its own priority a thread sets with [`lower_priority`] (nice values;
/// an unprivileged process can lower a thread's priority but never raise it back).
#[cfg(target_os = "linux")]
const NICER: i32 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_mapped_once_and_in_order_on_any_number_of_threads() {
        let items: Vec<u32> = (0..1000).collect();
        for threads in [1, 2, 3, 8] {
            for chunk in [1, 7, 64, 1000, 5000] {
                let out = map_chunks(&items, chunk, threads, |off, c| (off, c.iter().sum::<u32>()));
                assert_eq!(out.len(), 1000usize.div_ceil(chunk));
                let mut total = 0;
                for (i, r) in out.into_iter().enumerate() {
                    let (off, sum) = r.expect("no panic");
                    assert_eq!(off, i * chunk);
                    total += sum;
                }
                assert_eq!(total, items.iter().sum::<u32>(), "{threads} threads, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn a_panicking_chunk_is_none_and_the_others_still_run() {
        let items: Vec<u32> = (0..100).collect();
        for threads in [1, 2] {
            let out = map_chunks(&items, 10, threads, |off, c| {
                assert!(off != 30, "chunk at 30 fails");
                c.len()
            });
            let missing: Vec<usize> = out.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect();
            assert_eq!(missing, vec![3]);
            assert_eq!(out.iter().flatten().sum::<usize>(), 90);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn lowering_the_priority_affects_the_calling_thread_alone() {
        let mine = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).expect("getpriority");
        let before = mine();
        let lowered = std::thread::spawn(move || {
            lower_priority();
            mine()
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, (before + NICER).min(19));
        assert_eq!(mine(), before, "the caller keeps its priority");
    }

    #[test]
    fn an_empty_input_maps_to_nothing() {
        assert!(map_chunks(&[] as &[u8], 16, 4, |_, c| c.len()).is_empty());
    }

    #[test]
    fn chunk_sizes_stay_in_bounds_and_give_each_thread_several() {
        assert_eq!(chunk_size(300, 2, 32, 256), 38);
        assert_eq!(chunk_size(10, 2, 32, 256), 32);
        assert_eq!(chunk_size(100_000, 2, 32, 256), 256);
        assert_eq!(chunk_size(300, 1, 32, 256), 256);
        assert_eq!(chunk_size(0, 0, 0, 0), 1);
    }
}
