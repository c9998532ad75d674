//! Drawing: one module per screen or panel, each a function of the [`Model`] that returns
//! what the user asked for as back-end [`Command`]s. [`DesktopApp`] ties them to the back
//! end; it is also what the headless UI tests drive.
//!
//! ```text
//!  onboarding.rs        first start: create (name, phrase, two words back) or restore
//!  unlock.rs            the passphrase of a locked profile
//!  sidebar.rs           navigation, search, the conversation list
//!  chat.rs              the open conversation: bubbles, day separators, states, composer
//!  chat_header.rs       the open conversation's name, nickname, disappearing messages, block
//!  disappearing.rs      a conversation's disappearing messages (header) and timers
//!  group_chat.rs        the open group: its header, messages with their senders, composer
//!  group_members.rs     the group's member panel: admins, add, remove, promote, leave, delete
//!  new_conversation.rs  a Session ID, checked as it is typed
//!  new_group.rs         a group's name and members, each ID checked as it is typed
//!  requests.rs          message requests (accept, decline, block), group invitations
//!  my_id.rs           your Session ID as text and as a QR code
//!  network.rs           connected?, onion paths, node list epoch
//!  settings.rs          display name, receipts, typing indicators, theme, blocked, data, network
//!  passphrase.rs        settings: change, set or remove the profile passphrase
//!  rows.rs              long message lists: only the rows in view are laid out
//!  widgets.rs           labelled fields and small pieces the screens share
//!  avatar.rs            round avatars: a contact's picture, else initials
//!  attachments.rs       a chat's files: rows, previews, progress, retry, path dialogs, drops
//!  profile_picture.rs   settings: choose, preview and upload your profile picture
//! ```

mod attachments;
mod avatar;
mod chat;
mod chat_header;
mod disappearing;
mod group_chat;
mod group_members;
mod my_id;
mod network;
mod new_conversation;
mod new_group;
mod onboarding;
mod passphrase;
mod profile_picture;
mod requests;
mod rows;
mod settings;
mod sidebar;
mod unlock;
mod widgets;

use std::path::{Path, PathBuf};

use eframe::egui;

use crate::automation::Automation;
use crate::backend::{Backend, Command};
use crate::bench::ScrollBench;
use crate::client::{Clock, SystemClock};
use crate::model::{Model, Screen, Theme};
use crate::switch::Switcher;

fn preference(theme: Theme) -> egui::ThemePreference {
    match theme {
        Theme::System => egui::ThemePreference::System,
        Theme::Light => egui::ThemePreference::Light,
        Theme::Dark => egui::ThemePreference::Dark,
    }
}

/// The desktop app: the model, the back end it talks to and the screens that draw it.
pub struct DesktopApp {
    backend: Option<Backend>,
    model: Model,
    clock: SystemClock,
    applied_theme: Option<Theme>,
    automation: Option<Automation>,
    /// Switching networks (`None`: the network chosen at start is the only one).
    switcher: Option<Switcher>,
    /// `--bench-scroll`.
    bench: Option<ScrollBench>,
    /// egui's time for the last frame's update, s (from eframe).
    layout_s: Option<f32>,
}

impl std::fmt::Debug for DesktopApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopApp").finish_non_exhaustive()
    }
}

impl DesktopApp {
    /// The app for a started back end on the profile in `profile_dir`.
    pub fn new(backend: Backend, profile_dir: PathBuf) -> Self {
        let mut model = Model::default();
        model.profile_dir = profile_dir;
        Self {
            backend: Some(backend),
            model,
            clock: SystemClock,
            applied_theme: None,
            automation: None,
            switcher: None,
            bench: None,
            layout_s: None,
        }
    }

    /// A window that only says why the app cannot start (e.g. the profile is open
    /// elsewhere).
    pub fn failed(reason: String) -> Self {
        let mut model = Model::default();
        model.fatal = Some(reason);
        model.screen = Screen::Fatal;
        Self {
            backend: None,
            model,
            clock: SystemClock,
            applied_theme: None,
            automation: None,
            switcher: None,
            bench: None,
            layout_s: None,
        }
    }

    /// Reports events to a script (`--status-json`, `--screenshot`).
    pub fn with_automation(mut self, automation: Automation) -> Self {
        self.automation = automation.is_active().then_some(automation);
        self
    }

