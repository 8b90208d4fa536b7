//! The client that carries proxied requests upstream: hyper-util's pooled
//! client, HTTP/1.1 or HTTP/2 (chosen by ALPN) over rustls with the
//! platform's verifier and the `ca_bundle`'s extra roots, the system proxy
//! settings (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), no redirects
//! followed, and the upstream timeout on the answer's headers and between
//! parts of its body. Bodies stream both ways.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{HeaderValue, Request, Response, Uri, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tower_service::Service;

use crate::body::Upload;

type BoxError = Box<dyn StdError + Send + Sync>;

/// How long connecting (TCP, a proxy's tunnel, TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The pooled upstream client; cheap to clone (clones share the pool).
#[derive(Clone)]
pub(crate) struct Upstream {
    client: Client<Connector, Outgoing>,
    proxies: Arc<Matcher>,
    timeout: Duration,
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// Connecting, or the answer's headers, took longer than allowed.
    TimedOut,
    /// The upstream could not be reached or broke off.
    Failed(BoxError),
}

impl Upstream {
    /// A client trusting the platform's roots and `extra_roots` (DER), whose
    /// answers must start within `timeout` and whose bodies may pause no
    /// longer than that between parts.
    pub(crate) fn new(
        extra_roots: Vec<CertificateDer<'static>>,
        timeout: Duration,
    ) -> Result<Upstream, rustls::Error> {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let verifier = if extra_roots.is_empty() {
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))?
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                extra_roots,
                Arc::clone(&provider),
            )?
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // An https proxy speaks HTTP/1.1 (CONNECT, or absolute-form requests).
        let mut to_proxy = tls.clone();
        to_proxy.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut to_upstream = tls;
        to_upstream.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(Duration::from_secs(15)));
        let proxies = Arc::new(Matcher::from_system());
        let connector = Connector {
            tcp,
            tls: TlsConnector::from(Arc::new(to_upstream)),
            proxy_tls: TlsConnector::from(Arc::new(to_proxy)),
            proxies: Arc::clone(&proxies),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Upstream {
            client,
            proxies,
            timeout,
        })
    }

    /// Sends `request` (an absolute URI); its answer's headers must come
    /// within the timeout. Redirects come back as they are.
    pub(crate) async fn send(
        &self,
        mut request: Request<Outgoing>,
    ) -> Result<Response<TimedBody>, UpstreamError> {
        let headers = request.headers_mut();
        if !headers.contains_key(header::ACCEPT) {
            headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        }
        if request.uri().scheme() == Some(&Scheme::HTTP) {
            // A plain-HTTP request through a proxy carries the proxy's
            // credentials itself (an https one gets them in its CONNECT).
            if let Some(auth) = self
                .proxies
                .intercept(request.uri())
                .and_then(|i| i.basic_auth().cloned())
            {
                request
                    .headers_mut()
                    .insert(header::PROXY_AUTHORIZATION, auth);
            }
        }
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::TimedOut),
            Ok(Err(e)) if caused_by::<ConnectTimedOut>(&e) => Err(UpstreamError::TimedOut),
            Ok(Err(e)) => Err(UpstreamError::Failed(Box::new(e))),
            Ok(Ok(response)) => Ok(response.map(|body| TimedBody::new(body, self.timeout))),
        }
    }
}

/// Whether `E` is somewhere in `err`'s chain of sources.
fn caused_by<E: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// `e` and its sources, `: `-separated (hyper's errors say little alone).
pub(crate) fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

/// Connecting took longer than [`CONNECT_TIMEOUT`].
#[derive(Debug)]
struct ConnectTimedOut;

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connecting to the upstream timed out")
    }
}

impl StdError for ConnectTimedOut {}

// ---------------------------------------------------------------- bodies

/// A request's body as it goes upstream.
pub(crate) enum Outgoing {
    /// No body.
    Empty,
    /// One buffer, sent whole.
    Full(Option<Bytes>),
    /// The browser's body (or its filtered form), streamed.
    Stream(Upload),
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Outgoing::Empty => Poll::Ready(None),
            Outgoing::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Outgoing::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outgoing::Empty => true,
            Outgoing::Full(b) => b.is_none(),
            Outgoing::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outgoing::Empty => SizeHint::with_exact(0),
            Outgoing::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Outgoing::Stream(s) => s.size_hint(),
        }
    }
}

