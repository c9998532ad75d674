//! `umbra-desktop`: the desktop client. Resolves the profile and network as the CLI does,
//! picks the profile that holds the network's data, takes its lock, starts the back end and
//! opens the window.

use std::process::ExitCode;

use clap::Parser as _;
use eframe::egui;
use umbra_desktop::{
    Automation, Backend, BackendConfig, DesktopApp, NetworkSource, Networks, Options, ProfileLock,
    Switcher, Zone, resolve_network, resolve_profile,
};
use umbra_report::ErrorExt as _;

fn main() -> ExitCode {
    // First, while this is the only thread: the local offset cannot be read safely later.
    let zone = Zone::local();
    let opts = Options::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UMBRA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let base = match resolve_profile(&opts) {
        Ok(d) => d,
        Err(e) => return fail(&format!("{e:#}")),
    };
    // Without --network, the network used last (chosen in Settings); each network's data is
    // in its own profile.
    let networks = Networks::new(base.clone());
    let file = match resolve_network(&opts) {
        Ok(f) => f.or_else(|| networks.last()),
        Err(e) => return fail(&format!("{e:#}")),
    };
    let dir = file
        .as_deref()
        .and_then(|f| Networks::key_of(f).ok())
        .map_or_else(|| base.clone(), |key| networks.profile_for(&key));
    let network = file.map_or(NetworkSource::None, NetworkSource::File);
    // A second window on the same profile would race the first for the database and the
    // outbox: it gets one line and a window saying so.
    let (lock, app_error) = match ProfileLock::acquire(&dir) {
        Ok(l) => (Some(l), None),
        Err(e) => {
            let line = e.report().to_string();
            eprintln!("umbra-desktop: {line}");
            (None, Some(line))
        }
    };
    let bench_scroll = opts.bench_scroll;
    let automation = Automation::new(opts.status_json, opts.screenshot.clone());
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Umbra")
            .with_inner_size([1000.0, 680.0])
            .with_min_inner_size([640.0, 420.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "Umbra",
        options,
        Box::new(move |cc| {
            if let Some(reason) = app_error {
                return Ok(Box::new(DesktopApp::failed(reason)));
            }
            close_on_signals(cc.egui_ctx.clone());
            let ctx = cc.egui_ctx.clone();
            let wake = move || ctx.request_repaint();
            let mut config = BackendConfig::new(dir.clone(), network);
            config.networks = Some(networks.clone());
            let backend = Backend::start(config.clone(), wake.clone())?;
            let switcher = Switcher::new(networks, config, wake, lock);
            let app = DesktopApp::new(backend, dir)
                .with_switcher(switcher)
                .with_automation(automation)
                .with_zone(zone);
            Ok(Box::new(if bench_scroll {
                app.with_bench_scroll()
            } else {
                app
            }))
        }),
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("opening the window: {}", e.report())),
    }
}

/// SIGTERM and SIGINT close the window as its close button does, so that the drafts typed
/// since the last save are saved before the process ends (`DesktopApp::on_exit`).
fn close_on_signals(ctx: egui::Context) {
    let spawned = std::thread::Builder::new()
        .name("umbra-signals".into())
        .spawn(move || {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    ctx.request_repaint();
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("SIGTERM will end the app without saving drafts: {e}");
    }
}

fn fail(line: &str) -> ExitCode {
    eprintln!("umbra-desktop: {line}");
    ExitCode::FAILURE
}
