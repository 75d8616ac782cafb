//! Request dispatch, independent of the transport: route, method, body
//! limit, SigV4, parse, handler, response. Also the key stores and their
//! reloadable credentials.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::api::handlers;
use crate::api::{routes, ErrorName, XksError};
use crate::config::{Config, ConfigError, Credential};
use crate::health::HealthChecker;
use crate::hsm::KeyStoreHsm;
use crate::sigv4::{self, VerifyInput};

/// One logical key store (one URI prefix).
#[derive(Debug)]
pub struct KeyStore {
    /// Configured name.
    pub name: String,
    /// URI prefix.
    pub prefix: String,
    /// SigV4 region.
    pub region: String,
    credentials: RwLock<Arc<Vec<Credential>>>,
    /// HSM access.
    pub hsm: KeyStoreHsm,
    /// Deep health check.
    pub health: HealthChecker,
}

impl KeyStore {
    /// A key store with its initial credentials.
    pub fn new(
        name: String,
        prefix: String,
        region: String,
        credentials: Vec<Credential>,
        hsm: KeyStoreHsm,
        health: HealthChecker,
    ) -> Self {
        KeyStore {
            name,
            prefix,
            region,
            credentials: RwLock::new(Arc::new(credentials)),
            hsm,
            health,
        }
    }

    /// The current credential pairs.
    pub fn credentials(&self) -> Arc<Vec<Credential>> {
        // A poisoned lock still holds a complete Arc.
        Arc::clone(&self.credentials.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the credential pairs (rotation).
    pub fn set_credentials(&self, creds: Vec<Credential>) {
        *self.credentials.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(creds);
    }
}

/// The whole application: key stores by prefix and request limits.
#[derive(Debug)]
pub struct App {
    stores: HashMap<String, Arc<KeyStore>>,
    max_body: usize,
}

type HttpResponse = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(e: &XksError) -> HttpResponse {
    let body = serde_json::to_vec(&e.body())
        .unwrap_or_else(|_| br#"{"errorName":"InternalException"}"#.to_vec());
    json_response(e.name.status(), body)
}

impl App {
    /// An app over these key stores.
    pub fn new(stores: Vec<Arc<KeyStore>>, max_body: usize) -> Self {
        App {
            stores: stores.into_iter().map(|s| (s.prefix.clone(), s)).collect(),
            max_body,
        }
    }

    /// Re-reads every key store's credential pairs from the configuration
    /// file. A key store whose new credentials fail to load keeps its old
    /// ones, so a half-written secret file cannot lock KMS out.
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
        }
        Ok(())
    }

    /// Handles one HTTP request. Never fails: every error becomes the
    /// spec's JSON error body.
    pub async fn handle<B>(&self, req: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        if req.uri().path() == "/ping" {
            return Response::new(Full::new(Bytes::from_static(b"ok\n")));
        }
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let route = match routes::parse(&path) {
            Ok(r) => r,
            Err(e) => return error_response(&e),
        };
        let Some(store) = self.stores.get(route.prefix) else {
            return error_response(&XksError::new(
                ErrorName::InvalidUriPathException,
                "unknown key store prefix",
            ));
        };
        if parts.method != Method::POST {
            let mut r = error_response(&XksError::validation("method not allowed; use POST"));
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return r;
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
            return error_response(&XksError::validation("request body too large"));
        }
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return error_response(&XksError::validation(
                    "request body too large or unreadable",
                ))
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
        if let Err(e) = verified {
            tracing::warn!(key_store = %store.name, operation = route.operation.as_str(), reason = %e, "authentication failed");
            return error_response(&e.into());
        }

        let parsed = match handlers::parse(route.operation, &body) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(key_store = %store.name, operation = route.operation.as_str(), outcome = e.name.as_str(), "invalid request");
                return error_response(&e);
            }
        };
        let meta = parsed.metadata().clone();
        let key_id = route.key_id.unwrap_or("");
        let result = handlers::execute(store, key_id, parsed).await;
        let outcome = match &result {
            Ok(_) => "OK",
            Err(e) => e.name.as_str(),
        };
        tracing::info!(
            key_store = %store.name,
            operation = route.operation.as_str(),
            kms_request_id = %meta.kms_request_id,
            kms_operation = %meta.kms_operation,
            principal = meta.aws_principal_arn.as_deref().unwrap_or("-"),
            key_id,
            outcome,
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        );
        match result {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(e) => error_response(&e),
        }
    }
}