    /// Lets Settings switch to another network (`main` passes one; the profile's lock goes
    /// with it, released when the profile is left).
    pub fn with_switcher(mut self, switcher: Switcher) -> Self {
        self.model.base_profile = Some(switcher.base().to_path_buf());
        self.switcher = Some(switcher);
        self
    }

    /// Scrolls the longest conversation up and back, prints frame times and quits
    /// (`--bench-scroll`, for `umbra-bench desktop`).
    pub fn with_bench_scroll(mut self) -> Self {
        self.bench = Some(ScrollBench::new());
        self
    }

    /// Shows times in `zone` (UTC until told; `main` passes [`crate::Zone::local`]).
    pub fn with_zone(mut self, zone: crate::time::Zone) -> Self {
        self.model.zone = zone;
        self
    }

    /// Our Session ID, once the profile is open.
    pub fn session_id(&self) -> Option<umbra_crypto::SessionId> {
        self.model.me
    }

    /// Draws one frame into `ui` (the whole window): first what the back end reported, then
    /// the current screen, then what the user asked for goes to the back end.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if let Some(b) = &mut self.backend {
            while let Some(update) = b.poll() {
                self.model.apply(update);
            }
        }
        if let Some(a) = &mut self.automation {
            a.observe(&self.model, ui.ctx());
        }
        if self.applied_theme != Some(self.model.theme) {
            ui.ctx().set_theme(preference(self.model.theme));
            self.applied_theme = Some(self.model.theme);
        }
        let now = self.clock.now_ms();
        self.switch_networks(now, ui.ctx());
        self.model.drop_expired(now);
        let mut commands = Vec::new();
        if let Some(b) = &mut self.bench {
            b.frame(&mut self.model, &mut commands, self.layout_s, ui.ctx());
        }
        let m = &mut self.model;
        match m.screen {
            Screen::Loading => widgets::centered(ui, |ui| {
                ui.spinner();
                ui.label("Opening your profile…");
            }),
            Screen::Fatal => widgets::centered(ui, |ui| {
                ui.heading("Umbra cannot open this profile");
                ui.label(m.fatal.as_deref().unwrap_or("unknown error"));
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            }),
            Screen::Onboarding => onboarding::show(ui, m, &mut commands),
            Screen::Locked => unlock::show(ui, m, &mut commands),
            Screen::Main => main_screen(ui, m, now, &mut commands),
        }
        if let Some(b) = &mut self.bench {
            b.after(ui.ctx(), &self.model);
        }
        match self.model.drafts_to_save(now) {
            Ok(Some(save)) => commands.push(save),
            Ok(None) => {}
            Err(wait) => ui
                .ctx()
                .request_repaint_after(std::time::Duration::from_millis(wait)),
        }
        if self.model.switch.to.is_some() && self.switcher.as_ref().is_some_and(|s| !s.busy()) {
            self.begin_switch(now, &mut commands);
        }
        for c in commands {
            let sent = self.backend.as_ref().is_some_and(|b| b.send(c));
            if !sent {
                self.model.notice = Some("Umbra is busy; try that again in a moment.".into());
            }
        }
    }

    /// Saves what is not saved yet and stops the back end (at most 2 s).
    pub fn quit(&mut self) {
        self.model.quitting = true;
        let now = self.clock.now_ms();
        let drafts = self.model.drafts_to_save(now).ok().flatten();
        if let Some(mut b) = self.backend.take() {
            b.close(drafts, std::time::Duration::from_secs(2));
        }
    }

    /// Settings asked for another network: check it, then ask the back end to close (after
    /// the drafts just queued are saved).
    fn begin_switch(&mut self, now: u64, out: &mut Vec<crate::backend::Command>) {
        let (Some(switcher), Some(to)) = (&mut self.switcher, self.model.switch.to.clone()) else {
            return;
        };
        match switcher.target(&to) {
            Ok(t)
                if t.is_current(
                    &self.model.profile_dir,
                    self.model.network.network.as_deref().map(Path::new),
                ) =>
            {
                self.model.switch.to = None;
                self.model.switch.error = Some("Umbra is already on this network.".into());
            }
            Ok(t) => {
                self.model.switch.error = None;
                self.model.switch.closed = false;
                switcher.begin(t, now);
                out.push(crate::backend::Command::Close);
            }
            Err(e) => {
                self.model.switch.to = None;
                self.model.switch.error = Some(e);
            }
        }
    }

    /// Finishes a switch once the old back end has closed: a new back end on the other
    /// profile, and a fresh model for it.
    fn switch_networks(&mut self, now: u64, ctx: &egui::Context) {
        let Some(switcher) = &mut self.switcher else {
            return;
        };
        let Some(target) = switcher.due(self.model.switch.closed, now) else {
            if switcher.busy() {
                ctx.request_repaint_after(std::time::Duration::from_millis(50));
            }
            return;
        };
        let base = self.model.base_profile.take();
        let previous = self
            .model
            .switch
            .current
            .take()
            .or_else(|| self.model.network.network.as_ref().map(PathBuf::from));
        let zone = self.model.zone;
        self.model = Model::default();
        self.model.profile_dir = target.profile.clone();
        self.model.base_profile = base;
        self.model.zone = zone;
        self.model.switch.previous = previous;
        self.model.switch.current = Some(target.file.clone());
        self.applied_theme = None;
        match switcher.start(self.backend.take(), &target) {
            Ok(b) => self.backend = Some(b),
            Err(e) => {
                self.model.fatal = Some(e);
                self.model.screen = Screen::Fatal;
            }
        }
    }
}

