//! # arcgis-auth-core
//!
//! The contract and the wire for ArcGIS authentication.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod arcgis_error;
mod error;
mod origin;
mod portal;
mod server;
mod time;
mod token;

pub use arcgis_error::ArcGisError;
pub use error::{Error, ErrorKind, Result};
pub use origin::{Origin, is_secure_or_loopback};
pub use portal::Portal;
pub use server::ServerRoot;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use token::{Freshness, RefreshToken, Token, constant_time_eq, effective_lead};

pub use oauth2;
pub use secrecy::{self, ExposeSecret, SecretString};
