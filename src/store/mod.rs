//! The monitor's embedded store: devices (with evidence and support status),
//! events and daily traffic per device, in one SQLite file (WAL mode, so
//! `iotwatch devices` can read while the monitor writes).
//!
//! The schema is versioned by `PRAGMA user_version`; [`MIGRATIONS`] brings
//! any older file up to date. A file that is not a database, or a damaged
//! one, is moved aside (never deleted) and a new one started.

use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use crate::capture::Nanos;
use crate::event::Event;
use crate::inventory::{Device, DeviceKey};
use crate::monitor::engine::{DeviceUpdate, KnownDevice};

/// Migration `i` takes a file from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE devices (
    key          TEXT PRIMARY KEY,
    mac          TEXT,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    packets      INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    vendor       TEXT,
    type         TEXT,
    support      TEXT NOT NULL,
    eos_reported INTEGER NOT NULL DEFAULT 0,
    report       TEXT NOT NULL,   -- the device object of the report contract
    evidence     TEXT NOT NULL    -- [[signal, field, value], ...] to restore
);
CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,    -- nanoseconds since the epoch
    kind     TEXT NOT NULL,
    severity TEXT NOT NULL,
    event    TEXT NOT NULL        -- the event object, as in the events file
);
CREATE INDEX events_by_time ON events (ts);
CREATE INDEX events_by_kind ON events (kind, ts);
CREATE TABLE traffic_daily (
    key     TEXT NOT NULL,
    day     TEXT NOT NULL,        -- YYYY-MM-DD, UTC
    packets INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (key, day)
);
"#];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database {0} is locked: another iotwatch monitor is using it (stop it, or give --db another file)"
    )]
    Locked(PathBuf),
    #[error(
        "database {0} is read-only ({1}): give --db a file this user can write, or fix its permissions"
    )]
    ReadOnly(PathBuf, String),
    #[error("no database at {0} (start `iotwatch monitor` first, or give --db FILE)")]
    Missing(PathBuf),
    #[error(
        "database {0} has schema version {1}, newer than this iotwatch knows ({SCHEMA_VERSION}): upgrade iotwatch"
    )]
    TooNew(PathBuf, i64),
    #[error("database {0}: {1}")]
    Sqlite(PathBuf, rusqlite::Error),
    #[error("database {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The default place: `/var/lib/iotwatch/` for root, the XDG data
/// directory otherwise.
pub fn default_path() -> PathBuf {
    let file = "iotwatch.db";
    if is_root() {
        return PathBuf::from("/var/lib/iotwatch").join(file);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("iotwatch").join(file)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Attempts at the file's lock, 10 ms apart, before it is taken as held by
/// another monitor.
const LOCK_TRIES: u32 = 20;

/// The writer's connection, holding the file's lock for the monitor's life.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    _lock: File,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Sqlite(path.to_path_buf(), e)
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    )
}

impl Store {
    /// Opens (or creates) the store for the monitor. `warn` hears about a
    /// damaged file moved aside.
    pub fn open(path: &Path, warn: &mut dyn FnMut(String)) -> Result<Store, StoreError> {
        match Store::open_once(path) {
            Err(StoreError::Sqlite(_, e)) if is_damage(&e) => {
                let aside = aside_name(path);
                for suffix in ["", "-wal", "-shm"] {
                    let from = PathBuf::from(format!("{}{suffix}", path.display()));
                    if from.exists() {
                        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                        std::fs::rename(&from, &to).map_err(|e| StoreError::Io(from, e))?;
                    }
                }
                warn(format!(
                    "database {} is damaged ({e}); moved it to {} and started a new one",
                    path.display(),
                    aside.display()
                ));
                Store::open_once(path)
            }
            other => other,
        }
    }

