//! Config sync with the account's own swarm (`identity-and-crypto.md` §7,
//! `groups-config-attachments.md` §2.7, §2.10): each poll retrieves what is new in the four
//! user config namespaces, merges it, applies the result to the local tables, pushes what
//! changed (deleting the messages it supersedes in the same request) and extends the TTL of
//! the current config messages so they never lapse while a device is online.
//!
//! A message that does not decrypt or parse is skipped and logged (never applied, never
//! deleted: a newer client's format must survive); one larger than a stored message can be is
//! refused unread.

use umbra_config::SwarmHash;
use umbra_crypto::MessageHash;
use umbra_report::ErrorExt as _;

use super::config_legacy::unwrap_config;
use super::config_state::{self, ConfigKind};
use super::{MAX_PAGES_PER_POLL, Messenger, MessengerError, SwarmError, db, lock};

/// Storage TTL of config messages: 30 days (§7.4).
pub const CONFIG_TTL_MS: u64 = 30 * 24 * 3_600_000;
/// The largest stored config message read; larger ones are refused unread (§7.2).
pub const MAX_CONFIG_MESSAGE: usize = umbra_config::crypt::MAX_MESSAGE;
/// How often the TTL of the current config messages is extended at most. Every poll would
/// do (Session's clients do), but one request a minute keeps a 30-day TTL just as safe.
const EXTEND_EVERY_MS: u64 = 60_000;

/// What one [`Messenger::sync_config`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSyncReport {
    /// Config messages retrieved (all namespaces).
    pub retrieved: usize,
    /// Messages skipped: they did not decrypt or parse, or were too large.
    pub skipped: usize,
    /// Configs whose data changed by the merge (and were applied locally).
    pub changed: Vec<ConfigKind>,
    /// Configs pushed.
    pub pushed: Vec<ConfigKind>,
    /// Pushes that failed (retried at the next sync).
    pub push_failures: usize,
}

impl Messenger {
    /// Syncs the user configs with our swarm: retrieve and merge, apply, push, extend.
    /// Fails when the swarm cannot be reached; a failed push is retried at the next sync
    /// (its bytes are the same, so a push that was stored but not acknowledged is harmless).
    pub async fn sync_config(&self) -> Result<ConfigSyncReport, MessengerError> {
        let mut report = ConfigSyncReport::default();
        let nodes = self
            .swarm
            .nodes(&self.me)
            .await
            .map_err(|source| MessengerError::Swarm {
                what: "finding our swarm",
                source,
            })?;
        let node = match nodes.len() {
            0 => {
                return Err(MessengerError::Swarm {
                    what: "finding our swarm",
                    source: SwarmError::Unreachable("the swarm has no node".into()),
                });
            }
            n => nodes[*lock(&self.poll_node) % n].clone(),
        };
        for kind in ConfigKind::ALL {
            self.pull_config(kind, &node, &mut report).await?;
        }
        if !report.changed.is_empty() {
            let what = "applying synced state";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            self.apply_configs(&tx)?;
            tx.commit().map_err(MessengerError::db(what))?;
        }
        for kind in ConfigKind::ALL {
            self.push_config(kind, &mut report).await?;
        }
        self.extend_configs().await;
        Ok(report)
    }

    /// Retrieves what is new in `kind`'s namespace from `node` and merges it.
    async fn pull_config(
        &self,
        kind: ConfigKind,
        node: &str,
        report: &mut ConfigSyncReport,
    ) -> Result<(), MessengerError> {
        let ns = kind.namespace();
        for _ in 0..MAX_PAGES_PER_POLL {
            let last = db::cursor_in(&self.db(), node, ns)
                .map_err(MessengerError::db("reading the retrieve position"))?;
            let page = self
                .swarm
                .retrieve(&self.identity, ns, node, last.as_ref())
                .await
                .map_err(|source| MessengerError::Swarm {
                    what: "retrieving synced configs",
                    source,
                })?;
            let Some(last) = page.messages.last() else {
                break;
            };
            report.retrieved += page.messages.len();
            let mut opened: Vec<(SwarmHash, Vec<u8>)> = Vec::new();
            for m in &page.messages {
                if m.data.len() > MAX_CONFIG_MESSAGE {
                    tracing::info!(
                        config = kind.domain(),
                        len = m.data.len(),
                        "refusing a config message larger than a stored message can be"
                    );
                    report.skipped += 1;
                    continue;
                }
                opened.push((
                    SwarmHash(m.hash.to_string()),
                    unwrap_config(&self.identity, &m.data),
                ));
            }
            let what = "merging a synced config";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            let mut state = config_state::load(&tx, self.identity.seed(), kind)?;
            let refs: Vec<(SwarmHash, &[u8])> = opened
                .iter()
                .map(|(h, b)| (h.clone(), b.as_slice()))
                .collect();
            let merged = state.merge(&refs);
            for (_, e) in &merged.skipped {
                // The error names what failed (decrypt, parse, size), never the account.
                tracing::info!(config = kind.domain(), error = %e.report(), "skipping a config message that does not open");
            }
            report.skipped += merged.skipped.len();
            if merged.changed && !report.changed.contains(&kind) {
                report.changed.push(kind);
            }
            config_state::save(&tx, kind, &state)?;
            config_state::mark(&tx, kind, "pulled", state.seqno(), self.now())?;
            db::set_cursor_in(&tx, node, ns, &last.hash).map_err(MessengerError::db(what))?;
            tx.commit().map_err(MessengerError::db(what))?;
            if !page.more {
                break;
            }
        }
        Ok(())
    }

