//! Closed groups v2 (`groups-config-attachments.md` §1, `messages.md` §1.3 and §4): creating
//! a group, invitations (as requests until accepted), group messages stored once in the group
//! swarm (namespace 11), polling keys, info and members (12, 13, 14, in that order), adding,
//! removing (rekey, revoked token, kicked notice), promoting, leaving and deleting.
//!
//! ```text
//!  admin ── keys (12), info (13), members (14): signed with the group key ──▶ group swarm 03…
//!    └── GroupUpdateInviteMessage (1:1, memberAuthData + "INVITE" signature) ──▶ invitee
//!  member ── subaccount token ──▶ retrieve 12 → 13 → 14 → 11, store 11
//! ```
//!
//! Only what verifies is kept: a keys message or config that does not carry the group's
//! signature is logged and dropped, never applied. The key ring and the configs are rebuilt
//! from the kept messages (`group_data`) when needed.
//!
//! Polling and applying what the group swarm holds is in `group_receive`; unsend in groups
//! in `group_unsend`, their timers in `group_disappearing`.

use rusqlite_cipher::Connection;
use umbra_config::{ConfigState, SwarmHash};
use umbra_crypto::{AccountId, MessageHash, SessionId};
use umbra_groups::kicked::kicked_notice;
use umbra_groups::{
    Flags, GroupAdmin, GroupInfo, GroupKeys, GroupMembers, GroupPublic, Member, MemberAuth,
    Pending, Role, Subaccount, encrypt_message, namespace,
};
use umbra_report::ErrorExt as _;
use umbra_wire::{
    Attachment, Content, DataMessage, GroupUpdateInviteMessage, GroupUpdateInviteResponseMessage,
    GroupUpdateMemberChangeMessage, GroupUpdateMemberLeftMessage, GroupUpdateMessage,
    GroupUpdatePromoteMessage, encode_group_envelope, group_update_member_change_message,
};

use umbra_config::{Group as SyncedGroup, GroupRemoved};

use super::attachments::save_sent_attachments;
use super::config_state::{self, ConfigKind};
use super::config_sync::config_hashes;
use super::db::{self, GroupRow};
use super::group_disappearing;
use super::model::MessageId;
use super::swarm::GroupAuth;
use super::{
    DEFAULT_TTL_MS, Event, GroupActivity, GroupChatMessage, GroupMemberView, GroupStatus,
    GroupView, MAX_BODY_CHARS, MessageStatus, Messenger, MessengerError, lock,
};

/// TTL of keys, info, members and kicked notices in the group swarm: 30 days (§1.1).
pub const GROUP_CONFIG_TTL_MS: u64 = 30 * 24 * 3_600_000;
/// Members of a group at most (the issue's target; Session caps at 100).
pub const MAX_GROUP_MEMBERS: usize = 1_000;

/// A group as this device holds it: its row, key pair (admins) and key ring.
pub(super) struct Held {
    pub(super) row: GroupRow,
    pub(super) public: GroupPublic,
    pub(super) admin: Option<GroupAdmin>,
    pub(super) keys: GroupKeys,
}

impl Held {
    pub(super) fn status(&self) -> GroupStatus {
        GroupStatus::from_i64(self.row.status)
    }
}

/// Parses a `03…` group id.
pub fn parse_group_id(text: &str) -> Result<GroupPublic, MessengerError> {
    let bad = || MessengerError::InvalidGroupId(text.trim().to_string());
    let id: AccountId = text.trim().parse().map_err(|_| bad())?;
    if id.prefix() != umbra_groups::GROUP_PREFIX {
        return Err(bad());
    }
    GroupPublic::from_id(&id).map_err(|_| bad())
}

/// Whether `text` looks like a group id (`03` and 64 more hex characters).
pub fn is_group_id(text: &str) -> bool {
    let t = text.trim();
    t.len() == 66 && t.starts_with("03") && t.bytes().all(|b| b.is_ascii_hexdigit())
}

fn member_change_signed(kind: i32, timestamp_ms: u64) -> Vec<u8> {
    format!("MEMBER_CHANGE{kind}{timestamp_ms}").into_bytes()
}

pub(super) fn invite_signed(invitee: &SessionId, timestamp_ms: u64) -> Vec<u8> {
    format!("INVITE{}{timestamp_ms}", invitee.to_hex()).into_bytes()
}

pub(super) fn group_content(update: GroupUpdateMessage) -> Content {
    Content {
        data_message: Some(DataMessage {
            group_update_message: Some(update),
            ..DataMessage::default()
        }),
        ..Content::default()
    }
}

pub(super) fn swarm_err(what: &'static str) -> impl FnOnce(super::SwarmError) -> MessengerError {
    move |source| MessengerError::Swarm { what, source }
}

impl Messenger {
    // ----- reading ---------------------------------------------------------------------

    /// Rebuilds what we hold of `group` from the database.
    fn held(&self, conn: &Connection, group: &GroupPublic) -> Result<Held, MessengerError> {
        let what = "reading a group";
        let id = group.id().to_hex();
        let row = db::group(conn, &id)
            .map_err(MessengerError::db(what))?
            .ok_or_else(|| MessengerError::UnknownGroup(id.clone()))?;
        let admin = row
            .admin_seed
            .as_deref()
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .map(|s| GroupAdmin::from_seed(&s))
            .filter(|a| a.public() == group);
        let mut keys = GroupKeys::new(*group);
        for (hash, data, ts) in db::group_data(conn, &id, i32::from(namespace::KEYS))
            .map_err(MessengerError::db(what))?
        {
            let role = match &admin {
                Some(a) => Role::Admin(a),
                None => Role::Member(&self.identity),
            };
            let ts = i64::try_from(ts).unwrap_or(i64::MAX);
            if let Err(e) = keys.load(role, hash.as_str(), &data, ts) {
                tracing::warn!(error = %e.report(), "a kept keys message no longer loads");
            }
        }
        Ok(Held {
            row,
            public: *group,
            admin,
            keys,
        })
    }

