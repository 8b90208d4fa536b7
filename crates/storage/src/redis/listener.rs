//! The pub/sub listener: other processes' change messages on the
//! `<prefix>:changes` channel, turned into change events.

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use redis::Client;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::messages::{Message, echo_prefix};
use crate::feed::ChangeFeed;
use crate::store::ChangeEvent;

/// A store's listener: what it takes to start it later, from a synchronous
/// `subscribe()` that may run outside any runtime, and (once started) its
/// task, aborted when the store is dropped.
pub(super) struct Listener {
    /// `None` with `remote_events(false)`.
    remote: Option<Remote>,
    /// The task, started by the first `subscribe()`.
    task: OnceLock<JoinHandle<()>>,
}

struct Remote {
    client: Client,
    runtime: Handle,
}

impl Listener {
    /// A listener that will subscribe with `client` on `runtime`.
    pub(super) fn new(client: Client, runtime: Handle) -> Self {
        Listener {
            remote: Some(Remote { client, runtime }),
            task: OnceLock::new(),
        }
    }

    /// A listener that never starts (remote events are off).
    pub(super) fn off() -> Self {
        Listener {
            remote: None,
            task: OnceLock::new(),
        }
    }

    /// Whether remote events are on.
    pub(super) fn is_on(&self) -> bool {
        self.remote.is_some()
    }

    /// Whether the task was started.
    pub(super) fn is_running(&self) -> bool {
        self.task.get().is_some()
    }

    /// Starts the task unless it runs already (or remote events are off),
    /// forwarding messages on `channel` not from `origin` to `events`.
    /// Concurrent callers start one task between them.
    pub(super) fn start(&self, channel: &str, origin: &str, events: &ChangeFeed) {
        let Some(remote) = &self.remote else {
            return;
        };
        self.task.get_or_init(|| {
            // The task holds no reference to the store, so dropping the last
            // store clone drops this listener, which stops it.
            remote.runtime.spawn(listen(
                remote.client.clone(),
                channel.to_owned(),
                echo_prefix(origin),
                events.clone(),
            ))
        });
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Forwards other processes' change messages to `events`, reconnecting with
/// backoff when the subscription drops, and sends a `Resync` each time the
/// subscription is confirmed. Runs until the store is dropped.
async fn listen(client: Client, channel: String, echo_prefix: Vec<u8>, events: ChangeFeed) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    tracing::debug!("subscribed to Redis change messages; sending a resync");
                    // Whatever was published before this point was missed.
                    events.publish(ChangeEvent::resync());
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let payload = msg.get_payload_bytes();
                        if payload.starts_with(&echo_prefix) {
                            continue; // Our own write, already delivered.
                        }
                        let Ok(message) = serde_json::from_slice::<Message>(payload) else {
                            tracing::debug!("ignoring a malformed Redis change message");
                            continue;
                        };
                        if let Some(event) = message.into_event() {
                            events.publish(event);
                        }
                    }
                    tracing::warn!("Redis change subscription dropped; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(error = %e.category(), "cannot subscribe to Redis change messages")
                }
            },
            Err(e) => {
                tracing::warn!(error = %e.category(), "cannot connect to Redis for change messages")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
