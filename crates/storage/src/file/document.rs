//! The JSON documents the file store writes: a format marker, a layout
//! version and a body, checked on every read so that another program's
//! file, a damaged one or a newer layout is refused, never overwritten.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::table::Table;

/// The `format` marker of a session store file.
pub(super) const SESSIONS_FORMAT: &str = "arcgis-auth-sessions";
/// The `format` marker of a lease file.
pub(super) const LEASES_FORMAT: &str = "arcgis-auth-leases";
/// The document layout version this release reads and writes.
pub(super) const DOCUMENT_VERSION: u32 = 1;

/// What every file this store writes looks like: a marker, a layout version,
/// the body, and any fields a newer release added (kept on rewrite).
#[derive(Serialize, Deserialize)]
pub(super) struct Document<B> {
    pub(super) format: String,
    pub(super) version: u32,
    #[serde(rename = "data")]
    pub(super) body: B,
    #[serde(flatten)]
    pub(super) extra: BTreeMap<String, serde_json::Value>,
}

/// Just the marker and version, read first so a foreign or newer file is named
/// as such even when its body would not parse.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format: Option<serde_json::Value>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

/// The body of the session file: records as JSON values, so one record this
/// release cannot read does not stop the others from loading, and survives
/// writes to them untouched.
pub(super) type Sessions = Table<serde_json::Value>;

/// Parses and checks a document read from `path`; blank input is an empty
/// document. Never panics and never quotes the input in an error.
pub(super) fn parse_document<B>(bytes: &[u8], path: &Path, format: &str) -> StoreResult<Document<B>>
where
    B: DeserializeOwned + Default,
{
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document {
            format: format.to_owned(),
            version: DOCUMENT_VERSION,
            body: B::default(),
            extra: BTreeMap::new(),
        });
    }
    let foreign = || {
        StoreError::corrupt(format!(
            "`{}` is not an arcgis-auth {} file: it was left untouched; move it away or \
             choose another path",
            path.display(),
            if format == LEASES_FORMAT {
                "lease"
            } else {
                "session store"
            }
        ))
    };
    // serde_json's messages can quote values (tokens): report positions only.
    let header: Header = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            return foreign();
        }
        StoreError::corrupt(format!(
            "`{}` is not valid JSON (line {}, column {}): it was left untouched; move it away \
             or choose another path",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if header.format.as_ref().and_then(|f| f.as_str()) != Some(format) {
        return Err(foreign());
    }
    match header.version.as_ref().and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(DOCUMENT_VERSION) => {}
        Some(v) if v > u64::from(DOCUMENT_VERSION) => {
            return Err(StoreError::corrupt(format!(
                "`{}` was written by a newer arcgis-auth (layout {v}, this release reads \
                 {DOCUMENT_VERSION}): upgrade; the file was left untouched",
                path.display()
            )));
        }
        _ => return Err(foreign()),
    }
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::corrupt(format!(
            "`{}` is damaged (line {}, column {}): it was left untouched; move it away or \
             choose another path",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use arcgis_auth_core::Portal;

    use super::*;
    use crate::{SaveMode, SessionKind, SessionRecord, StoreErrorKind};

    fn record() -> SessionRecord {
        let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
        r.access_token = Some("very-secret-access".into());
        r
    }

    #[test]
    fn every_truncation_and_byte_flip_is_ok_or_corrupt() {
        let mut table = Sessions::default();
        let mut r = record();
        r.extra.insert("n".into(), serde_json::json!(u64::MAX));
        table
            .save("k", serde_json::to_value(&r).unwrap(), &SaveMode::Create)
            .unwrap();
        let doc = Document {
            format: SESSIONS_FORMAT.to_owned(),
            version: DOCUMENT_VERSION,
            body: table,
            extra: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        let path = Path::new("sessions.json");
        let check = |input: &[u8]| match parse_document::<Sessions>(input, path, SESSIONS_FORMAT) {
            Ok(doc) => {
                // Whatever parses must also hand out records or Corrupt, never panic.
                if let Some((value, _)) = doc.body.get("k")
                    && let Err(e) = SessionRecord::from_value(value.clone())
                {
                    assert_eq!(e.kind(), StoreErrorKind::Corrupt);
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), StoreErrorKind::Corrupt);
                assert!(!format!("{e} {e:?}").contains("very-secret-access"));
            }
        };
        for len in 0..bytes.len() {
            check(&bytes[..len]);
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            for mask in [0x01, 0x20, 0x80] {
                flipped[i] ^= mask;
                check(&flipped);
                flipped[i] ^= mask;
            }
        }
        assert!(parse_document::<Sessions>(&bytes, path, SESSIONS_FORMAT).is_ok());
    }
}
