//! Live capture through libpcap (the `pcap` crate): one thread per
//! interface copies frames into reusable batches for the pipeline. Kernel
//! and interface drop counters are read once a second, never per packet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};

use super::{Frame, LinkType, Nanos};
use crate::pipeline::Batch;

/// How a capture is opened (tcpdump's `-s`, `-B`, `-p`, `--immediate-mode`).
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub snaplen: i32,
    /// Kernel buffer in bytes.
    pub buffer_size: i32,
    pub promisc: bool,
    pub immediate: bool,
    pub filter: Option<String>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 65_535,
            buffer_size: 4 << 20,
            promisc: true,
            // Off: libpcap's TPACKET_V3 ring packs packets into blocks
            // handed over every 50 ms (the timeout); immediate mode falls
            // back to one snaplen-sized frame per packet, so a 4 MiB buffer
            // holds only ~60 full-size packets and bursts are dropped.
            immediate: false,
            filter: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "cannot capture on {iface}: permission denied. Run as root, or: sudo setcap cap_net_raw,cap_net_admin+eip {exe}"
    )]
    Permission { iface: String, exe: String },
    #[error("no interface named {0} (`ip link` lists them)")]
    NoSuchInterface(String),
    #[error("invalid filter \"{filter}\": {message}")]
    Filter { filter: String, message: String },
    #[error("cannot capture on {0}: {1}")]
    Other(String, String),
}

/// An open interface, ready to be handed to its thread.
pub struct LiveCapture {
    pub iface: String,
    pub link: LinkType,
    /// The DLT number, for the pcap ring.
    pub dlt: u32,
    cap: pcap::Capture<pcap::Active>,
}

/// Opens `iface` (activation errors turned into what to do about them).
pub fn open(iface: &str, opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
    let other = |e: pcap::Error| LiveError::Other(iface.to_string(), e.to_string());
    let cap = pcap::Capture::from_device(iface)
        .map_err(other)?
        .snaplen(opts.snaplen)
        .buffer_size(opts.buffer_size)
        .promisc(opts.promisc)
        .immediate_mode(opts.immediate)
        // Wake up now and then with no traffic, to flush and to stop.
        .timeout(50)
        .open()
        .map_err(|e| classify(iface, e))?;
    // Non-blocking, waited on with poll(2) below: a stop request is seen
    // within 50 ms whatever libpcap does with its timeout (immediate mode
    // ignores it on Linux).
    let mut cap = cap.setnonblock().map_err(|e| classify(iface, e))?;
    if let Some(f) = &opts.filter {
        cap.filter(f, true).map_err(|e| LiveError::Filter {
            filter: f.clone(),
            message: e.to_string(),
        })?;
    }
    let dlt = cap.get_datalink().0 as u32;
    Ok(LiveCapture {
        iface: iface.to_string(),
        link: LinkType::from_dlt(dlt),
        dlt,
        cap,
    })
}

fn classify(iface: &str, e: pcap::Error) -> LiveError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        LiveError::Permission {
            iface: iface.to_string(),
            exe: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "iotwatch".into()),
        }
    } else if lower.contains("no such device") {
        LiveError::NoSuchInterface(iface.to_string())
    } else {
        LiveError::Other(iface.to_string(), msg)
    }
}

/// Counters of one interface, shared with the metrics and the TUI.
#[derive(Default)]
pub struct IfaceStats {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// libpcap's `ps_drop`: no room in the kernel buffer.
    pub kernel_dropped: AtomicU64,
    /// libpcap's `ps_ifdrop`: dropped by the interface or driver.
    pub if_dropped: AtomicU64,
    /// Frames dropped because the pipeline's queue was full.
    pub queue_dropped: AtomicU64,
}

/// Batches older than this are sent even when not full: events stay prompt
/// on a quiet network.
const FLUSH_AFTER: Duration = Duration::from_millis(20);

/// Where a capture thread's batches go and come back from.
pub struct Pipe {
    pub tx: Sender<Batch>,
    pub spare: Receiver<Batch>,
}

