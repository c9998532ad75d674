//! Receiving in closed groups: polling the group swarm's keys, info and members (12, 13,
//! 14, in that order, so that a message is opened with the newest keys), then its messages
//! (11); applying control messages (invitation responses, leaves, deletions); and the
//! admin's follow-up of what a poll brought (members who accepted or left, keeping the
//! group's configs alive).

use rusqlite_cipher::Connection;
use umbra_config::{ConfigState, SwarmHash};
use umbra_crypto::{MessageHash, Redacted, SessionId, Signature};
use umbra_groups::kicked::read_kicked_notice;
use umbra_groups::{
    GroupAdmin, GroupPublic, MemberAuth, Role, Subaccount, decrypt_message, namespace,
};
use umbra_report::ErrorExt as _;
use umbra_wire::{GroupUpdateInviteMessage, GroupUpdateMessage, decode_group_envelope};

use super::attachments::save_received_attachments;
use super::config_sync::{config_hashes, message_hashes};
use super::db::{self, GroupRow};
use super::group_disappearing;
use super::groups::{GROUP_CONFIG_TTL_MS, Held, invite_signed, parse_group_id, swarm_err};
use super::model::MessageId;
use super::swarm::GroupAuth;
use super::{
    Disappearing, Event, GroupChatMessage, GroupStatus, MessageStatus, Messenger, MessengerError,
};

/// How often an admin extends the group's keys and configs in the swarm: daily.
const GROUP_EXTEND_EVERY_MS: u64 = 24 * 3_600_000;

/// The namespaces of a poll, in the order §1.1 requires (keys before what they decrypt); the
/// kicked notices (−11) first, as they are readable even with a revoked token.
const POLL_ORDER: [i16; 5] = [
    namespace::KICKED,
    namespace::KEYS,
    namespace::INFO,
    namespace::MEMBERS,
    namespace::MESSAGES,
];

impl Messenger {
    /// Polls every group we are in; a group whose poll fails is retried at the next poll.
    pub async fn poll_groups(&self) -> Result<Vec<Event>, MessengerError> {
        let rows = db::groups(&self.db()).map_err(MessengerError::db("listing groups"))?;
        let mut events = Vec::new();
        for r in rows
            .iter()
            .filter(|r| GroupStatus::from_i64(r.status) == GroupStatus::Joined)
        {
            let Ok(public) = parse_group_id(&r.id) else {
                continue;
            };
            match self.poll_group(&public).await {
                Ok(e) => events.extend(e),
                Err(e) => {
                    tracing::debug!(error = %e.report(), "a group poll failed; retrying later");
                }
            }
        }
        Ok(events)
    }

    /// Polls one group now, whatever its state (a removed member is refused by the swarm).
    pub async fn refresh_group(&self, group: &str) -> Result<Vec<Event>, MessengerError> {
        let public = parse_group_id(group)?;
        self.poll_group(&public).await
    }

