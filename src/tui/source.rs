//! Where the TUI's messages come from, each on its own thread so the UI
//! never waits: a capture file replayed through the engine, a live
//! interface (the monitor's loop, in-process), or a running monitor's
//! control socket. All speak the control protocol's JSON lines.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::{Nanos, Timeline};
use crate::monitor::control::{self, Control};
use crate::monitor::engine::Engine;
use crate::monitor::{Settings, Signals};
use crate::output::report::ReportOptions;
use crate::pipeline::Config;

const SECOND: Nanos = 1_000_000_000;

pub struct Source {
    pub rx: Receiver<Arc<str>>,
    pub paused: Arc<AtomicBool>,
    /// Seconds of capture a paused replay may still play.
    pub step: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Source {
    fn new(rx: Receiver<Arc<str>>, stop: Arc<AtomicBool>, thread: JoinHandle<()>) -> Source {
        Source {
            rx,
            paused: Arc::new(AtomicBool::new(false)),
            step: Arc::new(AtomicU32::new(0)),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        // Unblock a sender waiting on a full channel.
        while self.rx.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn send(tx: &Sender<Arc<str>>, msg: String) -> bool {
    tx.send(Arc::from(msg)).is_ok()
}

/// Replays capture files through the engine. `speed`: `None` as fast as
/// possible, `Some(1.0)` real time, `Some(x)` x times real time.
pub fn replay(
    mut timeline: Timeline,
    name: String,
    config: Config,
    opts: ReportOptions,
    speed: Option<f64>,
) -> Source {
    let (tx, rx) = bounded::<Arc<str>>(4096);
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let step = Arc::new(AtomicU32::new(0));
    let (s, p, st) = (stop.clone(), paused.clone(), step.clone());
    let thread = std::thread::spawn(move || {
        let mut engine = Engine::new(config, opts, Vec::new());
        send(&tx, control::hello());
        send(
            &tx,
            r#"{"type":"snapshot","stats":{},"devices":[],"events":[]}"#.to_string(),
        );
        let mut r = Replay {
            tx,
            name,
            first: None,
            next_tick: 0,
            packets: 0,
            bytes: 0,
            last_packets: 0,
            events: 0,
            started: Instant::now(),
        };
        let _ = timeline.run(|fr| {
            if s.load(Relaxed) {
                return;
            }
            r.packets += 1;
            r.bytes += u64::from(fr.orig_len);
            let first = *r.first.get_or_insert(fr.ts);
            if r.next_tick == 0 {
                r.next_tick = fr.ts + SECOND;
            }
            if fr.ts >= r.next_tick {
                // Paused: wait here (the UI keeps drawing); `.` plays a second.
                while p.load(Relaxed) && !s.load(Relaxed) {
                    if st.load(Relaxed) > 0 {
                        st.fetch_sub(1, Relaxed);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
                r.tick(&mut engine, r.next_tick, first, "replaying");
                r.next_tick = fr.ts - fr.ts % SECOND + SECOND;
            }
            if let Some(x) = speed {
                let due = Duration::from_nanos(((fr.ts.saturating_sub(first)) as f64 / x) as u64);
                let now = r.started.elapsed();
                if due > now {
                    std::thread::sleep((due - now).min(Duration::from_secs(5)));
                }
            }
            engine.frame(&fr);
        });
        // The end: every flow ends, every episode is judged.
        let end = r.next_tick.max(SECOND) + 7200 * SECOND;
        let first = r.first.unwrap_or(0);
        r.tick(&mut engine, end, first, "done");
        // Keep the channel open until the UI goes.
        while !s.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut source = Source::new(rx, stop, thread);
    source.paused = paused;
    source.step = step;
    source
}

struct Replay {
    tx: Sender<Arc<str>>,
    name: String,
    first: Option<Nanos>,
    next_tick: Nanos,
    packets: u64,
    bytes: u64,
    last_packets: u64,
    events: u64,
    started: Instant,
}

impl Replay {
    fn tick(&mut self, engine: &mut Engine, now: Nanos, first: Nanos, state: &str) {
        let t = engine.tick(now);
        for e in &t.events {
            send(
                &self.tx,
                control::message("event", &serde_json::to_string(e).unwrap_or_default()),
            );
        }
        self.events += t.events.len() as u64;
        for d in &t.devices {
            send(&self.tx, control::message("device", &d.json));
        }
        let stats = serde_json::json!({
            "source": format!("file {}", self.name),
            "state": state,
            "packets": self.packets,
            "bytes": self.bytes,
            "packets_per_second": self.packets - self.last_packets,
            "flows": engine.open_flows(),
            "devices": engine.known_devices(),
            "events": self.events,
            "uptime_seconds": now.saturating_sub(first).min(self.next_tick.saturating_sub(first)) / SECOND,
        });
        self.last_packets = self.packets;
        send(&self.tx, control::message("stats", &stats.to_string()));
    }
}

/// Captures live in-process: the monitor's own loop, without store or socket.
pub fn live(settings: Settings) -> Source {
    let control = Arc::new(Control::default());
    let rx = control.subscribe(1 << 16);
    let stop = Arc::new(AtomicBool::new(false));
    let signals = Signals {
        term: stop.clone(),
        hup: Arc::new(AtomicBool::new(false)),
    };
    let thread = std::thread::spawn(move || {
        let c = control.clone();
        if let Err(e) = crate::monitor::run(&settings, &signals, control) {
            // Shown in the header; the UI stays up with what was seen.
            c.status(&format!("stopped: {e:#}"));
        }
    });
    Source::new(rx, stop, thread)
}

/// Attaches to a monitor's control socket; when it goes away, says
/// "disconnected" and tries again every second.
pub fn attach(path: PathBuf, first: UnixStream) -> Source {
    let (tx, rx) = bounded::<Arc<str>>(1 << 16);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut conn = Some(first);
        while !s.load(Relaxed) {
            let Some(stream) = conn.take() else {
                std::thread::sleep(Duration::from_secs(1));
                conn = UnixStream::connect(&path).ok();
                continue;
            };
            send(&tx, r#"{"type":"status","status":""}"#.to_string());
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut lines = BufReader::new(stream);
            let mut line = String::new();
            loop {
                if s.load(Relaxed) {
                    return;
                }
                match lines.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if line.ends_with('\n') {
                            if !send(&tx, line.trim_end().to_string()) {
                                return;
                            }
                            line.clear();
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            send(
                &tx,
                format!(
                    r#"{{"type":"status","status":"disconnected from {}, retrying"}}"#,
                    path.display()
                ),
            );
        }
    });
    Source::new(rx, stop, thread)
}
