//! `arcgis-auth-gateway`: serve a `gateway.toml`, or check one.

use std::net::SocketAddr;
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
    /// Validate a configuration: problems on stderr, exit status 0 or 2.
    Check {
        /// The gateway.toml to check.
        #[arg(long, env = "ARCGIS_GATEWAY_CONFIG")]
        config: PathBuf,
    },
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// The gateway.toml to serve.
    #[arg(long, env = "ARCGIS_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// The address to listen on (overrides the file's `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// How log lines on stderr look.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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

fn check(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
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
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
        let draining = gateway.clone();
        let shutdown = async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing the requests in flight");
            draining.start_draining();
        };
        match arcgis_auth_gateway::serve(listener, gateway, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
