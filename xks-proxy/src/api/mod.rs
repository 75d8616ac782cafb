//! The XKS HTTP API: the wire types, errors and routes of `xks-api`, the
//! mapping of HSM errors to XKS errors, and the handlers.

pub mod handlers;
mod hsm_errors;

pub use xks_api::{error, routes, types};
pub use xks_api::{ErrorName, Operation, Route, XksError};