    /// Pushes `kind` if it changed, deleting what the push supersedes; deletes obsolete
    /// messages on their own when there is nothing to push.
    async fn push_config(
        &self,
        kind: ConfigKind,
        report: &mut ConfigSyncReport,
    ) -> Result<(), MessengerError> {
        let what = "pushing a synced config";
        let (push, deletable) = {
            let conn = self.db();
            let mut state = config_state::load(&conn, self.identity.seed(), kind)?;
            let push = state.push().map_err(MessengerError::config(what))?;
            // Saved before the request: a retry after a crash sends the same bytes.
            config_state::save(&conn, kind, &state)?;
            (push, state.deletable_hashes())
        };
        let now = self.now();
        if let Some(push) = push {
            let obsolete = config_hashes(&push.obsolete);
            let mut stored = Vec::with_capacity(push.messages.len());
            let last = push.messages.len().saturating_sub(1);
            for (i, data) in push.messages.iter().enumerate() {
                // The obsolete messages go with the last part, once every part is stored.
                let delete: &[MessageHash] = if i == last { &obsolete } else { &[] };
                match self
                    .swarm
                    .store_own(
                        &self.identity,
                        kind.namespace(),
                        data,
                        now,
                        CONFIG_TTL_MS,
                        delete,
                    )
                    .await
                {
                    Ok(ack) => stored.push(SwarmHash(ack.hash.to_string())),
                    Err(e) => {
                        tracing::debug!(config = kind.domain(), error = %e.report(), "a config push failed; retrying at the next sync");
                        report.push_failures += 1;
                        return Ok(());
                    }
                }
            }
            let conn = self.db();
            let mut state = config_state::load(&conn, self.identity.seed(), kind)?;
            state.confirm_pushed(push.seqno, &stored);
            config_state::save(&conn, kind, &state)?;
            config_state::mark(&conn, kind, "pushed", push.seqno, now)?;
            report.pushed.push(kind);
        } else if !deletable.is_empty() {
            let hashes = config_hashes(&deletable);
            match self.swarm.delete(&self.identity, &hashes).await {
                Ok(_) => {
                    let conn = self.db();
                    let mut state = config_state::load(&conn, self.identity.seed(), kind)?;
                    state.confirm_deleted(&deletable);
                    config_state::save(&conn, kind, &state)?;
                }
                Err(e) => {
                    tracing::debug!(error = %e.report(), "deleting obsolete config messages failed; retrying later");
                }
            }
        }
        Ok(())
    }

    /// Extends the TTL of the current config messages to 30 days from now (at most every
    /// [`EXTEND_EVERY_MS`]); a failure is retried at the next sync.
    async fn extend_configs(&self) {
        let now = self.now();
        let due = {
            let conn = self.db();
            let last = db::meta_get(&conn, "config.extended_ms")
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok());
            if last.is_some_and(|t| now < t.saturating_add(EXTEND_EVERY_MS) && t <= now) {
                return;
            }
            let mut hashes = Vec::new();
            for kind in ConfigKind::ALL {
                match config_state::load(&conn, self.identity.seed(), kind) {
                    Ok(s) => hashes.extend(config_hashes(s.current_hashes())),
                    Err(e) => tracing::debug!(error = %e.report(), "reading a config to extend"),
                }
            }
            hashes
        };
        if due.is_empty() {
            return;
        }
        match self
            .swarm
            .expire(&self.identity, &due, now + CONFIG_TTL_MS, false)
            .await
        {
            Ok(()) => {
                if let Err(e) =
                    db::meta_set(&self.db(), "config.extended_ms", now.to_string().as_bytes())
                {
                    tracing::debug!(error = %e.report(), "noting the config TTL extension");
                }
            }
            Err(e) => tracing::debug!(error = %e.report(), "extending the config TTL failed"),
        }
    }
}

/// Hashes kept as text by the crates below (`umbra-config`'s `SwarmHash`, `umbra-groups`'
/// key ring) as message hashes. They were parsed when they came from the swarm; one that no
/// longer parses (a damaged state) is left out rather than sent to a node that would refuse
/// the whole request.
pub(super) fn message_hashes<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Vec<MessageHash> {
    hashes
        .into_iter()
        .filter_map(|h| match h.parse() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::debug!(error = %e, "skipping a malformed kept message hash");
                None
            }
        })
        .collect()
}

/// [`message_hashes`] of a config state's hashes.
pub(super) fn config_hashes(hashes: &[SwarmHash]) -> Vec<MessageHash> {
    message_hashes(hashes.iter().map(|h| h.0.as_str()))
}
