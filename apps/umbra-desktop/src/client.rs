//! The one place that names the client crates' paths, so that moving a type between them
//! changes this file only.

pub(crate) use umbra_messenger::{
    AttachmentInfo, AttachmentState, ChatPriority, Contact, Conversation, Disappearing, Event,
    FileServer, FileServerAddress, GroupChatMessage, GroupMemberView, GroupStatus, GroupView,
    KdfParams, MAX_GROUP_MEMBERS, Message, MessageId, MessageStatus, Messenger, MessengerError,
    NodeId, OnionFileServer, OnionSwarm, OutboxEntry, Profile, Progress, ProgressFn, RetrievedPage,
    Settings, StoreAck, SwarmApi, SwarmError, TransferPhase, human_size, is_group_id,
};
pub(crate) use umbra_net::{
    BoxFuture, Clock, NetworkConfig, OnionTransport, SystemClock, TransportConfig,
};
