//! UserGroups (namespace 5): the groups and communities this account is in.

use super::convo::canonical_url;
use super::{
    Id33, MAX_NAME, Notify, by_id, check_len, get_bool, get_bytes, get_dict, get_int, get_string,
    id_key, one_by_id, put_bool, put_int, put_str, with_dict,
};
use crate::ConfigError;
use crate::data::{Dict, Value};

/// Why a group is marked removed (`r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupRemoved {
    /// Still a member.
    #[default]
    No,
    /// `1`: removed by an admin.
    Kicked,
    /// `2`: the group was deleted.
    Destroyed,
}

/// One group (`g` → `03` group ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The 33-byte group ID (`03…`).
    pub id: Id33,
    /// `K`: the 32-byte group seed of an admin; `None` for a member.
    pub secret_seed: Option<[u8; 32]>,
    /// `s`: the member's 100-byte authentication data (only when there is no seed).
    pub auth_data: Option<Vec<u8>>,
    /// `n`: the name before joining (≤ 100 bytes).
    pub name: String,
    /// `r`: removed.
    pub removed: GroupRemoved,
    /// `i`: invitation pending.
    pub invited: bool,
    /// `j`: joined (Unix s).
    pub joined_at: i64,
    /// `@`: notifications.
    pub notifications: Notify,
    /// `!`: muted until (Unix s).
    pub mute_until: i64,
    /// `+`: priority.
    pub priority: i64,
}

impl Group {
    /// A group with every field at its default.
    pub fn new(id: Id33) -> Group {
        Group {
            id,
            secret_seed: None,
            auth_data: None,
            name: String::new(),
            removed: GroupRemoved::No,
            invited: false,
            joined_at: 0,
            notifications: Notify::Default,
            mute_until: 0,
            priority: 0,
        }
    }

    fn read(id: Id33, d: &Dict) -> Group {
        Group {
            id,
            secret_seed: get_bytes(d, b"K").and_then(|k| k.try_into().ok()),
            auth_data: get_bytes(d, b"s")
                .filter(|s| !s.is_empty())
                .map(<[u8]>::to_vec),
            name: get_string(d, b"n"),
            removed: match get_int(d, b"r") {
                Some(1) => GroupRemoved::Kicked,
                Some(2) => GroupRemoved::Destroyed,
                _ => GroupRemoved::No,
            },
            invited: get_bool(d, b"i"),
            joined_at: get_int(d, b"j").unwrap_or(0),
            notifications: Notify::from_int(get_int(d, b"@")),
            mute_until: get_int(d, b"!").unwrap_or(0),
            priority: get_int(d, b"+").unwrap_or(0),
        }
    }

    fn write(&self, d: &mut Dict) {
        // `K` is always written (empty for a member); `s` only without a seed.
        match &self.secret_seed {
            Some(k) => {
                d.insert(b"K".to_vec(), Value::from(k.as_slice()));
                d.remove(b"s".as_slice());
            }
            None => {
                d.insert(b"K".to_vec(), Value::from(b"".as_slice()));
                put_str(d, b"s", self.auth_data.as_deref().unwrap_or_default());
            }
        }
        put_str(d, b"n", self.name.as_bytes());
        let removed = match self.removed {
            GroupRemoved::No => 0,
            GroupRemoved::Kicked => 1,
            GroupRemoved::Destroyed => 2,
        };
        put_int(d, b"r", removed);
        put_bool(d, b"i", self.invited);
        put_int(d, b"j", self.joined_at.max(0));
        put_int(d, b"@", self.notifications.to_int());
        put_int(d, b"!", self.mute_until.max(0));
        put_int(d, b"+", self.priority);
    }
}

/// One community room (`o` → base URL → `R` → room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    /// The server's base URL (stored canonical: lower case, default port removed).
    pub base_url: String,
    /// The server's 32-byte public key (`#`).
    pub server_key: [u8; 32],
    /// The room token; stored lower case, `name` keeps its displayed case.
    pub room: String,
    /// `n`: the room's name as displayed.
    pub name: String,
    /// `@`: notifications.
    pub notifications: Notify,
    /// `!`: muted until (Unix s).
    pub mute_until: i64,
    /// `+`: priority.
    pub priority: i64,
    /// `i`: invitation pending.
    pub invited: bool,
    /// `j`: joined (Unix s).
    pub joined_at: i64,
}

