#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unreachable_pub, rust_2018_idioms)]

mod browser;
mod builder;
mod calls;
mod config;
mod error;
mod failure;
mod feature_layer;
#[cfg(feature = "kerberos")]
mod krb5_realm;
mod lifetimes;
mod pki;
mod portal;
mod routes;
mod state;
mod tokens;
mod web_tier;
mod wire;
mod worker;

pub use browser::BrowserVisit;
pub use builder::FakePortalBuilder;
pub use calls::{Calls, Endpoint, Grant};
pub use config::{ApiKeySpec, App, OOB_REDIRECT_URI, Server};
pub use error::{Error, ErrorKind};
pub use failure::Failure;
pub use feature_layer::{FEATURE_LAYER_FIELDS, FEATURE_LAYER_NAME, FEATURE_SERVICE, PARKS, Park};
#[cfg(feature = "kerberos")]
#[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
pub use krb5_realm::{KERBEROS_REALM, KERBEROS_USER, KerberosRealm, WRONG_SERVICE};
pub use pki::{TestCa, TestCertificate};
pub use portal::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, FakeServer,
    LOOPBACK_REDIRECT_URI, PASSWORD, PUBLIC_CLIENT_ID, SERVER_NAME, USERNAME,
};
pub use tokens::{IssuedToken, TokenKind};
pub use web_tier::WebTier;
pub use worker::TestWorker;

pub use wiremock;
