//! `iotwatch tui`: the terminal UI (ratatui + crossterm). The source runs
//! on its own thread ([`source`]); the UI thread applies its messages to the
//! [`model`] and redraws ([`view`]) when something changed, at most five
//! times a second, and at least once a second for the clock.

pub mod model;
pub mod source;
pub mod view;

use std::io::stdout;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEventKind, KeyModifiers,
    MouseEventKind,
};
use ratatui::crossterm::execute;

use crate::capture::Timeline;
use crate::capture::live::LiveOptions;
use crate::monitor::Settings;
use crate::output::report::ReportOptions;
use crate::pipeline::Config;

use model::Model;
use view::{Screen, Ui};

#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Capture live on this interface (in-process; no store)
    #[arg(short = 'i', long = "interface", value_name = "IFACE", conflicts_with_all = ["read", "attach"])]
    pub interface: Option<String>,

    /// Replay capture files (as fast as possible unless --realtime or --speed)
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "attach"
    )]
    pub read: Vec<String>,

    /// Attach to a running monitor's control socket [default when no source
    /// is given: the monitor's default socket]
    #[arg(long, value_name = "SOCKET")]
    pub attach: Option<PathBuf>,

    /// Replay at the capture's own pace
    #[arg(long, requires = "read", conflicts_with = "speed")]
    pub realtime: bool,

    /// Replay at X times the capture's pace
    #[arg(long, value_name = "X", requires = "read")]
    pub speed: Option<f64>,

    /// Capture filter (BPF) for -i
    #[arg(short = 'f', long, value_name = "FILTER", requires = "interface")]
    pub filter: Option<String>,

    /// A home network in CIDR form (repeatable)
    #[arg(long = "home-net", value_name = "CIDR")]
    pub home_net: Vec<String>,

    /// A directory of your own signatures laid out like signatures/
    #[arg(long, value_name = "DIR")]
    pub signatures: Option<PathBuf>,

    /// Support ending within this many days is reported as ending-soon
    #[arg(long = "warn-days", value_name = "N", default_value_t = 90)]
    pub warn_days: i64,
}

/// Opens the source before the screen is taken over, so a bad file or
/// socket gives the same clear error as `analyze`.
fn open_source(args: &TuiArgs) -> Result<source::Source> {
    let home = crate::cli::home_nets(&args.home_net)?;
    if let Some(dir) = &args.signatures {
        crate::cli::install_signatures(dir)?;
    }
    let opts = ReportOptions {
        warn_days: args.warn_days,
        ..ReportOptions::default()
    };
    if !args.read.is_empty() {
        if let Some(x) = args.speed
            && !(x > 0.0 && x.is_finite())
        {
            bail!("--speed must be a positive number");
        }
        let timeline = Timeline::open(&args.read)?;
        let speed = if args.realtime { Some(1.0) } else { args.speed };
        let config = Config {
            home,
            ..Config::default()
        };
        let names: Vec<&str> = args
            .read
            .iter()
            .map(|f| f.rsplit('/').next().unwrap_or(f))
            .collect();
        return Ok(source::replay(
            timeline,
            names.join(","),
            config,
            opts,
            speed,
        ));
    }
    if let Some(iface) = &args.interface {
        let live = LiveOptions {
            filter: args.filter.clone(),
            ..LiveOptions::default()
        };
        // Opened once here for its errors; the capture thread opens its own.
        drop(crate::capture::live::open(iface, &live)?);
        return Ok(source::live(Settings {
            interfaces: vec![iface.clone()],
            live,
            events: None,
            syslog: false,
            db: None,
            control: None,
            control_group: None,
            metrics: None,
            home,
            warn_days: args.warn_days,
            ring: None,
        }));
    }
    let path = args
        .attach
        .clone()
        .unwrap_or_else(crate::cli::monitor::default_control);
    let stream = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot attach to {} (is `iotwatch monitor` running? give --attach SOCKET)",
            path.display()
        )
    })?;
    Ok(source::attach(path, stream))
}

pub fn run(args: TuiArgs) -> Result<()> {
    let source = open_source(&args)?;
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, term.clone()).context("installing signal handlers")?;
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Raw mode, the alternate screen, and a panic hook that restores both.
    let mut terminal = ratatui::init();
    let _ = execute!(stdout(), EnableMouseCapture);
    let result = ui_loop(&mut terminal, &source, &term, color);
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
    drop(source);
    result
}

/// Messages applied per frame at most, so input stays responsive during a
/// fast replay.
const MESSAGES_PER_FRAME: usize = 20_000;

