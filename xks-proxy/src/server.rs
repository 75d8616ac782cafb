//! Start-up and the connection loop: TLS accept, then hyper serving HTTP/1.1
//! and (via ALPN) h2 on each connection. Also the credential and policy
//! reload (SIGHUP, and optionally when the credential files change), the
//! metrics listener, and graceful shutdown: on SIGTERM or SIGINT the proxy
//! stops accepting, lets in-flight requests finish (up to
//! `server.drain_seconds`) and exits 0.

use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::future::Future;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::{App, KeyStore};
use crate::audit::AuditLog;
use crate::authz::{Policy, PolicyError};
use crate::config::{Config, ConfigError};
use crate::health::{FleetInfo, HealthChecker};
use crate::hsm::{Device, HsmError, KeyCache, KeyStoreHsm, SessionPool};
use crate::quota::TokenBucket;
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
    /// A policy file is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Binding, accepting or opening the audit log failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the key stores: one module for the process, one session pool per
/// key store on its token, plus policies, quotas and the audit log.
pub fn build_app(cfg: &Config) -> Result<App, ServerError> {
    let mut labels: Vec<String> = cfg
        .key_stores
        .iter()
        .map(|k| k.token_label.clone())
        .collect();
    labels.sort();
    labels.dedup();
    let device = Arc::new(Device::open(
        &cfg.hsm.module,
        &labels,
        cfg.hsm.reinit_interval(),
    )?);
    let fleet = FleetInfo::from(&cfg.health);
    let mut stores = Vec::with_capacity(cfg.key_stores.len());
    for ks in &cfg.key_stores {
        let pin = ks.pin.load(&cfg.base_dir).map_err(ConfigError::from)?;
        let pool = SessionPool::new(
            Arc::clone(&device),
            ks.token_label.clone(),
            pin,
            ks.pool_size,
            cfg.hsm.session_wait(),
        )?;
        let keys = KeyCache::new(Duration::from_millis(cfg.hsm.key_info_cache_ms));
        let hsm = KeyStoreHsm::new(pool, keys, cfg.hsm.iv_source, cfg.hsm.operation_timeout());
        let health = HealthChecker::new(
            ks.health_key.clone(),
            Duration::from_secs(cfg.health.cache_seconds),
            fleet.clone(),
        );
        let mut store = KeyStore::new(
            ks.name.clone(),
            ks.uri_prefix.clone(),
            ks.region.clone(),
            ks.load_credentials(&cfg.base_dir)?,
            hsm,
            health,
        );
        if let Some(p) = &ks.policy {
            let path = cfg.base_dir.join(p);
            let policy = Policy::load(&path)?;
            store = store.with_policy(path, policy);
        }
        if let Some(q) = &ks.quota {
            store = store.with_quota(TokenBucket::from_config(q));
        }
        stores.push(Arc::new(store));
    }
    let mut app = App::new(stores, cfg.server.max_body_bytes).with_device(device);
    if let Some(a) = &cfg.audit {
        app = app.with_audit(AuditLog::open(&a.output, &cfg.base_dir)?);
    }
    Ok(app)
}

/// Runs the proxy described by the configuration file until SIGTERM or
/// SIGINT, then drains and returns. Prints `listening on ADDR` on stdout
/// once bound (before any audit line, when the audit log is stdout).
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
    if let Some(m) = &cfg.metrics {
        let metrics = TcpListener::bind(m.listen).await?;
        tracing::info!(addr = %metrics.local_addr()?, "metrics listening");
        tokio::spawn(serve_metrics(Arc::clone(&app), metrics));
    }
    if cfg.hsm.fault_injection {
        tracing::warn!("hsm.fault_injection is on: SIGUSR1 drops every HSM session (test only)");
        spawn_fault_injection(Arc::clone(&app))?;
    }
    let shutdown = shutdown_signal()?;
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
    serve_until(
        app,
        listener,
        tls,
        cfg.server.http2,
        shutdown,
        Duration::from_secs(cfg.server.drain_seconds),
    )
    .await
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed
/// now, before readiness is announced.
fn shutdown_signal() -> Result<impl Future<Output = ()>, ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: draining in-flight requests");
    })
}

/// TEST ONLY: SIGUSR1 drops every HSM session underneath the proxy (see
/// [`Device::inject_session_loss`]).
fn spawn_fault_injection(app: Arc<App>) -> Result<(), ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            let Some(device) = app
                .stores()
                .next()
                .map(|s| Arc::clone(s.hsm.pool().device()))
            else {
                continue;
            };
            match tokio::task::spawn_blocking(move || device.inject_session_loss()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "fault injection failed"),
                Err(_) => tracing::error!("fault injection task failed"),
            }
        }
    });
    Ok(())
}

/// Serves `GET /metrics` over plain HTTP/1.1; anything else is 404.
async fn serve_metrics(app: Arc<App>, listener: TcpListener) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = Arc::clone(&app);
                async move {
                    let r = if req.method() == Method::GET && req.uri().path() == "/metrics" {
                        let mut r = Response::new(Full::new(Bytes::from(app.render_metrics())));
                        r.headers_mut().insert(
                            CONTENT_TYPE,
                            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                        );
                        r
                    } else {
                        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
                        *r.status_mut() = StatusCode::NOT_FOUND;
                        r
                    };
                    Ok::<_, Infallible>(r)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
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
    serve_until(
        app,
        listener,
        tls,
        http2,
        std::future::pending(),
        Duration::ZERO,
    )
    .await
}

/// Accepts connections until `shutdown` resolves, then stops accepting,
/// asks every open connection to finish its in-flight requests and close
/// (idle keep-alive connections close at once), and waits up to `drain`
/// for them.
pub async fn serve_until(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    http2: bool,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
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
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
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
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle(req).await) }
            });
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(stream), service))
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
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(tcp), service))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    match tokio::time::timeout(drain, graceful.shutdown()).await {
        Ok(()) => tracing::info!(connections = open, "drained; exiting"),
        Err(_) => tracing::warn!(
            connections = open,
            "drain deadline passed; exiting with requests still in flight"
        ),
    }
    // The drained requests' audit records are on disk before the process
    // reports that it has stopped.
    app.flush_audit();
    Ok(())
}
