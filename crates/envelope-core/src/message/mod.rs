//! Whole-message encryption and decryption over in-memory buffers, given
//! materials. Policy, materials and the async boundary live in `client`.

pub(crate) mod decoder;
pub(crate) mod decrypt;
pub(crate) mod encoder;
pub(crate) mod encrypt;

#[cfg(test)]
mod tests;
