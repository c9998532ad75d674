#![doc = include_str!("../README.md")]

mod automation;
mod backend;
mod bench;
mod client;
mod config;
mod lock;
mod model;
mod networks;
mod notify;
mod persist;
mod picture;
mod switch;
mod time;
mod ui;

pub use automation::Automation;
pub use backend::{Backend, BackendConfig, NetworkSource};
pub use config::{Options, resolve_network, resolve_profile};
pub use lock::{ProfileInUse, ProfileLock};
pub use networks::Networks;
pub use notify::{DesktopNotifier, Notifier, NotifyLevel, RecordingNotifier};
pub use switch::Switcher;
pub use time::Zone;
pub use ui::DesktopApp;