impl LiveCapture {
    /// Captures until `stop` is set or the interface fails; `ring` (if any)
    /// gets every frame too. Returns the error that ended it, if any.
    pub fn run(
        mut self,
        pipe: Pipe,
        stop: Arc<AtomicBool>,
        stats: Arc<IfaceStats>,
        mut ring: Option<super::ring::Ring>,
    ) -> Option<String> {
        let mut batch = pipe.spare.try_recv().unwrap_or_default();
        let mut started = Instant::now();
        let mut last_stats = Instant::now();
        let mut dropped_here = 0u64;
        let mut n = 0u64;
        let mut pending = (0u64, 0u64);
        let publish = |pending: &mut (u64, u64)| {
            stats.packets.fetch_add(pending.0, Relaxed);
            stats.bytes.fetch_add(pending.1, Relaxed);
            *pending = (0, 0);
        };
        let result = loop {
            if stop.load(Relaxed) {
                break None;
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    let ts = p.header.ts.tv_sec as Nanos * 1_000_000_000
                        + p.header.ts.tv_usec as Nanos * 1_000;
                    let fr = Frame {
                        ts,
                        link: self.link,
                        data: p.data,
                        orig_len: p.header.len,
                    };
                    if let Some(r) = &mut ring {
                        r.write(&fr);
                    }
                    if batch.is_empty() {
                        started = Instant::now();
                    }
                    batch.push(&fr);
                    // Counted in the batch's thread-local totals; published
                    // with each batch, not per packet.
                    pending.0 += 1;
                    pending.1 += u64::from(p.header.len);
                    n += 1;
                    if batch.full() || (n.is_multiple_of(64) && started.elapsed() >= FLUSH_AFTER) {
                        publish(&mut pending);
                        send(&pipe, &mut batch, &stats, &mut dropped_here);
                    }
                }
                Err(pcap::Error::TimeoutExpired) => wait_readable(&self.cap, 50),
                Err(e) => break Some(format!("capture on {} failed: {e}", self.iface)),
            }
            if n.is_multiple_of(1024) || batch.is_empty() || started.elapsed() >= FLUSH_AFTER {
                if !batch.is_empty() && started.elapsed() >= FLUSH_AFTER {
                    publish(&mut pending);
                    send(&pipe, &mut batch, &stats, &mut dropped_here);
                }
                if last_stats.elapsed() >= Duration::from_secs(1) {
                    last_stats = Instant::now();
                    self.read_stats(&stats);
                    if let Some(r) = &mut ring {
                        r.flush();
                    }
                }
            }
        };
        if !batch.is_empty() {
            publish(&mut pending);
            send(&pipe, &mut batch, &stats, &mut dropped_here);
        }
        self.read_stats(&stats);
        if let Some(r) = &mut ring {
            r.flush();
        }
        result
    }

    fn read_stats(&mut self, stats: &IfaceStats) {
        if let Ok(s) = self.cap.stats() {
            stats.kernel_dropped.store(u64::from(s.dropped), Relaxed);
            stats.if_dropped.store(u64::from(s.if_dropped), Relaxed);
        }
    }
}

fn wait_readable(cap: &pcap::Capture<pcap::Active>, ms: i32) {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: cap.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, ms) };
}

/// How long a capture thread waits for the pipeline before dropping: while
/// it waits, libpcap's kernel buffer holds the arriving packets, so a short
/// stall of analysis (a tick with many new devices) loses nothing.
const PIPELINE_WAIT: Duration = Duration::from_millis(250);

/// Hands the batch on; when the pipeline stays behind for
/// [`PIPELINE_WAIT`], drops it (counted), so capture itself never stops.
fn send(pipe: &Pipe, batch: &mut Batch, stats: &IfaceStats, dropped: &mut u64) {
    let fresh = pipe.spare.recv_timeout(PIPELINE_WAIT).ok();
    let Some(fresh) = fresh else {
        let n = batch.len() as u64;
        *dropped += n;
        stats.queue_dropped.fetch_add(n, Relaxed);
        batch.drain(|_| {});
        return;
    };
    let full = std::mem::replace(batch, fresh);
    if let Err(SendTimeoutError::Timeout(b) | SendTimeoutError::Disconnected(b)) =
        pipe.tx.send_timeout(full, PIPELINE_WAIT)
    {
        let n = b.len() as u64;
        *dropped += n;
        stats.queue_dropped.fetch_add(n, Relaxed);
    }
}
