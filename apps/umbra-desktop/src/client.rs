//! The one place that names the client crates' paths, so that moving a type between them
//! changes this file only.

pub(crate) use umbra_messenger::{
    Contact, Conversation, Disappearing, Event, KdfParams, Message, MessageStatus, Messenger,
    MessengerError, NodeId, OnionSwarm, OutboxEntry, Profile, RetrievedPage, Settings, StoreAck,
    SwarmApi, SwarmError,
};
pub(crate) use umbra_net::{
    BoxFuture, Clock, NetworkConfig, OnionTransport, SystemClock, TransportConfig,
};
