//! Receiving: polling our own swarm (failing over between its nodes) and the long-polling
//! wait every front end uses.

use umbra_net::{Clock as _, SystemClock};
use umbra_report::ErrorExt as _;

use super::{
    Event, INGEST_BATCH, LONG_POLL, MAX_PAGES_PER_POLL, Messenger, MessengerError, POLL_EVERY,
    SwarmError, db, lock,
};

impl Messenger {
    /// Polls our own swarm: delivers due outbox entries, retrieves what is new (from one node
    /// of the swarm, from its `last_hash` on), and saves what it brought (up to 256
    /// messages per transaction) before returning the events. A node that fails is replaced by the next one of the swarm
    /// in the same poll (one live member is enough); the poll fails only when all failed.
    pub async fn receive(&self) -> Result<Vec<Event>, MessengerError> {
        self.receive_inner(std::time::Duration::ZERO).await
    }

    /// [`Messenger::receive`] whose first retrieve may wait at the node up to `wait`.
    async fn receive_inner(&self, wait: std::time::Duration) -> Result<Vec<Event>, MessengerError> {
        self.purge_expired()?;
        // Only a database that cannot be written fails here (see send_text).
        self.flush_outbox().await?;
        // Configs first: blocks and accepted requests apply before the messages they concern.
        // A config sync that fails does not stop the messages; it is retried next poll.
        if let Err(e) = self.sync_config().await {
            tracing::debug!(error = %e.report(), "config sync failed; retrying at the next poll");
        }
        let nodes = self
            .swarm
            .nodes(&self.me)
            .await
            .map_err(|source| MessengerError::Swarm {
                what: "finding our swarm",
                source,
            })?;
        if nodes.is_empty() {
            return Err(MessengerError::Swarm {
                what: "finding our swarm",
                source: SwarmError::Unreachable("the swarm has no node".into()),
            });
        }
        // A node that fails is replaced by the next one of the swarm at once, so one live
        // member is enough; the poll fails only when every member failed.
        let first = *lock(&self.poll_node);
        let mut node = nodes[first % nodes.len()].clone();
        let mut failed_nodes = 0;
        let mut events = Vec::new();
        let mut wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let mut pages = 0;
        while pages < MAX_PAGES_PER_POLL {
            let last = db::cursor(&self.db(), &node)
                .map_err(MessengerError::db("reading the retrieve position"))?;
            let page = match self
                .swarm
                .retrieve_wait(&self.identity, 0, &node, last.as_ref(), wait_ms)
                .await
            {
                Ok(p) => p,
                Err(source) => {
                    let idx = {
                        let mut i = lock(&self.poll_node);
                        *i += 1;
                        *i
                    };
                    failed_nodes += 1;
                    if pages > 0 || failed_nodes >= nodes.len() {
                        if pages > 0 {
                            // What the earlier pages brought is saved: show it.
                            break;
                        }
                        return Err(MessengerError::Swarm {
                            what: "retrieving new messages",
                            source,
                        });
                    }
                    tracing::debug!(error = %source.report(), "a swarm member failed; polling the next");
                    node = nodes[idx % nodes.len()].clone();
                    continue;
                }
            };
            pages += 1;
            wait_ms = 0;
            for chunk in page.messages.chunks(INGEST_BATCH) {
                events.extend(self.ingest(&node, chunk)?);
            }
            if !page.more || page.messages.is_empty() {
                break;
            }
        }
        // The group swarms (closed groups v2); a failing group is retried at the next poll.
        events.extend(self.poll_groups().await?);
        // What another device read is read here too, also among the messages just retrieved.
        self.apply_read_state(&self.db())?;
        self.purge_expired()?;
        Ok(events)
    }

    /// Receives until something happens or `max_wait` has passed, and returns the events (an
    /// empty list at the deadline). At least one retrieve is made.
    ///
    /// Each retrieve long-polls: it asks the node to hold the answer until something new
    /// arrives (up to [`LONG_POLL`]), so a message is shown one onion round trip after it
    /// reaches the swarm instead of at the next poll. A node that answers at once with nothing
    /// (a Session node, which ignores the request to wait) is polled every [`POLL_EVERY`]
    /// instead. The outbox is delivered before each retrieve. This is the one waiting loop
    /// every front end uses.
    pub async fn receive_wait(
        &self,
        max_wait: std::time::Duration,
    ) -> Result<Vec<Event>, MessengerError> {
        // Real time, not `self.clock`: the wait below is a real long-poll and tokio sleep, and a
        // hand-moved test clock would never reach the deadline.
        let real_now = || tokio::time::Instant::from_std(SystemClock.instant());
        let deadline = real_now() + max_wait;
        loop {
            let started = real_now();
            let wait = deadline.saturating_duration_since(started).min(LONG_POLL);
            let events = self.receive_inner(wait).await?;
            let now = real_now();
            if !events.is_empty() || now >= deadline {
                return Ok(events);
            }
            if now - started < wait / 2 {
                // Answered early with nothing for us: do not spin.
                tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
            }
        }
    }
}
