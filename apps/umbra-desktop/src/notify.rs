//! Notifications of new messages through the desktop's notification service, where there is
//! one: `notify-send` (libnotify's client of the freedesktop service) when it is installed,
//! nothing otherwise. What a notification says is the user's choice ([`NotifyLevel`]); by
//! default it names the sender and never shows the text.

use std::sync::{Arc, Mutex, PoisonError};

/// How much a notification of a new message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyLevel {
    /// No notifications.
    Off,
    /// "New message from NAME", without the text.
    #[default]
    SenderOnly,
    /// The sender and the text.
    SenderAndText,
}

impl NotifyLevel {
    /// The level as saved in the profile.
    pub(crate) fn encode(self) -> Vec<u8> {
        match self {
            NotifyLevel::Off => b"off".to_vec(),
            NotifyLevel::SenderOnly => b"sender".to_vec(),
            NotifyLevel::SenderAndText => b"text".to_vec(),
        }
    }

    /// The saved level; anything else is the default.
    pub(crate) fn decode(bytes: &[u8]) -> NotifyLevel {
        match bytes {
            b"off" => NotifyLevel::Off,
            b"text" => NotifyLevel::SenderAndText,
            _ => NotifyLevel::SenderOnly,
        }
    }
}

/// Shows a notification.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Shows `body` under `title`. Must not block: the back end calls it between messages.
    fn show(&self, title: &str, body: &str);
}

/// The desktop's notification service through `notify-send`, if installed.
#[derive(Debug, Default)]
pub struct DesktopNotifier;

impl Notifier for DesktopNotifier {
    fn show(&self, title: &str, body: &str) {
        let spawned = std::process::Command::new("notify-send")
            .args(["--app-name=Umbra", "--", title, body])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            // Reaped on a thread of its own: the back end never waits for the service.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(e) => tracing::debug!("no notification shown (notify-send: {e})"),
        }
    }
}

/// Keeps what would have been shown (tests).
#[derive(Debug, Default, Clone)]
pub struct RecordingNotifier(Arc<Mutex<Vec<(String, String)>>>);

impl RecordingNotifier {
    /// Everything shown so far: (title, body).
    pub fn shown(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Notifier for RecordingNotifier {
    fn show(&self, title: &str, body: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((title.to_owned(), body.to_owned()));
    }
}
