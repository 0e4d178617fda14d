//! `iotwatch monitor`: the live daemon. Capture threads (one per interface)
//! feed the [`engine`] (the same pipeline as `analyze`) on the calling
//! thread; once a second its findings go to the events file, the store (on
//! its own writer thread), the control socket and the metrics page.

pub mod control;
pub mod engine;
pub mod metrics;
pub mod sink;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{RecvTimeoutError, bounded};
use rustc_hash::FxHashMap;

use crate::capture::live::{IfaceStats, LiveCapture, LiveOptions, Pipe};
use crate::capture::ring::Ring;
use crate::capture::{Nanos, live};
use crate::event::Event;
use crate::netconf::HomeNets;
use crate::output::report::ReportOptions;
use crate::pipeline::{Batch, Config};
use crate::store::{Store, key_string, severity_name};

use control::Control;
use engine::{Engine, Tick};

/// Everything `monitor` needs, resolved from the command line and the
/// config file.
#[derive(Clone, Debug)]
pub struct Settings {
    pub interfaces: Vec<String>,
    pub live: LiveOptions,
    pub events: Option<String>,
    pub syslog: bool,
    /// None: no store (the TUI capturing in-process).
    pub db: Option<PathBuf>,
    pub control: Option<PathBuf>,
    pub control_group: Option<String>,
    pub metrics: Option<String>,
    pub home: HomeNets,
    pub warn_days: i64,
    /// `-w FILE` with `-C` MB per file and `-W` files.
    pub ring: Option<(String, u64, usize)>,
}

/// How the monitor ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM or SIGINT.
    Stopped,
    /// SIGHUP: the caller starts again with fresh signatures and config.
    Reload,
}

/// Batches in flight between the capture threads and the engine, and their
/// size: small, because a batch keeps the memory it once filled. At 300 k
/// packets/s a batch of 128 frames fills in 0.4 ms; 64 of them are 25 ms of
/// slack in at most ~5 MiB. Longer stalls wait in libpcap's kernel buffer
/// (the capture thread waits up to 250 ms before it drops).
const QUEUE: usize = 64;
const LIVE_BATCH_FRAMES: usize = 128;
const LIVE_BATCH_BYTES: usize = 64 * 1024;
const TICK: Duration = Duration::from_secs(1);
/// Flows held at once live: a quarter of `analyze`'s cap, for the Pi's memory
/// budget (about 6 MiB at the cap). A home LAN rarely holds 32,000
/// conversations at once; past that, the longest idle are ended (counted in
/// `iotwatch_flows_evicted_total`).
const LIVE_MAX_FLOWS: usize = 32 * 1024;
const LIVE_SYN_CACHE: usize = 16 * 1024;
/// Devices held live: a quarter of `analyze`'s cap, for the same budget (a
/// home has tens; this bounds a flood of made-up MACs).
const LIVE_MAX_DEVICES: usize = 16 * 1024;

/// What the loop watches besides packets.
pub struct Signals {
    pub term: Arc<AtomicBool>,
    pub hup: Arc<AtomicBool>,
}

impl Signals {
    pub fn register() -> Result<Signals> {
        let s = Signals {
            term: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
        };
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, s.term.clone())
                .context("installing signal handlers")?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, s.hup.clone())
            .context("installing signal handlers")?;
        Ok(s)
    }
}

/// The threads around the engine, stopped together.
struct Threads {
    stop: Arc<AtomicBool>,
    captures: Vec<(String, JoinHandle<Option<String>>)>,
    servers: Vec<JoinHandle<()>>,
}

