//! Start-up and the connection loop: TLS accept, then hyper serving HTTP/1.1
//! and (via ALPN) h2 on each connection. Also the credential reload, on
//! SIGHUP and (optionally) when the credential files change.

use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::{App, KeyStore};
use crate::config::{Config, ConfigError};
use crate::health::{FleetInfo, HealthChecker};
use crate::hsm::{HsmError, KeyStoreHsm, Module, SessionPool};
use crate::secret::SecretSource;
use crate::tls::{self, TlsError};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A start-up error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad TLS material.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HSM could not be initialized.
    #[error("HSM: {0}")]
    Hsm(#[from] HsmError),
    /// Binding or accepting failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the key stores: one session pool per key store on its token.
pub fn build_app(cfg: &Config) -> Result<App, ServerError> {
    let module = Module::load(&cfg.hsm.module)?;
    let fleet = FleetInfo::from(&cfg.health);
    let mut stores = Vec::with_capacity(cfg.key_stores.len());
    for ks in &cfg.key_stores {
        let slot = module.slot_for_token(&ks.token_label)?;
        let pin = ks.pin.load(&cfg.base_dir).map_err(ConfigError::from)?;
        let pool = SessionPool::new(
            module.context().clone(),
            slot,
            pin,
            ks.pool_size,
            cfg.hsm.session_wait(),
        );
        let hsm = KeyStoreHsm::new(pool, cfg.hsm.iv_source, cfg.hsm.operation_timeout());
        let health = HealthChecker::new(
            ks.health_key.clone(),
            Duration::from_secs(cfg.health.cache_seconds),
            fleet.clone(),
        );
        stores.push(Arc::new(KeyStore::new(
            ks.name.clone(),
            ks.uri_prefix.clone(),
            ks.region.clone(),
            ks.load_credentials(&cfg.base_dir)?,
            hsm,
            health,
        )));
    }
    Ok(App::new(stores, cfg.server.max_body_bytes))
}

/// Runs the proxy described by the configuration file until the process is
/// killed. Prints `listening on ADDR` on stdout once bound.
pub async fn run(config_path: PathBuf) -> Result<(), ServerError> {
    let cfg = Config::load(&config_path)?;
    let tls = match &cfg.tls {
        Some(t) if !cfg.server.plaintext_http_for_development => Some(TlsAcceptor::from(
            tls::server_config(t, &cfg.base_dir, cfg.server.http2)?,
        )),
        _ => {
            tracing::warn!("serving plain HTTP: for development only");
            None
        }
    };
    // C_Initialize, slot lookup and logins block: keep them off the reactor
    // even at start-up.
    let cfg = Arc::new(cfg);
    let app = {
        let cfg = Arc::clone(&cfg);
        tokio::task::spawn_blocking(move || build_app(&cfg))
            .await
            .map_err(|_| ServerError::Hsm(HsmError::Worker))??
    };
    let app = Arc::new(app);
    let listener = TcpListener::bind(cfg.server.listen).await?;
    let addr = listener.local_addr()?;
    // Install the SIGHUP handler before announcing readiness: a SIGHUP that
    // arrives first would otherwise terminate the process.
    spawn_reload_on_sighup(Arc::clone(&app), config_path.clone())?;
    if cfg.server.credential_poll_seconds > 0 {
        spawn_reload_on_change(
            Arc::clone(&app),
            config_path,
            Duration::from_secs(cfg.server.credential_poll_seconds),
        );
    }
    tracing::info!(%addr, tls = tls.is_some(), "listening");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    serve(app, listener, tls, cfg.server.http2).await
}

fn spawn_reload_on_sighup(app: Arc<App>, config_path: PathBuf) -> Result<(), ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload(&app, &config_path).await;
        }
    });
    Ok(())
}

/// Re-reads credentials on the blocking pool (it reads files).
async fn reload(app: &Arc<App>, config_path: &Path) {
    let (app, path) = (Arc::clone(app), config_path.to_path_buf());
    let done = tokio::task::spawn_blocking(move || app.reload_credentials(&path)).await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "reload failed; keeping old credentials"),
        Err(_) => tracing::error!("reload task failed; keeping old credentials"),
    }
}

/// The modification times of the configuration file and of every
/// credential secret file it names.
fn fingerprint(config_path: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut paths = vec![config_path.to_path_buf()];
    if let Ok(cfg) = Config::load(config_path) {
        for ks in &cfg.key_stores {
            for c in &ks.credentials {
                if let SecretSource::File(p) = &c.secret {
                    paths.push(cfg.base_dir.join(p));
                }
            }
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let modified = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, modified)
        })
        .collect()
}

/// Polls the files behind the credentials and reloads when one changes, so
/// a rotation needs no signal (useful where sending SIGHUP is awkward, such
/// as secrets mounted by an orchestrator).
fn spawn_reload_on_change(app: Arc<App>, config_path: PathBuf, every: Duration) {
    tokio::spawn(async move {
        let probe = |p: PathBuf| async move {
            tokio::task::spawn_blocking(move || fingerprint(&p))
                .await
                .unwrap_or_default()
        };
        let mut last = probe(config_path.clone()).await;
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = probe(config_path.clone()).await;
            if now != last {
                tracing::info!("credential files changed; reloading");
                last = now;
                reload(&app, &config_path).await;
            }
        }
    });
}

/// Accepts connections forever. Each connection runs in its own task; a
/// failed handshake or connection only ends that task.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    http2: bool,
) -> Result<(), ServerError> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that opens a connection and dribbles headers must not hold a
    // task and a socket forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    if !http2 {
        builder = builder.http1_only();
    }
    let builder = Arc::new(builder);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Running out of file descriptors is transient; back off.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = Arc::clone(&app);
        let tls = tls.clone();
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle(req).await) }
            });
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => builder.serve_connection(TokioIo::new(tcp), service).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
