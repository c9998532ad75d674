//! The back end's tasks. First the profile: opened as it is, unlocked with a passphrase, or
//! created/restored on the first start. Then the messenger and four tasks around it.
//!
//! Every protocol decision is the messenger's; this file only calls it and reports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use umbra_crypto::{OsRandom, SessionId};
use zeroize::Zeroizing;

use super::attachments;
use super::groups::{self, ReadMarks};
use super::offline::Offline;
use super::{
    BackendConfig, Command, HISTORY_PAGE, NetworkSource, NetworkStatus, QUEUE, Snapshot, To,
    Update, Wake,
};
use crate::client::{
    Event, FileServer, KdfParams, Messenger, MessengerError, NetworkConfig, OnionSwarm,
    OnionTransport, Profile, SwarmApi, SystemClock, TransportConfig,
};

/// The longest a receive waits before it starts over (the messenger long-polls inside it).
const RECEIVE_WAIT: Duration = Duration::from_secs(20);
/// Pause after a failed poll; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often the network panel's facts are read.
const NETWORK_EVERY: Duration = Duration::from_secs(2);
/// How often expired disappearing messages are deleted (the shortest timer is 10 s, so a
/// message outlives its timer by a second at most).
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// The update queue and the UI's wake-up.
#[derive(Clone)]
pub(crate) struct Out {
    tx: mpsc::Sender<Update>,
    wake: Wake,
}

impl Out {
    pub(crate) fn new(tx: mpsc::Sender<Update>, wake: Wake) -> Self {
        Self { tx, wake }
    }

    pub(super) async fn send(&self, update: Update) {
        if self.tx.send(update).await.is_ok() {
            (self.wake)();
        }
    }

    /// Sends `update` unless the queue is full (progress, from threads that cannot wait).
    pub(super) fn try_send(&self, update: Update) {
        if self.tx.try_send(update).is_ok() {
            (self.wake)();
        }
    }
}

/// An error and its causes on one line (a `String`, so that it can cross an `.await`).
pub(super) fn report(e: &(dyn std::error::Error + 'static)) -> String {
    umbra_report::Report(e).to_string()
}

/// Runs a blocking profile operation (Argon2id, file system) off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MessengerError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(report(&e)),
        Err(e) => Err(format!("the profile task stopped: {e}")),
    }
}

fn pass(p: Option<&Zeroizing<String>>) -> Option<&str> {
    p.map(|s| s.as_str()).filter(|s| !s.is_empty())
}

/// The profile, opened or made; with the display name chosen on the first start.
async fn open_profile(
    config: &BackendConfig,
    rx: &mut mpsc::Receiver<Command>,
    out: &Out,
) -> Option<(Profile, Option<String>)> {
    let dir = config.profile_dir.clone();
    if Profile::exists(&dir) {
        let d = dir.clone();
        match blocking(move || Profile::needs_passphrase(&d)).await {
            Ok(false) => {
                let d = dir.clone();
                return match blocking(move || Profile::open(&d, None)).await {
                    Ok(p) => Some((p, None)),
                    Err(e) => {
                        out.send(Update::Fatal(e)).await;
                        None
                    }
                };
            }
            Ok(true) => out.send(Update::Locked { error: None }).await,
            Err(e) => {
                out.send(Update::Fatal(e)).await;
                return None;
            }
        }
    } else {
        out.send(Update::NeedsAccount).await;
    }
    let kdf = config.kdf;
    while let Some(command) = rx.recv().await {
        match command {
            Command::Unlock { passphrase } => {
                let d = dir.clone();
                let opened = tokio::task::spawn_blocking(move || {
                    Profile::open(&d, Some(passphrase.as_str()))
                })
                .await;
                let error = match opened {
                    Ok(Ok(p)) => return Some((p, None)),
                    Ok(Err(MessengerError::ProfileLocked(_))) => {
                        "That passphrase does not open this profile.".to_string()
                    }
                    Ok(Err(e)) => report(&e),
                    Err(e) => format!("the profile task stopped: {e}"),
                };
                out.send(Update::Locked { error: Some(error) }).await;
            }
            Command::Create { name, passphrase } => {
                let d = dir.clone();
                let made = blocking(move || {
                    Profile::create(&d, pass(passphrase.as_ref()), kdf, &mut OsRandom)
                })
                .await;
                match made {
                    Ok((p, phrase)) => {
                        out.send(Update::Created { phrase }).await;
                        return Some((p, Some(name)));
                    }
                    Err(e) => out.send(Update::OnboardingError(e)).await,
                }
            }
            Command::Restore {
                phrase,
                name,
                passphrase,
            } => {
                let d = dir.clone();
                let made = blocking(move || {
                    let words = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
                    Profile::restore(&d, &words, pass(passphrase.as_ref()), kdf, &mut OsRandom)
                })
                .await;
                match made {
                    Ok(p) => return Some((p, Some(name))),
                    Err(e) => out.send(Update::OnboardingError(e)).await,
                }
            }
            Command::Close => {
                out.send(Update::Closed).await;
                return None;
            }
            // Nothing else means anything before a profile is open.
            _ => {}
        }
    }
    None
}

