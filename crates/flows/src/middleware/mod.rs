// The module docs are docs/where-your-token-goes.md, attached in lib.rs.

mod attach;
mod client;
mod inspect;
mod layer;

pub use client::same_origin_redirects;
pub use layer::{ArcGisAuth, DEFAULT_MAX_URL_LENGTH, flow_error};

pub use crate::routing::TokenTransport;
