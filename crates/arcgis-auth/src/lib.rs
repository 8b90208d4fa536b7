//! # arcgis-auth
//!
//! Sign Rust programs in to ArcGIS Online and ArcGIS Enterprise: every
//! sign-in flow, a token manager that keeps tokens valid for any number of
//! callers, session stores, and a `reqwest` middleware that puts a token only
//! where it belongs. `cargo add arcgis-auth` is the whole set-up; this crate
//! gathers the project's crates under one name, each as a module.
//!
//! ## A first program
//!
//! An app signs in with its client credentials; the client it gets signs
//! every request to the portal, renewing the token before it runs out:
//!
//! ```no_run
//! use std::sync::Arc;
//! use arcgis_auth::core::{HttpClient, Portal, SecretString};
//! use arcgis_auth::flows::{middleware::ArcGisAuth, routing::TokenRouting, signin::AppSignIn};
//! use arcgis_auth::storage::MemoryStore;
//!
//! #[arcgis_auth::tokio::main(crate = "arcgis_auth::tokio")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let portal = Portal::arcgis_online();
//!     let secret = SecretString::from(std::env::var("ARCGIS_CLIENT_SECRET")?);
//!     let http = HttpClient::new()?;
//!     let app = AppSignIn::new(portal.clone(), "my-client-id", secret, http.clone());
//!     let manager = app.sign_in().await?.into_manager(Arc::new(MemoryStore::new()), "app").await?;
//!     let client = ArcGisAuth::new(manager, TokenRouting::new(portal.clone()), http).into_client()?;
//!     let answer = client.get(format!("{}?f=json", portal.portals_self_url())).send().await?;
//!     println!("{}", answer.text().await?);
//!     Ok(())
//! }
//! ```
//!
//! [`tokio`] is re-exported, so a program needs no other dependency; one
//! that already depends on tokio writes `#[tokio::main]` as usual.
//!
//! Each sign-in flow has a guide in [`flows::guide`] (its types are in
//! [`flows::signin`]); where tokens may go is explained in
//! [`flows::middleware`]; the token manager in
//! [`flows::guide::token_manager`]; sessions shared between processes in
//! [`storage`].
//!
//! ## Features
//!
//! | feature | default | what it turns on |
//! |---|---|---|
//! | `rustls` | yes | TLS by rustls with its aws-lc-rs provider, verified against the platform's roots |
//! | `rustls-no-provider` | | TLS by rustls with the crypto provider your program installs |
//! | `native-tls` | | TLS by the platform's library (OpenSSL on Linux, Secure Transport, SChannel) |
//! | `pkcs12` | | PKCS#12 (`.p12`/`.pfx`) client certificates read in Rust, under rustls |
//! | `http2` | yes | HTTP/2 to portals that offer it |
//! | `system-proxy` | yes | the system's proxy settings (`HTTPS_PROXY`, ...) |
//! | `kerberos` | | Kerberos (`Negotiate`) at an Enterprise portal's web tier, from the user's credential cache (MIT krb5's GSSAPI; building needs libkrb5-dev and libclang-dev) |
//! | `redis` | | [`storage::RedisStore`]: sessions shared by a fleet of processes, over `redis://` or `rediss://` |
//! | `conformance` | | the public test suite for your own [`storage::SessionStore`] |
//!
//! To choose another TLS backend, turn the defaults off and name it:
//! `arcgis-auth = { version = "0.1", default-features = false, features = ["native-tls", "http2"] }`.
//! When both `rustls` and `native-tls` are on, rustls is used. A portal
//! behind a private CA needs no TLS feature of its own:
//! [`core::HttpClient::with_root_certificates`] trusts its PEM bundle.
//!
//! Writing your own session store? Depend on `arcgis-auth-storage` alone: it
//! brings no HTTP client and no TLS.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use arcgis_auth_core as core;
#[doc(inline)]
pub use arcgis_auth_flows as flows;
#[doc(inline)]
pub use arcgis_auth_storage as storage;
/// The async runtime every crate here runs on (with `rt-multi-thread` and
/// `macros`), for programs that have no tokio dependency of their own.
pub use tokio;
