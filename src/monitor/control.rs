//! The control socket: a Unix stream socket the TUI (or any script) attaches
//! to. The protocol is JSON lines, version [`VERSION`], documented in
//! README.md ("Control socket"):
//!
//! - first `{"type":"hello","version":1,"iotwatch":"0.1.0"}`;
//! - then `{"type":"snapshot","stats":{…},"devices":[…],"events":[…]}`: every
//!   device known and the latest events;
//! - then, as they happen, `{"type":"event","event":{…}}`,
//!   `{"type":"device","device":{…}}` and once a second
//!   `{"type":"stats","stats":{…}}`.
//!
//! Each client has a bounded queue; a client that stops reading is dropped
//! (and counted), so it never slows capture.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError, bounded};

pub const VERSION: u32 = 1;
/// Messages queued per client before it counts as stuck and is dropped.
const CLIENT_QUEUE: usize = 4096;
/// Events kept for a new client's snapshot.
const RECENT_EVENTS: usize = 1000;

/// What a new client is shown first: the stats, and (without a store)
/// the devices and latest events.
#[derive(Default)]
pub struct Board {
    /// Device objects (JSON) by key, in key order.
    devices: std::collections::BTreeMap<String, Arc<str>>,
    events: VecDeque<Arc<str>>,
    stats: Arc<str>,
    clients: Vec<Sender<Arc<str>>>,
}

/// Reads the devices and latest events (JSON objects) for a snapshot.
pub type SnapshotSource = Box<dyn Fn() -> (Vec<String>, Vec<String>) + Send + Sync>;

#[derive(Default)]
pub struct Control {
    board: Mutex<Board>,
    /// With a store, snapshots are read from it (devices and events are
    /// published only once committed, so none falls between the two) and
    /// the board keeps no copy: 14,000 devices would be 20 MiB.
    snapshot: Option<SnapshotSource>,
    pub clients_dropped: AtomicU64,
    pub messages_dropped: AtomicU64,
}

impl Control {
    /// Snapshots from the monitor's store at `db`.
    pub fn with_store(db: std::path::PathBuf) -> Control {
        Control {
            snapshot: Some(Box::new(move || {
                let read = || -> Result<_, crate::store::StoreError> {
                    let r = crate::store::Reader::open(&db)?;
                    Ok((r.device_json()?, r.recent_event_json(RECENT_EVENTS)?))
                };
                read().unwrap_or_default()
            })),
            ..Control::default()
        }
    }

    /// Publishes a device, an event or the stats to every client (and the
    /// board, without a store).
    pub fn device(&self, key: &str, json: &str) {
        let msg = message("device", json);
        let mut b = self.lock();
        if self.snapshot.is_none() {
            b.devices.insert(key.to_string(), Arc::from(json));
        }
        self.broadcast(&mut b, msg);
    }

    pub fn event(&self, json: &str) {
        let msg = message("event", json);
        let mut b = self.lock();
        if self.snapshot.is_none() {
            if b.events.len() >= RECENT_EVENTS {
                b.events.pop_front();
            }
            b.events.push_back(Arc::from(json));
        }
        self.broadcast(&mut b, msg);
    }

    pub fn stats(&self, json: String) {
        let msg = message("stats", &json);
        let mut b = self.lock();
        b.stats = Arc::from(json);
        self.broadcast(&mut b, msg);
    }

    /// A line of state for the clients (`{"type":"status","status":…}`),
    /// e.g. why capture stopped.
    pub fn status(&self, text: &str) {
        let msg = serde_json::json!({"type": "status", "status": text}).to_string();
        let mut b = self.lock();
        self.broadcast(&mut b, msg);
    }

