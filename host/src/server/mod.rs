//! `wasmhook serve`: opens the data directory, makes sure the operator can log in, and
//! serves the API until told to stop, finishing in-flight requests first.

pub mod config;

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, App, AppState};
use crate::model::now_rfc3339;
use crate::store::{tokens, Store};
pub use config::ServerConfig;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "wasmhook.db";

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store =
        Store::open(&config.data_dir.join(DATABASE_FILE)).context("cannot open the database")?;
    ensure_operator(&store, config.operator_token.clone()).await?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr().context("no local address")?;
    let base_url = config
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let state = AppState(Arc::new(App {
        store,
        base_url: base_url.trim_end_matches('/').to_owned(),
    }));
    // Tests and scripts read this line to find the port when listening on port 0.
    eprintln!("wasmhook listening on http://{address}");
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")
}

/// Gives the operator a token: the configured one, or a generated one printed once.
async fn ensure_operator(store: &Store, configured: Option<String>) -> anyhow::Result<()> {
    let created_at = now_rfc3339();
    let generated = store
        .run(move |connection| match configured {
            Some(token) => tokens::replace_operator(connection, &token, &created_at).map(|()| None),
            None if tokens::operator_exists(connection)? => Ok(None),
            None => {
                let token = tokens::generate()?;
                tokens::replace_operator(connection, &token, &created_at)?;
                Ok(Some(token))
            }
        })
        .await?;
    if let Some(token) = generated {
        // Printed once: only its hash is stored.
        eprintln!("operator token (shown once, keep it): {token}");
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
