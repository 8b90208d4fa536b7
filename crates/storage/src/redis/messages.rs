//! The change messages on the `<prefix>:changes` pub/sub channel: one JSON
//! object per save or delete, which the listener turns back into events.

use serde::{Deserialize, Serialize};

use crate::store::{ChangeEvent, ChangeKind, Version};

/// The change message of a save, cut just before the kind's value
/// (`…,"c":"`): the save script appends `created"}` or `updated"}`, as only
/// it knows which happened. One message built per save, not one per outcome.
pub(super) fn save_message(origin: &str, key: &str, version: &Version) -> String {
    let mut message = serde_json::to_string(&Message {
        origin: origin.to_owned(),
        key: key.to_owned(),
        version: Some(version.as_str().to_owned()),
        kind: String::new(),
    })
    .unwrap_or_default();
    // `kind` is serialised last, so the message ends with `"c":""}`.
    message.truncate(message.len().saturating_sub(2));
    message
}

/// How every change message of the store with this `origin` begins: the
/// origin is serialised first, and is hex (nothing to escape). The listener
/// skips its own store's echoes by this prefix, without parsing them.
pub(super) fn echo_prefix(origin: &str) -> Vec<u8> {
    format!(r#"{{"o":"{origin}","#).into_bytes()
}

/// A change message on the channel.
#[derive(Serialize, Deserialize)]
pub(super) struct Message {
    #[serde(rename = "o")]
    origin: String,
    #[serde(rename = "k")]
    key: String,
    #[serde(rename = "v")]
    version: Option<String>,
    // Last, so `save_message` can leave it for the save script.
    #[serde(rename = "c")]
    kind: String,
}

impl Message {
    pub(super) fn into_event(self) -> Option<ChangeEvent> {
        let kind = match self.kind.as_str() {
            "created" => ChangeKind::Created,
            "updated" => ChangeKind::Updated,
            "deleted" => ChangeKind::Deleted,
            _ => return None,
        };
        Some(ChangeEvent {
            key: self.key,
            kind,
            version: self.version.map(Version::new),
        })
    }
}

/// The change message of a delete by the store with this `origin`.
pub(super) fn delete_message(origin: &str, key: &str) -> String {
    serde_json::to_string(&Message {
        origin: origin.to_owned(),
        key: key.to_owned(),
        version: None,
        kind: "deleted".to_owned(),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::random_id;

    #[test]
    fn messages_round_trip_and_unknown_kinds_are_ignored() {
        let m = Message {
            origin: "o".into(),
            key: "k".into(),
            kind: "updated".into(),
            version: Some("v".into()),
        };
        let back: Message = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        let e = back.into_event().unwrap();
        assert_eq!(e.kind, ChangeKind::Updated);
        assert_eq!(e.version, Some(Version::new("v")));
        let odd = Message {
            origin: "o".into(),
            key: "k".into(),
            kind: "exploded".into(),
            version: None,
        };
        assert!(odd.into_event().is_none());
    }

    #[test]
    fn own_messages_start_with_the_echo_prefix_and_others_do_not() {
        let me = random_id();
        let prefix = echo_prefix(&me);
        let save = format!("{}updated\"}}", save_message(&me, "k", &Version::new("v")));
        let delete = delete_message(&me, "k");
        for own in [&save, &delete] {
            assert!(own.as_bytes().starts_with(&prefix), "{own}");
        }
        // Another store's origin, even one sharing a prefix with ours.
        for other in [random_id(), me[..me.len() - 1].to_owned()] {
            let theirs = format!(
                "{}created\"}}",
                save_message(&other, "k", &Version::new("v"))
            );
            assert!(!theirs.as_bytes().starts_with(&prefix), "{theirs}");
        }
    }

    #[test]
    fn save_message_completed_as_the_script_does_is_a_message() {
        let prefix = save_message("me", "a\"key", &Version::new("v1"));
        for kind in ["created", "updated"] {
            let full = format!("{prefix}{kind}\"}}");
            let m: Message = serde_json::from_str(&full).unwrap();
            assert_eq!((m.origin.as_str(), m.key.as_str()), ("me", "a\"key"));
            assert_eq!(m.kind, kind);
            assert_eq!(m.version.as_deref(), Some("v1"));
        }
    }
}