    pub fn client_count(&self) -> usize {
        self.lock().clients.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn broadcast(&self, b: &mut Board, msg: String) {
        if b.clients.is_empty() {
            return;
        }
        let msg: Arc<str> = Arc::from(msg);
        b.clients.retain(|c| match c.try_send(msg.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.clients_dropped.fetch_add(1, Relaxed);
                self.messages_dropped.fetch_add(c.len() as u64 + 1, Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
    }

    /// An in-process client (the TUI capturing or replaying itself): the
    /// same messages as a socket client gets, through a channel.
    pub fn subscribe(&self, queue: usize) -> crossbeam_channel::Receiver<Arc<str>> {
        let (tx, rx) = bounded::<Arc<str>>(queue);
        self.register(tx);
        rx
    }

    /// Queues the hello and snapshot and adds the client, under the same
    /// lock as later messages, so it misses nothing in between.
    fn register(&self, tx: Sender<Arc<str>>) {
        {
            let mut b = self.lock();
            let hello = hello();
            let mut snap = String::from("{\"type\":\"snapshot\",\"stats\":");
            snap += if b.stats.is_empty() { "{}" } else { &b.stats };
            snap += ",\"devices\":[";
            match &self.snapshot {
                Some(read) => {
                    let (devices, events) = read();
                    join(&mut snap, devices.iter().map(String::as_str));
                    snap += "],\"events\":[";
                    join(&mut snap, events.iter().map(String::as_str));
                }
                None => {
                    join(&mut snap, b.devices.values().map(|s| &**s));
                    snap += "],\"events\":[";
                    join(&mut snap, b.events.iter().map(|s| &**s));
                }
            }
            snap += "]}";
            let _ = tx.try_send(Arc::from(hello));
            let _ = tx.try_send(Arc::from(snap));
            b.clients.push(tx);
        }
    }

    fn attach(&self, stream: UnixStream) {
        let (tx, rx) = bounded::<Arc<str>>(CLIENT_QUEUE);
        self.register(tx);
        // A client that stops reading makes writes time out: its thread ends.
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        std::thread::spawn(move || {
            let mut w = std::io::BufWriter::new(stream);
            while let Ok(msg) = rx.recv() {
                let ok = w.write_all(msg.as_bytes()).is_ok() && w.write_all(b"\n").is_ok();
                // Flush when nothing else is waiting: few system calls under load.
                if !ok || (rx.is_empty() && w.flush().is_err()) {
                    break;
                }
            }
            if let Ok(s) = w.into_inner() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        });
    }
}

/// `{"type":"hello",…}`: the first message of the protocol.
pub fn hello() -> String {
    format!(
        "{{\"type\":\"hello\",\"version\":{VERSION},\"iotwatch\":\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    )
}

/// `{"type":"device","device":{…}}` and the like, around an object's JSON.
pub fn message(kind: &str, json: &str) -> String {
    format!("{{\"type\":\"{kind}\",\"{kind}\":{json}}}")
}

fn join<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
}

/// Binds the socket: its directory made if missing, a stale socket file
/// replaced, a live one (another monitor) refused; mode 0660 and `group`.
pub fn bind(path: &Path, group: Option<&str>) -> anyhow::Result<UnixListener> {
    use anyhow::{Context, bail};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("control socket {}: creating its directory", path.display())
        })?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!(
                "control socket {} is in use: another iotwatch monitor is running (or give --control another path)",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| {
            format!("control socket {}: removing the stale one", path.display())
        })?;
    }
    let l =
        UnixListener::bind(path).with_context(|| format!("control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("control socket {}", path.display()))?;
    if let Some(g) = group {
        let gid = group_id(g).with_context(|| format!("--control-group {g}: no such group"))?;
        std::os::unix::fs::chown(path, None, Some(gid)).with_context(|| {
            format!("control socket {}: giving it to group {g}", path.display())
        })?;
    }
    Ok(l)
}

fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam reads a NUL-terminated name; the result is read at once.
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    // SAFETY: non-null results point to a valid group entry.
    (!g.is_null()).then(|| unsafe { (*g).gr_gid })
}

/// Accepts clients until `stop`; the socket file is removed at the end.
pub fn serve(listener: UnixListener, path: PathBuf, control: Arc<Control>, stop: Arc<AtomicBool>) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                control.attach(s);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let _ = std::fs::remove_file(path);
}
