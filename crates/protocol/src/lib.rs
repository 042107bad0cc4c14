//! OpenIM v3.8 wire protocol, as Palaver speaks it.
//!
//! Everything a server, a client SDK or a load generator needs to talk to OpenIM clients, and nothing that does
//! I/O:
//!
//! - [`pb`]: protobuf messages generated from the project's own `.proto` files (`proto/`), wire-compatible with
//!   OpenIM's (same packages, names and field numbers). Every message also (de)serializes as Go's
//!   `encoding/json` would, which is what OpenIM's REST API speaks (see [`gojson`]).
//! - [`envelope`]: the gateway's `Req`/`Resp` envelope in its two encodings (Go `gob` and JSON) and gzip.
//! - [`constant`]: request identifiers, session and content types, platforms.
//! - [`errcode`]: OpenIM's error codes and the messages clients expect with them.
//! - [`conversation_id`]: how conversation ids are formed from users and groups.

pub mod constant;
pub mod conversation_id;
pub mod envelope;
pub mod errcode;
pub mod gojson;
pub mod pb;
