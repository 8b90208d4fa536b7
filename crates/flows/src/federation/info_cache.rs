//! The `/rest/info` cache of [`Federation`](super::Federation): each
//! server's answer (or failure) kept for a while, one read at a time per
//! server, and never more than [`MAX_INFO_ENTRIES`] servers remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcgis_auth_core::{HttpClient, ServerInfo, ServerRoot, Timestamp};
use tokio::sync::Mutex as AsyncMutex;

use super::{FederationConfig, lock};
use crate::error::{FlowError, Result};

/// Above this many servers, out-of-date `/rest/info` answers are forgotten.
pub(super) const MAX_INFO_ENTRIES: usize = 256;

struct InfoEntry {
    fetched_at: Timestamp,
    result: Result<Arc<ServerInfo>>,
}

/// Every server's `/rest/info` slot, each behind an async mutex.
#[derive(Default)]
pub(super) struct InfoCache {
    entries: Mutex<HashMap<ServerRoot, Arc<AsyncMutex<Option<InfoEntry>>>>>,
}

impl InfoCache {
    /// `server`'s `/rest/info`, read through `http` at most once per
    /// `config.info_ttl` (failures kept for `config.failed_info_ttl`), with
    /// `clock` telling the time.
    pub(super) async fn server_info(
        &self,
        http: &HttpClient,
        server: &ServerRoot,
        config: &FederationConfig,
        clock: impl Fn() -> Timestamp,
    ) -> Result<Arc<ServerInfo>> {
        let now = clock();
        let slot = {
            let mut infos = lock(&self.entries);
            if infos.len() >= MAX_INFO_ENTRIES && !infos.contains_key(server) {
                make_room(&mut infos, now, config.info_ttl);
            }
            Arc::clone(infos.entry(server.clone()).or_default())
        };
        let mut entry = slot.lock().await;
        let now = clock();
        if let Some(e) = entry.as_ref() {
            let ttl = match e.result {
                Ok(_) => config.info_ttl,
                Err(_) => config.failed_info_ttl.min(config.info_ttl),
            };
            if now < e.fetched_at + ttl {
                return e.result.clone();
            }
        }
        tracing::debug!(server = %server, "reading the server's /rest/info");
        let result = http
            .server_info(server)
            .await
            .map(Arc::new)
            .map_err(FlowError::from);
        *entry = Some(InfoEntry {
            fetched_at: now,
            result: result.clone(),
        });
        result
    }

    /// How many servers are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

/// Keeps the `/rest/info` cache under [`MAX_INFO_ENTRIES`]: forgets answers
/// that are out of date anyway, then, if the servers seen lately are still too
/// many, the oldest answers (they are read again when needed). Entries being
/// read right now are kept; there are at most as many as concurrent callers.
fn make_room(
    infos: &mut HashMap<ServerRoot, Arc<AsyncMutex<Option<InfoEntry>>>>,
    now: Timestamp,
    ttl: Duration,
) {
    infos.retain(|_, slot| {
        slot.try_lock().map_or(true, |e| {
            e.as_ref().is_some_and(|e| now < e.fetched_at + ttl)
        })
    });
    let excess = (infos.len() + 1).saturating_sub(MAX_INFO_ENTRIES);
    if excess == 0 {
        return;
    }
    let mut idle: Vec<(Timestamp, ServerRoot)> = infos
        .iter()
        .filter_map(|(server, slot)| {
            let fetched_at = slot.try_lock().ok()?.as_ref().map(|e| e.fetched_at);
            Some((fetched_at.unwrap_or(Timestamp::UNIX_EPOCH), server.clone()))
        })
        .collect();
    idle.sort_by_key(|(fetched_at, _)| *fetched_at);
    for (_, server) in idle.into_iter().take(excess) {
        infos.remove(&server);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::Federation;
    use crate::manager::TokenManager;
    use crate::routing::TokenRouting;
    use crate::signin::NeverRenewed;
    use arcgis_auth_core::{ManualClock, Portal};
    use arcgis_auth_storage::MemoryStore;

    #[tokio::test]
    async fn the_info_cache_stays_bounded_however_many_servers_are_seen() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
        let manager = TokenManager::builder(NeverRenewed, Arc::new(MemoryStore::new()), "k")
            .clock(Arc::new(clock))
            .build()
            .unwrap();
        let routing = TokenRouting::new(Portal::parse("https://gis.example.com/portal").unwrap());
        let federation = Federation::new(manager, routing, HttpClient::new().unwrap());
        // Nothing listens on port 1: every read fails at once, and failures are cached too.
        for i in 0..MAX_INFO_ENTRIES + 50 {
            let server =
                ServerRoot::parse(&format!("http://127.0.0.1:1/s{i}/rest/services")).unwrap();
            assert!(federation.server_info(&server).await.is_err());
        }
        let cached = federation.inner.infos.len();
        assert!(cached <= MAX_INFO_ENTRIES, "{cached} entries");
    }
}
