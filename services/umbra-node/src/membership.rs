//! Following the registry and replicating with the swarm: the wiring of `umbra-replica` into
//! the node (its crate docs, "Wiring it into a node").
//!
//! When the configuration names a registry (`registry_grpc_url` and `registry_pubkey`):
//!
//! - a [`RegistryClient`] speaks the registry's gRPC node API, verifies each signed node list
//!   against the pinned key and publishes it to a [`ViewHandle`]; the membership task
//!   ([`run_membership`]) registers the node (IP, HTTPS port, peer port, version), heartbeats
//!   at the interval the registry asks for, follows the `WatchNodeList` stream (each list
//!   arrives the moment the registry signs it; the stream is reopened with backoff while the
//!   registry is down, and the node keeps serving with the list it holds meanwhile), and
//!   leaves the registry at shutdown. The channel is plain HTTP/2 on purpose: the pinned key's
//!   signature, not the connection, is what makes a list trusted (why, in
//!   [`umbra_replica::registry_client`]);
//! - the view follower hands every accepted list's [`SwarmView`] (its swarm, its members,
//!   every swarm — what `get_swarm` and 421 replies show) to the node's request handlers,
//!   records the list's epoch (not the `ifelse` height, `storage-rpc-addendum.md` A4), and
//!   persists the signed list ([`LIST_FILE`]) and its epoch ([`EPOCH_FILE`]) in the data
//!   directory: after a restart no older list is accepted, and a node restarted while the
//!   registry is down serves with its saved list (verified again against the pinned key)
//!   instead of nothing;
//! - a [`Replica`] fans recursive writes out to the other members ([`ReplicaReplicator`]),
//!   serves the gRPC peer API (on the peer listener, [`crate::peer`]), and runs anti-entropy and
//!   handover rounds ([`Replica::run`]) until the node stops.
//!
//! Peers are reached over gRPC at their announced `storage_lmq_port`, which is this node's
//! `peer_listen` port.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;
use umbra_crypto::Ed25519PublicKey;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use umbra_clock::Clock;
use umbra_crypto::Identity;
use umbra_nodelist::SwarmView;
use umbra_nodelist::api::Announcement;
use umbra_nodelist::list::{SignedNodeList, TrustPolicy};
use umbra_nodelist::proto::MAX_LIST_MESSAGE_BYTES;
use umbra_proto::umbra::registry::v1 as pb;
use umbra_replica::registry_client::{MembershipConfig, RegistryClient, run_membership};
use umbra_replica::{
    ForwardFuture, ForwardHandler, ForwardReply, Replica, ReplicaConfig, ViewHandle,
    member_results_json,
};
use umbra_report::ErrorExt as _;
use umbra_store::Store;

use crate::config::Config;
use crate::node::NodeState;
use crate::replicate::{MemberResults, RecursiveRequest, ReplicateFuture, Replicator};
use crate::rpc::RpcBody;
use crate::{NodeError, STORAGE_SERVER_VERSION};

/// File in the data directory holding the newest registry list epoch this node accepted, as
/// `<registry ed25519 hex> <epoch>`.
pub const EPOCH_FILE: &str = "registry_epoch";

/// File in the data directory holding the newest signed registry list this node accepted, as
/// the protobuf `umbra.registry.v1.SignedNodeList` it arrived as (at most
/// [`MAX_LIST_MESSAGE_BYTES`] bytes read back).
pub const LIST_FILE: &str = "registry_list.pb";

/// The [`Replicator`] of a node in a registry-formed swarm: forwards recursive writes with
/// [`Replica::replicate`] and reports the replica's metrics.
#[derive(Debug, Clone)]
pub struct ReplicaReplicator {
    replica: Replica,
}

impl ReplicaReplicator {
    /// Wraps a replica.
    pub fn new(replica: Replica) -> ReplicaReplicator {
        ReplicaReplicator { replica }
    }
}

impl Replicator for ReplicaReplicator {
    fn replicate(&self, req: RecursiveRequest) -> ReplicateFuture<'_> {
        Box::pin(async move {
            let results = self.replica.replicate(req.method, &req.params).await;
            let merged: MemberResults = member_results_json(&results);
            merged
        })
    }

    fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let view = self.replica.view().get();
        let members = view.our_swarm().map_or(0, |s| view.members(s).len());
        let _ = writeln!(
            out,
            "# HELP umbra_node_registry_epoch Epoch of the newest registry node list accepted.\n\
             # TYPE umbra_node_registry_epoch gauge\numbra_node_registry_epoch {}",
            view.epoch()
        );
        let _ = writeln!(
            out,
            "# HELP umbra_node_swarm_members Active members of this node's swarm (0: in none).\n\
             # TYPE umbra_node_swarm_members gauge\numbra_node_swarm_members {members}"
        );
        self.replica.render_metrics(out);
    }
}

/// Applies forwarded writes through the node's RPC layer (`handle_forwarded`). Holds the node
/// state weakly: the state owns the replica that owns this handler.
struct Forwarder(Weak<NodeState>);

