#![doc = include_str!("../README.md")]

pub mod client;
mod engine;
mod error;
mod metrics;
pub mod registry_client;
pub mod server;
pub mod tls;
pub mod view;
pub mod wire;

pub use engine::{
    FailureKind, ForwardFuture, ForwardHandler, ForwardReply, HandoverReport, MemberOutcome,
    MemberResult, RECURSIVE_METHODS, Replica, ReplicaConfig, RoundReport, member_results_json,
};
pub use error::ReplicaError;
pub use metrics::{MetricsSnapshot, ReplicaMetrics};
pub use view::ViewHandle;