/// The swarm access for `network`, its transport when it is an onion network, and the
/// network panel's first state.
fn connect(
    network: &NetworkSource,
    networks: Option<&crate::Networks>,
    profile: &Profile,
) -> (Arc<dyn SwarmApi>, Option<OnionTransport>, NetworkStatus) {
    match network {
        NetworkSource::None => (
            Arc::new(Offline("no network file was given")),
            None,
            NetworkStatus {
                problem: Some(
                    "Offline: no network file (start with --network FILE; `umbra devnet up` writes one)"
                        .into(),
                ),
                ..NetworkStatus::default()
            },
        ),
        NetworkSource::Swarm(swarm) => (
            swarm.clone(),
            None,
            NetworkStatus {
                network: Some("in-process network".into()),
                ..NetworkStatus::default()
            },
        ),
        NetworkSource::File(path) => {
            let mut config = TransportConfig {
                state_dir: Some(profile.network_dir()),
                ..TransportConfig::default()
            };
            // A devnet runs every node on 127.0.0.1: one /24 for all.
            config.paths.subnet_diversity = !crate::config::is_devnet(path);
            let name = Some(path.display().to_string());
            let mut other_network = false;
            let opened = NetworkConfig::load(path)
                .map_err(|e| report(&e))
                .and_then(|n| {
                    // A profile holds one network's data: another network is refused.
                    profile.bind_network(&n.registry_pubkey).map_err(|e| {
                        other_network = matches!(e, MessengerError::OtherNetwork { .. });
                        report(&e)
                    })?;
                    if let Some(networks) = networks
                        && let Err(e) = networks.record(&n.registry_pubkey, profile.dir(), path)
                    {
                        // Only the next start's choice of network is lost.
                        tracing::warn!("recording the network used: {e}");
                    }
                    OnionTransport::new(&n, config).map_err(|e| report(&e))
                });
            match opened {
                Ok(t) => (
                    Arc::new(OnionSwarm::new(t.clone(), Arc::new(SystemClock))),
                    Some(t),
                    NetworkStatus {
                        network: name,
                        progress: Some("Building onion paths…".into()),
                        ..NetworkStatus::default()
                    },
                ),
                Err(e) => (
                    Arc::new(Offline("the network file could not be used")),
                    None,
                    NetworkStatus {
                        network: name,
                        problem: Some(format!("Offline: {e}")),
                        other_network,
                        ..NetworkStatus::default()
                    },
                ),
            }
        }
    }
}

/// What the tasks share.
pub(super) struct Shared {
    pub(super) m: Arc<Messenger>,
    pub(super) out: Out,
    /// The conversation the UI shows.
    current: Mutex<Option<SessionId>>,
    /// How many of its newest messages the UI shows.
    history_limit: AtomicUsize,
    /// The group the UI shows (never at the same time as a conversation).
    current_group: Mutex<Option<String>>,
    /// Up to where each group was read.
    marks: ReadMarks,
    status: Mutex<NetworkStatus>,
    /// Argon2id parameters of a new passphrase.
    kdf: KdfParams,
    /// Where notifications of new messages go.
    notifier: Arc<dyn crate::Notifier>,
    /// The attachment server, when the network has one.
    pub(super) files: Option<FileServer>,
}

