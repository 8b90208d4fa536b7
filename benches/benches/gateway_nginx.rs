//! `gateway_nginx`: the release `arcgis-auth-gateway` binary against Debian's
//! `nginx` (`proxy_pass`), both in front of one loopback upstream, in the
//! same run, and the gateway's memory during a 1 GiB streamed download.
//!
//! - Upstream: a hyper HTTP/1.1 server in this process (its own thread and
//!   runtime, keep-alive) answering a 1 KiB JSON body, or 1 GiB generated
//!   64 KiB at a time (never held).
//! - Load: 64 keep-alive hyper connections, each sending GETs one after the
//!   other and reading every body (status 200 and exactly 1 KiB are checked:
//!   a proxy that answers anything else fails the bench). Four targets, in
//!   rounds whose order rotates: the upstream directly, nginx, the gateway
//!   on an `auth = "none"` route, and the gateway on an `app:` route (its
//!   token fetched once before measuring, then added to every request).
//! - Fairness: nginx runs `worker_processes N` and the gateway
//!   `TOKIO_WORKER_THREADS=N` (`ARCGIS_BENCH_PROXY_THREADS`, default 1); both
//!   log warnings only (nginx `access_log off`, the gateway `RUST_LOG=warn`);
//!   nginx keeps 64 idle upstream connections (`keepalive 64`, HTTP/1.1,
//!   `Connection ""`), as its documentation says for keep-alive upstreams.
//! - Memory: a fresh gateway process streams 1 GiB on each route; its
//!   `VmRSS` (idle) and `VmHWM` (peak) are read from `/proc/<pid>/status`.
//!
//! - Knobs: `ARCGIS_BENCH_GATEWAY_ROUNDS` (default 5) and
//!   `ARCGIS_BENCH_GATEWAY_REQUESTS` (GETs per connection and round, default
//!   400) make a run shorter; `ARCGIS_BENCH_GATEWAY_TARGETS=gateway,nginx`
//!   (any of `direct`, `nginx`, `gateway`, `gateway_app`) loads only those
//!   targets, for profiling one process: it prints the rounds, writes no
//!   figures and removes those of an earlier run.
//!
//! The figures go to `$CARGO_TARGET_TMPDIR/gateway_nginx.json`, which
//! `cargo xtask bench` turns into `bench-summary.json` entries. Nothing here
//! asserts a time. Under `cargo test` (no `--bench` argument) only the
//! upstream and the load generator are checked, briefly: the gateway and
//! nginx are measured by `cargo bench` (`cargo xtask bench` builds the
//! release binary and installs nginx first).

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const NAME: &str = "gateway_nginx";
const CONNECTIONS: usize = 64;
const SMALL_LEN: usize = 1024;
const BIG_LEN: u64 = 1 << 30;
const CHUNK_LEN: usize = 64 * 1024;
const SMALL_PATH: &str = "/arcgis/rest/services/bench/small";
const BIG_PATH: &str = "/arcgis/rest/services/bench/big";
const APP_SECRET: &str = "bench-app-secret";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        self_check();
        return;
    }
    let threads: usize = env_number("ARCGIS_BENCH_PROXY_THREADS", 1);
    let rounds: usize = env_number("ARCGIS_BENCH_GATEWAY_ROUNDS", 5);
    let per_connection: usize = env_number("ARCGIS_BENCH_GATEWAY_REQUESTS", 400);
    let gateway_bin = gateway_binary();
    let nginx_bin = nginx_binary();
    let dir = tempfile::tempdir().expect("a temporary directory");

    let upstream = start_upstream(2);
    let token_portal = start_token_portal();
    let config = write_gateway_config(dir.path(), upstream, &token_portal);
    let rt = client_runtime();

    let gateway = GatewayProcess::start(&gateway_bin, &config, threads, dir.path());
    let nginx = Nginx::start(&nginx_bin, dir.path(), upstream, threads);
    let targets = [
        Target::new("direct", upstream, SMALL_PATH.to_owned()),
        Target::new("nginx", nginx.addr, SMALL_PATH.to_owned()),
        Target::new("gateway", gateway.addr, gateway_url(upstream, "open")),
        Target::new("gateway_app", gateway.addr, gateway_url(upstream, "app")),
    ];
    println!(
        "{NAME}: {CONNECTIONS} keep-alive connections, {per_connection} GETs of {SMALL_LEN} B each per round, \
         {rounds} rounds; gateway TOKIO_WORKER_THREADS={threads}, nginx worker_processes {threads}"
    );
    let only: Option<Vec<String>> = std::env::var("ARCGIS_BENCH_GATEWAY_TARGETS")
        .ok()
        .map(|v| v.split(',').map(|t| t.trim().to_owned()).collect());
    if let Some(only) = &only {
        for name in only {
            assert!(
                targets.iter().any(|t| t.name == name),
                "ARCGIS_BENCH_GATEWAY_TARGETS: no target {name:?} (direct, nginx, gateway, gateway_app)"
            );
        }
    }
    let chosen = |i: usize| {
        only.as_ref()
            .is_none_or(|o| o.iter().any(|n| n == targets[i].name))
    };
    let mut results: Vec<Vec<Run>> = targets.iter().map(|_| Vec::new()).collect();
    rt.block_on(async {
        for (i, t) in targets.iter().enumerate() {
            // Warm-up: connections, the gateway's upstream pool and its token, nginx's keepalive.
            if chosen(i) {
                load(t, 100).await;
            }
        }
        for round in 0..rounds {
            for k in 0..targets.len() {
                let i = (k + round) % targets.len();
                if !chosen(i) {
                    continue;
                }
                let run = load(&targets[i], per_connection).await;
                println!(
                    "  round {round} {:<12} {:>9.0} req/s  p50 {:>6} us  p99 {:>6} us",
                    targets[i].name,
                    run.throughput(),
                    run.percentile(0.5),
                    run.percentile(0.99)
                );
                results[i].push(run);
            }
        }
    });
    drop(nginx);
    drop(gateway);
    let figures = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gateway_nginx.json");
    if only.is_some() {
        // A summary made after this run must not show an earlier run's figures as its own.
        let _ = std::fs::remove_file(&figures);
        println!("{NAME}: ARCGIS_BENCH_GATEWAY_TARGETS is set: no figures written");
        return;
    }

    let memory = GatewayProcess::start(&gateway_bin, &config, threads, dir.path());
    let (idle_rss, idle_hwm, open_hwm, app_hwm) = rt.block_on(async {
        // One small answer on each route first: the pools and the token exist.
        load_once(&Target::new(
            "open",
            memory.addr,
            gateway_url(upstream, "open"),
        ))
        .await;
        load_once(&Target::new(
            "app",
            memory.addr,
            gateway_url(upstream, "app"),
        ))
        .await;
        let (idle_rss, idle_hwm) = memory.rss_and_hwm();
        download(memory.addr, &gateway_big_url(upstream, "open")).await;
        let (_, open_hwm) = memory.rss_and_hwm();
        download(memory.addr, &gateway_big_url(upstream, "app")).await;
        let (_, app_hwm) = memory.rss_and_hwm();
        (idle_rss, idle_hwm, open_hwm, app_hwm)
    });
    drop(memory);

    let median = |f: &dyn Fn(usize) -> f64| {
        let mut v: Vec<f64> = (0..rounds).map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rps = |t: usize| median(&|r| results[t][r].throughput());
    let ratio = |t: usize| median(&|r| results[t][r].throughput() / results[1][r].throughput());
    let pooled = |t: usize, q: f64| {
        let mut all: Vec<u32> = results[t].iter().flat_map(|r| r.micros.clone()).collect();
        all.sort_unstable();
        f64::from(percentile(&all, q))
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut json = format!(
        "{{\"threads\":{threads},\"connections\":{CONNECTIONS},\"rounds\":{rounds},\"requests_per_round\":{}",
        per_connection * CONNECTIONS
    );
    for (i, t) in targets.iter().enumerate() {
        let name = t.name;
        json.push_str(&format!(
            ",\"{name}_rps\":{:.1},\"{name}_p50_us\":{:.0},\"{name}_p99_us\":{:.0}",
            rps(i),
            pooled(i, 0.5),
            pooled(i, 0.99)
        ));
        if i > 0 {
            json.push_str(&format!(
                ",\"{name}_added_p50_us\":{:.0},\"{name}_added_p99_us\":{:.0}",
                pooled(i, 0.5) - pooled(0, 0.5),
                pooled(i, 0.99) - pooled(0, 0.99)
            ));
        }
    }
    json.push_str(&format!(
        ",\"gateway_vs_nginx\":{:.4},\"gateway_app_vs_nginx\":{:.4}",
        ratio(2),
        ratio(3)
    ));
    json.push_str(&format!(
        ",\"idle_rss_mib\":{:.1},\"idle_hwm_mib\":{:.1},\"download_open_peak_above_idle_mib\":{:.1},\"download_app_peak_above_idle_mib\":{:.1}}}\n",
        mib(idle_rss),
        mib(idle_hwm),
        mib(open_hwm.saturating_sub(idle_rss)),
        mib(app_hwm.saturating_sub(idle_rss)),
    ));
    println!("{NAME}: {}", json.trim());
    std::fs::write(&figures, json).expect("write the gateway figures");
}

/// Under `cargo test`: the upstream answers 1 KiB through the load
/// generator, and its generated body has the length it announces.
fn self_check() {
    let upstream = start_upstream(1);
    let rt = client_runtime();
    rt.block_on(async {
        let run = load(&Target::new("direct", upstream, SMALL_PATH.to_owned()), 2).await;
        assert_eq!(run.micros.len(), 2 * CONNECTIONS);
    });
    let mut body = Generated::new(3 * CHUNK_LEN as u64 + 5);
    let mut total = 0u64;
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        total += frame.into_data().map_or(0, |d| d.len() as u64);
    }
    assert_eq!(total, 3 * CHUNK_LEN as u64 + 5);
    println!(
        "{NAME}: upstream and load generator checked (the gateway and nginx run under cargo bench)"
    );
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a positive whole number")),
        Err(_) => default,
    }
}

