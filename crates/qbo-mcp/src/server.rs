//! Starting and stopping the server: connect and migrate the database, load and check the
//! secret key, bind, announce the address on stdout, serve until SIGTERM or SIGINT, then let
//! in-flight requests finish (bounded) before exiting.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::anyhow;
use tokio::net::TcpListener;
use url::Url;

use axum::Router;

use crate::app;
use crate::config::Config;
use crate::quickbooks;
use crate::secret::Secret;
use crate::state::{AppState, open_state};

/// How long in-flight requests may run on after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A server bound to its address with everything opened, ready to serve: what [`serve`] runs,
/// and what the in-process tests (`tests/it/harness.rs`) serve inside the test.
#[derive(Debug)]
pub struct Bound {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub state: AppState,
    /// The whole application (`app::router`).
    pub router: Router,
    /// The one-time link that makes the first admin, when the database has no admin yet.
    pub setup_link: Option<Secret<String>>,
    /// The SQLite database's in-use lock (none on PostgreSQL), released when this is dropped.
    pub in_use: Option<crate::db::InUse>,
}

/// Opens the database and the key, binds the listen address and assembles the application.
pub async fn bind(
    config: Config,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<Bound> {
    // Held as long as the server runs: `qbo-mcp restore` refuses while a server holds it.
    let in_use = match crate::db::sqlite_path(config.database_url.expose()) {
        Some(path) => Some(crate::db::InUse::serving(&path)?),
        None => None,
    };
    let (db, sealer) = open_state(&config).await?;
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        anyhow!(
            "Cannot listen on {}: {e}. Choose another address with QBO_MCP_LISTEN.",
            config.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{addr}"))?,
    };
    let state = AppState::build(config, db.clone(), sealer, public_url, metrics)?;
    if state.demo_intuit.is_some() {
        tracing::warn!(
            "no Intuit app configured: demo mode, with a simulated QuickBooks at {}",
            quickbooks::demo::MOUNT
        );
    }
    let setup_link = crate::people::invites::setup_link(&db, &state.public_url)
        .await
        .map_err(|e| anyhow!("Cannot check for a first admin: {e}"))?;
    let router = app::router(state.clone());
    Ok(Bound {
        listener,
        addr,
        state,
        router,
        setup_link,
        in_use,
    })
}

/// Runs the server until a shutdown signal.
pub async fn serve(
    config: Config,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<()> {
    let Bound {
        listener,
        addr,
        state,
        router: app,
        setup_link,
        in_use: _in_use,
    } = bind(config, metrics).await?;
    let db = state.db.clone();
    drop(state);

    // The one line on stdout: tests and scripts read the address from it.
    println!("qbo-mcp listening on http://{addr}");
    if let Some(link) = setup_link {
        // The only place the link appears: stdout, for whoever started the server.
        println!(
            "No admin yet. Open this one-time link to create the first admin: {}",
            link.expose()
        );
    }
    tracing::info!(%addr, backend = ?db.backend(), "serving");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        })
        .await
    });

    tokio::select! {
        result = &mut server => {
            result??;
            return Ok(());
        }
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
        Ok(result) => result??,
        Err(_) => tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
