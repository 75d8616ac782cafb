//! The three KMS calls the keyrings make, with the ESDK's response checks.
//!
//! Plaintext data keys from responses go into a [`DataKey`] at once; the
//! SDK's own response buffers are outside our control and not zeroized.

use std::collections::HashMap;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;
use envelope_core::error::KeyringError;
use envelope_core::{DataKey, EncryptedDataKey, EncryptionContext};
use zeroize::Zeroizing;

use crate::arn::{KmsArn, ResourceType};
use crate::error::{from_sdk, invalid_response};

/// The provider id of every EDK a KMS keyring writes.
pub const PROVIDER_ID: &str = "aws-kms";

/// The encryption context as the SDK wants it.
pub(crate) fn context_map(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

fn tokens(grant_tokens: &[String]) -> Option<Vec<String>> {
    (!grant_tokens.is_empty()).then(|| grant_tokens.to_vec())
}

/// The response's key id, which must be a key ARN: it becomes provider info.
fn response_key_arn(key_id: &str, returned: Option<String>) -> Result<String, KeyringError> {
    let returned = returned.ok_or_else(|| invalid_response(key_id, "response has no KeyId"))?;
    match KmsArn::parse(&returned) {
        Ok(arn) if arn.resource_type == ResourceType::Key => Ok(returned),
        _ => Err(invalid_response(
            key_id,
            format!("response KeyId {returned:?} is not a key ARN"),
        )),
    }
}

/// A plaintext key from a response, checked for the suite's length.
fn data_key(
    key_id: &str,
    plaintext: Option<Blob>,
    expected_len: usize,
) -> Result<DataKey, KeyringError> {
    let plaintext = Zeroizing::new(
        plaintext
            .ok_or_else(|| invalid_response(key_id, "response has no Plaintext"))?
            .into_inner(),
    );
    if plaintext.len() != expected_len {
        return Err(invalid_response(
            key_id,
            format!(
                "data key is {} bytes, the suite needs {expected_len}",
                plaintext.len()
            ),
        ));
    }
    DataKey::from_slice(&plaintext).map_err(|e| invalid_response(key_id, e.to_string()))
}

/// `GenerateDataKey`: the new data key and its EDK.
pub(crate) async fn generate(
    client: &Client,
    key_id: &str,
    key_len: usize,
    context: &EncryptionContext,
    grant_tokens: &[String],
) -> Result<(DataKey, EncryptedDataKey), KeyringError> {
    let number_of_bytes = i32::try_from(key_len)
        .map_err(|_| invalid_response(key_id, "data key length out of range"))?;
    let response = client
        .generate_data_key()
        .key_id(key_id)
        .number_of_bytes(number_of_bytes)
        .set_encryption_context(context_map(context))
        .set_grant_tokens(tokens(grant_tokens))
        .send()
        .await
        .map_err(|e| from_sdk(key_id, e))?;
    let key = data_key(key_id, response.plaintext, key_len)?;
    let arn = response_key_arn(key_id, response.key_id)?;
    let ciphertext = response
        .ciphertext_blob
        .ok_or_else(|| invalid_response(key_id, "response has no CiphertextBlob"))?
        .into_inner();
    Ok((key, edk(arn, ciphertext)))
}

/// `Encrypt`: another EDK for an existing data key.
pub(crate) async fn encrypt(
    client: &Client,
    key_id: &str,
    key: &DataKey,
    context: &EncryptionContext,
    grant_tokens: &[String],
) -> Result<EncryptedDataKey, KeyringError> {
    let response = client
        .encrypt()
        .key_id(key_id)
        .plaintext(Blob::new(key.expose_secret()))
        .set_encryption_context(context_map(context))
        .set_grant_tokens(tokens(grant_tokens))
        .send()
        .await
        .map_err(|e| from_sdk(key_id, e))?;
    let arn = response_key_arn(key_id, response.key_id)?;
    let ciphertext = response
        .ciphertext_blob
        .ok_or_else(|| invalid_response(key_id, "response has no CiphertextBlob"))?
        .into_inner();
    Ok(edk(arn, ciphertext))
}

/// `Decrypt` of one EDK with `KeyId` set; the response must name `key_id`
/// and carry a key of the suite's length.
pub(crate) async fn decrypt(
    client: &Client,
    key_id: &str,
    edk: &EncryptedDataKey,
    key_len: usize,
    context: &EncryptionContext,
    grant_tokens: &[String],
) -> Result<DataKey, KeyringError> {
    let response = client
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(Blob::new(edk.ciphertext.as_slice()))
        .set_encryption_context(context_map(context))
        .set_grant_tokens(tokens(grant_tokens))
        .send()
        .await
        .map_err(|e| from_sdk(key_id, e))?;
    let key = data_key(key_id, response.plaintext, key_len)?;
    match response.key_id.as_deref() {
        Some(returned) if returned == key_id => Ok(key),
        returned => Err(invalid_response(
            key_id,
            format!("response KeyId {returned:?} is not the requested key"),
        )),
    }
}

fn edk(arn: String, ciphertext: Vec<u8>) -> EncryptedDataKey {
    EncryptedDataKey {
        provider_id: PROVIDER_ID.to_owned(),
        provider_info: arn.into_bytes(),
        ciphertext,
    }
}

/// The key ARN an EDK names, if it is a KMS EDK with a key ARN as info.
pub(crate) fn edk_key_arn(edk: &EncryptedDataKey) -> Option<(&str, KmsArn)> {
    if edk.provider_id != PROVIDER_ID {
        return None;
    }
    let info = std::str::from_utf8(&edk.provider_info).ok()?;
    let arn = KmsArn::parse(info).ok()?;
    (arn.resource_type == ResourceType::Key).then_some((info, arn))
}