impl Shared {
    pub(super) fn current(&self) -> Option<SessionId> {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current_group(&self) -> Option<String> {
        self.current_group
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Shows a conversation or a group (or nothing).
    pub(super) fn set_current(&self, chat: Option<SessionId>, group: Option<String>) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current_group = self
            .current_group
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *current != chat || *current_group != group {
            self.history_limit.store(HISTORY_PAGE, Ordering::Relaxed);
        }
        *current = chat;
        *current_group = group;
    }

    /// Reads everything the UI mirrors and sends it.
    pub(super) async fn refresh(&self) {
        let read = || -> Result<Snapshot, MessengerError> {
            let group = self.current_group();
            let mut history_more = false;
            let (history, attachments) = match (self.current(), &group) {
                (Some(with), _) => {
                    let limit = self.history_limit.load(Ordering::Relaxed);
                    let (page, more) = self.m.recent_history(&with, limit)?;
                    history_more = more;
                    (Some((with, page)), self.m.attachments(&with)?)
                }
                (None, Some(group)) => (None, self.m.group_attachments(group)?),
                (None, None) => (None, Vec::new()),
            };
            let limit = self.history_limit.load(Ordering::Relaxed);
            let g = groups::read(&self.m, &self.marks, group.as_deref(), limit)?;
            Ok(Snapshot {
                chats: self.m.conversations()?,
                requests: self.m.requests()?,
                blocked: self.m.blocked()?,
                history,
                history_more,
                outbox: self.m.outbox()?,
                groups: g.groups,
                group_history: g.history,
                group_history_more: g.history_more,
                names: g.names,
                attachments,
            })
        };
        match read() {
            Ok(s) => self.out.send(Update::Snapshot(Box::new(s))).await,
            Err(e) => self.out.send(Update::Notice(report(&e))).await,
        }
    }

    async fn notice(&self, what: &str, e: &MessengerError) {
        self.out
            .send(Update::Notice(format!("{what}: {}", report(e))))
            .await;
    }

    /// Changes the network status and tells the UI when it changed.
    async fn set_status(&self, f: impl FnOnce(&mut NetworkStatus)) {
        let changed = {
            let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
            let before = s.clone();
            f(&mut s);
            (*s != before).then(|| s.clone())
        };
        if let Some(s) = changed {
            self.out.send(Update::Network(s)).await;
        }
    }
}

/// The whole back end.
pub(crate) async fn run(config: BackendConfig, mut rx: mpsc::Receiver<Command>, out: Out) {
    let Some((profile, name)) = open_profile(&config, &mut rx, &out).await else {
        return;
    };
    let (swarm, transport, status) = connect(&config.network, config.networks.as_ref(), &profile);
    let online = !matches!(config.network, NetworkSource::None) && status.problem.is_none();
    let m = Arc::new(Messenger::new(
        profile,
        swarm,
        Arc::new(SystemClock),
        Box::new(OsRandom),
    ));
    let shared = Arc::new(Shared {
        marks: ReadMarks::load(&m),
        m: m.clone(),
        out: out.clone(),
        current: Mutex::new(None),
        history_limit: AtomicUsize::new(HISTORY_PAGE),
        current_group: Mutex::new(None),
        status: Mutex::new(NetworkStatus::default()),
        kdf: config.kdf,
        notifier: config.notifier.clone(),
        files: config
            .file_server
            .clone()
            .or_else(|| match (&config.network, &transport) {
                (NetworkSource::File(path), Some(t)) => super::pictures::server(path, t),
                _ => None,
            }),
    });
    if let Some(name) = name.as_deref().map(str::trim).filter(|n| !n.is_empty())
        && let Err(e) = m.set_display_name(name)
    {
        shared.notice("saving your display name", &e).await;
    }
    let display_name = m.display_name().ok().flatten();
    let settings = m.settings().unwrap_or_default();
    let app_values = [
        crate::persist::DRAFTS_KEY,
        crate::persist::THEME_KEY,
        crate::persist::NOTIFY_KEY,
    ]
    .into_iter()
    .filter_map(|k| Some((k, m.app_value(k).ok().flatten()?)))
    .collect();
    let has_passphrase = Profile::needs_passphrase(&config.profile_dir).unwrap_or(false);
    out.send(Update::Ready {
        me: m.session_id(),
        display_name,
        settings,
        app_values,
        has_passphrase,
    })
    .await;
    shared.set_status(|s| *s = status).await;
    shared.refresh().await;

    if online {
        tokio::spawn(receiver(shared.clone(), transport.clone()));
    }
    if let Some(server) = shared.files.clone() {
        tokio::spawn(super::pictures::fetcher(shared.clone(), server));
    }
    if let Some(t) = transport {
        tokio::spawn(network_watch(shared.clone(), t));
    }
    tokio::spawn(purger(shared.clone()));
    let (send_tx, send_rx) = mpsc::channel(QUEUE);
    tokio::spawn(sender(shared.clone(), send_rx));

    while let Some(command) = rx.recv().await {
        match command {
            Command::Send { local, to, text } => {
                if send_tx.send((local, To::Chat(to), text)).await.is_err() {
                    break;
                }
            }
            Command::SendGroup { local, group, text } => {
                if send_tx.send((local, To::Group(group), text)).await.is_err() {
                    break;
                }
            }
            Command::SendFile {
                local,
                to,
                path,
                caption,
            } => {
                tokio::spawn(attachments::send_file(
                    shared.clone(),
                    local,
                    to,
                    path,
                    caption,
                ));
            }
            Command::Download { attachment, out } => {
                tokio::spawn(attachments::download(shared.clone(), attachment, out));
            }
            Command::Thumbnail(path) => {
                tokio::spawn(attachments::thumbnail(shared.clone(), path));
            }
            Command::SetPicture(path) => {
                tokio::spawn(attachments::set_picture(shared.clone(), path));
            }
            // In order, so that a draft saved just before a `Close` is saved.
            save @ Command::SaveAppValue { .. } => handle(shared.clone(), save).await,
            Command::Close => {
                out.send(Update::Closed).await;
                return;
            }
            other => {
                tokio::spawn(handle(shared.clone(), other));
            }
        }
    }
}

/// Sends, one at a time, so that messages leave in the order they were written.
async fn sender(shared: Arc<Shared>, mut rx: mpsc::Receiver<(u64, To, String)>) {
    while let Some((local, to, text)) = rx.recv().await {
        let result = match &to {
            To::Chat(to) => shared.m.send_text(to, &text).await.map(drop),
            To::Group(group) => shared.m.send_group_text(group, &text).await.map(drop),
        };
        // The saved message (sent or queued) is in the snapshot before the UI drops its
        // own "sending" copy, so it never disappears for a frame.
        shared.refresh().await;
        let error = result.err().map(|e| report(&e));
        shared.out.send(Update::SendDone { local, error }).await;
    }
}

/// Every command but sends.
async fn handle(shared: Arc<Shared>, command: Command) {
    let m = &shared.m;
    match command {
        Command::Open(with) => {
            shared.set_current(with, None);
            if let Some(with) = with
                && let Err(e) = m.mark_read(&with).await
            {
                shared.notice("marking messages read", &e).await;
            }
        }
        Command::MoreHistory => {
            shared
                .history_limit
                .fetch_add(HISTORY_PAGE, Ordering::Relaxed);
        }
        Command::RetryNow => {
            if let Err(e) = m.flush_outbox().await {
                shared.notice("delivering the outbox", &e).await;
            }
        }
        Command::Unsend { with, sent_ms } => {
            if let Err(e) = m.unsend(&with, sent_ms).await {
                shared.notice("deleting the message for everyone", &e).await;
            }
        }
        Command::SetDisappearing { with, setting } => {
            if let Err(e) = m.set_disappearing(&with, setting).await {
                shared.notice("setting disappearing messages", &e).await;
            }
        }
        Command::Accept(id) => {
            if let Err(e) = m.accept_request(&id).await {
                shared.notice("accepting the request", &e).await;
            }
        }
        Command::Decline(id) => {
            if let Err(e) = m.decline_request(&id) {
                shared.notice("declining the request", &e).await;
            }
        }
        Command::Block(id) => {
            if let Err(e) = m.block(&id) {
                shared.notice("blocking", &e).await;
            }
        }
        Command::Unblock(id) => {
            if let Err(e) = m.unblock(&id) {
                shared.notice("unblocking", &e).await;
            }
        }
        Command::Pin(id) => {
            if let Err(e) = m.pin_conversation(&id) {
                shared.notice("pinning the conversation", &e).await;
            }
        }
        Command::Unpin(id) => {
            if let Err(e) = m.unpin_conversation(&id) {
                shared.notice("unpinning the conversation", &e).await;
            }
        }
        Command::Hide(id) => {
            if let Err(e) = m.hide_conversation(&id) {
                shared.notice("hiding the conversation", &e).await;
            }
        }
        Command::Rename { with, nickname } => {
            if let Err(e) = m.rename_contact(&with, nickname.as_deref()) {
                shared.notice("saving the nickname", &e).await;
            }
        }
        Command::SaveAppValue { key, value } => {
            if let Err(e) = m.set_app_value(key, &value) {
                shared.notice("saving drafts and the theme", &e).await;
            }
            // Nothing the snapshot shows changed.
            return;
        }
        Command::ChangePassphrase { current, new } => {
            let (m, kdf) = (m.clone(), shared.kdf);
            let changed = tokio::task::spawn_blocking(move || {
                let has = new.is_some();
                m.set_passphrase(
                    current.as_deref().map(String::as_str),
                    new.as_deref().map(String::as_str),
                    kdf,
                )
                .map(|()| has)
            })
            .await;
            let result = match changed {
                Ok(Ok(has)) => Ok(has),
                Ok(Err(MessengerError::ProfileLocked(_))) => {
                    Err("The current passphrase is wrong.".to_string())
                }
                Ok(Err(e)) => Err(format!("changing the passphrase: {}", report(&e))),
                Err(e) => Err(format!("the passphrase task stopped: {e}")),
            };
            shared.out.send(Update::PassphraseChanged(result)).await;
            return;
        }
        Command::SetDisplayName(name) => {
            if let Err(e) = m.set_display_name(name.trim()) {
                shared.notice("saving your display name", &e).await;
            }
        }
        Command::SetSettings(s) => {
            if let Err(e) = m.set_settings(s) {
                shared.notice("saving the settings", &e).await;
            }
        }
        Command::Typing { to, started } => {
            // Best effort: a lost typing indicator is not worth a message to the user.
            let _ = m.send_typing(&to, started).await;
            return;
        }
        Command::OpenGroup(group) => shared.set_current(None, Some(group)),
        c @ (Command::CreateGroup { .. } | Command::Group { .. }) => {
            // It refreshes before it reports.
            groups::handle(&shared, c).await;
            return;
        }
        // Handled before a profile is open, by the sender, or by the loop.
        Command::Create { .. }
        | Command::Restore { .. }
        | Command::Unlock { .. }
        | Command::Send { .. }
        | Command::SendGroup { .. }
        | Command::SendFile { .. }
        | Command::Download { .. }
        | Command::Thumbnail(_)
        | Command::SetPicture(_)
        | Command::Close => return,
    }
    shared.refresh().await;
}

/// Polls our swarm for as long as the app runs.
async fn receiver(shared: Arc<Shared>, transport: Option<OnionTransport>) {
    if let Some(t) = &transport {
        // The first path build can take a while on a large network: say so meanwhile.
        // Paths built means connected: the first long poll may then wait its whole 20 s
        // before it returns, and the badge should not say "Connecting…" meanwhile.
        let ready = t.ensure_ready().await.map_err(|e| report(&e));
        shared
            .set_status(|s| {
                s.progress = None;
                s.connected = ready.is_ok();
                s.problem = ready.err();
            })
            .await;
    }
    let mut pause = RETRY_MIN;
    loop {
        match shared.m.receive_wait(RECEIVE_WAIT).await {
            Ok(events) => {
                pause = RETRY_MIN;
                shared
                    .set_status(|s| {
                        s.connected = true;
                        s.problem = None;
                        s.progress = None;
                    })
                    .await;
                if !events.is_empty() {
                    deliver(&shared, events).await;
                }
            }
            Err(e) => {
                let why = report(&e);
                shared
                    .set_status(|s| {
                        s.connected = false;
                        s.progress = None;
                        s.problem = Some(why);
                    })
                    .await;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Deletes expired disappearing messages every [`PURGE_EVERY`] (a poll of the swarm purges
/// too, so the UI hides what expired by itself: `Model::drop_expired`); the UI is refreshed
/// when some went, and told of a failure once (not every second).
async fn purger(shared: Arc<Shared>) {
    let mut last_error = None;
    loop {
        tokio::time::sleep(PURGE_EVERY).await;
        match shared.m.purge_expired() {
            Ok(0) => last_error = None,
            Ok(_) => {
                last_error = None;
                shared.refresh().await;
            }
            Err(e) => {
                let line = report(&e);
                if last_error.as_ref() != Some(&line) {
                    shared
                        .out
                        .send(Update::Notice(format!("deleting expired messages: {line}")))
                        .await;
                    last_error = Some(line);
                }
            }
        }
    }
}

/// Hands new events to the UI (they are saved already).
async fn deliver(shared: &Shared, events: Vec<Event>) {
    let current = shared.current();
    let mut read_current = false;
    for event in events {
        match event {
            Event::Typing { from, started } => {
                shared.out.send(Update::Typing { from, started }).await;
            }
            Event::Message { message, .. }
                if current == Some(message.conversation) && !message.outgoing =>
            {
                read_current = true;
            }
            Event::Message { message, request } if !message.outgoing => {
                notify(shared, &message, request);
            }
            Event::GroupMessage { message }
                if !message.outgoing
                    && shared.current_group().as_deref() != Some(message.group.as_str()) =>
            {
                let group = shared.m.group(&message.group).map(|g| g.name);
                let title = format!("New message in {}", group.as_deref().unwrap_or("a group"));
                notify_text(shared, &title, &message.author, &message.body);
            }
            Event::GroupInvite { name, from, .. } => {
                notify_text(
                    shared,
                    &format!("Invitation to the group {name}"),
                    &from,
                    "",
                );
            }
            _ => {}
        }
    }
    if read_current
        && let Some(with) = current
        && let Err(e) = shared.m.mark_read(&with).await
    {
        shared.notice("marking messages read", &e).await;
    }
    shared.refresh().await;
}

/// Tells the desktop of a message in a conversation the window does not show, saying as much
/// as the user chose (by default the sender, never the text).
fn notify(shared: &Shared, message: &umbra_messenger::Message, request: bool) {
    let name = name_of(shared, &message.author);
    let title = if request {
        format!("Message request from {name}")
    } else {
        format!("New message from {name}")
    };
    show_notification(shared, &title, "", &message.body);
}

/// A contact's name as notifications show it.
fn name_of(shared: &Shared, id: &SessionId) -> String {
    match shared.m.contact(id) {
        Ok(Some(c)) if c.nickname.is_some() || c.display_name.is_some() => c.name(),
        _ => crate::model::short_id(id),
    }
}

/// A group notification: `title`, then who wrote (and, when chosen, the text).
fn notify_text(shared: &Shared, title: &str, from: &SessionId, text: &str) {
    let name = name_of(shared, from);
    let body = if text.is_empty() {
        format!("from {name}")
    } else {
        format!("{name}: {text}")
    };
    show_notification(shared, title, &format!("from {name}"), &body);
}

/// Shows `title` with `sender_only` or `with_text` as the user chose.
fn show_notification(shared: &Shared, title: &str, sender_only: &str, with_text: &str) {
    let level = shared
        .m
        .app_value(crate::persist::NOTIFY_KEY)
        .ok()
        .flatten()
        .map_or_else(crate::NotifyLevel::default, |v| {
            crate::NotifyLevel::decode(&v)
        });
    match level {
        crate::NotifyLevel::Off => {}
        crate::NotifyLevel::SenderOnly => shared.notifier.show(title, sender_only),
        crate::NotifyLevel::SenderAndText => shared.notifier.show(title, with_text),
    }
}

/// Reads the network panel's facts from the transport every [`NETWORK_EVERY`].
async fn network_watch(shared: Arc<Shared>, t: OnionTransport) {
    loop {
        let nodes = t.paths();
        let paths = nodes
            .iter()
            .map(|p| {
                p.nodes
                    .iter()
                    .map(|n| {
                        let key = hex_prefix(&n.pubkey_ed25519);
                        (key, format!("{}:{}", n.public_ip, n.storage_port))
                    })
                    .collect()
            })
            .collect();
        let epoch = t.list_epoch();
        shared
            .set_status(|s| {
                s.paths = paths;
                s.epoch = epoch;
            })
            .await;
        tokio::time::sleep(NETWORK_EVERY).await;
    }
}

/// The first 8 hex digits of a node key, as the panel shows it.
fn hex_prefix(key: &umbra_crypto::Ed25519PublicKey) -> String {
    key.as_bytes()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}
