//! The XKS keyring: wraps data keys with a key in an XKS proxy.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use envelope_core::error::KeyringError;
use envelope_core::format::EncryptedDataKey;
use envelope_core::keyring::{decrypt_first_match, EdkUnwrapper, Keyring, UnwrapRequest};
use envelope_core::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope_core::DataKey;
use serde::de::DeserializeOwned;
use xks_api::secret::{secret_json, Secret, SecretText};
use xks_api::sigv4::{Signer, XKS_SERVICE};
use xks_api::types::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, RequestMetadata,
};
use zeroize::Zeroizing;

use crate::edk::{WrappedKey, PROVIDER_ID, TAG_LEN};
use crate::errors;
use crate::transport::{Timeouts, TlsSettings, Transport};
use crate::uri::XksKeyUri;

/// The principal reported in `requestMetadata.awsPrincipalArn` by default.
pub const DEFAULT_PRINCIPAL: &str = "arn:aws:iam::000000000000:user/envelope-xks";
/// The SigV4 region used by default.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A SigV4 credential pair of an XKS key store. The secret is zeroized on
/// drop and never printed.
#[derive(Clone)]
pub struct XksCredentials {
    access_key_id: String,
    secret: Secret,
}

impl XksCredentials {
    /// A credential pair. The access key id must be 20 to 30 characters
    /// from `[A-Z2-7]` and the secret 43 to 64 characters from
    /// `[A-Za-z0-9+/=]`, as the XKS API requires.
    pub fn new(
        access_key_id: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Result<Self, KeyringError> {
        let access_key_id = access_key_id.into();
        let secret = Secret::new(secret.into());
        if !(20..=30).contains(&access_key_id.len())
            || !access_key_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(KeyringError::Config(format!(
                "XKS access key id {access_key_id:?} must be 20 to 30 characters from [A-Z2-7]"
            )));
        }
        let bytes = secret.expose();
        if !(43..=64).contains(&bytes.len())
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(KeyringError::Config(
                "the XKS secret access key must be 43 to 64 characters from [A-Za-z0-9+/=]".into(),
            ));
        }
        Ok(Self {
            access_key_id,
            secret,
        })
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl fmt::Debug for XksCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XksCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Counts of the calls a keyring made to proxies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XksCallStats {
    /// Encrypt calls (one per wrapped data key).
    pub encrypt_calls: u64,
    /// Decrypt calls.
    pub decrypt_calls: u64,
    /// Calls that failed (any error, including the proxy's).
    pub failed_calls: u64,
}

#[derive(Default)]
struct Counters {
    encrypt: AtomicU64,
    decrypt: AtomicU64,
    failed: AtomicU64,
}

/// Builds an [`XksKeyring`].
pub struct XksKeyringBuilder {
    credentials: XksCredentials,
    key: Option<XksKeyUri>,
    discovery: bool,
    tls: TlsSettings,
    timeouts: Timeouts,
    region: String,
    principal: String,
    kms_key_arn: Option<String>,
}

impl fmt::Debug for XksKeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XksKeyringBuilder")
            .field("credentials", &self.credentials)
            .field("key", &self.key.as_ref().map(ToString::to_string))
            .field("discovery", &self.discovery)
            .field("tls", &self.tls)
            .field("timeouts", &self.timeouts)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl XksKeyringBuilder {
    /// Wraps data keys with `key` and unwraps the EDKs that name it.
    pub fn key(mut self, key: XksKeyUri) -> Self {
        self.key = Some(key);
        self
    }

    /// Also unwraps EDKs of any other XKS key, at the proxy and key store
    /// each EDK names, with these credentials (default off). Without a
    /// [`key`](Self::key) the keyring is decrypt-only. Only proxies whose
    /// certificate chains to the configured CA are contacted.
    pub fn discovery(mut self, on: bool) -> Self {
        self.discovery = on;
        self
    }

    /// TLS trust (CA) and optional client certificate; required.
    pub fn tls(mut self, tls: TlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// Connect and request deadlines (see [`Timeouts`]).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The SigV4 region of the key store (default [`DEFAULT_REGION`]).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// `requestMetadata.awsPrincipalArn`: who is calling, for the proxy's
    /// logs and authorization (default [`DEFAULT_PRINCIPAL`]).
    pub fn principal_arn(mut self, arn: impl Into<String>) -> Self {
        self.principal = arn.into();
        self
    }

    /// `requestMetadata.kmsKeyArn` (default: the key's URI).
    pub fn kms_key_arn(mut self, arn: impl Into<String>) -> Self {
        self.kms_key_arn = Some(arn.into());
        self
    }

    /// Checks the settings and builds the keyring (and its connection
    /// pool; nothing connects until the first call).
    pub fn build(self) -> Result<XksKeyring, KeyringError> {
        if self.key.is_none() && !self.discovery {
            return Err(KeyringError::Config(
                "an XKS keyring needs a key, discovery, or both".into(),
            ));
        }
        if self.region.is_empty() {
            return Err(KeyringError::Config("the XKS SigV4 region is empty".into()));
        }
        let transport = Transport::new(&self.tls, self.timeouts)?;
        Ok(XksKeyring {
            signer: Signer::new(
                &self.credentials.access_key_id,
                self.credentials.secret.clone(),
                &self.region,
                XKS_SERVICE,
            ),
            access_key_id: self.credentials.access_key_id,
            key: self.key,
            discovery: self.discovery,
            transport,
            principal: self.principal,
            kms_key_arn: self.kms_key_arn,
            counters: Arc::new(Counters::default()),
        })
    }
}

/// A keyring whose wrapping key lives in an HSM behind an XKS proxy.
///
/// See the crate docs for the EDK format, errors and outage behaviour.
pub struct XksKeyring {
    signer: Signer,
    access_key_id: String,
    key: Option<XksKeyUri>,
    discovery: bool,
    transport: Transport,
    principal: String,
    kms_key_arn: Option<String>,
    counters: Arc<Counters>,
}

impl fmt::Debug for XksKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XksKeyring")
            .field("key", &self.key.as_ref().map(ToString::to_string))
            .field("discovery", &self.discovery)
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Which operation a request is for.
#[derive(Clone, Copy)]
enum Operation {
    Encrypt,
    Decrypt,
}

impl Operation {
    fn path(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
        }
    }

    fn kms_name(self) -> &'static str {
        match self {
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
        }
    }
}