fn ui_loop(
    terminal: &mut ratatui::DefaultTerminal,
    source: &source::Source,
    term: &AtomicBool,
    color: bool,
) -> Result<()> {
    let mut model = Model::default();
    let mut ui = Ui::new(color);
    let mut dirty = true;
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    loop {
        for m in source.rx.try_iter().take(MESSAGES_PER_FRAME) {
            model.apply(&m);
            dirty = true;
        }
        // Paused, a live screen holds still (a replay also stops reading);
        // keys still redraw.
        if !ui.paused && (dirty || last_draw.elapsed() >= Duration::from_secs(1)) {
            terminal.draw(|f| view::draw(f, &model, &mut ui))?;
            last_draw = Instant::now();
            dirty = false;
        }
        if term.load(Relaxed) {
            return Ok(());
        }
        if !event::poll(Duration::from_millis(200))? {
            continue;
        }
        // Everything waiting, then one redraw.
        loop {
            match event::read()? {
                Event::Key(k)
                    if k.kind != KeyEventKind::Release
                        && !key(&mut ui, &model, source, k.code, k.modifiers) =>
                {
                    return Ok(());
                }
                Event::Mouse(m) => match m.kind {
                    MouseEventKind::ScrollDown => scroll(&mut ui, &model, 3),
                    MouseEventKind::ScrollUp => scroll(&mut ui, &model, -3),
                    _ => {}
                },
                _ => {}
            }
            if !event::poll(Duration::ZERO)? {
                break;
            }
        }
        terminal.draw(|f| view::draw(f, &model, &mut ui))?;
        last_draw = Instant::now();
        dirty = false;
    }
}

fn scroll(ui: &mut Ui, m: &Model, by: isize) {
    if ui.detail.is_some() {
        ui.detail_scroll = (ui.detail_scroll as isize + by).max(0) as u16;
    } else {
        ui.move_by(m, by);
    }
}

/// Handles one key; false to quit.
pub fn key(
    ui: &mut Ui,
    m: &Model,
    source: &source::Source,
    code: KeyCode,
    mods: KeyModifiers,
) -> bool {
    if ui.editing_filter {
        match code {
            KeyCode::Enter => ui.editing_filter = false,
            KeyCode::Esc => {
                ui.filter.clear();
                ui.editing_filter = false;
            }
            KeyCode::Backspace => {
                ui.filter.pop();
            }
            KeyCode::Char(c) => ui.filter.push(c),
            _ => {}
        }
        ui.selected[Screen::ALL
            .iter()
            .position(|s| *s == ui.screen)
            .unwrap_or(0)] = 0;
        return true;
    }
    if ui.help {
        ui.help = false;
        return !matches!(code, KeyCode::Char('q'));
    }
    let page = ui.page as isize;
    match code {
        KeyCode::Char('q') => return false,
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => return false,
        KeyCode::Char('?') => ui.help = true,
        KeyCode::Down | KeyCode::Char('j') => scroll(ui, m, 1),
        KeyCode::Up | KeyCode::Char('k') => scroll(ui, m, -1),
        KeyCode::PageDown => scroll(ui, m, page),
        KeyCode::PageUp => scroll(ui, m, -page),
        KeyCode::Char('g') | KeyCode::Home => {
            if ui.detail.is_some() {
                ui.detail_scroll = 0;
            } else {
                ui.move_to(m, false);
            }
        }
        KeyCode::Char('G') | KeyCode::End => {
            if ui.detail.is_some() {
                ui.detail_scroll = u16::MAX / 2;
            } else {
                ui.move_to(m, true);
            }
        }
        KeyCode::Enter if ui.detail.is_none() => ui.open(m),
        KeyCode::Esc | KeyCode::Backspace => {
            if ui.detail.is_some() {
                ui.detail = None;
            } else if !ui.filter.is_empty() {
                ui.filter.clear();
            }
        }
        KeyCode::Tab | KeyCode::BackTab => {
            let i = Screen::ALL
                .iter()
                .position(|s| *s == ui.screen)
                .unwrap_or(0);
            let n = Screen::ALL.len();
            let next = if code == KeyCode::Tab {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            ui.screen = Screen::ALL[next];
            ui.detail = None;
        }
        KeyCode::Char(c @ '1'..='4') => {
            ui.screen = Screen::ALL[(c as u8 - b'1') as usize];
            ui.detail = None;
        }
        KeyCode::Char('/') => {
            ui.detail = None;
            ui.editing_filter = true;
        }
        KeyCode::Char('s') if ui.screen == Screen::Devices => ui.cycle_sort(),
        KeyCode::Char('S') if ui.screen == Screen::Devices => ui.reverse = !ui.reverse,
        KeyCode::Char('f') if ui.screen == Screen::Events => ui.cycle_kind(),
        KeyCode::Char('v') if ui.screen == Screen::Events => ui.cycle_severity(),
        KeyCode::Char('p') => {
            ui.paused = !ui.paused;
            source.paused.store(ui.paused, Relaxed);
        }
        KeyCode::Char('.') if ui.paused => {
            source.step.fetch_add(1, Relaxed);
        }
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests;