/// Runs until a signal (or every interface failing). `control`, when given,
/// is published to (the TUI's in-process source uses it without a socket).
pub fn run(settings: &Settings, signals: &Signals, control: Arc<Control>) -> Result<Exit> {
    // The store first: its errors need no capture rights to be seen.
    let mut store = match &settings.db {
        Some(p) => Some(Store::open(p, &mut |w| {
            eprintln!("iotwatch: warning: {w}")
        })?),
        None => None,
    };
    let known = match &store {
        Some(s) => s.known_devices()?,
        None => Vec::new(),
    };
    let mut captures = Vec::new();
    for iface in &settings.interfaces {
        captures.push(live::open(iface, &settings.live)?);
    }
    let sink = sink::EventSink::open(settings.events.as_deref(), settings.syslog)?;
    let listener = match &settings.control {
        Some(p) => Some(control::bind(p, settings.control_group.as_deref())?),
        None => None,
    };
    let metrics_listener = match &settings.metrics {
        Some(a) => Some(metrics::bind(a)?),
        None => None,
    };
    let page = Arc::new(metrics::Page::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = bounded::<Batch>(QUEUE);
    let (spare_tx, spare_rx) = bounded::<Batch>(QUEUE + 8 * captures.len());
    for _ in 0..QUEUE + 4 * captures.len() {
        let _ = spare_tx.try_send(Batch::with_limits(LIVE_BATCH_FRAMES, LIVE_BATCH_BYTES));
    }
    let mut threads = Threads {
        stop: stop.clone(),
        captures: Vec::new(),
        servers: Vec::new(),
    };
    let mut ifaces: Vec<(String, String, Arc<IfaceStats>)> = Vec::new();
    let several = captures.len() > 1;
    for cap in captures {
        let stats = Arc::new(IfaceStats::default());
        ifaces.push((cap.iface.clone(), cap.link.name(), stats.clone()));
        let ring = match &settings.ring {
            Some((base, size, count)) => {
                let base = if several {
                    format!("{base}-{}", cap.iface)
                } else {
                    base.clone()
                };
                Some(
                    Ring::create(&base, *count, *size, cap.dlt, settings.live.snaplen as u32)
                        .with_context(|| format!("-w {base}"))?,
                )
            }
            None => None,
        };
        let pipe = Pipe {
            tx: tx.clone(),
            spare: spare_rx.clone(),
        };
        let stop = stop.clone();
        let name = cap.iface.clone();
        threads.captures.push((
            name.clone(),
            std::thread::Builder::new()
                .name(format!("capture {name}"))
                .spawn(move || LiveCapture::run(cap, pipe, stop, stats, ring))?,
        ));
    }
    drop(tx);
    if let (Some(l), Some(p)) = (listener, &settings.control) {
        let (c, s, p) = (control.clone(), stop.clone(), p.clone());
        threads
            .servers
            .push(std::thread::spawn(move || control::serve(l, p, c, s)));
    }
    if let Some(l) = metrics_listener {
        let (pg, s) = (page.clone(), stop.clone());
        threads
            .servers
            .push(std::thread::spawn(move || metrics::serve(l, pg, s)));
    }
    // The store writes on its own thread, off the packet path, and then
    // tells the control clients (so a snapshot read from the store never
    // misses what they were told).
    let (store_tx, store_rx) = bounded::<Published>(8);
    let store_nanos = Arc::new(AtomicU64::new(0));
    let store_thread = store.take().map(|mut s| {
        let (control, spent) = (control.clone(), store_nanos.clone());
        std::thread::spawn(move || {
            let mut failed = false;
            for p in store_rx {
                let t = Instant::now();
                if let Err(e) = s.write(&p.devices, &p.events, p.now)
                    && !failed
                {
                    eprintln!("iotwatch: error: {e}");
                    failed = true;
                }
                spent.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
                p.publish(&control);
            }
        })
    });
    let names: Vec<String> = ifaces
        .iter()
        .map(|(n, l, _)| format!("{n} ({l})"))
        .collect();
    eprintln!(
        "iotwatch: monitoring {}{}",
        names.join(", "),
        settings
            .db
            .as_ref()
            .map(|p| format!("; store {}", p.display()))
            .unwrap_or_default()
    );

    let config = Config {
        threads: 1,
        home: settings.home.clone(),
        max_flows: LIVE_MAX_FLOWS,
        syn_cache: LIVE_SYN_CACHE,
        max_devices: LIVE_MAX_DEVICES,
        when_full: crate::inventory::WhenFull::KeepFirst,
        ..Config::default()
    };
    let opts = ReportOptions {
        warn_days: settings.warn_days,
        ..ReportOptions::default()
    };
    let mut engine = Engine::new(config, opts, known);
    let mut state = LoopState {
        started: Instant::now(),
        analyze: Duration::ZERO,
        tick: Duration::ZERO,
        events_by: FxHashMap::default(),
        last_packets: 0,
        devices: 0,
        store: store_nanos,
    };
    let mut out = Outputs {
        sink,
        control,
        store: store_tx,
        page,
        ifaces,
        stored: settings.db.is_some(),
    };
    let mut next_tick = Instant::now() + TICK;
    let exit = loop {
        // Woken at least every 100 ms to see signals promptly.
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(mut b) => {
                let t = Instant::now();
                b.drain(|fr| engine.frame(fr));
                state.analyze += t.elapsed();
                let _ = spare_tx.try_send(b);
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Every capture thread ended.
            Err(RecvTimeoutError::Disconnected) => break None,
        }
        if Instant::now() >= next_tick {
            next_tick += TICK;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + TICK;
            }
            out.tick(&mut engine, &mut state);
        }
        if signals.term.load(Relaxed) {
            break Some(Exit::Stopped);
        }
        if signals.hup.swap(false, Relaxed) {
            break Some(Exit::Reload);
        }
    };
    // Stop capture, analyse what it had queued, write it all.
    let errors = join_captures(&mut threads);
    while let Ok(mut b) = rx.try_recv() {
        b.drain(|fr| engine.frame(fr));
    }
    out.tick(&mut engine, &mut state);
    drop(out);
    finish_store(store_thread);
    for h in threads.servers.drain(..) {
        let _ = h.join();
    }
    match exit {
        Some(exit) => {
            for e in errors {
                eprintln!("iotwatch: warning: {e}");
            }
            Ok(exit)
        }
        // Every capture thread ended on its own.
        None => anyhow::bail!("no interface left to capture on: {}", errors.join("; ")),
    }
}

