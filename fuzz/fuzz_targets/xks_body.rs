//! Fuzzes the proxy's request bodies: JSON for each XKS operation, parsed
//! into typed requests. Any body must give a typed request or a
//! `ValidationException`, never a panic, whatever it holds.
//!
//! Run: `scripts/fuzz.sh xks_body 600`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xks_proxy::api::handlers::parse;
use xks_proxy::api::{ErrorName, Operation};

fuzz_target!(|input: &[u8]| {
    for op in [
        Operation::Health,
        Operation::Metadata,
        Operation::Encrypt,
        Operation::Decrypt,
    ] {
        if let Err(error) = parse(op, input) {
            assert_eq!(
                error.name,
                ErrorName::ValidationException,
                "{op:?}: {error:?}"
            );
        }
    }
});