    /// The Info config rebuilt from the kept messages; `None` before any key.
    pub(super) fn info_config(
        &self,
        conn: &Connection,
        h: &Held,
    ) -> Result<Option<GroupInfo>, MessengerError> {
        if h.keys.keys().is_empty() && h.keys.encryption_key().is_none() {
            return Ok(None);
        }
        let mut info = GroupInfo::new(&h.public, h.admin.as_ref(), &h.keys)
            .map_err(MessengerError::group("reading the group info"))?;
        merge_kept(
            conn,
            &h.row.id,
            i32::from(namespace::INFO),
            info.state_mut(),
        )?;
        Ok(Some(info))
    }

    /// The Members config rebuilt from the kept messages; `None` before any key.
    pub(super) fn members_config(
        &self,
        conn: &Connection,
        h: &Held,
    ) -> Result<Option<GroupMembers>, MessengerError> {
        if h.keys.keys().is_empty() && h.keys.encryption_key().is_none() {
            return Ok(None);
        }
        let mut members = GroupMembers::new(&h.public, h.admin.as_ref(), &h.keys)
            .map_err(MessengerError::group("reading the group members"))?;
        merge_kept(
            conn,
            &h.row.id,
            i32::from(namespace::MEMBERS),
            members.state_mut(),
        )?;
        Ok(Some(members))
    }

