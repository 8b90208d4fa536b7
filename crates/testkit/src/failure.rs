//! Injected failures: outages, proxies and slow answers, on demand.

use std::time::Duration;

/// How an endpoint should fail, for
/// [`FakePortal::fail_next_token_calls`](crate::FakePortal::fail_next_token_calls) and
/// [`FakePortal::fail_next_calls`](crate::FakePortal::fail_next_calls).
///
/// Except for [`Failure::Slow`], a failed call has no effect on the portal:
/// no code is consumed, no token issued or rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// HTTP 503 with an HTML body, as a load balancer answers during an outage.
    ServiceUnavailable503,
    /// The connection is closed without a single byte of response.
    ///
    /// wiremock cannot send a TCP RST, so this is emulated as closely as it
    /// allows: the request is read, then the server drops the connection
    /// (a FIN, not an RST). HTTP clients report it the way they report a reset
    /// mid-request: reqwest/hyper say "connection closed before message
    /// completed" (`reqwest::Error::is_request()`), with no status and no body.
    ConnectionReset,
    /// HTTP 200 with an HTML page instead of JSON, as a captive portal,
    /// a misconfigured proxy or a maintenance page answers.
    HtmlPage,
    /// HTTP 200 with an ArcGIS error body (`{"error":{"code":500,...}}`): a
    /// transient server-side failure reported the ArcGIS way.
    ErrorIn200,
    /// The call is processed normally, but the answer is sent only after this
    /// long (real time). A client that times out earlier never sees it, while
    /// the portal has already done the work (issued, rotated or consumed) —
    /// exactly like a real slow portal.
    Slow(Duration),
}
