//! The XKS HTTP API: wire types, errors, routing and handlers.

pub mod error;
pub mod handlers;
pub mod routes;
pub mod types;

pub use error::{ErrorName, XksError};
pub use routes::{Operation, Route};
