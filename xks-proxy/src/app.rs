//! Request dispatch, independent of the transport: route, method, body
//! limit, SigV4, quota, parse, secondary authorization, handler, response;
//! then one audit record and the metrics for every request. Also the key
//! stores and their reloadable credentials and policies.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use zeroize::Zeroizing;

use crate::api::handlers::{self, ParsedRequest};
use crate::api::{routes, ErrorName, Operation, Route, XksError};
use crate::audit::{rfc3339, AuditLog, AuditRecord};
use crate::authz::Decision;
use crate::config::{Config, ConfigError, Credential};
use crate::hsm::{self, Device};
pub use crate::key_store::KeyStore;
use crate::metrics::{Metrics, PoolSnapshot};
use crate::sigv4::{self, VerifyInput};

/// The whole application: key stores by prefix, request limits, audit log
/// and metrics.
#[derive(Debug)]
pub struct App {
    stores: HashMap<String, Arc<KeyStore>>,
    max_body: usize,
    audit: Option<AuditLog>,
    metrics: Metrics,
    device: Option<Arc<Device>>,
}

/// A request that passed routing, the method check, SigV4 and parsing.
#[derive(Debug)]
pub struct Checked<'p> {
    /// The route.
    pub route: Route<'p>,
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// The parsed body.
    pub request: ParsedRequest,
}

/// Routing, the method check, SigV4 verification and JSON parsing: the
/// whole request front, with no HSM, no I/O and no clock of its own. The
/// proxy runs the same steps (interleaved with its body limits and key
/// store lookup); this entry point exists for the fuzzer.
#[allow(clippy::too_many_arguments)]
pub fn check_request<'p>(
    method: &str,
    path: &'p str,
    query: &str,
    headers: &HeaderMap,
    authority: Option<&str>,
    body: &[u8],
    credentials: &[Credential],
    region: &str,
    now: SystemTime,
) -> Result<Checked<'p>, XksError> {
    let route = routes::parse(path)?;
    if method != Method::POST.as_str() {
        return Err(XksError::validation("method not allowed; use POST"));
    }
    let input = VerifyInput {
        method,
        path,
        query,
        headers,
        authority,
        body,
    };
    let access_key_id = sigv4::verify(&input, credentials, region, sigv4::XKS_SERVICE, now)?;
    let request = handlers::parse(route.operation, body)?;
    Ok(Checked {
        route,
        access_key_id,
        request,
    })
}