    fn open_once(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    StoreError::ReadOnly(path.to_path_buf(), e.to_string())
                }
                _ => StoreError::Io(path.to_path_buf(), e),
            })?;
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    StoreError::ReadOnly(path.to_path_buf(), e.to_string())
                }
                _ => StoreError::Io(path.to_path_buf(), e),
            })?;
        // flock, which SQLite's own (fcntl) locks do not see: one monitor per
        // file, while readers come and go. A lock just released can still
        // look held for a moment (a child forked meanwhile holds a copy of
        // the descriptor until it execs; once, a test reopening its store at
        // once was refused for a reason not pinned down): a monitor
        // restarted right away waits up to 200 ms before giving up.
        let mut tries = 0;
        while lock.try_lock().is_err() {
            tries += 1;
            if tries > LOCK_TRIES {
                return Err(StoreError::Locked(path.to_path_buf()));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let conn = Connection::open(path).map_err(sql(path))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            _lock: lock,
        };
        store.prepare().map_err(|e| match e {
            StoreError::Sqlite(p, e) if is_read_only(&e) => StoreError::ReadOnly(p, e.to_string()),
            other => other,
        })?;
        Ok(store)
    }

    fn prepare(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let conn = &mut self.conn;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(sql(&path))?;
        // Reading the header finds a file that is not a database.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(&path))?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(sql(&path))?;
        if check != "ok" {
            return Err(StoreError::Sqlite(
                path,
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(check),
                ),
            ));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew(path, version));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql(&path))?;
        // Committed transactions survive the process being killed; only a
        // power cut may lose the last ones.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(&path))?;
        // 1 MiB of page cache (the default is 2): writes are small and
        // sequential, and the Pi's memory is better spent on flows.
        conn.pragma_update(None, "cache_size", -1024)
            .map_err(sql(&path))?;
        for (v, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction().map_err(sql(&path))?;
            tx.execute_batch(m).map_err(sql(&path))?;
            tx.pragma_update(None, "user_version", v as i64 + 1)
                .map_err(sql(&path))?;
            tx.commit().map_err(sql(&path))?;
        }
        Ok(())
    }

    /// The devices remembered, to put back into the inventory.
    pub fn known_devices(&self) -> Result<Vec<KnownDevice>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT key, first_seen, last_seen, packets, bytes, report, evidence, eos_reported FROM devices",
            )
            .map_err(sql(&self.path))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, bool>(7)?,
                ))
            })
            .map_err(sql(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, first, last, packets, bytes, report, evidence, eos) =
                row.map_err(sql(&self.path))?;
            let Some(key) = parse_key(&key) else { continue };
            let mut d = Device::default();
            d.first_seen = first as Nanos;
            d.last_seen = last as Nanos;
            d.packets = packets as u64;
            d.bytes = bytes as u64;
            if let Ok(r) = serde_json::from_str::<serde_json::Value>(&report)
                && let Some(ips) = r["ips"].as_array()
            {
                d.ips = ips
                    .iter()
                    .filter_map(|ip| ip.as_str()?.parse::<IpAddr>().ok())
                    .take(crate::inventory::MAX_IPS)
                    .collect();
            }
            if let Ok(ev) = serde_json::from_str::<Vec<(String, String, String)>>(&evidence) {
                d.evidence = ev
                    .into_iter()
                    .filter_map(|(s, f, v)| Some(((intern(&s)?, intern(&f)?), v)))
                    .take(crate::inventory::MAX_VALUES * 64)
                    .collect();
            }
            out.push(KnownDevice {
                key,
                device: d,
                eos_reported: eos,
            });
        }
        Ok(out)
    }

    /// Writes one tick's worth in one transaction.
    /// `events` with their JSON text.
    pub fn write(
        &mut self,
        devices: &[DeviceUpdate],
        events: &[(Event, String)],
        now: Nanos,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql(&path))?;
        {
            let mut dev = tx
                .prepare_cached(
                    "INSERT INTO devices (key, mac, first_seen, last_seen, packets, bytes, vendor, type, support, eos_reported, report, evidence)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (key) DO UPDATE SET mac = ?2, first_seen = min(first_seen, ?3), last_seen = max(last_seen, ?4),
                       packets = ?5, bytes = ?6, vendor = ?7, type = ?8, support = ?9, eos_reported = ?10, report = ?11, evidence = ?12",
                )
                .map_err(sql(&path))?;
            let mut traffic = tx
                .prepare_cached(
                    "INSERT INTO traffic_daily (key, day, packets, bytes) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key, day) DO UPDATE SET packets = packets + ?3, bytes = bytes + ?4",
                )
                .map_err(sql(&path))?;
            let day = crate::time::rfc3339(now)[..10].to_string();
            for u in devices {
                let key = key_string(&u.key);
                let r = &u.report;
                let first = parse_ts(&r.first_seen);
                let last = parse_ts(&r.last_seen);
                dev.execute(params![
                    key,
                    r.mac,
                    first,
                    last,
                    r.packets as i64,
                    r.bytes as i64,
                    r.vendor,
                    r.kind,
                    r.support.status,
                    u.eos_reported,
                    u.json,
                    serde_json::to_string(&u.evidence).unwrap_or_default(),
                ])
                .map_err(sql(&path))?;
                if u.delta != (0, 0) {
                    traffic
                        .execute(params![key, day, u.delta.0 as i64, u.delta.1 as i64])
                        .map_err(sql(&path))?;
                }
            }
            let mut ev = tx
                .prepare_cached(
                    "INSERT INTO events (ts, kind, severity, event) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql(&path))?;
            for (e, json) in events {
                ev.execute(params![e.ts as i64, e.kind.name(), severity_name(e), json])
                    .map_err(sql(&path))?;
            }
        }
        tx.commit().map_err(sql(&path))
    }
}