/// A random version-4 UUID, for `kmsRequestId`.
fn request_id() -> Result<String, KeyringError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| KeyringError::Config("the operating system's random source failed".into()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    ))
}

fn b64_opt(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty()).then(|| STANDARD.encode(bytes))
}

impl XksKeyring {
    /// A builder with these credentials.
    pub fn builder(credentials: XksCredentials) -> XksKeyringBuilder {
        XksKeyringBuilder {
            credentials,
            key: None,
            discovery: false,
            tls: TlsSettings::default(),
            timeouts: Timeouts::default(),
            region: DEFAULT_REGION.to_owned(),
            principal: DEFAULT_PRINCIPAL.to_owned(),
            kms_key_arn: None,
        }
    }

    /// The key this keyring wraps with, if any.
    pub fn key(&self) -> Option<&XksKeyUri> {
        self.key.as_ref()
    }

    /// Calls made so far (shared by clones of this keyring's `Arc`).
    pub fn stats(&self) -> XksCallStats {
        let c = &self.counters;
        XksCallStats {
            encrypt_calls: c.encrypt.load(Ordering::Relaxed),
            decrypt_calls: c.decrypt.load(Ordering::Relaxed),
            failed_calls: c.failed.load(Ordering::Relaxed),
        }
    }

    fn metadata(&self, key: &XksKeyUri, op: Operation) -> Result<RequestMetadata, KeyringError> {
        Ok(RequestMetadata {
            kms_request_id: request_id()?,
            kms_operation: op.kms_name().to_owned(),
            aws_principal_arn: Some(self.principal.clone()),
            kms_key_arn: Some(self.kms_key_arn.clone().unwrap_or_else(|| key.to_string())),
            kms_via_service: Some("envelope".to_owned()),
            aws_source_vpc: None,
            aws_source_vpce: None,
        })
    }

