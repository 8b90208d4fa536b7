//! The first sign-in of a session shared by many processes: one of them signs in, the others adopt its session.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_storage::SessionRecord;

use super::TokenManager;
use super::flight::HeldLock;
use crate::access::AccessToken;
use crate::error::{FlowError, FlowErrorKind, Result};

/// The longest pause between looks at the store while another process signs in.
const MAX_POLL: Duration = Duration::from_secs(1);

impl TokenManager {
    /// A valid token, signing in with `sign_in` first when no session is
    /// stored under the key: for sessions a program can start by itself
    /// (app credentials, a server account), shared by several processes.
    ///
    /// The sign-in happens once however many processes share the store:
    /// the caller takes the store's refresh lock for the key (see
    /// [`SessionStore::refresh_lock`](arcgis_auth_storage::SessionStore::refresh_lock)),
    /// looks in the store again, and signs in only if it is still empty,
    /// saving the session (as [`set_session`](Self::set_session)) before it
    /// lets go of the lock. A process that finds the lock taken waits for
    /// the session to appear (polling like a renewal does, up to
    /// [`lock_wait`](crate::ManagerConfig::lock_wait)) and uses it. When the
    /// store has no refresh lock, or it is unavailable, the caller signs in
    /// by itself (logged). Calls within one process should be serialised by
    /// the caller (each would wait on the lock otherwise).
    ///
    /// # Errors
    ///
    /// What [`token`](Self::token) returns, except
    /// [`FlowErrorKind::NoSession`]; what `sign_in` returns;
    /// [`FlowErrorKind::LockTimeout`] when another process held the lock for
    /// longer than `lock_wait` without saving a session.
    pub async fn token_or_sign_in<F, Fut>(&self, sign_in: F) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SessionRecord>>,
    {
        match self.token().await {
            Err(err) if err.kind() == FlowErrorKind::NoSession => {}
            other => return other,
        }
        let Some(lock) = self.inner.store.refresh_lock() else {
            return self.sign_in_here(sign_in, None).await;
        };
        let config = &self.inner.config;
        let deadline = tokio::time::Instant::now().checked_add(config.lock_wait);
        let mut pause = config.lock_poll.max(Duration::from_millis(1));
        loop {
            match lock.try_acquire(&self.inner.key, config.lock_lease).await {
                Ok(Some(lease)) => {
                    let held = HeldLock::new(Arc::clone(&self.inner.store), lease);
                    return self.sign_in_here(sign_in, Some(held)).await;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(
                        session = %self.inner.key,
                        error = %err,
                        "the refresh lock is unavailable; signing in without cross-process coordination"
                    );
                    return self.sign_in_here(sign_in, None).await;
                }
            }
            tracing::debug!(session = %self.inner.key, "another process is signing in; waiting for its session");
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(tokio::time::Instant::now())
            });
            if left.is_zero() {
                return Err(FlowError::new(
                    FlowErrorKind::LockTimeout,
                    format!(
                        "another process held the refresh lock of session `{}` for more than {:?} \
                         without storing a session: try again",
                        self.inner.key, config.lock_wait
                    ),
                ));
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = pause.saturating_mul(2).min(MAX_POLL);
            if let Ok(Some(_)) = self.inner.store.load(&self.inner.key).await {
                return self.token().await;
            }
        }
    }

    /// Signs in unless the store holds a session now (`held`: the refresh
    /// lock, released once the session is saved).
    async fn sign_in_here<F, Fut>(&self, sign_in: F, held: Option<HeldLock>) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SessionRecord>>,
    {
        if held.is_some() {
            match self.inner.store.load(&self.inner.key).await {
                Ok(Some(_)) => {
                    if let Some(held) = held {
                        held.release().await;
                    }
                    tracing::info!(session = %self.inner.key, "another process signed in; using its session");
                    return self.token().await;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(session = %self.inner.key, error = %err, "could not read the session store; signing in");
                }
            }
        }
        let signed_in = sign_in().await;
        let result = match signed_in {
            Ok(record) => {
                if let Err(err) = self.set_session(record).await {
                    tracing::warn!(
                        session = %self.inner.key,
                        error = %err,
                        "the new session is served from memory; the store refused it"
                    );
                }
                self.token().await
            }
            Err(err) => Err(err),
        };
        if let Some(held) = held {
            held.release().await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arcgis_auth_core::{ExposeSecret, ManualClock, Portal, Timestamp, Token};
    use arcgis_auth_storage::{MemoryStore, SessionKind, SessionStore};

    use super::*;
    use crate::source::{RenewRequest, Renewal, TokenSource};

    #[derive(Debug)]
    struct Again;

    #[async_trait::async_trait]
    impl TokenSource for Again {
        fn renewal(&self, _: &SessionRecord) -> Renewal {
            Renewal::SignInAgain
        }
        async fn renew(&self, r: &RenewRequest<'_>) -> Result<Token> {
            Ok(Token::new(
                "renewed".into(),
                r.now() + Duration::from_secs(3600),
            ))
        }
    }

    fn record(clock: &ManualClock, token: &str) -> SessionRecord {
        use arcgis_auth_core::Clock;
        let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
        r.set_token(&Token::new(
            token.into(),
            clock.now() + Duration::from_secs(3600),
        ));
        r
    }

    #[tokio::test]
    async fn managers_sharing_a_store_sign_in_once() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000_000));
        let sign_ins = Arc::new(AtomicUsize::new(0));
        let managers: Vec<TokenManager> = (0..5)
            .map(|_| {
                TokenManager::builder(Again, Arc::clone(&store), "shared")
                    .clock(Arc::new(clock.clone()))
                    .build()
                    .expect("manager")
            })
            .collect();
        let calls: Vec<_> = managers
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (m, sign_ins, clock) = (m.clone(), Arc::clone(&sign_ins), clock.clone());
                tokio::spawn(async move {
                    m.token_or_sign_in(|| async move {
                        sign_ins.fetch_add(1, Ordering::SeqCst);
                        // Long enough for every other manager to find the lock taken.
                        tokio::task::yield_now().await;
                        Ok(record(&clock, &format!("first-{i}")))
                    })
                    .await
                })
            })
            .collect();
        let mut tokens = Vec::new();
        for call in calls {
            tokens.push(call.await.expect("task"));
        }
        assert_eq!(sign_ins.load(Ordering::SeqCst), 1);
        let first = tokens[0]
            .as_ref()
            .expect("token")
            .secret()
            .expose_secret()
            .to_owned();
        for t in &tokens {
            assert_eq!(t.as_ref().expect("token").secret().expose_secret(), first);
        }
        // With a session stored, the closure is not called.
        let again = managers[1]
            .token_or_sign_in(|| async { panic!("not signed in twice") })
            .await
            .expect("token");
        assert_eq!(again.secret().expose_secret(), first);
    }

    #[tokio::test]
    async fn a_failed_sign_in_lets_the_next_caller_try() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000_000));
        let m = TokenManager::builder(Again, Arc::clone(&store), "shared")
            .clock(Arc::new(clock.clone()))
            .build()
            .expect("manager");
        let err = m
            .token_or_sign_in(|| async {
                Err(FlowError::new(FlowErrorKind::InvalidInput, "refused"))
            })
            .await
            .expect_err("the sign-in's error");
        assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
        // The lock was released: another sign-in goes ahead at once.
        let token = m
            .token_or_sign_in(|| async { Ok(record(&clock, "second")) })
            .await
            .expect("token");
        assert_eq!(token.secret().expose_secret(), "second");
    }
}
