//! A ready-made client, and the redirect policy that keeps tokens home.

use std::time::Duration;

use arcgis_auth_core::Origin;
use reqwest::redirect::Policy;
use reqwest_middleware::ClientWithMiddleware;

use super::layer::ArcGisAuth;
use crate::error::{FlowError, FlowErrorKind};

/// Redirects are followed only within one origin (at most 10 hops).
///
/// The middleware puts the token on the request before `reqwest` sends it;
/// `reqwest` then follows redirects by itself, carrying the headers along
/// (it drops `Authorization` on a cross-host redirect, but not
/// `X-Esri-Authorization`, and a 307/308 resends a form body with its
/// `token`). With this policy a redirect to another origin is not followed:
/// you get the 3xx answer instead. Use it (or [`Policy::none`]) on every
/// client you add [`ArcGisAuth`] to.
pub fn same_origin_redirects() -> Policy {
    Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .last()
            .and_then(|prev| Origin::of(prev).ok())
            .is_some_and(|prev| Origin::of(attempt.url()).ok() == Some(prev));
        if same && attempt.previous().len() <= 10 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

impl ArcGisAuth {
    /// A client with this middleware: same-origin redirects only
    /// ([`same_origin_redirects`]), a 10-second connect timeout and a
    /// 5-minute overall timeout.
    pub fn into_client(self) -> Result<ClientWithMiddleware, FlowError> {
        self.into_client_with(
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(300)),
        )
    }

    /// A client with this middleware from your own `reqwest` builder
    /// (proxies, timeouts, user agent); its redirect policy is replaced by
    /// [`same_origin_redirects`].
    pub fn into_client_with(
        self,
        builder: reqwest::ClientBuilder,
    ) -> Result<ClientWithMiddleware, FlowError> {
        let client = builder
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| {
                FlowError::with_source(
                    FlowErrorKind::ArcGis(arcgis_auth_core::ErrorKind::Transport),
                    "could not build the HTTP client: check the TLS setup",
                    e,
                )
            })?;
        Ok(reqwest_middleware::ClientBuilder::new(client)
            .with(self)
            .build())
    }
}
