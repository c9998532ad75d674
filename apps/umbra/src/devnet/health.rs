//! Readiness by the standard gRPC health check (`grpc.health.v1/Check`, service `""`): a node
//! answers it on its peer port over TLS, and the devnet accepts the answer only from the holder
//! of the node's Ed25519 key (`umbra-peer-tls`); the registry answers it on its plain gRPC port.
//! A node says SERVING once it knows its swarm by a verified node list, the registry while it
//! serves. Every probe has its own deadline ([`PROBE_TIMEOUT`]), so a silent daemon costs a
//! probe, never the whole wait.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use umbra_crypto::Ed25519PublicKey;

/// Longest time one health probe may take, connection and TLS handshake included.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a daemon's health check said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub(crate) enum Health {
    /// SERVING.
    Serving,
    /// It answered, with another status (NOT_SERVING, UNKNOWN, …): up, not ready.
    NotServing(String),
    /// No answer: not listening, the TLS handshake failed (another key?), or too slow.
    Unreachable(String),
}

impl Health {
    /// Whether it said SERVING.
    pub(crate) fn is_serving(&self) -> bool {
        matches!(self, Health::Serving)
    }

    /// Whether it answered at all (the process is up and, for a node, holds its key).
    pub(crate) fn answered(&self) -> bool {
        !matches!(self, Health::Unreachable(_))
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Serving => f.write_str("SERVING"),
            Health::NotServing(s) => write!(f, "its health check says {s}"),
            Health::Unreachable(why) => write!(f, "its health check does not answer ({why})"),
        }
    }
}

/// The health of the node holding `key` whose peer port (the one it binds) is `peer_port` on
/// 127.0.0.1: over TLS, no client certificate (the node serves health without one).
pub(crate) async fn node(key: Ed25519PublicKey, peer_port: u16) -> Health {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, peer_port));
    match umbra_peer_tls::channel(None, key, addr, configure) {
        Ok(channel) => check(channel).await,
        Err(e) => Health::Unreachable(e.to_string()),
    }
}

/// The health of the registry whose gRPC port on 127.0.0.1 is `grpc_port` (plain HTTP/2, as
/// the nodes reach it on a devnet).
pub(crate) async fn registry(grpc_port: u16) -> Health {
    match tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}")) {
        Ok(e) => check(configure(e).connect_lazy()).await,
        Err(e) => Health::Unreachable(e.to_string()),
    }
}

fn configure(e: tonic::transport::Endpoint) -> tonic::transport::Endpoint {
    e.connect_timeout(PROBE_TIMEOUT).timeout(PROBE_TIMEOUT)
}

/// One `Check` of the whole server (service `""`) within [`PROBE_TIMEOUT`].
async fn check(channel: tonic::transport::Channel) -> Health {
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(PROBE_TIMEOUT, call).await {
        Err(_) => Health::Unreachable(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(status)) => Health::Unreachable(unreachable_reason(&status)),
        Ok(Ok(reply)) => from_status(reply.into_inner().status),
    }
}

/// A health status number as the devnet reports it.
fn from_status(status: i32) -> Health {
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Serving) => Health::Serving,
        Ok(other) => Health::NotServing(other.as_str_name().to_owned()),
        Err(_) => Health::NotServing(format!("status {status}")),
    }
}

/// A failed call in a few words: the transport error's innermost cause says the most
/// ("Connection refused", "invalid peer certificate").
fn unreachable_reason(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = status.source();
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    last.unwrap_or_else(|| status.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_the_devnet_reports_them() {
        assert_eq!(from_status(1), Health::Serving);
        assert!(from_status(1).is_serving());
        let not = from_status(2);
        assert_eq!(not, Health::NotServing("NOT_SERVING".into()));
        assert!(not.answered() && !not.is_serving());
        assert_eq!(not.to_string(), "its health check says NOT_SERVING");
        assert_eq!(from_status(99), Health::NotServing("status 99".into()));
        let silent = Health::Unreachable("Connection refused".into());
        assert!(!silent.answered());
        assert_eq!(
            silent.to_string(),
            "its health check does not answer (Connection refused)"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_within_the_probe_deadline() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let key = umbra_crypto::Identity::from_seed(&[5; 32]).ed25519_public();
        assert!(matches!(node(key, port).await, Health::Unreachable(_)));
        assert!(matches!(registry(port).await, Health::Unreachable(_)));
    }
}