type HttpResponse = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(e: &XksError) -> HttpResponse {
    let body = serde_json::to_vec(&e.body())
        .unwrap_or_else(|_| br#"{"errorName":"InternalException"}"#.to_vec());
    json_response(e.name.status(), Bytes::from(body))
}

impl App {
    /// An app over these key stores.
    pub fn new(stores: Vec<Arc<KeyStore>>, max_body: usize) -> Self {
        App {
            stores: stores.into_iter().map(|s| (s.prefix.clone(), s)).collect(),
            max_body,
            audit: None,
            metrics: Metrics::default(),
            device: None,
        }
    }

    /// Writes one audit record per request to `audit`.
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Waits until every audit record so far is written (at shutdown).
    pub fn flush_audit(&self) {
        if let Some(audit) = &self.audit {
            audit.flush();
        }
    }

    /// The PKCS#11 device, for its metrics.
    pub fn with_device(mut self, device: Arc<Device>) -> Self {
        self.device = Some(device);
        self
    }

    /// The key stores.
    pub fn stores(&self) -> impl Iterator<Item = &Arc<KeyStore>> {
        self.stores.values()
    }

    /// The Prometheus text exposition of the current metrics.
    pub fn render_metrics(&self) -> String {
        let mut pools: Vec<PoolSnapshot> = self
            .stores
            .values()
            .map(|s| {
                let pool = s.hsm.pool();
                PoolSnapshot {
                    key_store: s.name.clone(),
                    size: pool.size(),
                    in_use: pool.in_use(),
                    wait_timeouts: pool.wait_timeouts(),
                    health: s.health.last_status().map_or(-1, |h| h as i8),
                    throttled: s.metrics.throttled.load(Ordering::Relaxed),
                    denied: s.metrics.denied.load(Ordering::Relaxed),
                }
            })
            .collect();
        pools.sort_by(|a, b| a.key_store.cmp(&b.key_store));
        let (reinits, available) = self
            .device
            .as_ref()
            .map_or((0, true), |d| (d.reinitializations(), d.is_available()));
        self.metrics.render(&pools, reinits, available)
    }

    /// Re-reads every key store's credential pairs and policy. A key store
    /// whose new credentials fail to load keeps its old ones, so a
    /// half-written secret file cannot lock KMS out.
    pub fn reload_credentials(&self, config_path: &std::path::Path) -> Result<(), ConfigError> {
        let cfg = Config::load(config_path)?;
        for ks_cfg in &cfg.key_stores {
            let Some(store) = self.stores.values().find(|s| s.name == ks_cfg.name) else {
                tracing::warn!(key_store = %ks_cfg.name, "new key stores need a restart");
                continue;
            };
            match ks_cfg.load_credentials(&cfg.base_dir) {
                Ok(creds) => {
                    let ids: Vec<&str> = creds.iter().map(|c| c.access_key_id.as_str()).collect();
                    tracing::info!(key_store = %store.name, access_key_ids = ?ids, "credentials reloaded");
                    store.set_credentials(creds);
                }
                Err(e) => {
                    tracing::error!(key_store = %store.name, error = %e, "credential reload failed; keeping old credentials")
                }
            }
            store.reload_policy();
        }
        Ok(())
    }

    /// Handles one HTTP request. Never fails: every error becomes the
    /// spec's JSON error body. Every request except `/ping` gets one audit
    /// record and is counted in the metrics.
    pub async fn handle<B>(&self, req: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        if req.uri().path() == "/ping" {
            return Response::new(Full::new(Bytes::from_static(b"ok\n")));
        }
        // Formatted only if an audit log will carry it.
        let arrived = SystemTime::now();
        let mut rec = AuditRecord::default();
        let mut op = None;
        let (reply, hsm_time) = hsm::timed(self.dispatch(req, &mut rec, &mut op)).await;
        let latency = started.elapsed();
        let (response, error) = match reply {
            // The body is wiped once hyper has written it (a decrypt's
            // holds the plaintext).
            Ok(body) => (json_response(StatusCode::OK, Bytes::from_owner(body)), None),
            Err(Failure { error, allow_post }) => {
                let mut r = error_response(&error);
                if allow_post {
                    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                    r.headers_mut()
                        .insert(ALLOW, HeaderValue::from_static("POST"));
                }
                (r, Some(error.name))
            }
        };
        self.metrics.record(op, error, latency, hsm_time);
        rec.outcome = if error.is_none() { "OK" } else { "ERROR" };
        rec.error_name = error.map(ErrorName::as_str);
        rec.status = response.status().as_u16();
        rec.latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        rec.hsm_latency_us = u64::try_from(hsm_time.as_micros()).unwrap_or(u64::MAX);
        let principal = rec.principal.as_deref().unwrap_or("-");
        let request_id = rec.kms_request_id.as_deref().unwrap_or("-");
        let operation = op.map_or("-", Operation::as_str);
        let key_id = rec.key_id.as_deref().unwrap_or("");
        // With an audit log, successes are on record there; the
        // diagnostic log keeps the failures.
        if error.is_some() || self.audit.is_none() {
            tracing::info!(
                prefix = rec.prefix.as_deref().unwrap_or("-"),
                operation,
                kms_request_id = %request_id,
                kms_operation = rec.kms_operation.as_deref().unwrap_or("-"),
                principal,
                key_id,
                outcome = rec.error_name.unwrap_or("OK"),
                latency_us = rec.latency_us,
                "request"
            );
        } else {
            tracing::debug!(operation, kms_request_id = %request_id, key_id, latency_us = rec.latency_us, "request");
        }
        if let Some(audit) = &self.audit {
            rec.time = rfc3339(arrived);
            audit.write(&rec);
        }
        response
    }

    /// The pipeline proper; fills in the audit record as it learns more.
    async fn dispatch<B>(
        &self,
        req: Request<B>,
        rec: &mut AuditRecord,
        op: &mut Option<Operation>,
    ) -> Result<Zeroizing<Vec<u8>>, Failure>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let route = routes::parse(&path)?;
        *op = Some(route.operation);
        rec.operation = Some(route.operation.as_str());
        rec.prefix = Some(route.prefix.to_owned());
        rec.key_id = route.key_id.map(str::to_owned);
        let Some(store) = self.stores.get(route.prefix) else {
            return Err(XksError::new(
                ErrorName::InvalidUriPathException,
                "unknown key store prefix",
            )
            .into());
        };
        if parts.method != Method::POST {
            return Err(Failure {
                error: XksError::validation("method not allowed; use POST"),
                allow_post: true,
            });
        }

        // Refuse by declared length first, then enforce while reading: a
        // chunked body without a length is cut off at the limit, never
        // buffered in full.
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(XksError::validation("request body too large").into());
        }
        // Our copy of the body (it may hold a plaintext) is wiped on drop.
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(b) => Zeroizing::new(Vec::from(b.to_bytes())),
            Err(_) => {
                return Err(XksError::validation("request body too large or unreadable").into())
            }
        };

        let creds = store.credentials();
        let verified = sigv4::verify(
            &VerifyInput {
                method: parts.method.as_str(),
                path: &path,
                query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                authority: parts.uri.authority().map(|a| a.as_str()),
                body: &body,
            },
            &creds,
            &store.region,
            sigv4::XKS_SERVICE,
            SystemTime::now(),
        );
        match verified {
            Ok(akid) => rec.access_key_id = Some(akid),
            Err(e) => {
                tracing::warn!(key_store = %store.name, operation = route.operation.as_str(), reason = %e, "authentication failed");
                return Err(XksError::from(e).into());
            }
        }

        // Health is exempt from the quota as from authorization: KMS's
        // health polls must not be refused because of data-plane load.
        let is_health = route.operation == Operation::Health;
        if let (false, Some(bucket)) = (is_health, store.quota()) {
            if !bucket.try_acquire() {
                store.metrics.throttled.fetch_add(1, Ordering::Relaxed);
                return Err(XksError::new(
                    ErrorName::ThrottlingException,
                    "request rate exceeds this key store's quota",
                )
                .into());
            }
        }

        let parsed = handlers::parse(route.operation, &body)?;
        let meta = parsed.metadata();
        rec.kms_request_id = Some(meta.kms_request_id.clone());
        rec.kms_operation = Some(meta.kms_operation.clone());
        rec.principal = meta.aws_principal_arn.clone();
        let key_id = route.key_id.unwrap_or("");

        if let (false, Some(policy)) = (is_health, store.policy()) {
            let decision = policy.evaluate(meta, key_id);
            rec.authz_rule = Some(decision.rule().to_owned());
            if let Decision::Deny(_) | Decision::ImplicitDeny = decision {
                store.metrics.denied.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    key_store = %store.name,
                    rule = decision.rule(),
                    kms_request_id = %meta.kms_request_id,
                    principal = meta.aws_principal_arn.as_deref().unwrap_or("-"),
                    kms_operation = %meta.kms_operation,
                    key_id,
                    "secondary authorization denied the request"
                );
                return Err(XksError::new(
                    ErrorName::AccessDeniedException,
                    "the key store's authorization policy denies this request",
                )
                .into());
            }
        }

        Ok(handlers::execute(store, key_id, parsed).await?)
    }
}

/// Why [`App::dispatch`] did not produce a 200.
#[derive(Debug)]
struct Failure {
    error: XksError,
    /// A 405 (with `Allow: POST`) rather than the error name's status.
    allow_post: bool,
}

impl From<XksError> for Failure {
    fn from(error: XksError) -> Self {
        Failure {
            error,
            allow_post: false,
        }
    }
}
