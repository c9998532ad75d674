//! The client commands of `umbra`: identity, messages, contacts, settings, an interactive chat
//! and a demo on a devnet.
//!
//! A front end only: every protocol decision (encryption, outbox, receipts, requests, timers)
//! is umbra-messenger's [`Messenger`](umbra_messenger::Messenger); this module parses the
//! command line, opens the profile, connects to the network named by `--network`, calls the
//! messenger and prints what it returns — for people, or as JSON with `--json`.
//!
//! ```text
//!  mod.rs       the clap definitions and the dispatcher
//!  context.rs   profile directory, passphrase, network file → an offline or online Messenger
//!  crash.rs     UMBRA_TEST_CRASH: a test hook of debug builds that aborts at a given store
//!  render.rs    message / contact / conversation objects (JSON) and their one-line forms
//!  commands.rs  one function per command
//!  files.rs     `send --file`, `attachments`, `download`
//!  groups.rs    `group …`, and group ids (03…) in `send`, `history`, `chat`, `accept`,
//!               `decline`
//!  progress.rs  transfer progress: a bar on a terminal, JSON lines with --json
//!  chat.rs      `umbra chat`: a line-based interactive conversation
//!  demo.rs      `umbra demo`: a devnet, two identities, messages through onion paths
//!  sync.rs      `umbra profile`, `umbra devices`: the profile and config sync state
//! ```
//!
//! Never: print or log a recovery phrase except as the answer to `umbra id new`; log a
//! Session ID at info level; change anything when the input is refused (checks come first).

mod chat;
mod commands;
mod context;
#[cfg(debug_assertions)]
mod crash;
mod demo;
mod editor;
mod files;
mod groups;
mod progress;
mod render;
mod sync;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use umbra_messenger::MessageId;

/// Options every client command takes, before or after the subcommand (`umbra --json
/// receive` or `umbra receive --json`). Parsed at the top of the command line and copied into
/// the command (see [`ClientCommand::globals_mut`]).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct Globals {
    /// The profile directory (identity and encrypted database) [default: the user's data
    /// directory, …/umbra/default]. A profile with a passphrase is opened with the one in
    /// UMBRA_PASSPHRASE.
    #[arg(long, env = "UMBRA_PROFILE", value_name = "DIR", global = true)]
    pub(crate) profile: Option<PathBuf>,
    /// The network file (`umbra devnet up` writes DIR/network.json).
    #[arg(long, env = "UMBRA_NETWORK", value_name = "PATH", global = true)]
    pub(crate) network: Option<PathBuf>,
    /// The local IP address every connection leaves from, e.g. a VPN interface's [default:
    /// the system's choice].
    #[arg(long, env = "UMBRA_BIND_ADDRESS", value_name = "IP", global = true)]
    pub(crate) bind_address: Option<std::net::IpAddr>,
    /// Print JSON (an object or a list) on standard output; errors as {"error": "..."}.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The client subcommands of `umbra`.
#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Your identity: create one, restore it from its recovery phrase, show it.
    Id(IdArgs),
    /// Send a text message, or a file with --file, to a Session ID, a contact or a group (03…).
    Send(SendArgs),
    /// The files of a conversation or group: message id, name, size and state.
    Attachments(WhoArgs),
    /// Download the file of a message (by the message id `attachments` shows); an interrupted
    /// download resumes when run again.
    Download(DownloadArgs),
    /// Fetch new messages and print them.
    Receive(ReceiveArgs),
    /// Conversations, pinned ones first, then newest first, with unread counts.
    Chats(ChatsArgs),
    /// Pin a conversation above the others (on all your devices).
    Pin(WhoArgs),
    /// Put a pinned or hidden conversation back in its place by its newest message.
    Unpin(WhoArgs),
    /// Hide a conversation from `chats` until a new message arrives in it (its messages stay,
    /// marked read; `chats --all` shows it).
    Hide(WhoArgs),
    /// Message requests: first messages from senders you have not accepted.
    Requests(Plain),
    /// The messages of one conversation (marks them read).
    History(WhoArgs),
    /// Messages and control messages still waiting for a swarm to acknowledge them.
    Outbox(Plain),
    /// Your onion paths: the two entry nodes (guards) that see your IP address, kept across
    /// runs, and the nodes of each current path (connects to build them).
    Paths(Plain),
    /// Accept a message request (the sender is told), or a group invitation (by group id).
    Accept(WhoArgs),
    /// Decline a message request (its messages are deleted), or a group invitation.
    Decline(WhoArgs),
    /// Block an account: its messages are dropped from now on.
    Block(WhoArgs),
    /// Unblock an account.
    Unblock(WhoArgs),
    /// Contacts: add, rename, list.
    Contact(ContactArgs),
    /// Delete one of your messages for everyone, by its hash or timestamp.
    Unsend(UnsendArgs),
    /// Read receipts, typing indicators (yours) and disappearing messages (per conversation).
    Settings(SettingsArgs),
    /// An interactive conversation in the terminal, with a contact or a group (03…).
    Chat(WhoArgs),
    /// Closed groups: create, info, list, add, remove, promote, leave, delete.
    Group(groups::GroupArgs),
    /// Your profile (display name, picture), synced to your other devices.
    Profile(sync::ProfileArgs),
    /// What this device last pushed and pulled of each synced config (seqno per config).
    Devices(Plain),
    /// Start (or reuse) a devnet, create two identities and exchange messages through onion
    /// paths, showing what each side saw and the delivery latency.
    Demo(DemoArgs),
}

