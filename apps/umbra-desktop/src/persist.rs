//! What the app keeps for itself between runs — unsent drafts and the theme — as values in
//! the profile's encrypted database (`Messenger::app_value`): a draft is message text, so it
//! never goes to a file in clear beside the profile.
//!
//! Drafts are one JSON object `{session id or group id hex: text}`, rewritten a moment after the last
//! keystroke ([`DRAFT_SAVE_MS`]); the theme is one word; the groups' read marks are one
//! JSON object `{group id: receive time ms}`.

use std::collections::BTreeMap;

use umbra_crypto::SessionId;

use crate::model::Theme;

/// The key of the drafts.
pub(crate) const DRAFTS_KEY: &str = "desktop.drafts";
/// The key of the theme.
pub(crate) const THEME_KEY: &str = "desktop.theme";
/// The key of what notifications say ([`crate::NotifyLevel`]).
pub(crate) const NOTIFY_KEY: &str = "desktop.notifications";
/// The key of how far each group was read (the messenger keeps no read state for groups).
pub(crate) const GROUP_READ_KEY: &str = "desktop.group_read";
/// Drafts are saved this long after the last change (well within the second a user may
/// kill the app after typing).
pub(crate) const DRAFT_SAVE_MS: u64 = 300;
/// The longest draft kept, in characters (a message is at most 2 000; the rest of a pasted
/// novel is not worth a database write per keystroke).
const MAX_DRAFT_CHARS: usize = 20_000;

/// The drafts of conversations and of groups as saved (one object: a Session ID and a group
/// id never look alike): non-empty ones only, each cut to [`MAX_DRAFT_CHARS`].
pub(crate) fn encode_drafts(
    drafts: &BTreeMap<SessionId, String>,
    group_drafts: &BTreeMap<String, String>,
) -> Vec<u8> {
    let chats = drafts.iter().map(|(id, text)| (id.to_hex(), text));
    let groups = group_drafts.iter().map(|(id, text)| (id.clone(), text));
    let map: serde_json::Map<String, serde_json::Value> = chats
        .chain(groups)
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(id, text)| {
            let text: String = text.chars().take(MAX_DRAFT_CHARS).collect();
            (id, serde_json::Value::String(text))
        })
        .collect();
    serde_json::Value::Object(map).to_string().into_bytes()
}

/// The saved drafts of conversations and of groups; what cannot be read is skipped (a draft
/// is not worth refusing to start).
pub(crate) fn decode_drafts(
    bytes: &[u8],
) -> (BTreeMap<SessionId, String>, BTreeMap<String, String>) {
    let (mut chats, mut groups) = (BTreeMap::new(), BTreeMap::new());
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(bytes) else {
        return (chats, groups);
    };
    for (id, text) in map {
        let Some(text) = text.as_str().map(str::to_string) else {
            continue;
        };
        if crate::client::is_group_id(&id) {
            groups.insert(id, text);
        } else if let Ok(id) = id.parse() {
            chats.insert(id, text);
        }
    }
    (chats, groups)
}

/// The groups' read marks as saved.
pub(crate) fn encode_read_marks(marks: &BTreeMap<String, u64>) -> Vec<u8> {
    let map: serde_json::Map<String, serde_json::Value> = marks
        .iter()
        .map(|(group, ms)| (group.clone(), serde_json::Value::from(*ms)))
        .collect();
    serde_json::Value::Object(map).to_string().into_bytes()
}

/// The saved read marks; what cannot be read is skipped.
pub(crate) fn decode_read_marks(bytes: &[u8]) -> BTreeMap<String, u64> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(bytes) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter_map(|(group, ms)| Some((group, ms.as_u64()?)))
        .collect()
}

/// The theme as saved.
pub(crate) fn encode_theme(theme: Theme) -> Vec<u8> {
    match theme {
        Theme::System => b"system".to_vec(),
        Theme::Light => b"light".to_vec(),
        Theme::Dark => b"dark".to_vec(),
    }
}

/// The saved theme; anything else is the default.
pub(crate) fn decode_theme(bytes: &[u8]) -> Theme {
    match bytes {
        b"light" => Theme::Light,
        b"dark" => Theme::Dark,
        _ => Theme::System,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::id;

    #[test]
    fn drafts_round_trip_without_empty_ones_and_survive_garbage() {
        let mut d = BTreeMap::new();
        d.insert(id(1), "half a thought\nsecond line".to_string());
        d.insert(id(2), "   ".to_string());
        let group = format!("03{}", "ab".repeat(32));
        let mut g = BTreeMap::new();
        g.insert(group.clone(), "for the group".to_string());
        g.insert(format!("03{}", "cd".repeat(32)), String::new());
        let (chats, groups) = decode_drafts(&encode_drafts(&d, &g));
        assert_eq!(chats.len(), 1);
        assert_eq!(chats[&id(1)], "half a thought\nsecond line");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[&group], "for the group");
        let none = |b: &[u8]| {
            let (c, g) = decode_drafts(b);
            c.is_empty() && g.is_empty()
        };
        assert!(none(b"not json"));
        assert!(none(br#"{"zz": "x", "05": 3, "03": "y"}"#));
        d.insert(id(3), "y".repeat(MAX_DRAFT_CHARS + 5));
        assert_eq!(
            decode_drafts(&encode_drafts(&d, &g)).0[&id(3)].len(),
            MAX_DRAFT_CHARS
        );
    }

    #[test]
    fn read_marks_round_trip_and_survive_garbage() {
        let mut marks = BTreeMap::new();
        marks.insert("03ab".to_string(), 1_700_000_000_000);
        assert_eq!(decode_read_marks(&encode_read_marks(&marks)), marks);
        assert!(decode_read_marks(b"[1]").is_empty());
        assert!(decode_read_marks(br#"{"03": "soon"}"#).is_empty());
    }

    #[test]
    fn themes_round_trip() {
        for t in [Theme::System, Theme::Light, Theme::Dark] {
            assert_eq!(decode_theme(&encode_theme(t)), t);
        }
        assert_eq!(decode_theme(b"purple"), Theme::System);
    }
}