fn join_captures(threads: &mut Threads) -> Vec<String> {
    threads.stop.store(true, Relaxed);
    let mut errors = Vec::new();
    for (_, h) in threads.captures.drain(..) {
        if let Ok(Some(e)) = h.join() {
            errors.push(e);
        }
    }
    errors
}

fn finish_store(t: Option<JoinHandle<()>>) {
    if let Some(t) = t {
        let _ = t.join();
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

struct LoopState {
    started: Instant,
    analyze: Duration,
    tick: Duration,
    events_by: FxHashMap<(&'static str, String), u64>,
    last_packets: u64,
    devices: usize,
    /// Nanoseconds the store thread spent writing.
    store: Arc<AtomicU64>,
}

/// Where each tick's findings go.
struct Outputs {
    sink: sink::EventSink,
    control: Arc<Control>,
    store: crossbeam_channel::Sender<Published>,
    page: Arc<metrics::Page>,
    ifaces: Vec<(String, String, Arc<IfaceStats>)>,
    /// A store thread takes the findings (and tells the control clients).
    stored: bool,
}

impl Outputs {
    /// Once a second: the engine's findings to every output.
    fn tick(&mut self, engine: &mut Engine, state: &mut LoopState) {
        let t = Instant::now();
        let now = wall_clock();
        let Tick { events, devices } = engine.tick(now);
        let mut with_json = Vec::with_capacity(events.len());
        for e in events {
            let json = serde_json::to_string(&e).unwrap_or_default();
            if let Err(err) = self.sink.write(&e, &json) {
                eprintln!("iotwatch: error: writing events: {err}");
            }
            *state
                .events_by
                .entry((e.kind.name(), severity_name(&e)))
                .or_default() += 1;
            with_json.push((e, json));
        }
        if let Err(err) = self.sink.flush() {
            eprintln!("iotwatch: error: writing events: {err}");
        }
        state.devices = state.devices.max(engine.known_devices());
        let p = Published {
            devices,
            events: with_json,
            now,
        };
        if !self.stored {
            p.publish(&self.control);
        } else if !p.devices.is_empty() || !p.events.is_empty() {
            // Blocks only if the store is 8 ticks behind.
            let _ = self.store.send(p);
        }
        state.tick += t.elapsed();
        let stats = stats_json(engine, state, &self.control, &self.ifaces);
        self.control.stats(stats);
        self.page
            .set(render_metrics(engine, state, &self.control, &self.ifaces));
    }
}

/// One tick's findings on their way to the store and the control clients.
struct Published {
    devices: Vec<engine::DeviceUpdate>,
    events: Vec<(Event, String)>,
    now: Nanos,
}

impl Published {
    fn publish(&self, control: &Control) {
        for (_, json) in &self.events {
            control.event(json);
        }
        for d in &self.devices {
            control.device(&key_string(&d.key), &d.json);
        }
    }
}

fn wall_clock() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Nanos)
}

fn sum(ifaces: &[(String, String, Arc<IfaceStats>)], f: impl Fn(&IfaceStats) -> u64) -> u64 {
    ifaces.iter().map(|(_, _, s)| f(s)).sum()
}

fn stats_json(
    engine: &Engine,
    state: &mut LoopState,
    control: &Control,
    ifaces: &[(String, String, Arc<IfaceStats>)],
) -> String {
    let captured = sum(ifaces, |s| s.packets.load(Relaxed));
    let pps = captured.saturating_sub(state.last_packets);
    state.last_packets = captured;
    let names: Vec<&str> = ifaces.iter().map(|(n, _, _)| n.as_str()).collect();
    serde_json::json!({
        "source": format!("live {}", names.join(",")),
        "packets": captured,
        "bytes": sum(ifaces, |s| s.bytes.load(Relaxed)),
        "packets_per_second": pps,
        "kernel_dropped": sum(ifaces, |s| s.kernel_dropped.load(Relaxed)),
        "interface_dropped": sum(ifaces, |s| s.if_dropped.load(Relaxed)),
        "queue_dropped": sum(ifaces, |s| s.queue_dropped.load(Relaxed)),
        "flows": engine.open_flows(),
        "devices": state.devices,
        "events": state.events_by.values().sum::<u64>(),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "control_clients": control.client_count(),
    })
    .to_string()
}

fn render_metrics(
    engine: &Engine,
    state: &LoopState,
    control: &Control,
    ifaces: &[(String, String, Arc<IfaceStats>)],
) -> String {
    let mut w = metrics::Writer {
        text: String::with_capacity(4096),
    };
    type Get = fn(&IfaceStats) -> u64;
    let per_iface: [(&str, &str, Get); 2] = [
        ("iotwatch_packets_total", "Packets captured.", |s| {
            s.packets.load(Relaxed)
        }),
        (
            "iotwatch_bytes_total",
            "Bytes captured (on the wire).",
            |s| s.bytes.load(Relaxed),
        ),
    ];
    for (name, help, get) in per_iface {
        w.metric(name, "counter", help);
        for (iface, _, s) in ifaces {
            w.sample(name, &[("interface", iface)], get(s));
        }
    }
    w.metric(
        "iotwatch_drops_total",
        "counter",
        "Packets lost: kernel (no room in the capture buffer), interface (driver), queue (analysis behind).",
    );
    for (iface, _, s) in ifaces {
        for (place, v) in [
            ("kernel", s.kernel_dropped.load(Relaxed)),
            ("interface", s.if_dropped.load(Relaxed)),
            ("queue", s.queue_dropped.load(Relaxed)),
        ] {
            w.sample(
                "iotwatch_drops_total",
                &[("interface", iface), ("where", place)],
                v,
            );
        }
    }
    let c = engine.counters();
    w.metric(
        "iotwatch_packets_analyzed_total",
        "counter",
        "Packets through the pipeline.",
    );
    w.sample("iotwatch_packets_analyzed_total", &[], c.packets);
    w.metric(
        "iotwatch_decode_errors_total",
        "counter",
        "Packets or fields that failed to decode.",
    );
    w.sample("iotwatch_decode_errors_total", &[], c.decode_errors);
    w.metric("iotwatch_flows", "gauge", "Flows open now.");
    w.sample("iotwatch_flows", &[], engine.open_flows());
    w.metric("iotwatch_flows_total", "counter", "Flows seen.");
    w.sample("iotwatch_flows_total", &[], c.flows.flows);
    w.metric(
        "iotwatch_flows_evicted_total",
        "counter",
        "Flows ended early because the flow table was full.",
    );
    w.sample("iotwatch_flows_evicted_total", &[], c.flows.evicted);
    w.metric("iotwatch_devices", "gauge", "Devices known.");
    w.sample("iotwatch_devices", &[], state.devices);
    w.metric(
        "iotwatch_devices_full",
        "gauge",
        "1 once the device table is full (a flood of made-up MACs?): devices not seen before are left out.",
    );
    w.sample(
        "iotwatch_devices_full",
        &[],
        u8::from(engine.devices_full()),
    );
    w.metric(
        "iotwatch_events_total",
        "counter",
        "Events by kind and severity.",
    );
    let mut by: Vec<_> = state.events_by.iter().collect();
    by.sort();
    for ((kind, sev), n) in by {
        w.sample(
            "iotwatch_events_total",
            &[("kind", kind), ("severity", sev)],
            n,
        );
    }
    w.metric(
        "iotwatch_stage_seconds_total",
        "counter",
        "Time spent per stage: analyze (decode to detectors), tick (events and device updates), store (writing SQLite).",
    );
    w.sample(
        "iotwatch_stage_seconds_total",
        &[("stage", "analyze")],
        state.analyze.as_secs_f64(),
    );
    w.sample(
        "iotwatch_stage_seconds_total",
        &[("stage", "tick")],
        state.tick.as_secs_f64(),
    );
    w.sample(
        "iotwatch_stage_seconds_total",
        &[("stage", "store")],
        state.store.load(Relaxed) as f64 / 1e9,
    );
    w.metric(
        "iotwatch_control_clients",
        "gauge",
        "Clients attached to the control socket.",
    );
    w.sample("iotwatch_control_clients", &[], control.client_count());
    w.metric(
        "iotwatch_control_clients_dropped_total",
        "counter",
        "Control clients dropped for not reading.",
    );
    w.sample(
        "iotwatch_control_clients_dropped_total",
        &[],
        control.clients_dropped.load(Relaxed),
    );
    w.metric(
        "iotwatch_uptime_seconds",
        "gauge",
        "Seconds since the monitor started.",
    );
    w.sample(
        "iotwatch_uptime_seconds",
        &[],
        state.started.elapsed().as_secs(),
    );
    w.text
}
