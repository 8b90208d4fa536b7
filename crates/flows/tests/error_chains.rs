//! A printed error chain (`{:#}` with anyhow, or any walk of `source()`)
//! says each thing once: an error either says its cause in its message or
//! returns it from `source()`, never both.

use std::error::Error as StdError;
use std::io;

use arcgis_auth_core::{HttpClient, Portal, SecretString};
use arcgis_auth_flows::signin::AppSignIn;
use arcgis_auth_flows::{FlowError, FlowErrorKind};
use arcgis_auth_storage::{StoreError, StoreErrorKind};

/// The messages of `err` and of every error under it, top first.
fn chain(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut messages = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        messages.push(cause.to_string());
        next = cause.source();
    }
    messages
}

/// Asserts that no message of the chain is repeated by another one, and
/// returns the chain joined as anyhow's `{:#}` prints it.
fn assert_says_each_thing_once(err: &(dyn StdError + 'static)) -> String {
    let messages = chain(err);
    let joined = messages.join(": ");
    for (i, message) in messages.iter().enumerate() {
        assert!(
            !message.trim().is_empty(),
            "an empty message in {messages:?}"
        );
        for (j, other) in messages.iter().enumerate() {
            assert!(
                i == j || !other.contains(message.as_str()),
                "`{message}` is said again by `{other}`: {joined}"
            );
        }
        assert_eq!(joined.matches(message.as_str()).count(), 1, "{joined}");
    }
    joined
}

#[tokio::test]
async fn a_transport_error_inside_a_core_error_inside_a_flow_error() {
    // Nothing listens on port 1: the connection is refused.
    let portal = Portal::parse("http://127.0.0.1:1/arcgis").unwrap();
    let app = AppSignIn::new(
        portal,
        "my-app",
        SecretString::from("s3cr3t"),
        HttpClient::new().unwrap(),
    );
    let err = app.sign_in().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(arcgis_auth_core::ErrorKind::Transport)
    );
    let messages = chain(&err);
    assert!(
        messages.len() >= 2,
        "the network's own error is in the chain: {messages:?}"
    );
    let joined = assert_says_each_thing_once(&err);
    // What to do is still said, once.
    assert!(joined.contains("check the network and retry"), "{joined}");
    assert!(!joined.contains("s3cr3t"), "{joined}");
}

#[test]
fn a_store_error_inside_a_flow_error() {
    let disk = io::Error::new(io::ErrorKind::StorageFull, "no space left on device");
    let store = StoreError::new(
        StoreErrorKind::Unavailable,
        "cannot write `sessions.json`: free some disk space",
    )
    .with_source(disk);
    let err = FlowError::from(store);
    assert_eq!(
        chain(&err),
        [
            "session store: cannot write `sessions.json`: free some disk space",
            "no space left on device",
        ]
    );
    assert_says_each_thing_once(&err);
}

#[test]
fn a_flow_error_with_its_own_message_keeps_its_cause() {
    let cause = FlowError::from(arcgis_auth_core::Error::new(
        arcgis_auth_core::ErrorKind::Server,
        "the portal or server failed: retry later",
    ));
    let err = FlowError::with_source(
        FlowErrorKind::Interrupted,
        "the renewal stopped: try again",
        cause,
    );
    assert_eq!(
        chain(&err),
        [
            "the renewal stopped: try again",
            "the portal or server failed: retry later",
        ]
    );
    assert_says_each_thing_once(&err);
}
