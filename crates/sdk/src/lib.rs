//! Palaver's Rust client SDK: the foundation.
//!
//! - [`transport`]: one gateway connection, spoken exactly as OpenIM's SDKs speak it (gob + gzip like the
//!   Go/wasm SDKs, or JSON like the JS SDK), with request/response matching by `msgIncr`, server pushes as
//!   [`transport::Event`]s and the three heartbeat styles;
//! - [`rest`]: a REST client for OpenIM's `POST` + JSON API with its `{errCode, errMsg, errDlt, data}` envelope.
//!
//! The load generator (`palaver-bench`) is built on these. The sync engine, local cache and listeners that
//! DESIGN.md describes will sit on top of them.

mod codec;
pub mod error;
pub mod rest;
pub mod transport;

pub use error::{SdkError, SdkResult};
pub use rest::RestClient;
pub use transport::{ConnectOptions, Connection, Event, EventKind, Heartbeat};