/// `umbra chats`.
#[derive(Debug, Args)]
pub(crate) struct ChatsArgs {
    /// Also show hidden conversations.
    #[arg(long)]
    pub(crate) all: bool,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// A command with no argument of its own.
#[derive(Debug, Args)]
pub(crate) struct Plain {
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// `umbra id …`.
#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    #[command(subcommand)]
    pub(crate) cmd: IdCommand,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// The `umbra id` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum IdCommand {
    /// Create a new identity in the profile directory; prints the Session ID and the recovery
    /// phrase. With UMBRA_PASSPHRASE set, the profile is encrypted under that passphrase.
    New {
        /// Your display name (sent with your messages).
        #[arg(long)]
        name: Option<String>,
    },
    /// Restore an identity from its 12-word recovery phrase, read from standard input (a
    /// second device of the same account).
    Restore {
        /// Your display name (sent with your messages).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show the identity of the profile.
    Show,
}

/// `umbra send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// A Session ID (66 hex digits) or a contact's name.
    pub(crate) to: String,
    /// The message.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub(crate) text: Option<String>,
    /// Send this file (up to 1 GiB), encrypted, through the network's attachment server; an
    /// interrupted upload resumes when the same command runs again.
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<PathBuf>,
    /// A caption for the file.
    #[arg(long, value_name = "TEXT", requires = "file")]
    pub(crate) caption: Option<String>,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// `umbra download`.
#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// The message id, as `umbra attachments` shows it (`12`, or `g12` for a group's).
    pub(crate) message_id: MessageId,
    /// Which file of the message, when it has several (the FILE column of `attachments`).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) file: u32,
    /// Where to save the file [default: the profile's attachments/downloads/ directory].
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// `umbra receive`.
#[derive(Debug, Args)]
pub(crate) struct ReceiveArgs {
    /// Wait up to this many seconds for at least one message (a retrieve held open at a node
    /// through the onion path: it returns as soon as something arrives).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) wait: Option<u64>,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// A command about one account.
#[derive(Debug, Args)]
pub(crate) struct WhoArgs {
    /// A Session ID, a contact's name, or a group id (03…) where the command takes one.
    pub(crate) who: String,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// `umbra contact …`.
#[derive(Debug, Args)]
pub(crate) struct ContactArgs {
    #[command(subcommand)]
    pub(crate) cmd: ContactCommand,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// The `umbra contact` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ContactCommand {
    /// Add a contact by Session ID, with an optional local name.
    Add {
        /// The Session ID.
        session_id: String,
        /// Your name for them.
        name: Option<String>,
    },
    /// Give a contact a local name (or remove it with --clear).
    Rename {
        /// A Session ID or the contact's current name.
        who: String,
        /// The new name.
        #[arg(required_unless_present = "clear")]
        name: Option<String>,
        /// Remove the local name.
        #[arg(long, conflicts_with = "name")]
        clear: bool,
    },
    /// List your contacts.
    List,
}

/// `umbra unsend`.
#[derive(Debug, Args)]
pub(crate) struct UnsendArgs {
    /// The message's hash, or its timestamp (ms), as `history` shows them.
    pub(crate) message: String,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl OnOff {
    fn is_on(self) -> bool {
        self == OnOff::On
    }
}

/// `umbra settings`.
#[derive(Debug, Args)]
pub(crate) struct SettingsArgs {
    /// Send read receipts when you read messages.
    #[arg(long, value_name = "on|off")]
    pub(crate) read_receipts: Option<OnOff>,
    /// Send typing indicators.
    #[arg(long, value_name = "on|off")]
    pub(crate) typing: Option<OnOff>,
    /// Disappearing messages of the conversation with CONTACT: off, after-send:DURATION or
    /// after-read:DURATION (DURATION like 30s, 5m, 12h, 1d, 2w; 10 s to 14 days). For a
    /// GROUP (its admins): off or after-send:DURATION, for everyone in it.
    #[arg(long, value_name = "MODE", requires = "contact")]
    pub(crate) disappearing: Option<String>,
    /// The conversation (contact or group) whose settings to show or change.
    pub(crate) contact: Option<String>,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// `umbra demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The devnet directory to use (started with `umbra devnet up --detach` if nothing runs
    /// there).
    #[arg(long, default_value = ".umbra-devnet", env = "UMBRA_DEVNET_DIR")]
    pub(crate) dir: PathBuf,
    /// Messages each side sends.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) messages: u32,
    /// Seconds to wait for each message to arrive.
    #[arg(long, default_value_t = 30)]
    pub(crate) timeout: u64,
    #[arg(skip)]
    pub(crate) g: Globals,
}

impl ClientCommand {
    /// The command's copy of the global options, to be filled from the top level.
    pub(crate) fn globals_mut(&mut self) -> &mut Globals {
        match self {
            ClientCommand::Id(a) => &mut a.g,
            ClientCommand::Send(a) => &mut a.g,
            ClientCommand::Download(a) => &mut a.g,
            ClientCommand::Receive(a) => &mut a.g,
            ClientCommand::Chats(a) => &mut a.g,
            ClientCommand::Requests(a)
            | ClientCommand::Outbox(a)
            | ClientCommand::Paths(a)
            | ClientCommand::Devices(a) => &mut a.g,
            ClientCommand::Profile(a) => &mut a.g,
            ClientCommand::History(a)
            | ClientCommand::Accept(a)
            | ClientCommand::Decline(a)
            | ClientCommand::Block(a)
            | ClientCommand::Unblock(a)
            | ClientCommand::Pin(a)
            | ClientCommand::Unpin(a)
            | ClientCommand::Hide(a)
            | ClientCommand::Attachments(a)
            | ClientCommand::Chat(a) => &mut a.g,
            ClientCommand::Contact(a) => &mut a.g,
            ClientCommand::Unsend(a) => &mut a.g,
            ClientCommand::Settings(a) => &mut a.g,
            ClientCommand::Demo(a) => &mut a.g,
            ClientCommand::Group(a) => &mut a.g,
        }
    }
}

/// Runs one client command to completion.
pub(crate) fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            ClientCommand::Id(a) => commands::id(a.cmd, &a.g),
            ClientCommand::Send(a) if a.file.is_some() => files::send_file(&a).await,
            ClientCommand::Send(a) if groups::is_group(&a.to) => {
                groups::send(&a.g, &a.to, a.text.as_deref().unwrap_or_default()).await
            }
            ClientCommand::Send(a) => commands::send(&a).await,
            ClientCommand::Attachments(a) => files::attachments(&a),
            ClientCommand::Download(a) => files::download(&a).await,
            ClientCommand::Receive(a) => commands::receive(&a).await,
            ClientCommand::Chats(a) => commands::chats(&a),
            ClientCommand::Pin(a) => commands::place(&a, commands::Place::Pin),
            ClientCommand::Unpin(a) => commands::place(&a, commands::Place::Unpin),
            ClientCommand::Hide(a) => commands::place(&a, commands::Place::Hide),
            ClientCommand::Requests(a) => commands::requests(&a.g),
            ClientCommand::History(a) if groups::is_group(&a.who) => groups::history(&a.g, &a.who),
            ClientCommand::History(a) => commands::history(&a).await,
            ClientCommand::Outbox(a) => commands::outbox(&a.g),
            ClientCommand::Paths(a) => commands::paths(&a.g).await,
            ClientCommand::Accept(a) if groups::is_group(&a.who) => {
                groups::accept(&a.g, &a.who).await
            }
            ClientCommand::Accept(a) => commands::accept(&a).await,
            ClientCommand::Decline(a) if groups::is_group(&a.who) => groups::decline(&a.g, &a.who),
            ClientCommand::Decline(a) => commands::decline(&a),
            ClientCommand::Block(a) => commands::block(&a, true),
            ClientCommand::Unblock(a) => commands::block(&a, false),
            ClientCommand::Contact(a) => commands::contact(a.cmd, &a.g),
            ClientCommand::Unsend(a) => commands::unsend(&a).await,
            ClientCommand::Settings(a) => commands::settings(&a).await,
            ClientCommand::Profile(a) => sync::profile(a.cmd, &a.g).await,
            ClientCommand::Devices(a) => sync::devices(&a.g),
            ClientCommand::Chat(a) if groups::is_group(&a.who) => groups::chat(&a.g, &a.who).await,
            ClientCommand::Chat(a) => chat::run(&a).await,
            ClientCommand::Demo(a) => demo::run(&a).await,
            ClientCommand::Group(a) => groups::group(a.cmd, &a.g).await,
        }
    })
}
