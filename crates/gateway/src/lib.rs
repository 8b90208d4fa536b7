//! # arcgis-auth-gateway
//!
//! The resource proxy and token service ArcGIS web apps lost when Esri
//! archived `resource-proxy`: the secret (app credentials, a standalone
//! server's account) stays on the server, and browsers either ask
//! `GET /token?app=NAME` for a token or send their requests through
//! `<proxy_path>?<URL>`, which adds the token on the way.
//!
//! - [`Config`] reads and validates a `gateway.toml` (every problem at once,
//!   each a [`Problem`] with a [`ProblemKind`]); secrets come only from
//!   environment variables or files.
//! - [`Gateway`] holds one [`TokenManager`](arcgis_auth_flows::TokenManager)
//!   per app and server (early renewal, one renewal at a time, shared through
//!   the session store) and gives an axum [`Router`](axum::Router) to serve
//!   or mount.
//! - With `[user_sign_in]` it signs users in (a backend-for-frontend):
//!   `/auth/sign-in`, `/auth/callback`, `/auth/sign-out`, `/auth/me`; the
//!   browser holds a random session id in a `__Host-` cookie, the tokens stay
//!   in the session store, and `auth = "user"` routes get the user's token.
//! - Routing is exact: a target must match a route on scheme, host and port
//!   and on whole path segments, after one percent-decoding and the removal
//!   of dot-segments; user names, fragments, control characters and
//!   backslashes are refused. Tokens go only to the routes that name them, in
//!   `X-Esri-Authorization`.
//!
//! The contract (endpoints, answers, what is not implemented yet) is the
//! [gateway guide](guide).
//!
//! # Example
//!
//! A gateway with one open route, served on a free loopback port:
//!
//! ```
//! use std::collections::BTreeMap;
//! use arcgis_auth_gateway::{Config, Gateway};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_toml(
//!     r#"
//!     listen = "127.0.0.1:0"
//!     [[routes]]
//!     url = "https://services.arcgis.com/ORG/arcgis/rest/services"
//!     match_all = true
//!     auth = "none"
//!     "#,
//!     &BTreeMap::new(), // the environment secrets are read from
//! )?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let addr = listener.local_addr()?;
//! let gateway = Gateway::new(config).await?;
//! tokio::spawn(arcgis_auth_gateway::serve(listener, gateway.clone(), std::future::pending()));
//!
//! let ping: serde_json::Value = reqwest::get(format!("http://{addr}/proxy?ping")).await?.json().await?;
//! assert_eq!(ping["Configuration File"], "OK");
//! let refused = reqwest::get(format!("http://{addr}/proxy?https://evil.example/x")).await?;
//! assert_eq!(refused.status(), 403);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub, rust_2018_idioms)]

mod body;
mod config;
mod credentials;
mod error;
mod form;
mod gateway;
mod import;
mod inspect;
mod metrics;
mod origins;
mod proxy;
mod ratelimit;
mod renewals;
mod reply;
mod routes;
mod shared_limit;
mod signer;
mod target;
mod upstream;
mod users;

/// The gateway guide: configuration, endpoints and behaviour, as implemented.
#[doc = include_str!("../docs/gateway.md")]
pub mod guide {}

pub use config::{
    AppConfig, Config, DEFAULT_COOKIE_NAME, DEFAULT_LISTEN, DEFAULT_PROXY_PATHS,
    DEFAULT_SESSION_TTL, DEFAULT_SHUTDOWN_GRACE, DEFAULT_TOKEN_RATE_LIMIT,
    DEFAULT_UPSTREAM_TIMEOUT, Environment, ProcessEnv, ServerConfig, StoreSpec, UserSignInConfig,
};
pub use error::{GatewayError, GatewayErrorKind, Problem, ProblemKind};
pub use gateway::{Gateway, GatewayBuilder};
pub use import::{Imported, import_resource_proxy};
pub use origins::OriginPattern;
pub use ratelimit::RateLimit;
pub use routes::{Auth, Route, RouteUrl};

/// Serves `gateway` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish. Each request carries its peer address, which
/// rate limits key on (a router mounted without `ConnectInfo<SocketAddr>`
/// counts every client in one bucket).
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, gateway::FrontDoor::new(&gateway))
        .with_graceful_shutdown(shutdown)
        .await
}