impl ForwardHandler for Forwarder {
    fn handle_forwarded(&self, method: String, params: Value, now_ms: i64) -> ForwardFuture<'_> {
        Box::pin(async move {
            let Some(state) = self.0.upgrade() else {
                return ForwardReply {
                    status: 503,
                    body: Value::String("node stopping".into()),
                };
            };
            let r = crate::handle_forwarded(&state, now_ms, &method, &params).await;
            ForwardReply {
                status: r.status,
                body: match r.body {
                    RpcBody::Json(v) => v,
                    RpcBody::Text(s) => Value::String(s),
                },
            }
        })
    }
}

/// The registry-following and replication part of a node, between start and stop.
pub struct Replication {
    client: Arc<RegistryClient>,
    replica: Replica,
    identity: Arc<Identity>,
    announcement: Announcement,
    registry_key: Ed25519PublicKey,
    membership: MembershipConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("replica", &self.replica)
            .field("announcement", &self.announcement)
            .finish_non_exhaustive()
    }
}

/// The ports a node announces to the registry: its client HTTPS port (`storage_port`) and the
/// port its peers reach it on (`storage_lmq_port`).
#[derive(Debug, Clone, Copy)]
pub struct AnnouncedPorts {
    /// The client HTTPS port.
    pub https: u16,
    /// The peer port.
    pub peer: u16,
}

impl Replication {
    /// Prepares the client of the registry's gRPC API at `url` (key `registry_key`) and the replica of
    /// `identity` over `store`, announcing `ports`; `clock` times heartbeats, rounds and
    /// request deadlines.
    pub fn new(
        cfg: &Config,
        (url, registry_key): (&str, Ed25519PublicKey),
        identity: &Identity,
        store: Store,
        ports: AnnouncedPorts,
        clock: Arc<dyn Clock>,
    ) -> Result<Replication, NodeError> {
        let identity = Arc::new(Identity::from_seed(identity.seed()));
        let our_key = identity.ed25519_public();
        let view = ViewHandle::new(SwarmView::empty(our_key));
        let r = &cfg.replication;
        let client = RegistryClient::new(
            url,
            TrustPolicy::single(registry_key),
            registry_key,
            our_key,
            view.clone(),
            Duration::from_secs(r.registry_timeout_secs),
        )
        .map_err(|e| NodeError::HttpClient(e.to_string()))?;
        let client = match read_epoch(&cfg.data_dir, &registry_key) {
            Some(epoch) => client.with_seen_epoch(epoch),
            None => client,
        };
        match read_list(&cfg.data_dir.join(LIST_FILE)) {
            Ok(None) => {}
            Ok(Some(saved)) => match client.accept(saved) {
                Ok(_) => tracing::info!(
                    epoch = client.seen_epoch().unwrap_or(0),
                    "serving with the saved registry node list until the registry sends one"
                ),
                Err(e) => tracing::warn!("the saved registry node list: {}", e.report()),
            },
            Err(e) => tracing::warn!("reading the saved registry node list: {e}"),
        }
        let replica = Replica::new(
            ReplicaConfig {
                forward_timeout: Duration::from_millis(r.forward_timeout_ms),
                request_timeout: Duration::from_secs(r.request_timeout_secs),
                round_interval: Duration::from_secs(r.round_interval_secs),
                max_inflight: r.max_peer_inflight,
                ..ReplicaConfig::default()
            },
            identity.clone(),
            store,
            view,
            clock.clone(),
        );
        Ok(Replication {
            client: Arc::new(client),
            replica,
            identity,
            announcement: Announcement {
                public_ip: cfg.public_ip,
                storage_port: ports.https,
                storage_lmq_port: ports.peer,
                version: STORAGE_SERVER_VERSION,
            },
            registry_key,
            membership: MembershipConfig {
                resubscribe_after: Duration::from_secs(r.registry_refresh_secs),
                ..MembershipConfig::default()
            },
            clock,
        })
    }

    /// The replica (peer API, metrics, rounds).
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The replicator to give the node state.
    pub fn replicator(&self) -> Arc<dyn Replicator> {
        Arc::new(ReplicaReplicator::new(self.replica.clone()))
    }

    /// Connects the replica to the started node state and spawns the membership task, the
    /// view follower and the anti-entropy/handover rounds; all of them end when `stop` turns
    /// `true` (the membership task after leaving the registry).
    pub fn start(
        self,
        state: &Arc<NodeState>,
        data_dir: &Path,
        stop: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        self.replica
            .set_forward_handler(Arc::new(Forwarder(Arc::downgrade(state))));
        vec![
            tokio::spawn(follow_view(
                state.clone(),
                self.client.clone(),
                data_dir.to_path_buf(),
                self.registry_key,
                stop.clone(),
            )),
            tokio::spawn(run_membership(
                self.client,
                self.identity,
                self.announcement,
                self.clock,
                self.membership,
                stop.clone(),
            )),
            tokio::spawn(self.replica.run(stop.clone())),
        ]
    }
}