user_config!(
    /// The user groups config.
    UserGroups,
    "UserGroups",
    5
);

impl UserGroups {
    /// The group with this ID.
    pub fn group(&self, id: &Id33) -> Option<Group> {
        one_by_id(self.state.data(), b"g", id, Group::read)
    }

    /// Every group, in ID order.
    pub fn groups(&self) -> Vec<Group> {
        by_id(self.state.data(), b"g", Group::read)
    }

    /// Adds or updates a group, keeping its fields this crate does not know.
    pub fn set_group(&mut self, group: &Group) -> Result<(), ConfigError> {
        check_len("group name", group.name.as_bytes(), MAX_NAME)?;
        if group.secret_seed.is_none()
            && let Some(a) = &group.auth_data
            && a.len() != 100
        {
            return Err(ConfigError::FieldTooLong {
                field: "group auth data (exactly 100 bytes)",
                len: a.len(),
                max: 100,
            });
        }
        self.state.edit(|d| {
            with_dict(d, b"g", |g| {
                with_dict(g, &id_key(&group.id), |e| group.write(e))
            })
        });
        Ok(())
    }

    /// Removes a group; whether it was there.
    pub fn erase_group(&mut self, id: &Id33) -> bool {
        self.state
            .edit(|d| with_dict(d, b"g", |g| g.remove(id_key(id).as_slice()).is_some()))
    }

    /// A community room.
    pub fn community(&self, base_url: &str, room: &str) -> Option<Community> {
        let url = canonical_url(base_url);
        let server = get_dict(get_dict(self.state.data(), b"o")?, url.as_bytes())?;
        let server_key: [u8; 32] = get_bytes(server, b"#")?.try_into().ok()?;
        let r = get_dict(
            get_dict(server, b"R")?,
            room.to_ascii_lowercase().as_bytes(),
        )?;
        Some(Community {
            base_url: url,
            server_key,
            room: room.to_ascii_lowercase(),
            name: get_string(r, b"n"),
            notifications: Notify::from_int(get_int(r, b"@")),
            mute_until: get_int(r, b"!").unwrap_or(0),
            priority: get_int(r, b"+").unwrap_or(0),
            invited: get_bool(r, b"i"),
            joined_at: get_int(r, b"j").unwrap_or(0),
        })
    }

    /// Adds or updates a community room.
    pub fn set_community(&mut self, c: &Community) -> Result<(), ConfigError> {
        check_len("room name", c.name.as_bytes(), MAX_NAME)?;
        let url = canonical_url(&c.base_url);
        let room = c.room.to_ascii_lowercase();
        let name = if c.name.is_empty() {
            c.room.clone()
        } else {
            c.name.clone()
        };
        self.state.edit(|d| {
            with_dict(d, b"o", |servers| {
                with_dict(servers, url.as_bytes(), |server| {
                    server.insert(b"#".to_vec(), Value::from(c.server_key.as_slice()));
                    with_dict(server, b"R", |rooms| {
                        with_dict(rooms, room.as_bytes(), |r| {
                            // `n` is always written: the displayed name.
                            r.insert(b"n".to_vec(), Value::from(name.as_str()));
                            put_int(r, b"@", c.notifications.to_int());
                            put_int(r, b"!", c.mute_until.max(0));
                            put_int(r, b"+", c.priority);
                            put_bool(r, b"i", c.invited);
                            put_int(r, b"j", c.joined_at.max(0));
                        })
                    })
                })
            })
        });
        Ok(())
    }

    /// Leaves a community room; whether it was there. The server entry goes with its last room.
    pub fn erase_community(&mut self, base_url: &str, room: &str) -> bool {
        let url = canonical_url(base_url);
        let room = room.to_ascii_lowercase();
        self.state.edit(|d| {
            with_dict(d, b"o", |servers| {
                let Some(Value::Dict(server)) = servers.get_mut(url.as_bytes()) else {
                    return false;
                };
                let gone = with_dict(server, b"R", |rooms| {
                    rooms.remove(room.as_bytes()).is_some()
                });
                if get_dict(server, b"R").is_none_or(Dict::is_empty) {
                    servers.remove(url.as_bytes());
                }
                gone
            })
        })
    }
}