pub fn severity_name(e: &Event) -> String {
    serde_json::to_value(e.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A read-only view for `iotwatch devices` and `iotwatch events`.
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(sql(path))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(path))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew(path.to_path_buf(), version));
        }
        if version == 0 {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        Ok(Reader {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Device objects (the report contract), by key.
    pub fn devices(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        Ok(self
            .device_json()?
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    /// Device objects as stored (JSON text), by key.
    pub fn device_json(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT report FROM devices ORDER BY key")
            .map_err(sql(&self.path))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// The latest `n` event objects (JSON text), oldest first.
    pub fn recent_event_json(&self, n: usize) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT event FROM (SELECT id, event FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id")
            .map_err(sql(&self.path))?;
        let rows = st
            .query_map([n as i64], |r| r.get::<_, String>(0))
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// Event objects in time order, from `since` on and of `kind` if given.
    pub fn events(
        &self,
        since: Option<Nanos>,
        kind: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT event FROM events WHERE ts >= ?1 AND (?2 IS NULL OR kind = ?2) ORDER BY ts, id",
            )
            .map_err(sql(&self.path))?;
        let rows = st
            .query_map(params![since.unwrap_or(0) as i64, kind], |r| {
                r.get::<_, String>(0)
            })
            .map_err(sql(&self.path))?;
        let mut out = Vec::new();
        for r in rows {
            let text = r.map_err(sql(&self.path))?;
            if let Ok(v) = serde_json::from_str(&text) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Daily totals per device key: (key, day, packets, bytes).
    pub fn traffic(&self) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT key, day, packets, bytes FROM traffic_daily ORDER BY key, day")
            .map_err(sql(&self.path))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }
}

fn aside_name(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    PathBuf::from(format!("{}.corrupt-{stamp}", path.display()))
}

fn parse_ts(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

pub fn key_string(k: &DeviceKey) -> String {
    match k {
        DeviceKey::Mac(m) => crate::output::report::mac_string(m),
        DeviceKey::Ip(ip) => ip.to_string(),
    }
}

fn parse_key(s: &str) -> Option<DeviceKey> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(DeviceKey::Ip(ip));
    }
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(DeviceKey::Mac(m))
}

/// Evidence names are `&'static str` in the inventory. The names read back
/// from the store are few (the analyzers' signal and field names), so each
/// distinct one is leaked once; past a bound, unknown names are dropped.
fn intern(s: &str) -> Option<&'static str> {
    use std::sync::Mutex;
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.iter().find(|n| **n == s) {
        return Some(n);
    }
    if names.len() >= 512 || s.len() > 64 {
        return None;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.push(leaked);
    Some(leaked)
}

#[cfg(test)]
mod tests;
