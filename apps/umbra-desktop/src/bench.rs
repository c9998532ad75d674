//! `--bench-scroll`: frame times while the longest conversation is scrolled to its first
//! message and back, for `umbra-bench desktop` (BENCHMARKS.md).
//!
//! The scrolling goes through egui's own input, as mouse-wheel events over the message list,
//! so every frame lays out, tessellates and paints what a user's scrolling would. Each frame's
//! time is the interval between two frames drawn back to back (layout, painting on the
//! renderer, and the buffer swap); egui's own figure for the layout alone comes beside it.
//! Before scrolling, the same conversation is repainted without moving: the floor a frame
//! costs on this renderer, measured in the same run. The result is one JSON line on stdout,
//! then the app quits.

use std::time::{Duration, Instant};

use eframe::egui;
use serde_json::json;

use crate::backend::Command;
use crate::client::{Clock as _, SystemClock};
use crate::model::{Model, Pane, Screen};

/// Points scrolled per frame: a quick flick of the wheel (a 10 000-message conversation is
/// ~1 000 frames each way).
const STEP: f32 = 300.0;
/// Frames at the same offset that mean the end was reached.
const STILL_FRAMES: u32 = 10;
/// Frames repainted without scrolling, for the floor.
const STILL_SAMPLE: usize = 120;
/// Longest a run may take before it reports what it has.
const LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the conversation list.
    Start,
    /// Waiting for the opened conversation's messages.
    Loading,
    /// Repainting without scrolling: the floor of a frame (the renderer and the swap).
    Still,
    /// Scrolling towards the first message (`true`) or back to the newest.
    Scrolling {
        up: bool,
    },
    Done,
}

/// The scroll benchmark's state.
#[derive(Debug)]
pub(crate) struct ScrollBench {
    phase: Phase,
    started: Option<Instant>,
    last_frame: Option<Instant>,
    /// Interval between frames while scrolling, ms.
    frames: Vec<f64>,
    /// Interval between frames repainted without scrolling, ms.
    floor: Vec<f64>,
    /// egui's time for the previous frame's update (layout), ms.
    layout: Vec<f64>,
    /// The message list's offset of the last frames, to see it stop.
    offset: Option<f32>,
    still: u32,
    messages: usize,
}

impl ScrollBench {
    pub(crate) fn new() -> Self {
        Self {
            phase: Phase::Start,
            started: None,
            last_frame: None,
            frames: Vec::new(),
            floor: Vec::new(),
            layout: Vec::new(),
            offset: None,
            still: 0,
            messages: 0,
        }
    }

    /// Called at the start of each frame with the model after the back end's updates;
    /// opens the conversation and measures.
    pub(crate) fn frame(
        &mut self,
        m: &mut Model,
        out: &mut Vec<Command>,
        layout_s: Option<f32>,
        ctx: &egui::Context,
    ) {
        let now = SystemClock.instant();
        let started = *self.started.get_or_insert(now);
        ctx.request_repaint();
        match self.phase {
            Phase::Start if m.screen == Screen::Main && !m.chats.is_empty() => {
                // The conversation list is sorted by activity; the bench fills one chat.
                let id = m.chats[0].contact.session_id;
                m.open(id);
                out.push(Command::Open(Some(id)));
                self.phase = Phase::Loading;
            }
            Phase::Loading if m.pane == Pane::Chat && !m.history.is_empty() => {
                self.messages = m.history.len();
                self.phase = Phase::Still;
            }
            Phase::Still => {
                if let Some(last) = self.last_frame {
                    self.floor
                        .push(now.duration_since(last).as_secs_f64() * 1e3);
                }
                if self.floor.len() >= STILL_SAMPLE {
                    self.phase = Phase::Scrolling { up: true };
                }
            }
            Phase::Scrolling { .. } => {
                if let Some(last) = self.last_frame {
                    self.frames
                        .push(now.duration_since(last).as_secs_f64() * 1e3);
                    if let Some(s) = layout_s {
                        self.layout.push(f64::from(s) * 1e3);
                    }
                }
            }
            _ => {}
        }
        self.last_frame = Some(now);
        if now.duration_since(started) > LIMIT && self.phase != Phase::Done {
            self.finish(ctx, false);
        }
    }

    /// The wheel event of this frame, if scrolling.
    pub(crate) fn input(&self, raw: &mut egui::RawInput) {
        let Phase::Scrolling { up } = self.phase else {
            return;
        };
        let Some(screen) = raw.screen_rect else {
            return;
        };
        // Over the message list: right of the sidebar, between header and composer.
        let at = egui::pos2(
            screen.min.x + screen.width() * 0.7,
            screen.min.y + screen.height() * 0.5,
        );
        raw.events.push(egui::Event::PointerMoved(at));
        raw.events.push(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, if up { STEP } else { -STEP }),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
            modifiers: egui::Modifiers::NONE,
        });
    }

    /// After the frame: where the message list is, to turn at the top (once every older
    /// page is there) and stop at the end.
    pub(crate) fn after(&mut self, ctx: &egui::Context, m: &Model) {
        let Phase::Scrolling { up } = self.phase else {
            return;
        };
        self.messages = m.history.len();
        let offset = m.list_offset;
        if up && (m.history_more || m.asked_more) {
            // Older messages are on their way: not the top yet.
            self.still = 0;
            self.offset = offset;
            return;
        }
        let Some(offset) = offset else {
            return;
        };
        if self.offset.is_some_and(|o| (o - offset).abs() < 0.5) {
            self.still += 1;
        } else {
            self.still = 0;
        }
        self.offset = Some(offset);
        if self.still >= STILL_FRAMES {
            self.still = 0;
            if up {
                self.phase = Phase::Scrolling { up: false };
            } else {
                self.finish(ctx, true);
            }
        }
    }

    fn finish(&mut self, ctx: &egui::Context, complete: bool) {
        self.phase = Phase::Done;
        let line = json!({
            "event": "bench_scroll",
            "complete": complete,
            "messages": self.messages,
            "frames": self.frames.len(),
            "frame_ms": summary(&mut self.frames),
            "still_frame_ms": summary(&mut self.floor),
            "layout_ms": summary(&mut self.layout),
            "rss_kib": status_kib("VmRSS:"),
            "hwm_kib": status_kib("VmHWM:"),
        });
        println!("{line}");
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

/// p50, p99 and max of `v`, ms.
fn summary(v: &mut [f64]) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        (v[i.min(v.len() - 1)] * 100.0).round() / 100.0
    };
    json!({"p50": at(0.5), "p99": at(0.99), "max": at(1.0)})
}

/// A `VmRSS:`-style line of /proc/self/status, KiB.
fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