/// `ARCGIS_BENCH_GATEWAY_BIN`, else `<target>/release/arcgis-auth-gateway`.
fn gateway_binary() -> PathBuf {
    let path = std::env::var_os("ARCGIS_BENCH_GATEWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap_or(Path::new("target"))
                .join("release")
                .join("arcgis-auth-gateway")
        });
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask bench`, or `cargo build --release -p arcgis-auth-gateway` first",
        path.display()
    );
    path
}

/// `ARCGIS_BENCH_NGINX`, else `nginx` on the PATH, else Debian's `/usr/sbin/nginx`.
fn nginx_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ARCGIS_BENCH_NGINX") {
        return PathBuf::from(p);
    }
    let answers = |p: &Path| {
        Command::new(p)
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for candidate in [Path::new("nginx"), Path::new("/usr/sbin/nginx")] {
        if answers(candidate) {
            return candidate.to_path_buf();
        }
    }
    panic!(
        "nginx is missing: run `cargo xtask bench` (it installs Debian's nginx) or set ARCGIS_BENCH_NGINX"
    );
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the load generator's runtime")
}

// ---------------------------------------------------------------- upstream

/// The upstream's body: 1 KiB of JSON, or `left` bytes generated a chunk at a time.
enum UpstreamBody {
    Small(Option<Bytes>),
    Big(Generated),
    Nothing,
}

/// A body of `left` bytes made of one shared 64 KiB chunk: nothing is held but the chunk.
struct Generated {
    left: u64,
    chunk: Bytes,
}

impl Generated {
    fn new(len: u64) -> Generated {
        Generated {
            left: len,
            chunk: Bytes::from(vec![b'x'; CHUNK_LEN]),
        }
    }
}

impl Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK_LEN as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            UpstreamBody::Small(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpstreamBody::Big(g) => Pin::new(g).poll_frame(cx),
            UpstreamBody::Nothing => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Small(b) => b.is_none(),
            UpstreamBody::Big(g) => g.is_end_stream(),
            UpstreamBody::Nothing => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Small(b) => {
                SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            UpstreamBody::Big(g) => g.size_hint(),
            UpstreamBody::Nothing => SizeHint::with_exact(0),
        }
    }
}

/// Exactly [`SMALL_LEN`] bytes of JSON, as a query answer might look.
fn small_json() -> Bytes {
    let head = r#"{"objectIdFieldName":"OBJECTID","features":[{"attributes":{"OBJECTID":1,"NAME":"bench"}}],"pad":""#;
    let tail = "\"}";
    let pad = SMALL_LEN - head.len() - tail.len();
    let text = format!("{head}{}{tail}", "p".repeat(pad));
    assert_eq!(text.len(), SMALL_LEN);
    Bytes::from(text)
}

/// Starts the upstream on its own thread and runtime (`threads` workers); it
/// lives as long as the process.
fn start_upstream(threads: usize) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
    let addr = listener.local_addr().expect("the upstream's address");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("the upstream's runtime");
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("the upstream's listener");
            let small = small_json();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let small = small.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let small = small.clone();
                        async move { Ok::<_, Infallible>(answer(req.uri().path(), small)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

fn answer(path: &str, small: Bytes) -> Response<UpstreamBody> {
    let (body, kind) = if path.ends_with("/small") {
        (UpstreamBody::Small(Some(small)), "application/json")
    } else if path.ends_with("/big") {
        (
            UpstreamBody::Big(Generated::new(BIG_LEN)),
            "application/octet-stream",
        )
    } else {
        let mut r = Response::new(UpstreamBody::Nothing);
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let mut r = Response::new(body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(kind),
    );
    r
}

/// The app route's token endpoint: the bench crate's fixed-answer server, on
/// a runtime of its own thread (the gateway asks it once).
fn start_token_portal() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the token endpoint's runtime");
        rt.block_on(async move {
            let endpoint = arcgis_auth_bench::TokenEndpoint::start()
                .await
                .expect("the token endpoint");
            let _ = tx.send(endpoint.url("/sharing/rest"));
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("the token endpoint's address")
}

// ---------------------------------------------------------------- proxies

fn gateway_url(upstream: SocketAddr, route: &str) -> String {
    format!("/proxy?http://{upstream}/{route}{SMALL_PATH}")
}

fn gateway_big_url(upstream: SocketAddr, route: &str) -> String {
    format!("/proxy?http://{upstream}/{route}{BIG_PATH}")
}

fn write_gateway_config(dir: &Path, upstream: SocketAddr, portal: &str) -> PathBuf {
    let text = format!(
        r#"listen = "127.0.0.1:0"
store = "memory"

[[apps]]
name = "bench"
client_id = "{client}"
client_secret_env = "ARCGIS_BENCH_APP_SECRET"
portal = "{portal}"

[[routes]]
url = "http://{upstream}/open/arcgis/rest/services"
match_all = true
auth = "none"

[[routes]]
url = "http://{upstream}/app/arcgis/rest/services"
match_all = true
auth = "app:bench"
"#,
        client = arcgis_auth_bench::CLIENT_ID
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).expect("write gateway.toml");
    path
}

/// The gateway binary, killed when dropped.
struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
}

impl GatewayProcess {
    fn start(bin: &Path, config: &Path, threads: usize, dir: &Path) -> GatewayProcess {
        let log = std::fs::File::create(dir.join("gateway.log")).expect("the gateway's log file");
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .env("TOKIO_WORKER_THREADS", threads.to_string())
            .env("RUST_LOG", "warn")
            .env("ARCGIS_BENCH_APP_SECRET", APP_SECRET)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the gateway");
        let stdout = child.stdout.take().expect("the gateway's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the gateway's listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the gateway did not start: {line:?} (see its log)"));
        GatewayProcess { child, addr }
    }

    /// `VmRSS` and `VmHWM` in KiB.
    fn rss_and_hwm(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status of the gateway");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/<pid>/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx with a generated configuration in `dir`, stopped when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Nginx {
    fn start(bin: &Path, dir: &Path, upstream: SocketAddr, workers: usize) -> Nginx {
        let addr = free_port();
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).expect("nginx's directory");
        let conf = format!(
            r#"daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    upstream bench {{
        server {upstream};
        keepalive {CONNECTIONS};
        keepalive_requests 1000000;
    }}
    server {{
        listen {addr};
        location / {{
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#,
            prefix = prefix.display()
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(prefix.join("logs").join("error.log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child, addr };
        // Ready when it accepts; give up (with its log) if it exits or never does.
        for _ in 0..200 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return nginx;
            }
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(prefix.join("logs").join("error.log"))
                    .unwrap_or_default();
                panic!("nginx exited ({status}): {log}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nginx did not listen on {addr}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM through kill(1) would need a pid crate; SIGKILL of the master
        // leaves its workers, so ask nginx itself to stop (fast shutdown).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address")
}

// ---------------------------------------------------------------- load

struct Target {
    name: &'static str,
    addr: SocketAddr,
    path_and_query: String,
}

impl Target {
    fn new(name: &'static str, addr: SocketAddr, path_and_query: String) -> Target {
        Target {
            name,
            addr,
            path_and_query,
        }
    }
}

/// One measured load: the wall time of all requests, and each one's latency.
struct Run {
    elapsed: Duration,
    micros: Vec<u32>,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.micros.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, q: f64) -> u32 {
        let mut v = self.micros.clone();
        v.sort_unstable();
        percentile(&v, q)
    }
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    sender
}

fn get(target_host: SocketAddr, path_and_query: &str) -> Request<Empty<Bytes>> {
    Request::get(path_and_query)
        .header(hyper::header::HOST, target_host.to_string())
        .body(Empty::new())
        .expect("a request")
}

/// `per_connection` GETs on each of [`CONNECTIONS`] fresh keep-alive
/// connections; the clock runs from when all are connected until the last answer.
async fn load(target: &Target, per_connection: usize) -> Run {
    let barrier = Arc::new(tokio::sync::Barrier::new(CONNECTIONS + 1));
    let path: Arc<str> = Arc::from(target.path_and_query.as_str());
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let barrier = Arc::clone(&barrier);
        let path = Arc::clone(&path);
        let addr = target.addr;
        let name = target.name;
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            barrier.wait().await;
            let mut micros = Vec::with_capacity(per_connection);
            for _ in 0..per_connection {
                let started = Instant::now();
                sender.ready().await.expect("connection ready");
                let response = sender
                    .send_request(get(addr, &path))
                    .await
                    .expect("an answer");
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .expect("a body")
                    .to_bytes();
                assert!(
                    status == StatusCode::OK && body.len() == SMALL_LEN,
                    "{name}: answered {status} with {} bytes: {}",
                    body.len(),
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                );
                micros.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            micros
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut micros = Vec::with_capacity(CONNECTIONS * per_connection);
    for t in tasks {
        micros.extend(t.await.expect("a load task"));
    }
    Run {
        elapsed: started.elapsed(),
        micros,
    }
}

async fn load_once(target: &Target) {
    let mut sender = connect(target.addr).await;
    let response = sender
        .send_request(get(target.addr, &target.path_and_query))
        .await
        .expect("an answer");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert!(
        status == StatusCode::OK && body.len() == SMALL_LEN,
        "{}: answered {status}",
        target.name
    );
}

/// Reads a [`BIG_LEN`] answer frame by frame, holding none of it.
async fn download(addr: SocketAddr, path_and_query: &str) {
    let mut sender = connect(addr).await;
    let response = sender
        .send_request(get(addr, path_and_query))
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK, "the 1 GiB download");
    let mut body = response.into_body();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("the download broke off");
        total += frame.data_ref().map_or(0, |d| d.len() as u64);
    }
    assert_eq!(total, BIG_LEN, "the whole 1 GiB arrived");
}
