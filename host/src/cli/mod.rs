//! The command line: `wasmhook run`, `serve` and `new`. Configuration is resolved here, at
//! the edge, and handed down as typed values.

pub mod log_lines;
mod new;
pub mod reference;
mod run;
pub mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// wasmhook: a multi-tenant WebAssembly extension host.
#[derive(Debug, Parser)]
#[command(name = "wasmhook", version, about)]
pub struct Cli {
    /// Where compiled modules are cached [default: $XDG_CACHE_HOME/wasmhook or ~/.cache/wasmhook].
    #[arg(long, global = true, env = "WASMHOOK_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// How log lines are written to stderr: `text` (coloured only on a terminal) or `json`
    /// (one object a line, for a log collector).
    #[arg(long, global = true, env = "WASMHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// The least severe lines written: error, warn, info (an access line per request and a
    /// line per run), debug or trace. WASMHOOK_LOG, a full filter such as
    /// `warn,wasmhook=debug`, overrides it.
    #[arg(
        long,
        global = true,
        env = "WASMHOOK_LOG_LEVEL",
        default_value = "info"
    )]
    log_level: tracing::Level,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one extension locally, once, as a hook call would.
    Run(run::RunArgs),
    /// Serve the API.
    #[command(after_long_help = reference::serve_help())]
    Serve(crate::server::config::ServeArgs),
    /// Create a new extension from a template (Rust, Python or JavaScript).
    New(new::NewArgs),
    /// The installation's operator account.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

/// `wasmhook operator ...`.
#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Replace the operator's token with a new one and print it. Run it while the server is
    /// stopped (it refuses otherwise); the old token stops working at once. When the server
    /// is started with WASMHOOK_OPERATOR_TOKEN, change that variable instead.
    RotateToken {
        /// The server's data directory [default: ./data].
        #[arg(long, value_name = "DIR", env = "WASMHOOK_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The replicas' PostgreSQL database, when the rows are there: the token is
        /// replaced while they run, and every replica refuses the old one at once.
        #[arg(long, value_name = "URL", env = "WASMHOOK_DATABASE_URL")]
        database: Option<String>,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Exit code of a run that completed.
pub const EXIT_COMPLETED: u8 = 0;
/// Exit code of a run that failed or timed out.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code of bad usage or an unloadable module.
pub const EXIT_USAGE: u8 = 2;

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _logging = init_logs(cli.log_format, cli.log_level);
    let cache_dir = cli.cache_dir.or_else(default_cache_dir);
    match cli.command {
        Command::Run(args) => run::run(&args, cache_dir),
        Command::Serve(args) => serve(&args),
        Command::New(args) => new::new(&args),
        Command::Operator(OperatorCommand::RotateToken { data_dir, database }) => {
            let data_dir =
                data_dir.unwrap_or_else(|| PathBuf::from(crate::server::config::DEFAULT_DATA_DIR));
            let rotated = match database.filter(|url| !url.is_empty()) {
                Some(url) => crate::server::rotate_operator_token_in(&url),
                None => crate::server::rotate_operator_token(&data_dir),
            };
            match rotated {
                Ok(token) => {
                    eprintln!("new operator token (shown once, keep it):");
                    // The token is the command's output, for scripts to capture.
                    #[allow(clippy::print_stdout)]
                    {
                        println!("{token}");
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
    }
}

/// What must live until the process ends, and be dropped then: the log writer's thread
/// (flushed on drop) and the trace exporter (flushed on drop).
struct Logging {
    _lines: Option<log_lines::Flushing>,
    _traces: Option<telemetry::Exporting>,
}

/// Sets up the log: wasmhook's own lines from `level`, every dependency's from `warn`
/// (or `WASMHOOK_LOG` as a whole filter), in the chosen format, coloured only on a terminal,
/// written in batches by a thread of their own (`log_lines`: a request never waits for
/// stderr, nor wakes a thread for each line); and the export of traces when an OTLP
/// endpoint is set (`telemetry`).
fn init_logs(format: LogFormat, level: tracing::Level) -> Logging {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMHOOK_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "warn,wasmhook={}",
            level.as_str().to_ascii_lowercase()
        ))
    });
    // The spans that exist for traces stay out of log lines (`trace_context::TRACE`).
    let filter = match format!("{}=off", crate::trace_context::TRACE).parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let terminal = std::io::stderr().is_terminal();
    let lost = |count: u64| {
        tracing::warn!(
            count,
            "log lines dropped: stderr did not take them as fast as they came"
        );
    };
    let (writer, flushing) =
        match log_lines::start(std::io::stderr(), log_lines::Limits::default(), lost) {
            Ok((lines, flushing)) => (log_lines::LogWriter::Batched(lines), Some(flushing)),
            Err(error) => {
                eprintln!("warning: log lines are written one by one: {error}");
                (log_lines::LogWriter::Direct, None)
            }
        };
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let lines = match format {
        LogFormat::Text => lines.with_ansi(terminal).boxed(),
        LogFormat::Json => lines.json().with_current_span(true).boxed(),
    };
    let mut layers = vec![lines.with_filter(filter).boxed()];
    let exporting = match telemetry::layer() {
        Ok(Some((traces, exporting))) => {
            layers.push(traces);
            Some(exporting)
        }
        Ok(None) => None,
        Err(error) => {
            eprintln!("warning: traces are not exported: {error:#}");
            None
        }
    };
    tracing_subscriber::registry().with(layers).init();
    Logging {
        _lines: flushing,
        _traces: exporting,
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wasmhook"))
}

fn serve(args: &crate::server::config::ServeArgs) -> ExitCode {
    let resolved = crate::server::ServerConfig::resolve(args).map_err(anyhow::Error::from);
    let result = resolved.and_then(|config| {
        // One async worker more than the runtime's CPU slots (one per core). These accept,
        // parse and answer requests and hand slots over; a short guest call ends on the
        // worker that asked for it, and one past its first millisecond moves to the
        // runtime's own guest threads, below these threads' priority (runtime/threads.rs,
        // BENCHMARKS.md, noisy neighbour).
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores + 1)
            .enable_all()
            .build()?
            .block_on(crate::server::serve(config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