/// An answer's body that fails when the upstream pauses longer than the
/// timeout before its next part.
pub(crate) struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    /// Made the first time the body has to wait; re-armed after each part.
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> TimedBody {
        TimedBody {
            inner,
            timeout,
            sleep: None,
            armed: false,
        }
    }
}

/// The upstream paused longer than the timeout in the middle of a body.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upstream's answer paused longer than the upstream timeout")
    }
}

impl StdError for BodyTimedOut {}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
        }
        // Waiting: the clock runs from the first wait after the last part.
        let deadline = Instant::now() + this.timeout;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.armed {
            sleep.as_mut().reset(deadline);
            this.armed = true;
        }
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// ---------------------------------------------------------------- connections

/// Opens connections: directly, or through the proxy the system settings
/// name for the URL (a CONNECT tunnel for https, absolute-form requests for
/// http), then TLS for https.
#[derive(Clone)]
struct Connector {
    tcp: HttpConnector,
    tls: TlsConnector,
    proxy_tls: TlsConnector,
    proxies: Arc<Matcher>,
}

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, this.connect(dst)).await {
                Ok(conn) => conn,
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

impl Connector {
    async fn connect(self, dst: Uri) -> Result<Conn, BoxError> {
        let https = dst.scheme() == Some(&Scheme::HTTPS);
        let host = dst.host().ok_or("the upstream URL has no host")?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let to_proxy = ToProxy {
            tcp: self.tcp.clone(),
            tls: self.proxy_tls.clone(),
        };
        match self.proxies.intercept(&dst) {
            None => {
                let tcp = self.tcp.clone().call(dst).await?.into_inner();
                if https {
                    tls_over(&self.tls, Stream::Tcp(tcp), host).await
                } else {
                    Ok(Conn::new(Stream::Tcp(tcp), false, false))
                }
            }
            Some(proxy) if https => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), to_proxy);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tunnel.call(dst).await?.into_inner();
                tls_over(&self.tls, io, host).await
            }
            Some(proxy) => {
                let io = to_proxy
                    .clone()
                    .call(proxy.uri().clone())
                    .await?
                    .into_inner();
                Ok(Conn::new(io, false, true))
            }
        }
    }
}

async fn tls_over(tls: &TlsConnector, io: Stream, host: String) -> Result<Conn, BoxError> {
    let name = ServerName::try_from(host)?;
    let stream = tls.connect(name, io).await?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    Ok(Conn::new(Stream::Tls(Box::new(stream)), h2, false))
}

/// Connects to a proxy: TCP, and TLS when its URL is https.
#[derive(Clone)]
struct ToProxy {
    tcp: HttpConnector,
    tls: TlsConnector,
}

impl Service<Uri> for ToProxy {
    type Response = TokioIo<Stream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let https = proxy.scheme() == Some(&Scheme::HTTPS);
            let host = proxy.host().unwrap_or("").to_owned();
            let stream = tcp.call(proxy).await?.into_inner();
            if !https {
                return Ok(TokioIo::new(Stream::Tcp(stream)));
            }
            let name = ServerName::try_from(host)?;
            let stream = tls.connect(name, Stream::Tcp(stream)).await?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

/// A connection's bytes: TCP, or TLS over a connection (TCP, or a proxy's).
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<Stream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One pooled connection, with what hyper's client needs to know of it:
/// whether ALPN chose HTTP/2, and whether it leads to a proxy (plain-HTTP
/// requests then keep their absolute URL).
struct Conn {
    io: TokioIo<Stream>,
    h2: bool,
    proxied: bool,
}

impl Conn {
    fn new(stream: Stream, h2: bool, proxied: bool) -> Conn {
        Conn {
            io: TokioIo::new(stream),
            h2,
            proxied,
        }
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        let connected = Connected::new().proxy(self.proxied);
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
