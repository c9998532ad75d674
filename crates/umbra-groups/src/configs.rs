//! The group's two configs, Info (namespace 13) and Members (namespace 14): ordinary config
//! messages (umbra-config) encrypted with the current group key and signed by the group
//! (`groups-config-attachments.md` §1.6).
//!
//! Admins sign and push; members verify, merge by adopting the highest message, and never
//! push. After every rekey, [`GroupInfo::set_keys`] / [`GroupMembers::set_keys`] re-encrypt
//! (admins) or just learn the new key (members).

use umbra_config::field::{
    MAX_NAME, MAX_URL, check_len, get_int, get_pic, get_string, put_int, put_pic, put_str,
};
use umbra_config::{ConfigError, ConfigSigning, ConfigState, Dict, ProfilePic, Value};
use umbra_crypto::{SessionId, Signature};

use crate::{GroupAdmin, GroupError, GroupKeys, GroupPublic};

/// Longest group description (bytes).
pub const MAX_DESCRIPTION: usize = 2000;

/// Signs and verifies group configs with the group key.
struct GroupSigning {
    group: GroupPublic,
    admin: Option<GroupAdmin>,
}

impl ConfigSigning for GroupSigning {
    fn verify(&self, signed: &[u8], signature: &[u8; 64]) -> bool {
        self.group
            .verify(signed, &Signature::from_bytes(*signature))
    }

    fn can_sign(&self) -> bool {
        self.admin.is_some()
    }

    fn sign(&self, signed: &[u8]) -> Option<[u8; 64]> {
        self.admin.as_ref().map(|a| a.sign(signed).to_bytes())
    }
}

/// The state of a group config: signed by the group, keys from the group's key ring.
fn group_state(
    domain: &'static str,
    group: &GroupPublic,
    admin: Option<&GroupAdmin>,
    keys: &GroupKeys,
) -> Result<ConfigState, GroupError> {
    let newest_first = key_list(keys)?;
    let mut state = ConfigState::new(&newest_first[0], domain)?;
    state.set_keys(&newest_first, false)?;
    Ok(state.with_signing(Box::new(GroupSigning {
        group: *group,
        admin: admin.map(|a| GroupAdmin::from_seed(a.seed())),
    })))
}

/// The encryption key first, then every other key newest first.
fn key_list(keys: &GroupKeys) -> Result<Vec<[u8; 32]>, GroupError> {
    let mut list: Vec<[u8; 32]> = keys.decryption_keys().map(|k| *k.key()).collect();
    list.dedup();
    if list.is_empty() {
        return Err(GroupError::Config(ConfigError::Message(
            "a group config needs a group key",
        )));
    }
    Ok(list)
}

/// A name: at most 100 bytes, no NUL.
fn check_name(field: &'static str, name: &str) -> Result<(), GroupError> {
    check_len(field, name.as_bytes(), MAX_NAME)?;
    if name.contains('\0') {
        return Err(GroupError::Config(ConfigError::Message(
            "a name holds a NUL",
        )));
    }
    Ok(())
}

macro_rules! group_config {
    ($(#[$doc:meta])* $name:ident, $domain:literal, $ns:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            state: ConfigState,
        }

        impl $name {
            /// The encryption domain.
            pub const DOMAIN: &'static str = $domain;
            /// The group swarm namespace.
            pub const NAMESPACE: i16 = $ns;

            /// An empty config of `group`, encrypted with the keys of `keys`; `admin` when this
            /// device holds the group seed (it signs and pushes).
            pub fn new(
                group: &GroupPublic,
                admin: Option<&GroupAdmin>,
                keys: &GroupKeys,
            ) -> Result<$name, GroupError> {
                Ok($name {
                    state: group_state(Self::DOMAIN, group, admin, keys)?,
                })
            }

            /// The config underneath (merge, push, confirm, dump).
            pub fn state(&self) -> &ConfigState {
                &self.state
            }

            /// The config underneath, mutably.
            pub fn state_mut(&mut self) -> &mut ConfigState {
                &mut self.state
            }

            /// Takes the keys of `keys` after a rekey or a supplemental message; an admin
            /// (`reencrypt`) then pushes the config under the new key.
            pub fn set_keys(&mut self, keys: &GroupKeys, reencrypt: bool) -> Result<(), GroupError> {
                self.state.set_keys(&key_list(keys)?, reencrypt)?;
                Ok(())
            }
        }
    };
}