    /// Signs and sends one request; parses a 200 answer as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        key: &XksKeyUri,
        op: Operation,
        request_id: &str,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<T, KeyringError> {
        let counter = match op {
            Operation::Encrypt => &self.counters.encrypt,
            Operation::Decrypt => &self.counters.decrypt,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.send(key, op, body).await;
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.to_string(),
        };
        if result.is_err() {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(
            key = %key,
            operation = op.kms_name(),
            kms_request_id = request_id,
            latency_ms = started.elapsed().as_millis() as u64,
            outcome = %outcome,
            "XKS call"
        );
        result
    }

    async fn send<T: DeserializeOwned>(
        &self,
        key: &XksKeyUri,
        op: Operation,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<T, KeyringError> {
        let key_name = key.to_string();
        let path = key.operation_path(op.path());
        let authority = key.authority();
        let signed = self.signer.sign(
            "POST",
            &path,
            &authority,
            &[("content-type", "application/json")],
            &body,
            SystemTime::now(),
        );
        let uri = format!("https://{}:{}{}", key.host(), key.port(), path);
        let headers = [
            ("host", authority.as_str()),
            ("content-type", "application/json"),
            ("x-amz-date", signed.x_amz_date.as_str()),
            ("authorization", signed.authorization.as_str()),
        ];
        let (status, answer) = self
            .transport
            .post(&uri, &headers, body)
            .await
            .map_err(|e| errors::from_transport(&key_name, e))?;
        if status != 200 {
            return Err(errors::from_answer(&key_name, status, &answer));
        }
        serde_json::from_slice(&answer).map_err(|_| {
            errors::invalid_response(&key_name, format!("{} answer is not valid JSON", op.path()))
        })
    }

    async fn wrap(
        &self,
        key: &XksKeyUri,
        data_key: &DataKey,
        aad: &[u8],
    ) -> Result<WrappedKey, KeyringError> {
        let key_name = key.to_string();
        let metadata = self.metadata(key, Operation::Encrypt)?;
        let request_id = metadata.kms_request_id.clone();
        let request = EncryptRequest {
            request_metadata: metadata,
            plaintext: SecretText::new(STANDARD.encode(data_key.expose_secret())),
            encryption_algorithm: "AES_GCM".to_owned(),
            additional_authenticated_data: b64_opt(aad),
            ciphertext_data_integrity_value_algorithm: Some("SHA_256".to_owned()),
        };
        let body = secret_json(&request).map_err(|e| KeyringError::WrapFailed {
            keyring: key_name.clone(),
            reason: format!("cannot serialize the request: {e}"),
        })?;
        let answer: EncryptResponse = self
            .call(key, Operation::Encrypt, &request_id, body)
            .await?;
        let bad =
            |what: &str| errors::invalid_response(&key_name, format!("encrypt answer: {what}"));
        let decode = |field: &str, value: &str| {
            STANDARD
                .decode(value)
                .map_err(|_| bad(&format!("{field} is not base64")))
        };
        let tag = decode("authenticationTag", &answer.authentication_tag)?;
        let tag: [u8; TAG_LEN] = tag
            .as_slice()
            .try_into()
            .map_err(|_| bad("authenticationTag is not 16 bytes"))?;
        let wrapped = WrappedKey {
            iv: decode("initializationVector", &answer.initialization_vector)?,
            tag,
            metadata: answer
                .ciphertext_metadata
                .as_deref()
                .map(|m| decode("ciphertextMetadata", m))
                .transpose()?
                .unwrap_or_default(),
            ciphertext: decode("ciphertext", &answer.ciphertext)?,
        };
        wrapped.check().map_err(|e| bad(&e.to_string()))?;
        if wrapped.ciphertext.len() != data_key.len() {
            return Err(bad("ciphertext is not as long as the data key"));
        }
        // The proxy computed the CDIV before its own verification decrypt;
        // checking it here catches corruption between the HSM and us.
        let cdiv = answer
            .ciphertext_data_integrity_value
            .as_deref()
            .ok_or_else(|| bad("no ciphertextDataIntegrityValue"))?;
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [
            aad,
            &wrapped.metadata,
            &wrapped.iv,
            &wrapped.ciphertext,
            &wrapped.tag,
        ] {
            digest.update(part);
        }
        if decode("ciphertextDataIntegrityValue", cdiv)? != digest.finish().as_ref() {
            return Err(bad("ciphertextDataIntegrityValue does not match"));
        }
        Ok(wrapped)
    }

    async fn unwrap_with_proxy(
        &self,
        key: &XksKeyUri,
        wrapped: &WrappedKey,
        aad: &[u8],
        key_len: usize,
    ) -> Result<DataKey, KeyringError> {
        let key_name = key.to_string();
        let metadata = self.metadata(key, Operation::Decrypt)?;
        let request_id = metadata.kms_request_id.clone();
        let request = DecryptRequest {
            request_metadata: metadata,
            ciphertext: STANDARD.encode(&wrapped.ciphertext),
            initialization_vector: STANDARD.encode(&wrapped.iv),
            authentication_tag: STANDARD.encode(wrapped.tag),
            encryption_algorithm: "AES_GCM".to_owned(),
            additional_authenticated_data: b64_opt(aad),
            ciphertext_metadata: b64_opt(&wrapped.metadata),
        };
        let body = serde_json::to_vec(&request)
            .map(Zeroizing::new)
            .map_err(|e| KeyringError::UnwrapFailed {
                keyring: key_name.clone(),
                reason: format!("cannot serialize the request: {e}"),
            })?;
        let answer: DecryptResponse = self
            .call(key, Operation::Decrypt, &request_id, body)
            .await?;
        let plaintext = STANDARD
            .decode(answer.plaintext.expose())
            .map(Zeroizing::new);
        let plaintext = plaintext.map_err(|_| {
            errors::invalid_response(&key_name, "decrypt answer: plaintext is not base64")
        })?;
        if plaintext.len() != key_len {
            return Err(errors::invalid_response(
                &key_name,
                format!(
                    "decrypt answer: plaintext of {} bytes, the suite's data key has {key_len}",
                    plaintext.len()
                ),
            ));
        }
        DataKey::from_slice(&plaintext).map_err(|e| KeyringError::UnwrapFailed {
            keyring: key_name,
            reason: e.to_string(),
        })
    }

    /// Whether this keyring may unwrap an EDK of `key`.
    fn accepts(&self, key: &XksKeyUri) -> bool {
        self.discovery || self.key.as_ref() == Some(key)
    }

    fn describe(&self) -> String {
        match &self.key {
            Some(key) if self.discovery => format!("XKS keyring {key} (with discovery)"),
            Some(key) => format!("XKS keyring {key}"),
            None => "XKS discovery keyring".to_owned(),
        }
    }
}

#[async_trait]
impl Keyring for XksKeyring {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        let Some(key) = &self.key else {
            return Err(KeyringError::CannotGenerate {
                keyring: self.describe(),
            });
        };
        let failed = |reason: String| KeyringError::WrapFailed {
            keyring: key.to_string(),
            reason,
        };
        let aad = materials
            .encryption_context
            .serialize()
            .map_err(|e| failed(e.to_string()))?;
        let data_key = materials
            .data_key_or_generate()
            .map_err(|e| failed(e.to_string()))?;
        let wrapped = self.wrap(key, data_key, &aad).await?;
        let ciphertext = wrapped.encode().map_err(|e| failed(e.to_string()))?;
        materials.encrypted_data_keys.push(EncryptedDataKey {
            provider_id: PROVIDER_ID.to_owned(),
            provider_info: key.to_string().into_bytes(),
            ciphertext,
        });
        Ok(())
    }

    async fn on_decrypt(
        &self,
        materials: &mut DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<(), KeyringError> {
        decrypt_first_match(self, materials, edks).await
    }
}

/// The key an EDK names, if it is an XKS EDK with a parsable key URI.
fn edk_key(edk: &EncryptedDataKey) -> Option<XksKeyUri> {
    if edk.provider_id != PROVIDER_ID {
        return None;
    }
    std::str::from_utf8(&edk.provider_info)
        .ok()
        .and_then(|info| XksKeyUri::parse(info).ok())
}

#[async_trait]
impl EdkUnwrapper for XksKeyring {
    fn describe(&self) -> String {
        XksKeyring::describe(self)
    }

    fn matches(&self, edk: &EncryptedDataKey) -> bool {
        edk_key(edk).is_some_and(|key| self.accepts(&key))
    }

    async fn unwrap(
        &self,
        edk: &EncryptedDataKey,
        request: &UnwrapRequest<'_>,
    ) -> Result<DataKey, KeyringError> {
        let key = edk_key(edk).ok_or_else(|| KeyringError::NoMatchingKey {
            keyring: XksKeyring::describe(self),
        })?;
        let key_len = request.suite.key_len();
        let wrapped =
            WrappedKey::decode(&edk.ciphertext).map_err(|e| KeyringError::UnwrapFailed {
                keyring: key.to_string(),
                reason: e.to_string(),
            })?;
        if wrapped.ciphertext.len() != key_len {
            return Err(KeyringError::UnwrapFailed {
                keyring: key.to_string(),
                reason: "the wrapped key's length does not match the suite".into(),
            });
        }
        self.unwrap_with_proxy(&key, &wrapped, request.serialized_context, key_len)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKID: &str = "AKIAAAAAAAAAAAAAAAA2";
    const SECRET: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

    #[test]
    fn request_ids_are_random_v4_uuids() {
        let a = request_id().unwrap();
        let b = request_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn credentials_are_checked_and_redacted() {
        let creds = XksCredentials::new(AKID, SECRET).unwrap();
        let debug = format!("{creds:?}");
        assert!(debug.contains(AKID) && !debug.contains(SECRET), "{debug}");
        assert!(XksCredentials::new("akid-lower-case-xxxxxxxx", SECRET).is_err());
        assert!(XksCredentials::new(AKID, "short").is_err());
        assert!(XksCredentials::new(AKID, format!("{}!", &SECRET[..45])).is_err());
    }

    #[test]
    fn builder_needs_a_key_or_discovery_and_a_ca() {
        let creds = XksCredentials::new(AKID, SECRET).unwrap();
        let no_key = XksKeyring::builder(creds.clone()).build();
        assert!(matches!(no_key, Err(KeyringError::Config(_))));
        let key = XksKeyUri::parse("https://localhost:1/ks#k").unwrap();
        let no_ca = XksKeyring::builder(creds).key(key).build();
        assert!(matches!(no_ca, Err(KeyringError::Config(m)) if m.contains("CA")));
    }
}