    /// Polls one group swarm: kicked notices, keys, info, members, then messages.
    pub(super) async fn poll_group(
        &self,
        group: &GroupPublic,
    ) -> Result<Vec<Event>, MessengerError> {
        let what = "polling a group";
        let mut h = self.held_of(&group.id().to_hex())?;
        let sub = match &h.admin {
            Some(_) => None,
            None => Some(self.subaccount(&h)?),
        };
        let mut events = Vec::new();
        let mut left = Vec::new();
        let mut accepted = Vec::new();
        for ns in POLL_ORDER {
            let auth = match (&h.admin, &sub) {
                (Some(a), _) => GroupAuth::Admin(a),
                (None, Some(s)) => GroupAuth::Member(s),
                (None, None) => return Ok(events),
            };
            if ns == namespace::KICKED && h.admin.is_some() {
                continue;
            }
            let last = db::group_cursor(&self.db(), &h.row.id, i32::from(ns))
                .map_err(MessengerError::db(what))?;
            let page = self
                .swarm
                .group_retrieve(group, auth, i32::from(ns), last.as_ref())
                .await
                .map_err(swarm_err("retrieving from the group swarm"))?;
            let Some(newest) = page.messages.last().map(|m| m.hash) else {
                continue;
            };
            match ns {
                namespace::KICKED => {
                    let current = h.keys.current_generation().unwrap_or(0);
                    let kicked = page.messages.iter().any(|m| {
                        matches!(read_kicked_notice(&self.identity, group, &m.data),
                            Ok(Some(g)) if g >= current)
                    });
                    if kicked {
                        let conn = self.db();
                        db::set_group_cursor(&conn, &h.row.id, i32::from(ns), &newest)
                            .and_then(|()| {
                                db::set_group_status(
                                    &conn,
                                    &h.row.id,
                                    GroupStatus::Kicked.to_i64(),
                                    None,
                                )
                            })
                            .map_err(MessengerError::db(what))?;
                        self.sync_note_group(&conn, &h.row.id)?;
                        tracing::debug!("removed from a group");
                        events.push(Event::GroupClosed {
                            group: h.row.id.clone(),
                            status: GroupStatus::Kicked,
                        });
                        return Ok(events);
                    }
                }
                namespace::KEYS => {
                    let conn = self.db();
                    for m in &page.messages {
                        let role = match &h.admin {
                            Some(a) => Role::Admin(a),
                            None => Role::Member(&self.identity),
                        };
                        let ts = i64::try_from(m.timestamp_ms).unwrap_or(i64::MAX);
                        match h.keys.load(role, m.hash.as_str(), &m.data, ts) {
                            Ok(_) => db::put_group_data(
                                &conn,
                                &h.row.id,
                                i32::from(ns),
                                &m.hash,
                                &m.data,
                                m.timestamp_ms,
                            )
                            .map_err(MessengerError::db(what))?,
                            Err(e) => tracing::warn!(
                                error = %e.report(),
                                "ignoring a keys message that does not verify or open"
                            ),
                        }
                    }
                    // Generations the ring let expire (§1.5) need not be kept any more.
                    let keep = message_hashes(h.keys.active_hashes());
                    db::prune_group_data(&conn, &h.row.id, i32::from(ns), &keep)
                        .map_err(MessengerError::db(what))?;
                }
                namespace::INFO | namespace::MEMBERS => {
                    let conn = self.db();
                    let report = if ns == namespace::INFO {
                        let Some(mut info) = self.info_config(&conn, &h)? else {
                            continue;
                        };
                        let report = merge_new(&conn, &h.row.id, ns, info.state_mut(), &page)?;
                        let name = info.name();
                        if info.is_destroyed() {
                            db::set_group_status(
                                &conn,
                                &h.row.id,
                                GroupStatus::Destroyed.to_i64(),
                                None,
                            )
                            .map_err(MessengerError::db(what))?;
                            self.sync_note_group(&conn, &h.row.id)?;
                            events.push(Event::GroupClosed {
                                group: h.row.id.clone(),
                                status: GroupStatus::Destroyed,
                            });
                        } else if !name.is_empty() {
                            db::set_group_status(&conn, &h.row.id, h.row.status, Some(&name))
                                .map_err(MessengerError::db(what))?;
                        }
                        report
                    } else {
                        let Some(mut list) = self.members_config(&conn, &h)? else {
                            continue;
                        };
                        merge_new(&conn, &h.row.id, ns, list.state_mut(), &page)?
                    };
                    for (_, e) in &report.skipped {
                        tracing::warn!(error = %e.report(), "ignoring a group config that does not verify or open");
                    }
                }
                _ => {
                    let conn = self.db();
                    for m in &page.messages {
                        let opened = match decrypt_message(&h.keys, &m.data) {
                            Ok(o) => o,
                            Err(e) => {
                                tracing::debug!(error = %e.report(), "dropping a group message that does not open");
                                continue;
                            }
                        };
                        let (content, sent_ms) = match decode_group_envelope(&opened.payload) {
                            Ok(c) => c,
                            Err(e) => {
                                tracing::debug!(error = %e.report(), "dropping a malformed group message");
                                continue;
                            }
                        };
                        let expires_at_ms = group_disappearing::group_expiry(
                            Disappearing::from_wire(
                                content.expiration_type,
                                content.expiration_timer,
                            ),
                            sent_ms,
                        );
                        let Some(dm) = content.data_message else {
                            continue;
                        };
                        if let Some(update) = dm.group_update_message {
                            if update.member_left_message.is_some() {
                                left.push(opened.sender);
                            }
                            if let Some(deletion) = &update.delete_member_content {
                                events.extend(self.apply_group_deletion(
                                    &conn,
                                    &h,
                                    &opened.sender,
                                    sent_ms,
                                    deletion,
                                )?);
                            }
                            if update.invite_response.is_some_and(|r| r.is_approved) {
                                accepted.push(opened.sender);
                            }
                            continue;
                        }
                        let Some(body) = super::ingest::visible_body(&dm).map(str::to_owned) else {
                            continue;
                        };
                        let message = GroupChatMessage {
                            group: h.row.id.clone(),
                            author: opened.sender,
                            sent_ms,
                            body,
                            outgoing: opened.sender == self.me,
                            received_ms: self.now(),
                            hash: Some(m.hash),
                            status: if opened.sender == self.me {
                                MessageStatus::Sent
                            } else {
                                MessageStatus::Received
                            },
                            expires_at_ms,
                        };
                        if db::insert_group_message(&conn, &message)
                            .map_err(MessengerError::db(what))?
                        {
                            let id = MessageId::Group(conn.last_insert_rowid());
                            save_received_attachments(&conn, id, &dm.attachments, message.outgoing)
                                .map_err(MessengerError::db(what))?;
                            events.push(Event::GroupMessage { message });
                        }
                    }
                }
            }
            db::set_group_cursor(&self.db(), &h.row.id, i32::from(ns), &newest)
                .map_err(MessengerError::db(what))?;
            if ns == namespace::KEYS {
                // Reload: what was kept is the ring the configs use.
                h = self.held_of(&group.id().to_hex())?;
            }
        }
        let h = self.held_of(&group.id().to_hex())?;
        if h.admin.is_some() && h.status() == GroupStatus::Joined {
            self.keep_group_alive(&h).await;
        }
        if h.admin.is_some()
            && h.status() == GroupStatus::Joined
            && let Err(e) = self.admin_follow_up(&h, &accepted, &left).await
        {
            // What the poll brought is saved; the follow-up is retried with the next change.
            tracing::debug!(error = %e.report(), "a group admin follow-up failed");
        }
        Ok(events)
    }