    fn view(&self, conn: &Connection, h: &Held) -> Result<GroupView, MessengerError> {
        let members = self
            .members_config(conn, h)?
            .map(|m| {
                m.all()
                    .into_iter()
                    .map(|m| GroupMemberView {
                        name: (!m.name.is_empty()).then(|| m.name.clone()),
                        session_id: m.session_id,
                        admin: m.admin,
                        invited: !m.admin && m.invite.is_some(),
                        promoting: m.promotion.is_some(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(GroupView {
            id: h.row.id.clone(),
            name: h.row.name.clone(),
            status: h.status(),
            admin: h.admin.is_some(),
            invited_by: h.row.invited_by.as_deref().and_then(|s| s.parse().ok()),
            members,
            disappearing: self.group_disappearing(conn, h)?,
        })
    }

    /// What this device knows of `group`: name, status, members and admins.
    pub fn group(&self, group: &str) -> Result<GroupView, MessengerError> {
        let public = parse_group_id(group)?;
        let conn = self.db();
        let h = self.held(&conn, &public)?;
        self.view(&conn, &h)
    }

    /// Every group this device knows, invitations included.
    pub fn groups(&self) -> Result<Vec<GroupView>, MessengerError> {
        let conn = self.db();
        let rows = db::groups(&conn).map_err(MessengerError::db("listing groups"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let public = parse_group_id(&r.id)?;
            let h = self.held(&conn, &public)?;
            out.push(self.view(&conn, &h)?);
        }
        Ok(out)
    }

    /// The messages of a group, oldest first.
    pub fn group_history(&self, group: &str) -> Result<Vec<GroupChatMessage>, MessengerError> {
        let public = parse_group_id(group)?;
        let conn = self.db();
        let h = self.held(&conn, &public)?;
        db::group_history(&conn, &h.row.id, self.now())
            .map_err(MessengerError::db("reading the history"))
    }

    /// The newest `limit` messages of a group, oldest first, and whether older ones exist
    /// (a window reads a page at a time, not a long history on every refresh).
    pub fn recent_group_history(
        &self,
        group: &str,
        limit: usize,
    ) -> Result<(Vec<GroupChatMessage>, bool), MessengerError> {
        let public = parse_group_id(group)?;
        let conn = self.db();
        let h = self.held(&conn, &public)?;
        db::recent_group_history(&conn, &h.row.id, self.now(), limit)
            .map_err(MessengerError::db("reading the history"))
    }

    /// The newest message of a group and how many incoming ones arrived after
    /// `read_up_to_ms` (their received time), without reading its history.
    pub fn group_activity(
        &self,
        group: &str,
        read_up_to_ms: u64,
    ) -> Result<GroupActivity, MessengerError> {
        let public = parse_group_id(group)?;
        db::group_activity(&self.db(), &public.id().to_hex(), self.now(), read_up_to_ms)
            .map_err(MessengerError::db("reading a group's activity"))
    }

    pub(super) fn held_of(&self, group: &str) -> Result<Held, MessengerError> {
        let public = parse_group_id(group)?;
        self.held(&self.db(), &public)
    }

    pub(super) fn require_joined(h: &Held, what: &'static str) -> Result<(), MessengerError> {
        match h.status() {
            GroupStatus::Joined => Ok(()),
            s => Err(MessengerError::GroupNotActive {
                what,
                state: s.as_str(),
            }),
        }
    }

    // ----- the group swarm -------------------------------------------------------------

    /// The member's subaccount from its stored authentication data.
    pub(super) fn subaccount(&self, h: &Held) -> Result<Subaccount, MessengerError> {
        let auth = h
            .row
            .member_auth
            .as_deref()
            .ok_or(MessengerError::GroupNotActive {
                what: "reaching the group swarm",
                state: "missing its authentication data",
            })?;
        let auth = MemberAuth::from_slice(auth)
            .map_err(MessengerError::group("reading the group authentication"))?;
        Subaccount::verify(&auth, &self.identity, &h.public, 0)
            .map_err(MessengerError::group("reading the group authentication"))
    }

    /// Stores `data` in `namespace` of the group swarm as `h`'s admin or member, and keeps
    /// it (for 12, 13, 14) as verified data of the group.
    async fn group_put(
        &self,
        h: &Held,
        ns: i16,
        data: &[u8],
        ttl_ms: u64,
    ) -> Result<MessageHash, MessengerError> {
        let what = "storing in the group swarm";
        let now = self.now();
        let sub;
        let auth = match &h.admin {
            Some(a) => GroupAuth::Admin(a),
            None => {
                sub = self.subaccount(h)?;
                GroupAuth::Member(&sub)
            }
        };
        let ack = self
            .swarm
            .group_store(&h.public, auth, i32::from(ns), data, now, ttl_ms)
            .await
            .map_err(swarm_err(what))?;
        if matches!(ns, namespace::KEYS | namespace::INFO | namespace::MEMBERS) {
            db::put_group_data(&self.db(), &h.row.id, i32::from(ns), &ack.hash, data, now)
                .map_err(MessengerError::db(what))?;
        }
        Ok(ack.hash)
    }

    /// Pushes a config an admin changed (all its parts), then keeps only the current one.
    pub(super) async fn push_group_config(
        &self,
        h: &Held,
        ns: i16,
        state: &mut ConfigState,
    ) -> Result<(), MessengerError> {
        let Some(push) = state
            .push()
            .map_err(MessengerError::config("pushing a group config"))?
        else {
            return Ok(());
        };
        let mut hashes = Vec::with_capacity(push.messages.len());
        for m in &push.messages {
            hashes.push(SwarmHash(
                self.group_put(h, ns, m, GROUP_CONFIG_TTL_MS)
                    .await?
                    .to_string(),
            ));
        }
        state.confirm_pushed(push.seqno, &hashes);
        let keep = config_hashes(state.current_hashes());
        db::prune_group_data(&self.db(), &h.row.id, i32::from(ns), &keep)
            .map_err(MessengerError::db("keeping a group config"))
    }

    /// A full rekey for `members` (admin): stored, loaded back, and both configs pushed under
    /// the new key.
    async fn rekey_group(
        &self,
        h: &mut Held,
        members: &[SessionId],
        info: &mut GroupInfo,
        list: &mut GroupMembers,
    ) -> Result<(), MessengerError> {
        let admin = h
            .admin
            .as_ref()
            .ok_or(MessengerError::NotGroupAdmin("rekeying"))?;
        let now = self.now();
        let ts = i64::try_from(now).unwrap_or(i64::MAX);
        let message = h
            .keys
            .rekey(admin, members, ts)
            .map_err(MessengerError::group("rekeying the group"))?;
        let hash = self
            .group_put(h, namespace::KEYS, &message, GROUP_CONFIG_TTL_MS)
            .await?;
        let admin = h
            .admin
            .as_ref()
            .ok_or(MessengerError::NotGroupAdmin("rekeying"))?;
        h.keys
            .load(Role::Admin(admin), hash.as_str(), &message, ts)
            .map_err(MessengerError::group("loading our own rekey"))?;
        info.set_keys(&h.keys, true)
            .map_err(MessengerError::group("re-encrypting the group info"))?;
        list.set_keys(&h.keys, true)
            .map_err(MessengerError::group("re-encrypting the group members"))?;
        self.push_group_config(h, namespace::INFO, info.state_mut())
            .await?;
        self.push_group_config(h, namespace::MEMBERS, list.state_mut())
            .await
    }

    /// Encrypts `content` for the group (`messages.md` §1.3) and stores it once in ns 11.
    pub(super) async fn send_group_content(
        &self,
        h: &Held,
        content: &Content,
        sent_ms: u64,
    ) -> Result<MessageHash, MessengerError> {
        let plain = encode_group_envelope(content, sent_ms);
        let data = {
            let mut rng = lock(&self.rng);
            encrypt_message(&self.identity, &h.keys, &plain, true, &mut **rng)
                .map_err(MessengerError::group("encrypting a group message"))?
        };
        self.group_put(h, namespace::MESSAGES, &data, DEFAULT_TTL_MS)
            .await
    }

    /// Tells the group about a membership change (signed by the group key).
    async fn send_member_change(
        &self,
        h: &Held,
        kind: group_update_member_change_message::Type,
        ids: &[SessionId],
        history: bool,
    ) -> Result<(), MessengerError> {
        let Some(admin) = &h.admin else {
            return Ok(());
        };
        let now = self.now();
        let sig = admin.sign(&member_change_signed(kind as i32, now));
        let content = group_content(GroupUpdateMessage {
            member_change_message: Some(GroupUpdateMemberChangeMessage {
                r#type: kind as i32,
                member_session_ids: ids.iter().map(SessionId::to_hex).collect(),
                history_shared: history.then_some(true),
                admin_signature: sig.to_bytes().to_vec(),
            }),
            ..GroupUpdateMessage::default()
        });
        self.send_group_content(h, &content, now).await.map(drop)
    }

    /// Queues one invitation per member (1:1, `messages.md` §4) and delivers the outbox.
    async fn send_invites(
        &self,
        h: &Held,
        name: &str,
        invitees: &[SessionId],
    ) -> Result<(), MessengerError> {
        let admin = h
            .admin
            .as_ref()
            .ok_or(MessengerError::NotGroupAdmin("inviting"))?;
        {
            let what = "queueing group invitations";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            let now = self.now();
            for id in invitees.iter().filter(|id| **id != self.me) {
                let auth = admin.member_auth(id, Flags::member(true, false));
                let content = group_content(GroupUpdateMessage {
                    invite_message: Some(GroupUpdateInviteMessage {
                        group_session_id: h.row.id.clone(),
                        name: name.to_string(),
                        member_auth_data: auth.0.to_vec(),
                        admin_signature: admin.sign(&invite_signed(id, now)).to_bytes().to_vec(),
                    }),
                    ..GroupUpdateMessage::default()
                });
                self.queue_store(
                    &tx,
                    id,
                    &content,
                    now,
                    DEFAULT_TTL_MS,
                    "control",
                    None,
                    false,
                )?;
            }
            tx.commit().map_err(MessengerError::db(what))?;
        }
        self.flush_outbox().await.map(drop)
    }

    // ----- admin actions ---------------------------------------------------------------

    /// The name an admin writes for a new member in the members config: the name the person
    /// gave themselves (their profile's, as a contact of ours), never our private nickname
    /// for them; empty when we know none.
    fn name_for_members(&self, id: &SessionId) -> Result<String, MessengerError> {
        let contact =
            db::contact(&self.db(), id).map_err(MessengerError::db("reading a contact"))?;
        Ok(Member::fit_name(
            &contact.and_then(|c| c.display_name).unwrap_or_default(),
        ))
    }

    /// Creates a group named `name` with us as its admin and `members` invited: a new group
    /// key pair, the first keys message and both configs in the group swarm, then one
    /// invitation per member (§1.9 "Create"). Returns the group.
    pub async fn create_group(
        &self,
        name: &str,
        members: &[SessionId],
    ) -> Result<GroupView, MessengerError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(MessengerError::GroupNotActive {
                what: "creating a group",
                state: "unnamed (give it a name)",
            });
        }
        let mut invitees: Vec<SessionId> =
            members.iter().copied().filter(|m| *m != self.me).collect();
        invitees.sort();
        invitees.dedup();
        if invitees.len() + 1 > MAX_GROUP_MEMBERS {
            return Err(MessengerError::Group {
                what: "creating a group",
                source: umbra_groups::GroupError::TooLarge {
                    what: "member list",
                    len: invitees.len() + 1,
                    limit: MAX_GROUP_MEMBERS,
                },
            });
        }
        let admin = {
            let mut rng = lock(&self.rng);
            GroupAdmin::generate(&mut **rng)
        };
        let public = *admin.public();
        let id = public.id().to_hex();
        let now = self.now();
        {
            let conn = self.db();
            db::put_group(
                &conn,
                &GroupRow {
                    id: id.clone(),
                    name: name.to_string(),
                    status: GroupStatus::Joined.to_i64(),
                    admin_seed: Some(admin.seed().to_vec()),
                    member_auth: None,
                    invited_by: None,
                    joined_ms: now,
                },
            )
            .map_err(MessengerError::db("saving a new group"))?;
            self.sync_note_group(&conn, &id)?;
        }
        let mut h = self.held(&self.db(), &public)?;
        let mut everyone = vec![self.me];
        everyone.extend(invitees.iter().copied());
        // The first key, then the configs encrypted with it.
        let ts = i64::try_from(now).unwrap_or(i64::MAX);
        let message = h
            .keys
            .rekey(&admin, &everyone, ts)
            .map_err(MessengerError::group("keying the new group"))?;
        let hash = self
            .group_put(&h, namespace::KEYS, &message, GROUP_CONFIG_TTL_MS)
            .await?;
        h.keys
            .load(Role::Admin(&admin), hash.as_str(), &message, ts)
            .map_err(MessengerError::group("loading our own keys message"))?;
        let mut info = GroupInfo::new(&public, Some(&admin), &h.keys)
            .map_err(MessengerError::group("creating the group info"))?;
        info.set_name(name)
            .map_err(MessengerError::group("naming the group"))?;
        info.set_created(i64::try_from(now / 1000).unwrap_or(i64::MAX));
        let mut list = GroupMembers::new(&public, Some(&admin), &h.keys)
            .map_err(MessengerError::group("creating the member list"))?;
        let my_name = self.display_name()?.unwrap_or_default();
        // One edit for the whole list: one `set` per member copies the list each time
        // (O(n²), most of a 1 000-member group's creation, BENCHMARKS.md).
        let mut entries = Member::founding(self.me, &my_name, &invitees);
        for entry in entries.iter_mut().skip(1) {
            entry.name = self.name_for_members(&entry.session_id)?;
        }
        list.set_all(&entries)
            .map_err(MessengerError::group("adding the members"))?;
        self.push_group_config(&h, namespace::INFO, info.state_mut())
            .await?;
        self.push_group_config(&h, namespace::MEMBERS, list.state_mut())
            .await?;
        self.send_invites(&h, name, &invitees).await?;
        self.push_groups_config().await;
        tracing::debug!(members = invitees.len() + 1, "group created");
        let conn = self.db();
        let h = self.held(&conn, &public)?;
        self.view(&conn, &h)
    }

    /// Adds members (admin): with `share_history` they get every key held (a supplemental
    /// keys message), else the group is rekeyed without telling them older keys; then
    /// invitations (§1.9 "Invite").
    pub async fn add_group_members(
        &self,
        group: &str,
        ids: &[SessionId],
        share_history: bool,
    ) -> Result<(), MessengerError> {
        let what = "adding group members";
        let mut h = self.held_of(group)?;
        Self::require_joined(&h, what)?;
        let admin_seed = *h
            .admin
            .as_ref()
            .ok_or(MessengerError::NotGroupAdmin(what))?
            .seed();
        let admin = GroupAdmin::from_seed(&admin_seed);
        let (mut info, mut list) = {
            let conn = self.db();
            (
                self.info_config(&conn, &h)?
                    .ok_or(MessengerError::NotGroupAdmin(what))?,
                self.members_config(&conn, &h)?
                    .ok_or(MessengerError::NotGroupAdmin(what))?,
            )
        };
        let new: Vec<SessionId> = ids
            .iter()
            .copied()
            .filter(|id| *id != self.me && list.get(id).is_none_or(|m| m.invite.is_some()))
            .collect();
        if list.session_ids().len() + new.len() > MAX_GROUP_MEMBERS {
            return Err(MessengerError::Group {
                what,
                source: umbra_groups::GroupError::TooLarge {
                    what: "member list",
                    len: list.session_ids().len() + new.len(),
                    limit: MAX_GROUP_MEMBERS,
                },
            });
        }
        let entries = new
            .iter()
            .map(|id| {
                let mut entry = Member::new(*id);
                entry.invite = Some(Pending::Sent);
                entry.supplement = share_history;
                entry.name = self.name_for_members(id)?;
                Ok(entry)
            })
            .collect::<Result<Vec<Member>, MessengerError>>()?;
        list.set_all(&entries)
            .map_err(MessengerError::group(what))?;
        // A member removed before has a revoked token: lift it first.
        let tokens: Vec<_> = new
            .iter()
            .map(|id| admin.member_token(id, Flags::member(true, false)))
            .collect();
        for chunk in tokens.chunks(umbra_groups::subaccount::MAX_REVOKE_PER_REQUEST) {
            self.swarm
                .group_revoke(&admin, chunk, false)
                .await
                .map_err(swarm_err(what))?;
        }
        if share_history {
            let message = h
                .keys
                .supplemental(&admin, &new)
                .map_err(MessengerError::group(what))?;
            let hash = self
                .group_put(&h, namespace::KEYS, &message, GROUP_CONFIG_TTL_MS)
                .await?;
            let ts = i64::try_from(self.now()).unwrap_or(i64::MAX);
            h.keys
                .load(Role::Admin(&admin), hash.as_str(), &message, ts)
                .map_err(MessengerError::group(what))?;
            self.push_group_config(&h, namespace::MEMBERS, list.state_mut())
                .await?;
        } else {
            let everyone = list.session_ids();
            self.rekey_group(&mut h, &everyone, &mut info, &mut list)
                .await?;
        }
        let name = info.name();
        self.send_invites(&h, &name, &new).await?;
        self.send_member_change(
            &h,
            group_update_member_change_message::Type::Added,
            &new,
            share_history,
        )
        .await
    }

    /// Removes members (admin): erased from Members, a kicked notice (ns −11), their tokens
    /// revoked, and a rekey without them, so they read nothing sent afterwards (§1.9
    /// "Remove").
    pub async fn remove_group_members(
        &self,
        group: &str,
        ids: &[SessionId],
    ) -> Result<(), MessengerError> {
        let what = "removing group members";
        let mut h = self.held_of(group)?;
        Self::require_joined(&h, what)?;
        let admin = GroupAdmin::from_seed(
            h.admin
                .as_ref()
                .ok_or(MessengerError::NotGroupAdmin(what))?
                .seed(),
        );
        let (mut info, mut list) = {
            let conn = self.db();
            (
                self.info_config(&conn, &h)?
                    .ok_or(MessengerError::NotGroupAdmin(what))?,
                self.members_config(&conn, &h)?
                    .ok_or(MessengerError::NotGroupAdmin(what))?,
            )
        };
        let removed: Vec<SessionId> = ids
            .iter()
            .copied()
            .filter(|id| *id != self.me && list.erase(id))
            .collect();
        if removed.is_empty() {
            return Ok(());
        }
        self.send_member_change(
            &h,
            group_update_member_change_message::Type::Removed,
            &removed,
            false,
        )
        .await?;
        let generation = h.keys.current_generation().unwrap_or(0);
        let notice = {
            let mut rng = lock(&self.rng);
            kicked_notice(&admin, &removed, generation, &mut **rng)
                .map_err(MessengerError::group(what))?
        };
        self.group_put(&h, namespace::KICKED, &notice, GROUP_CONFIG_TTL_MS)
            .await?;
        let tokens: Vec<_> = removed
            .iter()
            .map(|id| admin.member_token(id, Flags::member(true, false)))
            .collect();
        for chunk in tokens.chunks(umbra_groups::subaccount::MAX_REVOKE_PER_REQUEST) {
            self.swarm
                .group_revoke(&admin, chunk, true)
                .await
                .map_err(swarm_err(what))?;
        }
        let everyone = list.session_ids();
        self.rekey_group(&mut h, &everyone, &mut info, &mut list)
            .await?;
        tracing::debug!(removed = removed.len(), "group members removed");
        Ok(())
    }

    /// Makes `member` an admin: the group seed goes to it one-to-one, the Members config
    /// marks it, and the group is told (§1.9 "Promote").
    pub async fn promote_group_member(
        &self,
        group: &str,
        member: &SessionId,
    ) -> Result<(), MessengerError> {
        let what = "promoting a group member";
        let h = self.writable_group(group, what)?;
        let admin = h
            .admin
            .as_ref()
            .ok_or(MessengerError::NotGroupAdmin(what))?;
        let mut list = self
            .members_config(&self.db(), &h)?
            .ok_or(MessengerError::NotGroupAdmin(what))?;
        let mut entry = list.get(member).ok_or(MessengerError::GroupNotActive {
            what,
            state: "without that member (add them first)",
        })?;
        entry.admin = true;
        entry.invite = None;
        entry.promotion = Some(Pending::Sent);
        list.set(&entry).map_err(MessengerError::group(what))?;
        {
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            let content = group_content(GroupUpdateMessage {
                promote_message: Some(GroupUpdatePromoteMessage {
                    group_identity_seed: admin.seed().to_vec(),
                    name: h.row.name.clone(),
                }),
                ..GroupUpdateMessage::default()
            });
            let now = self.now();
            self.queue_store(
                &tx,
                member,
                &content,
                now,
                DEFAULT_TTL_MS,
                "control",
                None,
                false,
            )?;
            tx.commit().map_err(MessengerError::db(what))?;
        }
        self.flush_outbox().await?;
        self.push_group_config(&h, namespace::MEMBERS, list.state_mut())
            .await?;
        self.send_member_change(
            &h,
            group_update_member_change_message::Type::Promoted,
            std::slice::from_ref(member),
            false,
        )
        .await
    }

    /// Deletes the group for everyone (admin): the Info config is marked destroyed, which
    /// every member applies at its next poll (§1.9 "Destroy").
    pub async fn delete_group(&self, group: &str) -> Result<(), MessengerError> {
        let what = "deleting a group";
        let h = self.held_of(group)?;
        if h.admin.is_none() {
            return Err(MessengerError::NotGroupAdmin(what));
        }
        Self::require_joined(&h, what)?;
        let mut info = self
            .info_config(&self.db(), &h)?
            .ok_or(MessengerError::NotGroupAdmin(what))?;
        info.destroy();
        self.push_group_config(&h, namespace::INFO, info.state_mut())
            .await?;
        let conn = self.db();
        db::set_group_status(&conn, &h.row.id, GroupStatus::Destroyed.to_i64(), None)
            .map_err(MessengerError::db(what))?;
        self.sync_note_group(&conn, &h.row.id)
    }

    // ----- member actions --------------------------------------------------------------

    /// Accepts an invitation: joins, reads the group swarm, and tells the admins.
    pub async fn accept_group(&self, group: &str) -> Result<Vec<Event>, MessengerError> {
        let what = "accepting a group invitation";
        let h = self.held_of(group)?;
        match h.status() {
            GroupStatus::Invited | GroupStatus::Joined => {}
            s => {
                return Err(MessengerError::GroupNotActive {
                    what,
                    state: s.as_str(),
                });
            }
        }
        {
            let conn = self.db();
            db::set_group_status(&conn, &h.row.id, GroupStatus::Joined.to_i64(), None)
                .map_err(MessengerError::db(what))?;
            self.sync_note_group(&conn, &h.row.id)?;
        }
        let events = self.poll_group(&h.public).await?;
        let h = self.held_of(group)?;
        if h.keys.encryption_key().is_some() && h.status() == GroupStatus::Joined {
            let content = group_content(GroupUpdateMessage {
                invite_response: Some(GroupUpdateInviteResponseMessage { is_approved: true }),
                ..GroupUpdateMessage::default()
            });
            self.send_group_content(&h, &content, self.now()).await?;
        } else {
            tracing::debug!("no group key yet; the admins learn of the acceptance later");
        }
        self.push_groups_config().await;
        Ok(events)
    }

    /// Pushes the UserGroups change at once, so the account's other devices see it without
    /// waiting for this one's next poll; a failure is retried at that poll.
    async fn push_groups_config(&self) {
        if let Err(e) = self.sync_config().await {
            tracing::debug!(error = %e.report(), "config sync failed; retrying at the next poll");
        }
    }

    /// Declines an invitation: the group is forgotten.
    pub fn decline_group(&self, group: &str) -> Result<(), MessengerError> {
        let public = parse_group_id(group)?;
        let conn = self.db();
        let h = self.held(&conn, &public)?;
        db::delete_group(&conn, &h.row.id).map_err(MessengerError::db("declining a group"))?;
        self.sync_note_group(&conn, &h.row.id)
    }

    /// Leaves a group: the admins are told (they remove us and rekey), and the group is
    /// forgotten here.
    pub async fn leave_group(&self, group: &str) -> Result<(), MessengerError> {
        let what = "leaving a group";
        let h = self.held_of(group)?;
        if h.status() == GroupStatus::Joined && h.keys.encryption_key().is_some() {
            let content = group_content(GroupUpdateMessage {
                member_left_message: Some(GroupUpdateMemberLeftMessage {}),
                ..GroupUpdateMessage::default()
            });
            if let Err(e) = self.send_group_content(&h, &content, self.now()).await {
                // Leaving works offline too; the admins see us gone at the next rekey.
                tracing::debug!(error = %e.report(), "could not tell the group we left");
            }
        }
        let conn = self.db();
        db::delete_group(&conn, &h.row.id).map_err(MessengerError::db(what))?;
        self.sync_note_group(&conn, &h.row.id)
    }

    /// Sends a text message to the group: encrypted with the group key, stored once.
    pub async fn send_group_text(
        &self,
        group: &str,
        text: &str,
    ) -> Result<GroupChatMessage, MessengerError> {
        let chars = text.chars().count();
        if text.trim().is_empty() {
            return Err(MessengerError::EmptyMessage);
        }
        if chars > MAX_BODY_CHARS {
            return Err(MessengerError::MessageTooLong {
                got: chars,
                max: MAX_BODY_CHARS,
            });
        }
        let h = self.writable_group(group, "sending to a group")?;
        self.send_group_data(&h, text, &[], None)
            .await
            .map(|(m, _)| m)
    }

    /// The group, if it can be written to now (known, joined): checked before any work (an
    /// upload, a signature, a swarm request).
    pub(super) fn writable_group(
        &self,
        group: &str,
        what: &'static str,
    ) -> Result<Held, MessengerError> {
        let h = self.held_of(group)?;
        Self::require_joined(&h, what)?;
        Ok(h)
    }

    /// Saves and queues a message of ours to group `h` with `body` and `attachments` (ours,
    /// with our local copy at `local_path`), then makes one delivery attempt. Returns the
    /// message as saved and its row id.
    pub(super) async fn send_group_data(
        &self,
        h: &Held,
        body: &str,
        attachments: &[Attachment],
        local_path: Option<&str>,
    ) -> Result<(GroupChatMessage, i64), MessengerError> {
        let what = "sending to a group";
        let (profile, profile_key) = self.profile_proto(&self.db())?;
        let mode = self.group_disappearing(&self.db(), h)?;
        let mut content = Content {
            data_message: Some(DataMessage {
                body: (!body.is_empty()).then(|| body.to_string()),
                attachments: attachments.iter().map(Attachment::to_pointer).collect(),
                profile,
                profile_key,
                ..DataMessage::default()
            }),
            ..Content::default()
        };
        group_disappearing::stamp(&mut content, mode);
        // Saved and queued in one transaction, then one delivery attempt (as `send_text`):
        // a group swarm out of reach keeps it queued for the next poll.
        let sent = {
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            if db::outbox_len(&tx).map_err(MessengerError::db(what))? >= super::MAX_OUTBOX {
                return Err(MessengerError::OutboxFull {
                    limit: super::MAX_OUTBOX,
                });
            }
            // (author, sent time) names a message: a second one in the same ms waits one.
            let mut sent_ms = self.now();
            while db::group_sent_time_taken(&tx, &h.row.id, &self.me, sent_ms)
                .map_err(MessengerError::db(what))?
            {
                sent_ms += 1;
            }
            let expires_at_ms = group_disappearing::group_expiry(mode, sent_ms);
            let plain = encode_group_envelope(&content, sent_ms);
            let data = {
                let mut rng = lock(&self.rng);
                encrypt_message(&self.identity, &h.keys, &plain, true, &mut **rng)
                    .map_err(MessengerError::group("encrypting a group message"))?
            };
            let hash = umbra_crypto::hash::message_hash(
                &h.public.id(),
                i32::from(namespace::MESSAGES),
                &data,
            );
            db::insert_group_message(
                &tx,
                &GroupChatMessage {
                    group: h.row.id.clone(),
                    author: self.me,
                    sent_ms,
                    body: body.to_string(),
                    outgoing: true,
                    received_ms: sent_ms,
                    hash: Some(hash),
                    status: MessageStatus::Queued,
                    expires_at_ms,
                },
            )
            .map_err(MessengerError::db(what))?;
            let id = tx.last_insert_rowid();
            save_sent_attachments(&tx, MessageId::Group(id), attachments, local_path)
                .map_err(MessengerError::db(what))?;
            // The swarm keeps a disappearing message only as long as its timer.
            let ttl_ms = expires_at_ms.map_or(DEFAULT_TTL_MS, |at| at - sent_ms);
            db::queue_group_store(&tx, &h.row.id, &data, &hash, sent_ms, ttl_ms, id)
                .map_err(MessengerError::db(what))?;
            tx.commit().map_err(MessengerError::db(what))?;
            (sent_ms, id)
        };
        let (sent_ms, id) = sent;
        self.flush_outbox().await?;
        let message = db::own_group_message(&self.db(), &h.row.id, &self.me, sent_ms)
            .map_err(MessengerError::db(what))?
            .ok_or(MessengerError::NoSuchMessage(what))?;
        Ok((message, id))
    }

    /// Delivers one queued group message (an outbox entry of kind "group"): refused for
    /// good once we are no longer in the group.
    pub(super) async fn deliver_group_store(
        &self,
        p: &db::Pending,
    ) -> Result<(), super::SwarmError> {
        let refused = |why: &str| super::SwarmError::Status {
            status: 403,
            body: why.to_string(),
        };
        let h = match self.held_of(&p.owner) {
            Ok(h) if h.status() == GroupStatus::Joined => h,
            _ => return Err(refused("no longer a member of the group")),
        };
        let sub;
        let auth = match &h.admin {
            Some(a) => GroupAuth::Admin(a),
            None => {
                sub = self
                    .subaccount(&h)
                    .map_err(|_| refused("no group authentication data"))?;
                GroupAuth::Member(&sub)
            }
        };
        match self
            .swarm
            .group_store(
                &h.public,
                auth,
                p.namespace,
                &p.data,
                p.timestamp_ms,
                p.ttl_ms,
            )
            .await
        {
            Ok(_) => Ok(()),
            // A refused token (revoked: we were removed) will never be accepted.
            Err(super::SwarmError::Status { status: 401, body }) => Err(refused(&body)),
            Err(e) => Err(e),
        }
    }
}

impl Messenger {
    /// Writes the group as this device now holds it into the UserGroups config (§2.11:
    /// `K` seed for admins, `s` auth data for members, `i` invited, `r` removed), in the
    /// caller's transaction: another device of the account learns it at its next sync.
    pub(super) fn sync_note_group(
        &self,
        conn: &Connection,
        id: &str,
    ) -> Result<(), MessengerError> {
        let what = "syncing a group";
        let mut cfg = config_state::user_groups(conn, self.identity.seed())?;
        let key = group_key(id)?;
        let Some(row) = db::group(conn, id).map_err(MessengerError::db(what))? else {
            if cfg.erase_group(&key) {
                config_state::save(conn, ConfigKind::UserGroups, cfg.state())?;
            }
            return Ok(());
        };
        let mut g = cfg.group(&key).unwrap_or_else(|| SyncedGroup::new(key));
        let mut end = row.name.len().min(100);
        while !row.name.is_char_boundary(end) {
            end -= 1;
        }
        g.name = row.name[..end].to_string();
        g.secret_seed = row
            .admin_seed
            .as_deref()
            .and_then(|s| <[u8; 32]>::try_from(s).ok());
        g.auth_data = if g.secret_seed.is_some() {
            None
        } else {
            row.member_auth.clone()
        };
        let status = GroupStatus::from_i64(row.status);
        g.invited = status == GroupStatus::Invited;
        g.removed = match status {
            GroupStatus::Kicked => GroupRemoved::Kicked,
            GroupStatus::Destroyed => GroupRemoved::Destroyed,
            _ => GroupRemoved::No,
        };
        g.joined_at = i64::try_from(row.joined_ms / 1000).unwrap_or(0);
        cfg.set_group(&g).map_err(MessengerError::config(what))?;
        config_state::save(conn, ConfigKind::UserGroups, cfg.state())
    }

    /// Applies a merged UserGroups config: groups another device created, joined or was
    /// invited to appear here; a seed learnt there makes us admin here; a removal there
    /// closes the group here. Groups are never re-opened or forgotten from a config.
    pub(super) fn apply_groups_config(&self, conn: &Connection) -> Result<(), MessengerError> {
        let what = "applying the synced groups";
        let cfg = config_state::user_groups(conn, self.identity.seed())?;
        for g in cfg.groups() {
            let id = hex::encode(g.id);
            if parse_group_id(&id).is_err() {
                continue;
            }
            let synced_status = match (g.removed, g.invited) {
                (GroupRemoved::Kicked, _) => GroupStatus::Kicked,
                (GroupRemoved::Destroyed, _) => GroupStatus::Destroyed,
                (GroupRemoved::No, true) => GroupStatus::Invited,
                (GroupRemoved::No, false) => GroupStatus::Joined,
            };
            let local = db::group(conn, &id).map_err(MessengerError::db(what))?;
            let row = match local {
                None => GroupRow {
                    id: id.clone(),
                    name: g.name.clone(),
                    status: synced_status.to_i64(),
                    admin_seed: g.secret_seed.map(|s| s.to_vec()),
                    member_auth: g.auth_data.clone(),
                    invited_by: None,
                    joined_ms: u64::try_from(g.joined_at).unwrap_or(0) * 1000,
                },
                Some(mut row) => {
                    if row.admin_seed.is_none() {
                        row.admin_seed = g.secret_seed.map(|s| s.to_vec());
                    }
                    if row.member_auth.is_none() {
                        row.member_auth.clone_from(&g.auth_data);
                    }
                    let here = GroupStatus::from_i64(row.status);
                    let moves = matches!(
                        (here, synced_status),
                        (GroupStatus::Invited, _)
                            | (
                                GroupStatus::Joined,
                                GroupStatus::Kicked | GroupStatus::Destroyed
                            )
                    );
                    if moves {
                        row.status = synced_status.to_i64();
                    }
                    row
                }
            };
            db::put_group(conn, &row).map_err(MessengerError::db(what))?;
        }
        Ok(())
    }
}

/// The UserGroups key of a group id.
fn group_key(id: &str) -> Result<[u8; 33], MessengerError> {
    let public = parse_group_id(id)?;
    Ok(*public.id().as_bytes())
}

/// Merges the kept messages of a config namespace into `state`.
fn merge_kept(
    conn: &Connection,
    id: &str,
    ns: i32,
    state: &mut ConfigState,
) -> Result<(), MessengerError> {
    let kept =
        db::group_data(conn, id, ns).map_err(MessengerError::db("reading a group config"))?;
    let messages: Vec<(SwarmHash, &[u8])> = kept
        .iter()
        .map(|(h, d, _)| (SwarmHash(h.to_string()), d.as_slice()))
        .collect();
    state.merge(&messages);
    Ok(())
}
