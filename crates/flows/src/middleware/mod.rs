#![doc = include_str!("../../docs/where-your-token-goes.md")]

mod attach;
mod client;
mod inspect;
mod layer;
mod refusals;

pub use client::same_origin_redirects;
pub use layer::{ArcGisAuth, DEFAULT_MAX_URL_LENGTH, DEFAULT_REJECTION_COOLDOWN, flow_error};
