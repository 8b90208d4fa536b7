//! One run of a piece of work at a time, shared by everyone who asks while it runs.
//!
//! The token manager's renewals, federation's server tokens, the `/rest/info`
//! cache and [`Account`](crate::account::Account)'s cache (a [`Memo`]) all use it. The work runs as
//! a Tokio task of its own, so a caller that stops waiting does not stop it
//! for the others, and a panic in it reaches every waiter as
//! [`Aborted::Panicked`] with its message. Nothing is locked while the work
//! runs: the slot is a `std` mutex held for a few instructions to join or
//! start, and a `watch` channel carries the outcome.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::error::{FlowError, FlowErrorKind, Result};

/// Why a run ended without the work returning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Aborted {
    /// The work panicked; its message (cut to 200 bytes).
    Panicked(String),
    /// The task was dropped before it finished (its runtime shut down).
    Cancelled,
}

/// What every waiter of one run gets.
pub(crate) type Outcome<T> = Result<T, Aborted>;

type Slot<T> = Arc<Mutex<Option<watch::Receiver<Option<Outcome<T>>>>>>;

/// At most one run of some work at a time; see the [module](self).
pub(crate) struct SingleFlight<T> {
    slot: Slot<T>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

/// A run joined or started: wait for it, or drop it to let it go on alone.
#[must_use = "a flight does nothing for the caller unless waited for"]
pub(crate) struct Flight<T> {
    rx: watch::Receiver<Option<Outcome<T>>>,
}

impl<T: Clone> Flight<T> {
    /// Waits for the run to end.
    pub(crate) async fn wait(mut self) -> Outcome<T> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(value) => value.clone().unwrap_or(Err(Aborted::Cancelled)),
            Err(_) => Err(Aborted::Cancelled),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// Joins the run in progress; when there is none, calls `work` (under the
    /// slot's lock, so keep it short) and starts the future it gives on the
    /// current Tokio runtime. `work` returns `None` when no run is needed
    /// after all (a result appeared meanwhile): then nothing starts and this
    /// returns `None`.
    ///
    /// Must be called within a Tokio runtime when a run may start.
    pub(crate) fn join_or_start<F>(&self, work: impl FnOnce() -> Option<F>) -> Option<Flight<T>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut slot = lock(&self.slot);
        if let Some(rx) = slot.as_ref() {
            return Some(Flight { rx: rx.clone() });
        }
        let future = work()?;
        let (tx, rx) = watch::channel(None);
        *slot = Some(rx.clone());
        drop(slot);
        let guard = ClearOnDrop {
            slot: Arc::clone(&self.slot),
            rx: Some(rx.clone()),
        };
        tokio::spawn(run(future, tx, guard));
        Some(Flight { rx })
    }

    /// Joins the run in progress, if any.
    pub(crate) fn current(&self) -> Option<Flight<T>> {
        lock(&self.slot)
            .as_ref()
            .map(|rx| Flight { rx: rx.clone() })
    }

    /// Lets the run in progress go on without new callers: the next call to
    /// [`join_or_start`](Self::join_or_start) starts a new one. (Its result is
    /// then the caller's to discard; waiters already joined still get it.)
    pub(crate) fn detach(&self) {
        lock(&self.slot).take();
    }

    /// Whether a run is in progress.
    pub(crate) fn is_running(&self) -> bool {
        lock(&self.slot).is_some()
    }
}

/// What a caller gets when the run it waited for ended without an answer.
pub(crate) fn aborted(aborted: Aborted, what: &str) -> FlowError {
    match aborted {
        Aborted::Panicked(message) => FlowError::new(
            FlowErrorKind::Interrupted,
            format!("{what} panicked (a bug): {message}; try again"),
        ),
        Aborted::Cancelled => FlowError::new(
            FlowErrorKind::Interrupted,
            format!(
                "{what} was interrupted before it finished (was the runtime shutting down?): try again"
            ),
        ),
    }
}

