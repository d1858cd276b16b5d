//! Blocking work spread over a few OS threads, one per core: packing and hashing are bound by
//! CPU and disk, not by waiting, so they do not belong on the async runtime.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `work` on every item on up to one thread per core, starting items in the order given;
/// results come back in that order. After an error no new item starts, and the first error in
/// item order is returned.
pub fn try_map<T, R, E>(items: &[T], work: impl Fn(&T) -> Result<R, E> + Sync) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R, E>>>> =
        Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(item);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().expect("results lock")[i] = Some(result);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for result in results.into_inner().expect("results lock") {
        match result {
            Some(Ok(value)) => out.push(value),
            Some(Err(err)) => {
                first_error.get_or_insert(err);
            }
            // Not started because an item failed; that error is returned.
            None => {}
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_item_order() {
        let items: Vec<u64> = (0..50).collect();
        let squares = try_map(&items, |&n| Ok::<_, ()>(n * n)).unwrap();
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert_eq!(
            try_map(&[] as &[u8], |_| Ok::<u8, ()>(0)).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn the_first_error_is_returned() {
        let items: Vec<u32> = (0..20).collect();
        let err = try_map(&items, |&n| if n == 3 { Err(n) } else { Ok(n) }).unwrap_err();
        assert_eq!(err, 3);
    }
}
