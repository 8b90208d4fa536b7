//! [`ChangeFeed`]: a store's change events, for any number of subscribers.

use tokio::sync::broadcast;

use crate::store::ChangeEvent;

/// How many change events a slow subscriber may fall behind before it sees `Lagged`.
const CAPACITY: usize = 1024;

/// The change events of a store: what its
/// [`subscribe`](crate::SessionStore::subscribe) hands out, and where its
/// writes (and, with a feed of other processes' writes, theirs) are
/// published. Every backend here keeps one; so can yours.
///
/// Clones publish to the same subscribers. A subscriber that falls more than
/// 1024 events behind gets
/// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)
/// and should re-read what it cares about. Publishing never blocks, needs no
/// runtime, and does not fail when nobody subscribes.
///
/// ```
/// use arcgis_auth_storage::{ChangeEvent, ChangeFeed, ChangeKind};
///
/// let feed = ChangeFeed::new();
/// let mut events = feed.subscribe();
/// feed.publish(ChangeEvent::resync());
/// assert_eq!(events.try_recv().unwrap().kind, ChangeKind::Resync);
/// ```
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    sender: broadcast::Sender<ChangeEvent>,
}

impl ChangeFeed {
    /// A feed nobody subscribes to yet.
    pub fn new() -> Self {
        ChangeFeed {
            sender: broadcast::channel(CAPACITY).0,
        }
    }

    /// Sends `event` to every current subscriber (none is fine).
    pub fn publish(&self, event: ChangeEvent) {
        let _ = self.sender.send(event);
    }

    /// A receiver of the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.sender.subscribe()
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new()
    }
}
