//! Where events go as they happen: a JSON-lines file (or stdout), and the
//! system log (journald reads /dev/log) for medium severity and above.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::os::unix::net::UnixDatagram;

use crate::event::{Event, Severity};

pub struct EventSink {
    file: Option<Box<dyn Write + Send>>,
    syslog: Option<UnixDatagram>,
}

impl EventSink {
    /// `path`: a file appended to, `-` for stdout, or none.
    pub fn open(path: Option<&str>, syslog: bool) -> anyhow::Result<EventSink> {
        use anyhow::Context;
        let file: Option<Box<dyn Write + Send>> = match path {
            None => None,
            Some("-") => Some(Box::new(io::stdout())),
            Some(p) => {
                if let Some(dir) = std::path::Path::new(p)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).with_context(|| format!("--events {p}"))?;
                }
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("--events {p}"))?;
                Some(Box::new(BufWriter::new(f)))
            }
        };
        let syslog = if syslog {
            UnixDatagram::unbound()
                .ok()
                .filter(|s| s.connect("/dev/log").is_ok())
        } else {
            None
        };
        Ok(EventSink { file, syslog })
    }

    /// Writes one event (call [`EventSink::flush`] after a tick's events).
    pub fn write(&mut self, e: &Event, json: &str) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            f.write_all(json.as_bytes())?;
            f.write_all(b"\n")?;
        }
        if let Some(s) = &self.syslog
            && e.severity >= Severity::Medium
        {
            // Facility daemon (3); critical 2, high (error) 3, medium (warning) 4.
            let level = match e.severity {
                Severity::Critical => 2,
                Severity::High => 3,
                _ => 4,
            };
            let msg = format!(
                "<{}>iotwatch[{}]: {}",
                3 * 8 + level,
                std::process::id(),
                crate::output::summary::describe(e)
            );
            // The log being away or full is no reason to stop monitoring.
            let _ = s.send(msg.as_bytes());
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}