/// A value fetched once and kept until forgotten; the fetch is one run
/// shared by every caller that asks while it goes on. A failed fetch is not
/// kept: the next caller fetches again.
pub(crate) struct Memo<V> {
    kept: Arc<Mutex<Kept<V>>>,
    flight: SingleFlight<Result<V>>,
}

struct Kept<V> {
    value: Option<V>,
    /// Bumped by [`Memo::forget`]: a fetch started before keeps nothing.
    generation: u64,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            kept: Arc::new(Mutex::new(Kept {
                value: None,
                generation: 0,
            })),
            flight: SingleFlight::default(),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Memo<V> {
    /// The kept value, or the one the run in progress fetches, or the one
    /// the future `fetch` gives (started as the run, if none is going on).
    /// `what` names the fetch in errors.
    pub(crate) async fn get_or_fetch<F>(&self, what: &str, fetch: impl FnOnce() -> F) -> Result<V>
    where
        F: Future<Output = Result<V>> + Send + 'static,
    {
        if let Some(value) = lock(&self.kept).value.clone() {
            return Ok(value);
        }
        let mut found = None;
        let flight = self.flight.join_or_start(|| {
            // A run may have ended between the look above and the slot.
            let kept = lock(&self.kept);
            if let Some(value) = &kept.value {
                found = Some(value.clone());
                return None;
            }
            let generation = kept.generation;
            drop(kept);
            let into = Arc::clone(&self.kept);
            let fetching = fetch();
            Some(async move {
                let result = fetching.await;
                if let Ok(value) = &result {
                    let mut kept = lock(&into);
                    if kept.generation == generation {
                        kept.value = Some(value.clone());
                    }
                }
                result
            })
        });
        match (flight, found) {
            (_, Some(value)) => Ok(value),
            (Some(flight), None) => flight
                .wait()
                .await
                .unwrap_or_else(|a| Err(aborted(a, what))),
            (None, None) => Err(aborted(Aborted::Cancelled, what)),
        }
    }

    /// Forgets the kept value; a fetch in progress keeps nothing.
    pub(crate) fn forget(&self) {
        let mut kept = lock(&self.kept);
        kept.value = None;
        kept.generation += 1;
        drop(kept);
        self.flight.detach();
    }
}

/// Runs `future` as a task of its own (so a panic is caught as such), then
/// frees the slot and hands the outcome to every waiter.
async fn run<T, F>(future: F, tx: watch::Sender<Option<Outcome<T>>>, mut guard: ClearOnDrop<T>)
where
    T: Send + Sync + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let outcome = match tokio::spawn(future).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => {
            let message = panic_message(e.into_panic());
            tracing::error!(panic = %message, "a background run panicked (a bug in the code it ran)");
            Err(Aborted::Panicked(message))
        }
        Err(_) => Err(Aborted::Cancelled),
    };
    // Freed and sent under the lock: a caller that finds the slot free also
    // finds whatever the work installed before it returned.
    let mut slot = lock(&guard.slot);
    if let Some(rx) = guard.rx.take()
        && slot.as_ref().is_some_and(|mine| mine.same_channel(&rx))
    {
        *slot = None;
    }
    // Nobody listening is fine: every caller may have given up.
    let _ = tx.send(Some(outcome));
}

/// Frees the slot if the run is dropped before it ends (its runtime shut
/// down), so the next caller starts a new run instead of waiting forever.
struct ClearOnDrop<T> {
    slot: Slot<T>,
    rx: Option<watch::Receiver<Option<Outcome<T>>>>,
}

