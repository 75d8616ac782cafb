//! The user-facing client: encrypt and decrypt with a policy.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::format::header::Header;
use crate::format::EncryptionContext;
use crate::keyring::Keyring;
use crate::materials::{
    DecryptRequest, DecryptionMaterials, DefaultMaterialsManager, EncryptionMaterials,
    EncryptionRequest, MaterialsManager,
};
use crate::message::{decrypt, encoder, encrypt};
use crate::policy::CommitmentPolicy;
use crate::stream::{DecryptingReader, EncryptingWriter, ReleasePolicy};
use crate::suite::AlgorithmSuite;

/// The default frame length, as in the official SDKs.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;

/// A decrypted message.
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// The parsed header.
    pub header: Header,
    /// The context the materials manager returned, kept only when it is not
    /// the header's own (reproduced pairs that the header authenticates but
    /// does not store), so the usual decrypt copies no context.
    merged_context: Option<EncryptionContext>,
}

impl Decrypted {
    /// The message's encryption context: the stored pairs (including
    /// `aws-crypto-public-key` for signed suites) and the reproduced pairs
    /// the header authenticated.
    pub fn encryption_context(&self) -> &EncryptionContext {
        self.merged_context
            .as_ref()
            .unwrap_or(&self.header.encryption_context)
    }
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("encryption_context", self.encryption_context())
            .field("suite", &self.suite)
            .finish()
    }
}

/// What a streaming decryption produced besides the plaintext.
#[derive(Debug)]
pub struct StreamDecrypted {
    /// Plaintext bytes written.
    pub plaintext_length: u64,
    /// The message's encryption context (as in [`Decrypted`]).
    pub encryption_context: EncryptionContext,
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// The parsed header.
    pub header: Header,
}

/// Encrypts and decrypts messages in the AWS Encryption SDK format.
///
/// Cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Client {
    materials: Arc<dyn MaterialsManager>,
    commitment_policy: CommitmentPolicy,
    suite: Option<AlgorithmSuite>,
    frame_length: u32,
    max_encrypted_data_keys: Option<usize>,
    max_unwrap_attempts: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("commitment_policy", &self.commitment_policy)
            .field("suite", &self.suite)
            .field("frame_length", &self.frame_length)
            .field("max_encrypted_data_keys", &self.max_encrypted_data_keys)
            .field("max_unwrap_attempts", &self.max_unwrap_attempts)
            .finish()
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    materials: Option<Arc<dyn MaterialsManager>>,
    commitment_policy: CommitmentPolicy,
    suite: Option<AlgorithmSuite>,
    frame_length: u32,
    max_encrypted_data_keys: Option<usize>,
    max_unwrap_attempts: usize,
}

impl ClientBuilder {
    /// Uses the default materials manager over `keyring`.
    pub fn keyring(mut self, keyring: Arc<dyn Keyring>) -> Self {
        self.materials = Some(Arc::new(DefaultMaterialsManager::new(keyring)));
        self
    }

    /// Uses `materials` (for example a caching or required-context manager).
    pub fn materials_manager(mut self, materials: Arc<dyn MaterialsManager>) -> Self {
        self.materials = Some(materials);
        self
    }

    /// Sets the commitment policy (default: require-encrypt-require-decrypt).
    pub fn commitment_policy(mut self, policy: CommitmentPolicy) -> Self {
        self.commitment_policy = policy;
        self
    }

    /// Encrypts with `suite` instead of the policy's default.
    pub fn suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = Some(suite);
        self
    }

    /// Sets the frame length for encryption (default 4096).
    pub fn frame_length(mut self, frame_length: u32) -> Self {
        self.frame_length = frame_length;
        self
    }

    /// Limits the number of encrypted data keys, on encrypt and decrypt.
    pub fn max_encrypted_data_keys(mut self, max: usize) -> Self {
        self.max_encrypted_data_keys = Some(max);
        self
    }

    /// Bounds the unwrap attempts that may fail while decrypting one message,
    /// over all keyrings (default
    /// [`DEFAULT_MAX_UNWRAP_ATTEMPTS`](crate::materials::DEFAULT_MAX_UNWRAP_ATTEMPTS)):
    /// a hostile message whose EDKs all name your key then costs at most this
    /// many RSA operations or KMS calls. Raise it if your messages carry many
    /// EDKs that your keyrings try and fail on before one succeeds.
    pub fn max_unwrap_attempts(mut self, max: usize) -> Self {
        self.max_unwrap_attempts = max;
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<Client, Error> {
        let materials = self.materials.ok_or(crate::error::KeyringError::Config(
            "a client needs a keyring or a materials manager".into(),
        ))?;
        encoder::check_frame_length(self.frame_length)?;
        if let Some(suite) = self.suite {
            self.commitment_policy.check_encrypt(suite)?;
        }
        if self.max_encrypted_data_keys == Some(0) {
            return Err(crate::error::KeyringError::Config(
                "max encrypted data keys must be at least 1".into(),
            )
            .into());
        }
        Ok(Client {
            materials,
            commitment_policy: self.commitment_policy,
            suite: self.suite,
            frame_length: self.frame_length,
            max_encrypted_data_keys: self.max_encrypted_data_keys,
            max_unwrap_attempts: self.max_unwrap_attempts.max(1),
        })
    }
}