impl eframe::App for DesktopApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.layout_s = frame.info().cpu_usage;
        self.show(ui);
    }

    /// The window closed (by the user or SIGTERM): the drafts typed since the last save
    /// are saved before the back end stops.
    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.quit();
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        if let Some(b) = &self.bench {
            b.input(raw_input);
        }
    }
}

/// Conversations: the top bar, the sidebar and the pane on the right.
fn main_screen(ui: &mut egui::Ui, m: &mut Model, now: u64, out: &mut Vec<Command>) {
    egui::Panel::top("top_bar").show(ui, |ui| top_bar(ui, m));
    if m.notice.is_some() {
        egui::Panel::bottom("notice").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    m.notice.as_deref().unwrap_or(""),
                );
                if ui.small_button("Dismiss").clicked() {
                    m.notice = None;
                }
            });
        });
    }
    egui::Panel::left("sidebar")
        .resizable(true)
        .default_size(300.0)
        .min_size(220.0)
        .show(ui, |ui| sidebar::show(ui, m, now, out));
    egui::CentralPanel::default().show(ui, |ui| match m.pane {
        crate::model::Pane::Chat if m.open_group.is_some() => group_chat::show(ui, m, now, out),
        crate::model::Pane::Chat => chat::show(ui, m, now, out),
        crate::model::Pane::NewConversation => new_conversation::show(ui, m, out),
        crate::model::Pane::NewGroup => new_group::show(ui, m, out),
        crate::model::Pane::Requests => requests::show(ui, m, now, out),
        crate::model::Pane::Network => network::show(ui, m),
        crate::model::Pane::Settings => settings::show(ui, m, out),
        crate::model::Pane::MyId => my_id::show(ui, m),
    });
    attachments::dropped(ui.ctx(), m);
    attachments::dialog(ui.ctx(), m, out);
}

fn top_bar(ui: &mut egui::Ui, m: &mut Model) {
    ui.horizontal(|ui| {
        ui.heading("Umbra");
        ui.separator();
        if let Some(me) = m.me {
            let key = me.to_hex();
            avatar::show(
                ui,
                12.0,
                avatar::Avatar {
                    key: &key,
                    name: &m.display_name,
                    picture: m.pictures.get(&me),
                },
            );
        }
        let name = if m.display_name.is_empty() {
            "(no display name)"
        } else {
            m.display_name.as_str()
        };
        ui.label(egui::RichText::new(name).strong());
        if let Some(me) = m.me {
            ui.label(
                egui::RichText::new(crate::model::short_id(&me))
                    .monospace()
                    .weak(),
            );
            if ui
                .button("Copy my Session ID")
                .on_hover_text("Give it to people so they can write to you")
                .clicked()
            {
                ui.ctx().copy_text(me.to_hex());
            }
            if ui.button("Show my QR code").clicked() {
                m.pane = crate::model::Pane::MyId;
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            widgets::network_badge(ui, &m.network);
        });
    });
}
