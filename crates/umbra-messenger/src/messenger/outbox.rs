//! The outbox: what it holds, and delivering it (each entry acknowledged, retried with
//! backoff, or dropped for good).

use std::collections::HashMap;

use futures_util::{StreamExt as _, stream};
use umbra_report::ErrorExt as _;

use super::db::{self, OP_DELETE, OP_STORE, Pending};
use super::{
    FLUSH_BATCH, FlushReport, MessageStatus, Messenger, MessengerError, OutboxEntry, SwarmError,
    backoff_ms,
};

/// Swarms one flush delivers to at the same time.
const FLUSH_PARALLEL: usize = 8;

impl Messenger {
    /// The outbox: what is still to be acknowledged by a swarm.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, MessengerError> {
        db::outbox_entries(&self.db(), &self.me).map_err(MessengerError::db("reading the outbox"))
    }

    /// Tries every due outbox entry once: acknowledged entries leave the outbox, transient
    /// failures wait for their next attempt (exponential backoff from [`BACKOFF_MIN_MS`] to
    /// [`BACKOFF_MAX_MS`]), permanent refusals are dropped (the message shows as failed).
    ///
    /// [`BACKOFF_MIN_MS`]: super::BACKOFF_MIN_MS
    /// [`BACKOFF_MAX_MS`]: super::BACKOFF_MAX_MS
    pub async fn flush_outbox(&self) -> Result<FlushReport, MessengerError> {
        let now = self.now();
        let due = db::due_entries(&self.db(), now, FLUSH_BATCH)
            .map_err(MessengerError::db("reading the outbox"))?;
        // One queue per swarm, in outbox order: a swarm's entries go one after another (a
        // conversation's messages keep their order), different swarms' at the same time (a
        // group's invitations are one message to each member's own swarm).
        let mut queues: Vec<Vec<Pending>> = Vec::new();
        let mut of_owner: HashMap<String, usize> = HashMap::new();
        for p in due {
            let i = *of_owner.entry(p.owner.clone()).or_insert_with(|| {
                queues.push(Vec::new());
                queues.len() - 1
            });
            queues[i].push(p);
        }
        let reports: Vec<Result<FlushReport, MessengerError>> = stream::iter(queues)
            .map(|queue| async move {
                let mut report = FlushReport::default();
                for p in queue {
                    let result = self.deliver(&p, now).await;
                    self.settle(&p, result, &mut report)?;
                }
                Ok(report)
            })
            .buffer_unordered(FLUSH_PARALLEL)
            .collect()
            .await;
        let mut report = FlushReport::default();
        for r in reports {
            let r = r?;
            report.done += r.done;
            report.retrying += r.retrying;
            report.failed += r.failed;
        }
        report.pending = {
            let n =
                db::outbox_len(&self.db()).map_err(MessengerError::db("counting the outbox"))?;
            usize::try_from(n).unwrap_or(usize::MAX)
        };
        Ok(report)
    }

    /// One delivery attempt of outbox entry `p` at `now`.
    async fn deliver(&self, p: &Pending, now: u64) -> Result<(), SwarmError> {
        match p.op {
            OP_STORE if p.kind == "group" => {
                if p.timestamp_ms.saturating_add(p.ttl_ms) <= now {
                    Err(SwarmError::Status {
                        status: 410,
                        body: "expired before it could be delivered".into(),
                    })
                } else {
                    self.deliver_group_store(p).await
                }
            }
            OP_STORE => {
                if p.timestamp_ms.saturating_add(p.ttl_ms) <= now {
                    // It would already have expired in the swarm: give up on it.
                    Err(SwarmError::Status {
                        status: 410,
                        body: "expired before it could be delivered".into(),
                    })
                } else {
                    match db::sid(&p.owner) {
                        Ok(owner) => self
                            .swarm
                            .store(&owner, p.namespace, &p.data, p.timestamp_ms, p.ttl_ms)
                            .await
                            .map(|ack| {
                                if p.hashes.first().is_some_and(|h| *h != ack.hash) {
                                    tracing::warn!(
                                        "the swarm stored a message under an unexpected hash"
                                    );
                                }
                            }),
                        Err(_) => Err(SwarmError::Status {
                            status: 400,
                            body: "malformed recipient in the outbox".into(),
                        }),
                    }
                }
            }
            OP_DELETE => self.swarm.delete(&self.identity, &p.hashes).await.map(drop),
            _ => {
                if p.ttl_ms <= now {
                    Ok(())
                } else {
                    self.swarm
                        .expire(&self.identity, &p.hashes, p.ttl_ms, true)
                        .await
                }
            }
        }
    }

    /// Records the outcome of one delivery attempt.
    fn settle(
        &self,
        p: &Pending,
        result: Result<(), SwarmError>,
        report: &mut FlushReport,
    ) -> Result<(), MessengerError> {
        let what = "updating the outbox";
        let now = self.now();
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        match result {
            Ok(()) => {
                db::delete_outbox_entry(&tx, p.id).map_err(MessengerError::db(what))?;
                if p.is_primary
                    && let Some(mid) = p.message_id
                {
                    if p.kind == "group" {
                        db::set_group_message_status(&tx, mid, MessageStatus::Sent)
                    } else {
                        db::mark_message_sent(&tx, mid)
                    }
                    .map_err(MessengerError::db(what))?;
                }
                report.done += 1;
            }
            Err(e) if e.is_transient() => {
                let attempts = p.attempts.saturating_add(1);
                db::retry_outbox_entry(
                    &tx,
                    p.id,
                    attempts,
                    now + backoff_ms(attempts),
                    &e.report().to_string(),
                )
                .map_err(MessengerError::db(what))?;
                tracing::debug!(error = %e.report(), attempts, "outbox entry will be retried");
                report.retrying += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e.report(), "the swarm refused an outbox entry for good");
                db::delete_outbox_entry(&tx, p.id).map_err(MessengerError::db(what))?;
                if p.is_primary
                    && let Some(mid) = p.message_id
                {
                    if p.kind == "group" {
                        db::set_group_message_status(&tx, mid, MessageStatus::Failed)
                    } else {
                        db::mark_message_failed(&tx, mid)
                    }
                    .map_err(MessengerError::db(what))?;
                }
                report.failed += 1;
            }
        }
        tx.commit().map_err(MessengerError::db(what))
    }
}
