//! How the client commands show things: one JSON object per message, contact or conversation
//! (the same shapes in every command), and one line of text each for people.

use serde_json::{Value, json};
use umbra_crypto::{MessageHash, SessionId};
use umbra_messenger::{
    ChatPriority, Contact, Conversation, Disappearing, Message, MessageStatus, Messenger,
};
use umbra_net::NodeEntry;

/// Prints a JSON value on one line.
pub(crate) fn print_json(v: &Value) {
    println!("{v}");
}

pub(crate) fn status(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Received => "received",
        MessageStatus::Queued => "queued",
        MessageStatus::Sent => "sent",
        MessageStatus::Failed => "failed",
    }
}

/// A disappearing mode as the command line writes it (`off`, `after-send:30s`, …).
pub(crate) fn disappearing(d: Disappearing) -> String {
    match d {
        Disappearing::Off => "off".to_owned(),
        Disappearing::AfterSend { seconds } => format!("after-send:{}", duration(seconds)),
        Disappearing::AfterRead { seconds } => format!("after-read:{}", duration(seconds)),
    }
}

/// Seconds in the largest unit that divides them exactly (`90s`, `5m`, `2h`, `1d`, `2w`).
pub(crate) fn duration(seconds: u32) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// Parses `off`, `after-send:DURATION` or `after-read:DURATION`.
pub(crate) fn parse_disappearing(s: &str) -> anyhow::Result<Disappearing> {
    let s = s.trim();
    if s == "off" {
        return Ok(Disappearing::Off);
    }
    let bad = || {
        anyhow::anyhow!(
            "invalid disappearing mode {s:?}: expected off, after-send:DURATION or after-read:DURATION (DURATION like 30s, 5m, 12h, 1d)"
        )
    };
    let (kind, d) = s.split_once(':').ok_or_else(bad)?;
    let seconds = parse_duration(d).ok_or_else(bad)?;
    match kind {
        "after-send" => Ok(Disappearing::AfterSend { seconds }),
        "after-read" => Ok(Disappearing::AfterRead { seconds }),
        _ => Err(bad()),
    }
}

/// `30`, `30s`, `5m`, `12h`, `1d`, `2w` → seconds.
pub(crate) fn parse_duration(s: &str) -> Option<u32> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1),
        (i, 'm') => (&s[..i], 60),
        (i, 'h') => (&s[..i], 3_600),
        (i, 'd') => (&s[..i], 86_400),
        (i, 'w') => (&s[..i], 604_800),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u32>().ok()?.checked_mul(mult)
}

/// The JSON object of a message (every command prints messages in this shape).
pub(crate) fn message_json(m: &Message, request: bool) -> Value {
    json!({
        "from": m.author.to_hex(),
        "conversation": m.conversation.to_hex(),
        "text": m.body,
        "timestamp": m.sent_ms,
        "hash": m.hash.as_ref().map(MessageHash::as_str),
        "outgoing": m.outgoing,
        "status": status(m.status),
        "received_at": m.received_ms,
        "read": m.read_ms.is_some(),
        "read_by_peer": m.read_by_peer,
        "disappearing": disappearing(m.disappearing),
        "expires_at": m.expires_at_ms,
        "request": request,
    })
}

/// The JSON object of a contact.
pub(crate) fn contact_json(c: &Contact) -> Value {
    json!({
        "session_id": c.session_id.to_hex(),
        "name": c.name(),
        "nickname": c.nickname,
        "display_name": c.display_name,
        "approved": c.approved,
        "approved_me": c.approved_me,
        "blocked": c.blocked,
        "disappearing": disappearing(c.disappearing),
    })
}

/// The JSON object of a conversation.
pub(crate) fn conversation_json(c: &Conversation, request: bool) -> Value {
    json!({
        "session_id": c.contact.session_id.to_hex(),
        "name": c.contact.name(),
        "unread": c.unread,
        "pinned": c.priority.is_pinned(),
        "hidden": c.priority == ChatPriority::Hidden,
        "last": c.last.as_ref().map(|m| message_json(m, request)),
        "contact": contact_json(&c.contact),
    })
}

/// The name to show for an account: a contact's name, "me", or a shortened Session ID.
pub(crate) fn name_of(m: &Messenger, id: &SessionId) -> String {
    if *id == m.session_id() {
        return "me".to_owned();
    }
    match m.contact(id) {
        Ok(Some(c)) if c.nickname.is_some() || c.display_name.is_some() => c.name(),
        _ => short(id),
    }
}

/// `05ab12…9f3c`.
pub(crate) fn short(id: &SessionId) -> String {
    let h = id.to_hex();
    format!("{}…{}", &h[..6], &h[h.len() - 4..])
}

/// A node key in hex.
pub(crate) fn key_hex(k: &umbra_crypto::Ed25519PublicKey) -> String {
    k.to_hex()
}

/// A node of an onion path: its Ed25519 key (hex) and its address.
pub(crate) fn node_json(n: &NodeEntry) -> Value {
    json!({
        "node": key_hex(&n.pubkey_ed25519),
        "address": format!("{}:{}", n.public_ip, n.storage_port),
    })
}

/// A node of an onion path in one line: `<key hex>  <ip>:<port>`.
pub(crate) fn node_line(n: &NodeEntry) -> String {
    format!(
        "{}  {}:{}",
        key_hex(&n.pubkey_ed25519),
        n.public_ip,
        n.storage_port
    )
}

/// One line for a message: `[2025-01-02 10:11:12] alice: hello`.
pub(crate) fn message_line(m: &Messenger, msg: &Message) -> String {
    let who = name_of(m, &msg.author);
    let mut flags = Vec::new();
    match msg.status {
        MessageStatus::Queued => flags.push("queued"),
        MessageStatus::Failed => flags.push("failed"),
        _ => {}
    }
    if msg.outgoing && msg.read_by_peer {
        flags.push("read");
    }
    if msg.disappearing != Disappearing::Off {
        flags.push("disappearing");
    }
    let tail = if flags.is_empty() {
        String::new()
    } else {
        format!("  ({})", flags.join(", "))
    };
    format!("[{}] {who}: {}{tail}", timestamp(msg.sent_ms), msg.body)
}

/// A Unix time in ms as `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, mo, d) = civil_date(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_date(days: i64) -> (i64, u32, u32) {
    // Count from 0000-03-01 so that the leap day ends each 4-year cycle.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the 400-year era
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(timestamp(4_107_542_399_000), "2100-02-28 23:59:59");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("30"), Some(30));
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("5m"), Some(300));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        for bad in ["", "s", "-5s", "1.5h", "5x", "99999999999"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(duration(90), "90s");
        assert_eq!(duration(300), "5m");
        assert_eq!(duration(86_400), "1d");
        assert_eq!(
            parse_disappearing("after-read:5m").unwrap(),
            Disappearing::AfterRead { seconds: 300 }
        );
        assert_eq!(parse_disappearing("off").unwrap(), Disappearing::Off);
        assert!(parse_disappearing("after-lunch:5m").is_err());
        assert!(parse_disappearing("after-send").is_err());
        assert_eq!(
            disappearing(Disappearing::AfterSend { seconds: 3_600 }),
            "after-send:1h"
        );
    }
}
