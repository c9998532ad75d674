//! ConvoInfoVolatile (namespace 4): read state of every conversation.

use super::{
    Id33, by_id, get_bool, get_bytes, get_dict, get_int, id_key, one_by_id, put_bool, with_dict,
};
use crate::data::{Dict, Value};

/// Milliseconds in a day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Which kind of ID-keyed conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvoKind {
    /// `1`: one-to-one, by `05` Session ID.
    OneToOne,
    /// `g`: a group, by `03` group ID.
    Group,
    /// `C`: a legacy closed group, by its `05` ID.
    LegacyGroup,
}

impl ConvoKind {
    fn key(self) -> &'static [u8] {
        match self {
            ConvoKind::OneToOne => b"1",
            ConvoKind::Group => b"g",
            ConvoKind::LegacyGroup => b"C",
        }
    }
}

/// The read state of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvoInfo {
    /// `r`: read up to this time (Unix **milliseconds**).
    pub last_read_ms: i64,
    /// `u`: marked unread.
    pub unread: bool,
}

impl ConvoInfo {
    fn read(d: &Dict) -> ConvoInfo {
        ConvoInfo {
            last_read_ms: get_int(d, b"r").unwrap_or(0),
            unread: get_bool(d, b"u"),
        }
    }

    fn write(&self, d: &mut Dict) {
        // `r` is always written, so the entry exists even when nothing is read yet.
        d.insert(b"r".to_vec(), Value::from(self.last_read_ms.max(0)));
        put_bool(d, b"u", self.unread);
    }
}

/// A community URL as keys hold it: lower case, the default port removed, no trailing `/`.
pub fn canonical_url(url: &str) -> String {
    let mut u = url.trim().to_ascii_lowercase();
    while u.ends_with('/') {
        u.pop();
    }
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if u.starts_with(scheme) && u.ends_with(port) {
            u.truncate(u.len() - port.len());
        }
    }
    u
}

user_config!(
    /// The conversation info config.
    ConvoInfoVolatile,
    "ConvoInfoVolatile",
    4
);

impl ConvoInfoVolatile {
    /// The read state of a one-to-one or group conversation.
    pub fn get(&self, kind: ConvoKind, id: &Id33) -> Option<ConvoInfo> {
        one_by_id(self.state.data(), kind.key(), id, |_, d| ConvoInfo::read(d))
    }

    /// Every conversation of a kind, in ID order.
    pub fn all(&self, kind: ConvoKind) -> Vec<(Id33, ConvoInfo)> {
        by_id(self.state.data(), kind.key(), |id, d| {
            (id, ConvoInfo::read(d))
        })
    }

    /// Sets the read state of a conversation. Reading only moves forward: a `last_read_ms`
    /// older than the stored one keeps the stored one (another device read further).
    pub fn set(&mut self, kind: ConvoKind, id: &Id33, info: ConvoInfo) {
        self.state.edit(|d| {
            with_dict(d, kind.key(), |all| {
                with_dict(all, &id_key(id), |e| {
                    let old = ConvoInfo::read(e);
                    let info = ConvoInfo {
                        last_read_ms: info.last_read_ms.max(old.last_read_ms),
                        unread: info.unread,
                    };
                    info.write(e);
                })
            })
        });
    }

    /// Forgets a conversation; whether it was there.
    pub fn erase(&mut self, kind: ConvoKind, id: &Id33) -> bool {
        self.state.edit(|d| {
            with_dict(d, kind.key(), |all| {
                all.remove(id_key(id).as_slice()).is_some()
            })
        })
    }

    /// The read state of a community room and the server's key (`o` → URL → {`#`, `R` → room}).
    pub fn community(&self, base_url: &str, room: &str) -> Option<([u8; 32], ConvoInfo)> {
        let servers = get_dict(self.state.data(), b"o")?;
        let server = get_dict(servers, canonical_url(base_url).as_bytes())?;
        let key: [u8; 32] = get_bytes(server, b"#")?.try_into().ok()?;
        let rooms = get_dict(server, b"R")?;
        let info = get_dict(rooms, room.to_ascii_lowercase().as_bytes())?;
        Some((key, ConvoInfo::read(info)))
    }

    /// Sets the read state of a community room (reading only moves forward, as in [`set`](Self::set)).
    pub fn set_community(
        &mut self,
        base_url: &str,
        server_key: &[u8; 32],
        room: &str,
        info: ConvoInfo,
    ) {
        let url = canonical_url(base_url);
        let room = room.to_ascii_lowercase();
        self.state.edit(|d| {
            with_dict(d, b"o", |servers| {
                with_dict(servers, url.as_bytes(), |server| {
                    server.insert(b"#".to_vec(), Value::from(server_key.as_slice()));
                    with_dict(server, b"R", |rooms| {
                        with_dict(rooms, room.as_bytes(), |e| {
                            let old = ConvoInfo::read(e);
                            ConvoInfo {
                                last_read_ms: info.last_read_ms.max(old.last_read_ms),
                                unread: info.unread,
                            }
                            .write(e);
                        })
                    })
                })
            })
        });
    }

    /// Removes entries read more than 45 days before `now_ms` (§2.11); callers should also not
    /// add entries older than 30 days.
    pub fn prune(&mut self, now_ms: i64) {
        let cutoff = now_ms.saturating_sub(45 * DAY_MS);
        let stale =
            |e: &Value| matches!(e, Value::Dict(d) if get_int(d, b"r").unwrap_or(0) < cutoff);
        self.state.edit(|d| {
            for kind in [
                ConvoKind::OneToOne,
                ConvoKind::Group,
                ConvoKind::LegacyGroup,
            ] {
                if let Some(Value::Dict(all)) = d.get_mut(kind.key()) {
                    all.retain(|_, e| !stale(e));
                }
            }
            if let Some(Value::Dict(servers)) = d.get_mut(b"o".as_slice()) {
                for server in servers.values_mut() {
                    if let Value::Dict(s) = server
                        && let Some(Value::Dict(rooms)) = s.get_mut(b"R".as_slice())
                    {
                        rooms.retain(|_, e| !stale(e));
                    }
                }
            }
        });
    }
}
