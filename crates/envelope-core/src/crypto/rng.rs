//! The one source of randomness: the operating system's CSPRNG.

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::CryptoError;

/// Fills `out` with random bytes.
pub(crate) fn fill(out: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| CryptoError::Primitive("the operating system's random source failed"))
}