group_config!(
    /// The group's Info config: name, description, picture, disappearing timer, deletions.
    GroupInfo,
    "groups::Info",
    13
);

group_config!(
    /// The group's Members config: every member with name, picture, admin flag and the
    /// status of invitations, promotions and removals.
    GroupMembers,
    "groups::Members",
    14
);

impl GroupInfo {
    /// The group name (`n`).
    pub fn name(&self) -> String {
        get_string(self.state.data(), b"n")
    }

    /// Sets the name (≤ 100 bytes, no NUL).
    pub fn set_name(&mut self, name: &str) -> Result<(), GroupError> {
        check_name("group name", name)?;
        self.state.edit(|d| put_str(d, b"n", name.as_bytes()));
        Ok(())
    }

    /// The description (`o`).
    pub fn description(&self) -> String {
        get_string(self.state.data(), b"o")
    }

    /// Sets the description (≤ 2000 bytes).
    pub fn set_description(&mut self, text: &str) -> Result<(), GroupError> {
        check_len("group description", text.as_bytes(), MAX_DESCRIPTION)?;
        self.state.edit(|d| put_str(d, b"o", text.as_bytes()));
        Ok(())
    }

    /// The group picture (`p`, `q`).
    pub fn picture(&self) -> Option<ProfilePic> {
        get_pic(self.state.data(), b"p", b"q")
    }

    /// Sets or clears the group picture.
    pub fn set_picture(&mut self, pic: Option<&ProfilePic>) -> Result<(), GroupError> {
        if let Some(p) = pic {
            check_len("picture URL", p.url.as_bytes(), MAX_URL)?;
        }
        Ok(self.state.edit(|d| put_pic(d, pic))?)
    }

    /// The disappear-after-send timer in seconds (`E`), `None` when off.
    pub fn expiry_timer(&self) -> Option<i64> {
        get_int(self.state.data(), b"E").filter(|s| *s > 0)
    }

    /// Sets the disappear-after-send timer (`None` or 0 turns it off).
    pub fn set_expiry_timer(&mut self, seconds: Option<i64>) {
        self.state
            .edit(|d| put_int(d, b"E", seconds.filter(|s| *s > 0).unwrap_or(0)));
    }

    /// When the group was created, Unix seconds (`c`).
    pub fn created(&self) -> Option<i64> {
        get_int(self.state.data(), b"c")
    }

    /// Sets the creation time.
    pub fn set_created(&mut self, unix_s: i64) {
        self.state.edit(|d| put_int(d, b"c", unix_s));
    }

    /// Messages sent before this Unix time (s) are deleted (`d`).
    pub fn delete_before(&self) -> Option<i64> {
        get_int(self.state.data(), b"d")
    }

    /// Sets the time before which messages are deleted.
    pub fn set_delete_before(&mut self, unix_s: i64) {
        self.state.edit(|d| put_int(d, b"d", unix_s));
    }

    /// Attachments sent before this Unix time (s) are deleted (`D`).
    pub fn delete_attachments_before(&self) -> Option<i64> {
        get_int(self.state.data(), b"D")
    }

    /// Sets the time before which attachments are deleted.
    pub fn set_delete_attachments_before(&mut self, unix_s: i64) {
        self.state.edit(|d| put_int(d, b"D", unix_s));
    }

    /// Whether an admin destroyed the group (`!`).
    pub fn is_destroyed(&self) -> bool {
        get_int(self.state.data(), b"!") == Some(1)
    }

