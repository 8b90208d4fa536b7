//! `arcgis-auth-gateway`: serve a `gateway.toml`, or check one.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use arcgis_auth_gateway::{Config, Gateway, GatewayError};
use clap::{Parser, Subcommand, ValueEnum};

/// The resource proxy and token service for ArcGIS web apps.
#[derive(Parser)]
#[command(name = "arcgis-auth-gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (the default).
    Serve(ServeArgs),
    /// Print the gateway.toml equivalent to a resource-proxy proxy.config or proxy.json.
    Import {
        /// The proxy.config (XML) or proxy.json to convert.
        file: PathBuf,
    },
    /// Validate a configuration: problems on stderr, exit status 0 or 2.
    Check {
        /// The gateway.toml (or proxy.config / proxy.json) to check.
        #[arg(long, env = "ARCGIS_GATEWAY_CONFIG")]
        config: PathBuf,
    },
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// The gateway.toml (or resource-proxy proxy.config / proxy.json) to serve.
    #[arg(long, env = "ARCGIS_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// The address to listen on (overrides the file's `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// How log lines on stderr look.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Threads serving requests (default: one per CPU). With 1 the gateway runs
    /// every task on the main thread (no hand-offs between threads).
    #[arg(long, env = "TOKIO_WORKER_THREADS")]
    worker_threads: Option<NonZeroUsize>,
}

#[derive(ValueEnum, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { config }) => check(&config),
        Some(Command::Import { file }) => import(&file),
        Some(Command::Serve(args)) => run(args),
        None => run(cli.serve),
    }
}

fn print_problems(err: &GatewayError) {
    eprintln!("error: {err}");
    for problem in err.problems() {
        eprintln!("  {problem}");
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

fn import(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("error: could not read {}: {err}", path.display());
            return ExitCode::from(2);
        }
    };
    match arcgis_auth_gateway::import_resource_proxy(&text) {
        Ok(imported) => {
            for warning in &imported.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{}", imported.toml);
            ExitCode::SUCCESS
        }
        Err(err) => {
            print_problems(&err);
            ExitCode::from(2)
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            if config.allowed_origins.is_empty() {
                eprintln!(
                    "warning: allowed_origins is empty: proxied requests are accepted from any caller \
                     and GET /token answers nobody"
                );
            }
            eprintln!(
                "{}: OK ({} routes, {} apps, {} servers)",
                path.display(),
                config.routes.len(),
                config.apps.len(),
                config.servers.len()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            print_problems(&err);
            ExitCode::from(2)
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

fn run(args: ServeArgs) -> ExitCode {
    let Some(path) = args.config else {
        eprintln!("error: no configuration: give --config FILE or set ARCGIS_GATEWAY_CONFIG");
        return ExitCode::from(2);
    };
    init_logs(args.log_format);
    let mut config = match Config::load(&path) {
        Ok(c) => c,
        Err(err) => {
            print_problems(&err);
            return ExitCode::from(2);
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = match build_runtime(args.worker_threads) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("error: could not start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(err) => {
                eprintln!("error: could not listen on {}: {err}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        let grace = config.shutdown_grace;
        let gateway = match Gateway::new(config).await {
            Ok(g) => g,
            Err(err) => {
                print_problems(&err);
                return ExitCode::FAILURE;
            }
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        };
        println!("listening on http://{addr}");
        tracing::info!(%addr, "gateway ready");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(arcgis_auth_gateway::serve(
            listener,
            gateway.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        let mut grace = grace;
        run_signals(&gateway, &path, args.listen, &mut grace).await;
        // Draining: the listener stays open; new proxied and token requests get 503.
        gateway.start_draining();
        tracing::info!(
            in_flight = gateway.in_flight(),
            grace_seconds = grace.as_secs(),
            "shutting down: finishing the requests in flight"
        );
        if !gateway.drained(grace).await {
            tracing::warn!(
                in_flight = gateway.in_flight(),
                "the grace period is over: the requests still running are cut off"
            );
        }
        let _ = stop.send(());
        // Idle keep-alive connections close at once; a request cut off does not hold the exit.
        match tokio::time::timeout(std::time::Duration::from_secs(1), server).await {
            Ok(Ok(Err(err))) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
            _ => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
        }
    })
}

/// The runtime for `threads` worker threads (default: one per CPU): one
/// thread is tokio's current-thread runtime, which runs every task on the
/// thread that calls `block_on`, so a socket's readiness never has to wake
/// another thread; more are the multi-thread runtime with that many workers.
/// Blocking work (the file store, Kerberos) still goes to tokio's blocking pool.
fn build_runtime(threads: Option<NonZeroUsize>) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// Serves signals until SIGTERM or Ctrl-C: SIGHUP reloads the configuration
/// (a bad one is logged and the old one kept).
async fn run_signals(
    gateway: &Gateway,
    path: &std::path::Path,
    listen: Option<SocketAddr>,
    grace: &mut std::time::Duration,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("SIGTERM and SIGHUP cannot be handled here: Ctrl-C stops the gateway");
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = tokio::signal::ctrl_c() => return,
                _ = hup.recv() => reload(gateway, path, listen, grace).await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (gateway, path, listen, grace);
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn reload(
    gateway: &Gateway,
    path: &std::path::Path,
    listen: Option<SocketAddr>,
    grace: &mut std::time::Duration,
) {
    let mut config = match Config::load(path) {
        Ok(c) => c,
        Err(err) => {
            let problems: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
            tracing::error!(error = %err, problems = ?problems, "reload refused: the old configuration stays in force");
            return;
        }
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let new_grace = config.shutdown_grace;
    match gateway.reload(config).await {
        Ok(()) => {
            *grace = new_grace;
            tracing::info!("configuration reloaded");
        }
        Err(err) => {
            tracing::error!(error = %err, "reload refused: the old configuration stays in force");
        }
    }
}