impl Client {
    /// A builder with the defaults: suite 0x0578, frame length 4096,
    /// require-encrypt-require-decrypt, no EDK limit.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            materials: None,
            commitment_policy: CommitmentPolicy::default(),
            suite: None,
            frame_length: DEFAULT_FRAME_LENGTH,
            max_encrypted_data_keys: None,
            max_unwrap_attempts: crate::materials::DEFAULT_MAX_UNWRAP_ATTEMPTS,
        }
    }

    /// The commitment policy in force.
    pub fn commitment_policy(&self) -> CommitmentPolicy {
        self.commitment_policy
    }

    /// Encrypts `plaintext` bound to `context`.
    ///
    /// When the materials manager has materials ready (a cache hit), this
    /// completes without awaiting.
    pub async fn encrypt(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, Error> {
        let request = self.encryption_request(context, Some(plaintext.len() as u64))?;
        let materials = self.encryption_materials(&request).await?;
        encrypt::encrypt(
            &materials,
            plaintext,
            self.frame_length,
            self.max_encrypted_data_keys,
        )
    }

    /// Starts encrypting a stream into `writer`. With `plaintext_length`
    /// known, the caching manager can account for it (unknown lengths
    /// bypass the cache) and writing more or less than declared fails.
    pub async fn encrypting_writer<W: Write>(
        &self,
        writer: W,
        context: &EncryptionContext,
        plaintext_length: Option<u64>,
    ) -> Result<EncryptingWriter<W>, Error> {
        let request = self.encryption_request(context, plaintext_length)?;
        let materials = self.encryption_materials(&request).await?;
        EncryptingWriter::new(
            writer,
            materials,
            self.frame_length,
            self.max_encrypted_data_keys,
            plaintext_length,
        )
    }

    /// [`Client::encrypting_writer`] without an async runtime.
    pub fn encrypting_writer_blocking<W: Write>(
        &self,
        writer: W,
        context: &EncryptionContext,
        plaintext_length: Option<u64>,
    ) -> Result<EncryptingWriter<W>, Error> {
        crate::block_on(self.encrypting_writer(writer, context, plaintext_length))
    }

    /// Starts decrypting the message `reader` yields. The header is read
    /// (blocking on `reader`) and authenticated before this returns; the
    /// body is decrypted as the returned reader is read, under `policy`.
    pub async fn decrypting_reader<R: Read>(
        &self,
        mut reader: R,
        reproduced_context: &EncryptionContext,
        policy: ReleasePolicy,
    ) -> Result<DecryptingReader<R>, Error> {
        let (buffered, parsed) =
            crate::stream::reader::read_header(&mut reader, self.max_encrypted_data_keys)?;
        self.commitment_policy.check_decrypt(parsed.header.suite)?;
        let materials = self
            .decryption_materials(&self.decrypt_request(&parsed.header, reproduced_context))
            .await?;
        DecryptingReader::new(reader, buffered, parsed, materials, &policy)
    }

    /// [`Client::decrypting_reader`] without an async runtime.
    pub fn decrypting_reader_blocking<R: Read>(
        &self,
        reader: R,
        reproduced_context: &EncryptionContext,
        policy: ReleasePolicy,
    ) -> Result<DecryptingReader<R>, Error> {
        crate::block_on(self.decrypting_reader(reader, reproduced_context, policy))
    }

    /// Encrypts everything `reader` yields into one message on `writer`,
    /// frame by frame. Returns the plaintext length.
    pub async fn encrypt_stream<R, W>(
        &self,
        reader: &mut R,
        writer: &mut W,
        context: &EncryptionContext,
        plaintext_length: Option<u64>,
    ) -> Result<u64, Error>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let request = self.encryption_request(context, plaintext_length)?;
        let materials = self.encryption_materials(&request).await?;
        crate::stream::async_io::encrypt(
            reader,
            writer,
            &materials,
            self.frame_length,
            self.max_encrypted_data_keys,
            plaintext_length,
        )
        .await
    }

    /// Decrypts the message `reader` yields onto `writer`, releasing each
    /// frame once it verifies and the last one once the end of the message
    /// (and its signature) verifies. On error, what was written must be
    /// discarded; see [`crate::stream`].
    pub async fn decrypt_stream<R, W>(
        &self,
        reader: &mut R,
        writer: &mut W,
        reproduced_context: &EncryptionContext,
    ) -> Result<StreamDecrypted, Error>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let (buffered, parsed) =
            crate::stream::async_io::read_header(reader, self.max_encrypted_data_keys).await?;
        self.commitment_policy.check_decrypt(parsed.header.suite)?;
        let materials = self
            .decryption_materials(&self.decrypt_request(&parsed.header, reproduced_context))
            .await?;
        let plaintext_length =
            crate::stream::async_io::decrypt_body(reader, writer, buffered, &parsed, &materials)
                .await?;
        Ok(StreamDecrypted {
            plaintext_length,
            encryption_context: materials.encryption_context.clone(),
            suite: parsed.header.suite,
            header: parsed.header,
        })
    }

    fn decrypt_request<'a>(
        &self,
        header: &'a Header,
        reproduced: &'a EncryptionContext,
    ) -> DecryptRequest<'a> {
        DecryptRequest {
            suite: header.suite,
            commitment_policy: self.commitment_policy,
            encrypted_data_keys: &header.encrypted_data_keys,
            encryption_context: &header.encryption_context,
            reproduced_encryption_context: (!reproduced.is_empty()).then_some(reproduced),
            max_unwrap_attempts: self.max_unwrap_attempts,
        }
    }

    /// Decrypts `message`. Each pair of `reproduced_context` must either be
    /// stored in the message with the same value or be authenticated by it
    /// (pairs written by a required-context manager); otherwise decryption
    /// fails before any plaintext is produced.
    pub async fn decrypt(
        &self,
        message: &[u8],
        reproduced_context: &EncryptionContext,
    ) -> Result<Decrypted, Error> {
        let parsed = Header::parse(message, self.max_encrypted_data_keys)?;
        self.commitment_policy.check_decrypt(parsed.header.suite)?;
        let request = DecryptRequest {
            suite: parsed.header.suite,
            commitment_policy: self.commitment_policy,
            encrypted_data_keys: &parsed.header.encrypted_data_keys,
            encryption_context: &parsed.header.encryption_context,
            reproduced_encryption_context: (!reproduced_context.is_empty())
                .then_some(reproduced_context),
            max_unwrap_attempts: self.max_unwrap_attempts,
        };
        let materials = self.decryption_materials(&request).await?;
        let plaintext = decrypt::decrypt(message, &parsed, &materials)?;
        let merged_context = (materials.encryption_context != parsed.header.encryption_context)
            .then(|| materials.encryption_context.clone());
        Ok(Decrypted {
            plaintext,
            suite: parsed.header.suite,
            header: parsed.header,
            merged_context,
        })
    }

    /// [`Client::encrypt`] for callers without an async runtime. Suitable
    /// for local keyrings and cache hits; keyrings that need a runtime
    /// (AWS KMS) must use the async method inside one.
    pub fn encrypt_blocking(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, Error> {
        crate::block_on(self.encrypt(plaintext, context))
    }

    /// [`Client::decrypt`] for callers without an async runtime.
    pub fn decrypt_blocking(
        &self,
        message: &[u8],
        reproduced_context: &EncryptionContext,
    ) -> Result<Decrypted, Error> {
        crate::block_on(self.decrypt(message, reproduced_context))
    }

    pub(crate) fn encryption_request<'a>(
        &self,
        context: &'a EncryptionContext,
        plaintext_length: Option<u64>,
    ) -> Result<EncryptionRequest<'a>, Error> {
        context.check_no_reserved_keys()?;
        Ok(EncryptionRequest {
            encryption_context: context,
            suite: self.suite,
            commitment_policy: self.commitment_policy,
            plaintext_length,
            required_encryption_context_keys: Vec::new(),
        })
    }

    pub(crate) async fn encryption_materials(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Arc<EncryptionMaterials>, Error> {
        let materials = match self.materials.ready_encryption_materials(request) {
            Some(ready) => ready?,
            None => self.materials.get_encryption_materials(request).await?,
        };
        // A custom manager may hand back a suite the policy forbids.
        self.commitment_policy.check_encrypt(materials.suite)?;
        Ok(materials)
    }

    pub(crate) async fn decryption_materials(
        &self,
        request: &DecryptRequest<'_>,
    ) -> Result<Arc<DecryptionMaterials>, Error> {
        match self.materials.ready_decryption_materials(request) {
            Some(ready) => ready,
            None => self.materials.decrypt_materials(request).await,
        }
    }
}