/// Feeds every accepted list to the node's swarm view and list epoch, and persists the list
/// and its epoch; marks the view stale as soon as the registry announces a newer list.
async fn follow_view(
    state: Arc<NodeState>,
    client: Arc<RegistryClient>,
    data_dir: PathBuf,
    registry_key: Ed25519PublicKey,
    mut stop: watch::Receiver<bool>,
) {
    let mut heard = client.heard_epochs();
    let mut changes = client.view().subscribe();
    let mut persisted = 0u64;
    loop {
        let current = changes.borrow_and_update().clone();
        if current.epoch() > 0 {
            state.swarm.set(SwarmView::clone(&current));
            state.set_list_epoch(current.epoch());
            if current.epoch() > persisted {
                // The list first: a list newer than the saved epoch is still accepted after a
                // crash between the two writes, an older one would not be.
                if let Some(list) = client.current_list()
                    && let Err(e) = write_list(&data_dir.join(LIST_FILE), &list).await
                {
                    tracing::warn!("saving the registry node list: {e}");
                }
                match write_epoch(&data_dir.join(EPOCH_FILE), &registry_key, current.epoch()).await
                {
                    Ok(()) => persisted = current.epoch(),
                    Err(e) => tracing::warn!("persisting the registry list epoch: {e}"),
                }
            }
            tracing::debug!(
                epoch = current.epoch(),
                in_swarm = current.our_swarm().is_some(),
                swarms = current.swarms().len(),
                "swarm view updated"
            );
        }
        let announced = *heard.borrow_and_update();
        if state.swarm.note_epoch(announced) {
            tracing::debug!(
                serving = state.swarm.get().epoch(),
                announced,
                "a newer node list was announced: not responsible for any account until it \
                 arrives"
            );
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { break },
            r = heard.changed() => if r.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}

/// The epoch persisted for this registry key, if any.
fn read_epoch(data_dir: &Path, registry_key: &Ed25519PublicKey) -> Option<u64> {
    let text = std::fs::read_to_string(data_dir.join(EPOCH_FILE)).ok()?;
    let mut parts = text.split_whitespace();
    let key = parts.next()?;
    let epoch = parts.next()?.parse().ok()?;
    (key == hex::encode(registry_key)).then_some(epoch)
}

/// The saved list, if there is one: read within [`MAX_LIST_MESSAGE_BYTES`], decoded and
/// converted (verified by the caller, like every list).
fn read_list(path: &Path) -> Result<Option<SignedNodeList>, String> {
    use prost::Message as _;
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_LIST_MESSAGE_BYTES).unwrap_or(u64::MAX);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() > MAX_LIST_MESSAGE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_LIST_MESSAGE_BYTES} bytes",
            path.display()
        ));
    }
    let message = pb::SignedNodeList::decode(bytes.as_slice())
        .map_err(|e| format!("{} is not a saved node list: {e}", path.display()))?;
    SignedNodeList::try_from(&message)
        .map(Some)
        .map_err(|e| format!("{} is not a saved node list: {e}", path.display()))
}

/// Writes the list file atomically (temporary file, then rename).
async fn write_list(path: &Path, list: &SignedNodeList) -> std::io::Result<()> {
    use prost::Message as _;
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, pb::SignedNodeList::from(list).encode_to_vec()).await?;
    tokio::fs::rename(&tmp, path).await
}

/// Writes the epoch file atomically (temporary file, then rename).
async fn write_epoch(
    path: &Path,
    registry_key: &Ed25519PublicKey,
    epoch: u64,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, format!("{} {epoch}\n", hex::encode(registry_key))).await?;
    tokio::fs::rename(&tmp, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn epoch_file_round_trip_and_key_check() {
        let dir = tempfile::tempdir().unwrap();
        let key = Ed25519PublicKey::from_bytes([7u8; 32]);
        assert_eq!(read_epoch(dir.path(), &key), None);
        write_epoch(&dir.path().join(EPOCH_FILE), &key, 42)
            .await
            .unwrap();
        assert_eq!(read_epoch(dir.path(), &key), Some(42));
        assert_eq!(
            read_epoch(dir.path(), &Ed25519PublicKey::from_bytes([8u8; 32])),
            None,
            "other registry"
        );
        std::fs::write(dir.path().join(EPOCH_FILE), "garbage").unwrap();
        assert_eq!(read_epoch(dir.path(), &key), None);
    }

    #[tokio::test]
    async fn list_file_round_trip_and_bounds() {
        use umbra_nodelist::list::NodeList;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LIST_FILE);
        assert_eq!(read_list(&path), Ok(None));
        let list = SignedNodeList::sign(
            NodeList::new(9, 1, Vec::new()),
            &Identity::from_seed(&[3; 32]),
        );
        write_list(&path, &list).await.unwrap();
        assert_eq!(read_list(&path), Ok(Some(list)));
        std::fs::write(&path, b"\xff\xff garbage").unwrap();
        assert!(
            read_list(&path)
                .unwrap_err()
                .contains("not a saved node list")
        );
        std::fs::write(&path, vec![0u8; MAX_LIST_MESSAGE_BYTES + 1]).unwrap();
        assert!(read_list(&path).unwrap_err().contains("larger than"));
    }
}
