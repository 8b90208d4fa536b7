//! Nothing secret is logged while users sign in, use the gateway and sign
//! out (alone in its test binary: it installs a TRACE subscriber).

mod common;

use std::sync::Arc;

use common::bff::*;

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_token_session_id_or_code_is_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let bff = Bff::start().await;
    let mut alice = bff.browser();
    let callback = alice
        .sign_in_until_callback("alice", "alice-password-1", "/")
        .await;
    let pending = alice.cookie(PENDING_COOKIE).expect("pending").to_owned();
    let code = url::Url::parse(&callback)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    alice.get(&callback).await;
    let session = alice.cookie(COOKIE).expect("session").to_owned();
    alice.proxy(&bff.item()).await;
    alice.proxy(&bff.fed_service()).await;
    bff.portal.expire_access_tokens();
    alice.proxy(&bff.item()).await;
    alice.get_path("/auth/me").await;
    let origin = bff.base.clone();
    alice.post_sign_out(Some(&origin)).await;

    let logged = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(
        logged.contains("signed in"),
        "the test captured the logs: {logged}"
    );
    let mut secrets = bff.every_token();
    assert!(
        secrets.len() >= 4,
        "access, refresh, server and renewed tokens"
    );
    secrets.extend([session, pending, code]);
    for secret in &secrets {
        assert!(!logged.contains(secret.as_str()), "logged: {secret}");
    }
}