    /// Destroys the group for everyone.
    pub fn destroy(&mut self) {
        self.state.edit(|d| put_int(d, b"!", 1));
    }
}

/// Where an invitation or promotion stands (`I`, `P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// `1`: sent, not yet answered.
    Sent,
    /// `2`: sending failed.
    Failed,
    /// `3`: not yet sent.
    NotSent,
}

impl Pending {
    fn from_int(n: Option<i64>) -> Option<Pending> {
        match n {
            Some(1) => Some(Pending::Sent),
            Some(2) => Some(Pending::Failed),
            Some(3) => Some(Pending::NotSent),
            _ => None,
        }
    }

    /// The stored integer; 0 (not written) for none.
    fn to_int(p: Option<Pending>) -> i64 {
        match p {
            None => 0,
            Some(Pending::Sent) => 1,
            Some(Pending::Failed) => 2,
            Some(Pending::NotSent) => 3,
        }
    }
}

/// A removal an admin has started (`R`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Removal {
    /// Not being removed.
    #[default]
    None,
    /// `1`: the member.
    Member,
    /// `2`: the member and their messages.
    MemberAndMessages,
}

/// One entry of the Members config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's Session ID.
    pub session_id: SessionId,
    /// Display name (≤ 100 bytes).
    pub name: String,
    /// Profile picture.
    pub picture: Option<ProfilePic>,
    /// An admin (holds the group seed).
    pub admin: bool,
    /// Invitation status; `None` once accepted. Never stored for admins.
    pub invite: Option<Pending>,
    /// Invited "with history" (given the older keys); meaningful while invited.
    pub supplement: bool,
    /// Promotion status; `None` once accepted (or never promoted).
    pub promotion: Option<Pending>,
    /// A removal in progress.
    pub removal: Removal,
}

impl Member {
    /// A member with just an ID: not invited yet, not an admin.
    pub fn new(session_id: SessionId) -> Member {
        Member {
            session_id,
            name: String::new(),
            picture: None,
            admin: false,
            invite: Some(Pending::NotSent),
            supplement: false,
            promotion: None,
            removal: Removal::None,
        }
    }

    /// `name` made fit for an entry: NULs dropped, cut to at most 100 bytes at a character
    /// boundary (a longer one would make the whole list refuse to be written).
    pub fn fit_name(name: &str) -> String {
        let mut fit: String = name.chars().filter(|c| *c != '\0').collect();
        let mut end = fit.len().min(MAX_NAME);
        while !fit.is_char_boundary(end) {
            end -= 1;
        }
        fit.truncate(end);
        fit
    }

    /// The Members entries of a new group: its creator (an admin, named `creator_name`, made
    /// to fit by [`Member::fit_name`]) first, then `invitees` with their invitations sent.
    pub fn founding(creator: SessionId, creator_name: &str, invitees: &[SessionId]) -> Vec<Member> {
        let mut me = Member::new(creator);
        me.admin = true;
        me.invite = None;
        me.name = Member::fit_name(creator_name);
        std::iter::once(me)
            .chain(invitees.iter().map(|id| {
                let mut entry = Member::new(*id);
                entry.invite = Some(Pending::Sent);
                entry
            }))
            .collect()
    }

    fn read(session_id: SessionId, d: &Dict) -> Member {
        Member {
            session_id,
            name: get_string(d, b"n"),
            picture: get_pic(d, b"p", b"q"),
            admin: get_int(d, b"A") == Some(1),
            invite: Pending::from_int(get_int(d, b"I")),
            supplement: get_int(d, b"s") == Some(1),
            promotion: Pending::from_int(get_int(d, b"P")),
            removal: match get_int(d, b"R") {
                Some(1) => Removal::Member,
                Some(2) => Removal::MemberAndMessages,
                _ => Removal::None,
            },
        }
    }