    /// An admin extends the keys messages and configs still needed to the full config TTL
    /// (§1.1, §2.10), at most once a day per group; otherwise the swarm forgets them after
    /// 30 days and no newcomer could read the group.
    async fn keep_group_alive(&self, h: &Held) {
        let Some(admin) = &h.admin else { return };
        let now = self.now();
        let key = format!("group_extended.{}", h.row.id);
        let last = db::meta_get(&self.db(), &key)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(h.row.joined_ms);
        if now < last.saturating_add(GROUP_EXTEND_EVERY_MS) {
            return;
        }
        let hashes: Vec<MessageHash> = {
            let conn = self.db();
            [namespace::KEYS, namespace::INFO, namespace::MEMBERS]
                .iter()
                .filter_map(|ns| db::group_data(&conn, &h.row.id, i32::from(*ns)).ok())
                .flatten()
                .map(|(hash, _, _)| hash)
                .collect()
        };
        if hashes.is_empty() {
            return;
        }
        match self
            .swarm
            .group_expire(admin, &hashes, now + GROUP_CONFIG_TTL_MS)
            .await
        {
            Ok(()) => {
                if let Err(e) = db::meta_set(&self.db(), &key, now.to_string().as_bytes()) {
                    tracing::debug!(error = %e.report(), "could not note a group extension");
                }
            }
            Err(e) => tracing::debug!(error = %e.report(), "extending the group data failed"),
        }
    }

    /// What an admin does after a poll: marks accepted invitations, removes who left.
    async fn admin_follow_up(
        &self,
        h: &Held,
        accepted: &[SessionId],
        left: &[SessionId],
    ) -> Result<(), MessengerError> {
        let list = self.members_config(&self.db(), h)?;
        if let Some(mut list) = list {
            let mut changed = false;
            // Newly promoted: the seed arrived, so the promotion is accepted (§1.9 "Promote").
            if let Some(mut me) = list.get(&self.me).filter(|m| m.promotion.is_some()) {
                me.promotion = None;
                me.admin = true;
                list.set(&me)
                    .map_err(MessengerError::group("accepting a promotion"))?;
                changed = true;
            }
            for id in accepted {
                if let Some(mut m) = list.get(id).filter(|m| m.invite.is_some()) {
                    m.invite = None;
                    m.supplement = false;
                    list.set(&m)
                        .map_err(MessengerError::group("marking an invitation accepted"))?;
                    changed = true;
                }
            }
            if changed {
                self.push_group_config(h, namespace::MEMBERS, list.state_mut())
                    .await?;
            }
        }
        let left: Vec<SessionId> = left.iter().copied().filter(|id| *id != self.me).collect();
        if !left.is_empty() {
            self.remove_group_members(&h.row.id, &left).await?;
        }
        Ok(())
    }

