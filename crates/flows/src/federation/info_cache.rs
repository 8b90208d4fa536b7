//! The `/rest/info` cache of [`Federation`](super::Federation): each
//! server's answer (or failure) kept for a while, one read at a time per
//! server (shared by its concurrent callers), and never more than [`MAX_INFO_ENTRIES`] servers remembered.
//! Behind a web tier, a server whose `/rest/info` is closed to a client
//! without the credential is read again with it once the portal's own
//! server list names it ([`Voucher`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcgis_auth_core::{HttpClient, Portal, ServerInfo, ServerRoot, Timestamp};

use super::{FederationConfig, lock};
use crate::error::{FlowError, Result};
use crate::manager::TokenManager;
use crate::single_flight::{Aborted, SingleFlight, aborted};

/// Above this many servers, out-of-date `/rest/info` answers are forgotten.
pub(super) const MAX_INFO_ENTRIES: usize = 256;

struct InfoEntry {
    fetched_at: Timestamp,
    result: Result<Arc<ServerInfo>>,
}

/// One server's answer, and the one read of it in progress.
#[derive(Default)]
struct InfoSlot {
    entry: Mutex<Option<InfoEntry>>,
    read: SingleFlight<Result<Arc<ServerInfo>>>,
}

impl InfoSlot {
    /// The kept answer, while it is not out of date.
    fn fresh(&self, now: Timestamp, config: &FederationConfig) -> Option<Result<Arc<ServerInfo>>> {
        let entry = lock(&self.entry);
        let e = entry.as_ref()?;
        let ttl = match e.result {
            Ok(_) => config.info_ttl,
            Err(_) => config.failed_info_ttl.min(config.info_ttl),
        };
        (now < e.fetched_at + ttl).then(|| e.result.clone())
    }

    fn fetched_at(&self) -> Option<Timestamp> {
        lock(&self.entry).as_ref().map(|e| e.fetched_at)
    }
}

/// Who vouches for a server behind the portal's web tier: the portal's
/// `portals/self/servers`, asked with the session's portal token.
#[derive(Clone)]
pub(super) struct Voucher {
    pub(super) portal: Portal,
    pub(super) manager: TokenManager,
}

/// Reads `server`'s `/rest/info` through `http`. When that fails while
/// `http` holds a web-tier credential that does not cover the server's
/// origin, and the portal ([`Voucher`]) lists the server as federated, the
/// origin is added to the web tier's and the info read again, now with
/// the credential. The first failure is reported when the portal does not
/// vouch (or cannot be asked): the credential never goes to an unlisted
/// server.
async fn read_info(
    http: &HttpClient,
    server: &ServerRoot,
    voucher: Option<&Voucher>,
) -> Result<ServerInfo> {
    let closed = match http.server_info(server).await {
        Ok(info) => return Ok(info),
        Err(err) => FlowError::from(err),
    };
    let Some(voucher) = voucher else {
        return Err(closed);
    };
    if http.web_tier().is_none() || http.web_tier_covers(&server.rest_info_url()) {
        return Err(closed);
    }
    let listed = async {
        let token = voucher.manager.token().await?;
        let referer = voucher.manager.session().await.and_then(|r| r.referer);
        let servers = http
            .federated_servers(&voucher.portal, token.secret(), referer.as_deref())
            .await?;
        Ok::<_, FlowError>(servers.lists(server))
    };
    match listed.await {
        Ok(true) => {
            tracing::debug!(
                server = %server,
                "the portal lists the server as federated: reading /rest/info with the web-tier credential"
            );
            http.allow_web_tier_origin(server.origin().clone());
            Ok(http.server_info(server).await?)
        }
        Ok(false) => {
            tracing::debug!(server = %server, "the portal does not list the server as federated");
            Err(closed)
        }
        Err(err) => {
            tracing::debug!(server = %server, error = %err, "could not read the portal's server list");
            Err(closed)
        }
    }
}

/// Every server's `/rest/info` slot.
#[derive(Default)]
pub(super) struct InfoCache {
    entries: Mutex<HashMap<ServerRoot, Arc<InfoSlot>>>,
}

impl InfoCache {
    /// `server`'s `/rest/info`, read through `http` (see [`read_info`] for
    /// `voucher`) at most once per `config.info_ttl` (failures kept for
    /// `config.failed_info_ttl`), with `clock` telling the time. Concurrent
    /// callers share one read.
    pub(super) async fn server_info(
        &self,
        http: &HttpClient,
        voucher: Option<&Voucher>,
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
        if let Some(result) = slot.fresh(now, config) {
            return result;
        }
        let mut found = None;
        let read = slot.read.join_or_start(|| {
            // A read may have ended between the look above and the slot.
            let now = clock();
            found = slot.fresh(now, config);
            if found.is_some() {
                return None;
            }
            let (http, server, into) = (http.clone(), server.clone(), Arc::clone(&slot));
            let voucher = voucher.cloned();
            Some(async move {
                tracing::debug!(server = %server, "reading the server's /rest/info");
                let result = read_info(&http, &server, voucher.as_ref())
                    .await
                    .map(Arc::new);
                *lock(&into.entry) = Some(InfoEntry {
                    fetched_at: now,
                    result: result.clone(),
                });
                result
            })
        });
        match (read, found) {
            (_, Some(result)) => result,
            (Some(read), None) => read
                .wait()
                .await
                .unwrap_or_else(|a| Err(aborted(a, "reading /rest/info"))),
            (None, None) => Err(aborted(Aborted::Cancelled, "reading /rest/info")),
        }
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
fn make_room(infos: &mut HashMap<ServerRoot, Arc<InfoSlot>>, now: Timestamp, ttl: Duration) {
    infos.retain(|_, slot| {
        slot.read.is_running() || slot.fetched_at().is_some_and(|at| now < at + ttl)
    });
    let excess = (infos.len() + 1).saturating_sub(MAX_INFO_ENTRIES);
    if excess == 0 {
        return;
    }
    let mut idle: Vec<(Timestamp, ServerRoot)> = infos
        .iter()
        .filter(|(_, slot)| !slot.read.is_running())
        .map(|(server, slot)| {
            let fetched_at = slot.fetched_at().unwrap_or(Timestamp::UNIX_EPOCH);
            (fetched_at, server.clone())
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_read() {
        use wiremock::matchers::path;
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        // A slow answer, so every caller asks while the first read is under way.
        Mock::given(path("/server/rest/info"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(r#"{"currentVersion":11.1}"#, "application/json")
                    .set_delay(Duration::from_millis(200)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let cache = Arc::new(InfoCache::default());
        let http = HttpClient::new().unwrap();
        let root = ServerRoot::parse(&format!("{}/server", server.uri())).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, http, root) = (Arc::clone(&cache), http.clone(), root.clone());
            tasks.push(tokio::spawn(async move {
                let config = FederationConfig::default();
                cache
                    .server_info(&http, None, &root, &config, || {
                        Timestamp::from_unix_millis(1_700_000_000_000)
                    })
                    .await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}