    /// The limits of §1.6, checked before anything is written.
    fn check(&self) -> Result<(), GroupError> {
        check_name("member name", &self.name)?;
        if let Some(p) = &self.picture {
            check_len("picture URL", p.url.as_bytes(), MAX_URL)?;
        }
        Ok(())
    }

    fn write(&self, d: &mut Dict) -> Result<(), GroupError> {
        // Always written, so the member's dict is never pruned away.
        d.insert(b"n".to_vec(), Value::from(self.name.as_str()));
        put_pic(d, self.picture.as_ref())?;
        put_int(d, b"A", i64::from(self.admin));
        let invite = if self.admin { None } else { self.invite };
        put_int(d, b"I", Pending::to_int(invite));
        put_int(d, b"s", i64::from(self.supplement && invite.is_some()));
        put_int(d, b"P", Pending::to_int(self.promotion));
        let removal = match self.removal {
            Removal::None => 0,
            Removal::Member => 1,
            Removal::MemberAndMessages => 2,
        };
        put_int(d, b"R", removal);
        Ok(())
    }
}

impl GroupMembers {
    fn all_dict(&self) -> Option<&Dict> {
        match self.state.data().get(b"m".as_slice()) {
            Some(Value::Dict(m)) => Some(m),
            _ => None,
        }
    }

    /// Every member in Session-ID order. Entries whose key is not a 33-byte `05` ID are
    /// skipped (and kept untouched).
    pub fn all(&self) -> Vec<Member> {
        let Some(m) = self.all_dict() else {
            return Vec::new();
        };
        m.iter()
            .filter_map(|(k, v)| {
                let id = SessionId::from_bytes(k.as_slice().try_into().ok()?).ok()?;
                match v {
                    Value::Dict(d) => Some(Member::read(id, d)),
                    _ => None,
                }
            })
            .collect()
    }

    /// The Session IDs of every entry: the member list of a rekey (§1.2).
    pub fn session_ids(&self) -> Vec<SessionId> {
        self.all().into_iter().map(|m| m.session_id).collect()
    }

    /// The entry of `id`.
    pub fn get(&self, id: &SessionId) -> Option<Member> {
        match self.all_dict()?.get(id.as_bytes().as_slice()) {
            Some(Value::Dict(d)) => Some(Member::read(*id, d)),
            _ => None,
        }
    }

    /// Adds or updates a member; keys this version does not know are kept.
    pub fn set(&mut self, member: &Member) -> Result<(), GroupError> {
        self.set_all(std::slice::from_ref(member))
    }

    /// Adds or updates several members in one edit. Every edit copies and compares the whole
    /// config, so calling [`set`](Self::set) once per member of an `n`-member list costs
    /// O(n²): use this when adding many (creating a group, inviting a batch). Every entry is
    /// checked before anything is written.
    pub fn set_all(&mut self, members: &[Member]) -> Result<(), GroupError> {
        for m in members {
            m.check()?;
        }
        self.state.edit(|d| {
            let mut all = match d.remove(b"m".as_slice()) {
                Some(Value::Dict(m)) => m,
                _ => Dict::new(),
            };
            let mut result = Ok(());
            for member in members {
                let key = member.session_id.as_bytes().to_vec();
                let mut entry = match all.remove(&key) {
                    Some(Value::Dict(e)) => e,
                    _ => Dict::new(),
                };
                let r = member.write(&mut entry);
                all.insert(key, Value::Dict(entry));
                if result.is_ok() {
                    result = r;
                }
            }
            d.insert(b"m".to_vec(), Value::Dict(all));
            result
        })
    }

    /// Removes a member; `false` if it was not there.
    pub fn erase(&mut self, id: &SessionId) -> bool {
        self.state.edit(|d| match d.get_mut(b"m".as_slice()) {
            Some(Value::Dict(all)) => all.remove(id.as_bytes().as_slice()).is_some(),
            _ => false,
        })
    }
}