    /// A group control message that came one-to-one (an invitation or a promotion), applied
    /// in the caller's transaction. Anything that does not verify is logged and dropped.
    pub(super) fn apply_group_update(
        &self,
        tx: &Connection,
        sender: &SessionId,
        sent_ms: u64,
        update: &GroupUpdateMessage,
    ) -> Result<Vec<Event>, MessengerError> {
        let what = "saving a group invitation";
        if let Some(invite) = &update.invite_message {
            match self.check_invite(invite, sent_ms) {
                Ok(public) => {
                    let id = public.id().to_hex();
                    let known = db::group(tx, &id).map_err(MessengerError::db(what))?;
                    if known
                        .as_ref()
                        .is_some_and(|g| g.status == GroupStatus::Joined.to_i64())
                    {
                        return Ok(Vec::new());
                    }
                    db::put_group(
                        tx,
                        &GroupRow {
                            id: id.clone(),
                            name: invite.name.chars().take(100).collect(),
                            status: GroupStatus::Invited.to_i64(),
                            admin_seed: known.and_then(|k| k.admin_seed),
                            member_auth: Some(invite.member_auth_data.clone()),
                            invited_by: Some(sender.to_hex()),
                            joined_ms: self.now(),
                        },
                    )
                    .map_err(MessengerError::db(what))?;
                    self.sync_note_group(tx, &id)?;
                    tracing::debug!(from = %Redacted::new(sender), "group invitation received");
                    return Ok(vec![Event::GroupInvite {
                        group: id,
                        name: invite.name.clone(),
                        from: *sender,
                    }]);
                }
                Err(why) => {
                    tracing::warn!(from = %Redacted::new(sender), why, "ignoring a malformed group invitation");
                }
            }
        }
        if let Some(promote) = &update.promote_message {
            let admin = <[u8; 32]>::try_from(promote.group_identity_seed.as_slice())
                .ok()
                .map(|s| GroupAdmin::from_seed(&s));
            let id = admin.as_ref().map(|a| a.id().to_hex());
            match (admin, id) {
                (Some(admin), Some(id))
                    if db::group(tx, &id)
                        .map_err(MessengerError::db(what))?
                        .is_some() =>
                {
                    tx.execute(
                        "UPDATE groups SET admin_seed = ?2 WHERE id = ?1",
                        rusqlite_cipher::params![id, admin.seed().to_vec()],
                    )
                    .map_err(MessengerError::db("saving a promotion"))?;
                    self.sync_note_group(tx, &id)?;
                    tracing::debug!("promoted to group admin");
                }
                _ => tracing::warn!("ignoring a promotion to a group we are not in"),
            }
        }
        Ok(Vec::new())
    }

    /// Checks an invitation addressed to us: group id, the group's signature of
    /// `"INVITE" ‖ our id ‖ timestamp`, and that the authentication data is for us.
    fn check_invite(
        &self,
        invite: &GroupUpdateInviteMessage,
        sent_ms: u64,
    ) -> Result<GroupPublic, &'static str> {
        let public =
            parse_group_id(&invite.group_session_id).map_err(|_| "the group id is not a 03 id")?;
        let sig = Signature::from_slice(&invite.admin_signature)
            .map_err(|_| "the admin signature is not 64 bytes")?;
        if !public.verify(&invite_signed(&self.me, sent_ms), &sig) {
            return Err("the admin signature does not verify");
        }
        let auth = MemberAuth::from_slice(&invite.member_auth_data)
            .map_err(|_| "the member authentication data is not 100 bytes")?;
        Subaccount::verify(&auth, &self.identity, &public, 0)
            .map_err(|_| "the member authentication data is not for us")?;
        if invite.name.trim().is_empty() {
            return Err("the group has no name");
        }
        Ok(public)
    }
}

/// Merges newly retrieved config messages; keeps those that verified, drops the rest.
fn merge_new(
    conn: &Connection,
    id: &str,
    ns: i16,
    state: &mut ConfigState,
    page: &super::RetrievedPage,
) -> Result<umbra_config::MergeReport, MessengerError> {
    let what = "saving a group config";
    let messages: Vec<(SwarmHash, &[u8])> = page
        .messages
        .iter()
        .map(|m| (SwarmHash(m.hash.to_string()), m.data.as_slice()))
        .collect();
    let report = state.merge(&messages);
    for m in &page.messages {
        if report.accepted.iter().any(|a| m.hash == a.0.as_str()) {
            db::put_group_data(conn, id, i32::from(ns), &m.hash, &m.data, m.timestamp_ms)
                .map_err(MessengerError::db(what))?;
        }
    }
    if !state.current_hashes().is_empty() {
        let keep = config_hashes(state.current_hashes());
        db::prune_group_data(conn, id, i32::from(ns), &keep).map_err(MessengerError::db(what))?;
    }
    Ok(report)
}