impl<T> Drop for ClearOnDrop<T> {
    fn drop(&mut self) {
        let Some(rx) = self.rx.take() else {
            return;
        };
        let mut slot = lock(&self.slot);
        if slot.as_ref().is_some_and(|mine| mine.same_channel(&rx)) {
            *slot = None;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A panic's message, cut to 200 bytes.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let mut text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_run() {
        let flight = Arc::new(SingleFlight::<usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut waiters = Vec::new();
        for _ in 0..50 {
            let runs = Arc::clone(&runs);
            let joined = flight
                .join_or_start(|| {
                    Some(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                })
                .unwrap();
            waiters.push(joined);
        }
        for w in waiters {
            assert_eq!(w.wait().await, Ok(1));
        }
        assert!(!flight.is_running());
        // The next call starts a new run.
        let again = flight.join_or_start(|| Some(async { 7 })).unwrap();
        assert_eq!(again.wait().await, Ok(7));
    }

    #[tokio::test]
    async fn a_panic_reaches_every_waiter_with_its_message_and_frees_the_slot() {
        let flight = SingleFlight::<usize>::default();
        let joined = flight
            .join_or_start(|| {
                Some(async {
                    tokio::task::yield_now().await;
                    panic!("boom in the work")
                })
            })
            .unwrap();
        let other = flight.current().unwrap();
        assert_eq!(
            joined.wait().await,
            Err(Aborted::Panicked("boom in the work".into()))
        );
        assert_eq!(
            other.wait().await,
            Err(Aborted::Panicked("boom in the work".into()))
        );
        assert!(!flight.is_running());
    }

    #[tokio::test]
    async fn nothing_starts_when_the_work_is_not_needed() {
        let flight = SingleFlight::<usize>::default();
        assert!(
            flight
                .join_or_start(|| None::<std::future::Ready<usize>>)
                .is_none()
        );
        assert!(!flight.is_running());
    }

    #[tokio::test(start_paused = true)]
    async fn a_detached_run_goes_on_and_does_not_free_its_successor() {
        let flight = SingleFlight::<&'static str>::default();
        let old = flight
            .join_or_start(|| {
                Some(async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    "old"
                })
            })
            .unwrap();
        flight.detach();
        let new = flight
            .join_or_start(|| {
                Some(async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "new"
                })
            })
            .unwrap();
        assert_eq!(old.wait().await, Ok("old"));
        // The old run ended; the new one still owns the slot.
        assert!(flight.is_running());
        assert_eq!(new.wait().await, Ok("new"));
        assert!(!flight.is_running());
    }

    #[tokio::test(start_paused = true)]
    async fn a_memo_fetches_once_for_concurrent_callers_and_keeps_nothing_after_forget() {
        let memo = Arc::new(Memo::<usize>::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let fetch = |fetches: &Arc<AtomicUsize>| {
            let fetches = Arc::clone(fetches);
            move || async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(fetches.fetch_add(1, Ordering::SeqCst) + 1)
            }
        };
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let memo = Arc::clone(&memo);
            let fetch = fetch(&fetches);
            tasks.push(tokio::spawn(async move {
                memo.get_or_fetch("the test fetch", fetch).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 1);
        }
        assert_eq!(memo.get_or_fetch("x", fetch(&fetches)).await.unwrap(), 1);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Forgotten while a fetch runs: that fetch keeps nothing.
        memo.forget();
        let slow = {
            let memo = Arc::clone(&memo);
            let fetch = fetch(&fetches);
            tokio::spawn(async move { memo.get_or_fetch("x", fetch).await })
        };
        tokio::task::yield_now().await;
        memo.forget();
        assert_eq!(slow.await.unwrap().unwrap(), 2);
        assert_eq!(memo.get_or_fetch("x", fetch(&fetches)).await.unwrap(), 3);
    }

    #[test]
    fn a_run_dropped_with_its_runtime_frees_the_slot() {
        let flight = SingleFlight::<usize>::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let joined = rt.block_on(async {
            flight
                .join_or_start(|| Some(std::future::pending::<usize>()))
                .unwrap()
        });
        drop(rt);
        assert!(!flight.is_running());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(joined.wait()), Err(Aborted::Cancelled));
    }
}
