//! One worker: decode → flows → analyzers → inventory, for the frames of its
//! shard. With `--threads 1` the only worker runs on the reading thread.

use std::sync::Arc;

use crate::capture::{Frame, Nanos};
use std::net::IpAddr;

use crate::decode::{self, Fragment, Packet, Transport, tcp_flags};
use crate::detect::scan::{ScanDetector, Syn, odd_tcp_flags};
use crate::flow::{
    ActiveApp, App, Chunk, EndReason, Flow, FlowKey, FlowTable, PacketView, Side, Stream,
};
use crate::inventory::{Device, DeviceKey, Inventory, SynSignature};
use crate::proto::{Dir, Endpoint, FlowInfo, L4, Output, PROBE_PACKETS, Probe, Progress, Registry};

use super::{Config, Counters};

pub struct Worker {
    flows: FlowTable,
    inventory: Inventory,
    scans: ScanDetector,
    registry: Arc<Registry>,
    out: Output,
    config: Arc<Config>,
    counters: Counters,
    /// The pipeline's time: the latest time of any frame read so far.
    clock: Nanos,
}

/// What a worker hands back at the end.
pub struct WorkerResult {
    /// Its devices in key order (`Inventory::into_sorted`), sorted here
    /// while the other workers finish too.
    pub devices: Vec<(DeviceKey, Device)>,
    /// Its inventory was full and evicted or left out a device.
    pub devices_over_cap: bool,
    pub scans: ScanDetector,
    pub out: Output,
    pub counters: Counters,
}

impl Worker {
    /// A worker for the packets of the shard `buckets` (a mask, see
    /// `flow::SHARD_BUCKETS`).
    pub fn new(config: Arc<Config>, registry: Arc<Registry>, buckets: u64) -> Worker {
        Worker {
            flows: FlowTable::new(config.max_flows, config.syn_cache, config.timeouts, buckets),
            inventory: Inventory::with_max_devices(config.max_devices, config.when_full),
            scans: ScanDetector::default(),
            registry,
            out: Output::default(),
            config,
            counters: Counters::default(),
            clock: 0,
        }
    }

    /// The next frame of a worker that is given every frame.
    #[inline]
    pub fn frame(&mut self, frame: &Frame<'_>) {
        self.frame_at(frame, frame.ts);
    }

    /// The next frame of this worker's shard, read when the pipeline's time
    /// was `clock`. A shard's worker sees only its own frames, so it is told
    /// of a time the others' frames reached: flows go idle by that time
    /// (`FlowTable::update`).
    #[inline]
    pub fn frame_at(&mut self, frame: &Frame<'_>, clock: Nanos) {
        self.clock = self.clock.max(clock);
        self.counters.packets += 1;
        self.counters.bytes += u64::from(frame.orig_len);
        // Matched by reference: moving the 144-byte packet out of the Result
        // cost a memcpy call per packet.
        match &decode::decode(frame) {
            Ok(p) => self.packet(p),
            Err(_) => self.counters.decode_errors += 1,
        }
    }

    fn packet(&mut self, p: &Packet<'_>) {
        // A SYN goes into the SYN cache last (`FlowTable::update`): its
        // slot, a miss to memory, is fetched while the inventory, the scan
        // detector and the flow key take the packet. On mirai-scan the
        // insert had waited on it for a quarter of the run. Only a SYN pays
        // for its key twice (here and in its `PacketView`). A later
        // fragment has no transport header, so it never gets here.
        if let (Some(ip), Transport::Tcp(t)) = (&p.ip, &p.transport)
            && t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
        {
            let (key, _) = FlowKey::of16(ip.src16, ip.dst16, t.src_port, t.dst_port, ip.proto);
            self.flows.prefetch_syn(&key);
        }
        self.inventory.observe(p, &self.config.home);
        if let Some(arp) = p.arp
            && arp.op == 1
            && !arp.sender_ip.is_unspecified()
            && arp.sender_ip != arp.target_ip
        {
            self.scans.arp_request(
                p.ts,
                IpAddr::V4(arp.sender_ip),
                arp.sender_mac,
                IpAddr::V4(arp.target_ip),
            );
        }
        let Some(ip) = p.ip else { return };
        if ip.fragment != Fragment::No {
            self.counters.fragments += 1;
            if ip.fragment == Fragment::Later {
                return;
            }
        }
        let (view, payload) = PacketView::of(p, &ip);
        let (side, seq, flags) = (view.side, view.seq, view.tcp_flags);
        match p.transport {
            Transport::Tcp(t) if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN => {
                let syn = Syn {
                    ts: p.ts,
                    src: ip.src(),
                    src_mac: p.src_mac,
                    dst: ip.dst(),
                    dst_port: t.dst_port,
                    seq: t.seq,
                    window: t.window,
                    has_options: !t.options.is_empty(),
                };
                self.scans.syn(&syn, &self.config.home);
                self.inventory.syn(
                    p,
                    || SynSignature::of(ip.v6, ip.ttl, t.window, t.options),
                    &self.config.home,
                );
            }
            Transport::Tcp(t) if odd_tcp_flags(t.flags) => {
                self.scans.odd_probe(p.ts, ip.src(), p.src_mac)
            }
            // ICMP or ICMPv6 echo request.
            Transport::Icmp { kind: 8 | 128, .. } => {
                self.scans.ping(p.ts, ip.src(), p.src_mac, ip.dst())
            }
            // ICMP timestamp request: host discovery, not used by modern stacks.
            Transport::Icmp { kind: 13, .. } if !ip.v6 => {
                self.scans.odd_probe(p.ts, ip.src(), p.src_mac)
            }
            _ => {}
        }
        let Worker {
            flows,
            inventory,
            scans,
            out,
            config,
            registry,
            clock,
            ..
        } = self;
        let idx = flows.update(&view, *clock, &mut |f, why| {
            flow_ended(f, why, inventory, scans, out, config)
        });
        let l4 = match ip.proto {
            6 => L4::Tcp,
            17 => L4::Udp,
            _ => return,
        };
        if let Some(idx) = idx
            && !payload.is_empty()
        {
            let seg = Segment {
                side,
                ts: p.ts,
                seq,
                syn: flags.is_some_and(|f| f & tcp_flags::SYN != 0),
                payload,
            };
            dispatch(flows.flow_mut(idx), l4, registry, out, &seg);
        }
        self.absorb_facts();
    }

    /// Facts go into the inventory, tool sightings to the scan detector, as
    /// they come, so they never pile up.
    fn absorb_facts(&mut self) {
        if !self.out.facts.is_empty() {
            for f in self.out.facts.list.drain(..) {
                self.inventory.add_fact(f, &self.config.home);
            }
        }
        for (ts, client, tool) in self.out.tools.drain(..) {
            self.scans.tool_request(ts, client.ip, client.mac, tool);
        }
    }

    /// Ends the flows idle at wall-clock time `now` (live capture).
    pub fn expire(&mut self, now: Nanos) {
        let Worker {
            flows,
            inventory,
            scans,
            out,
            config,
            ..
        } = self;
        flows.expire_at(now, &mut |f, why| {
            flow_ended(f, why, inventory, scans, out, config)
        });
        self.absorb_facts();
    }

    /// The events found since the last call (logins), for live output.
    pub fn take_events(&mut self) -> Vec<crate::event::Event> {
        std::mem::take(&mut self.out.events)
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn inventory_mut(&mut self) -> &mut Inventory {
        &mut self.inventory
    }

    pub fn scans(&self) -> &ScanDetector {
        &self.scans
    }

    /// Counters so far, with the flow table's figures.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.flows = self.flows.stats();
        c.decode_errors += self.out.decode_errors;
        c
    }

    /// Flows open now.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Ends every flow and hands back what this worker found.
    pub fn finish(mut self) -> WorkerResult {
        let Worker {
            flows,
            inventory,
            scans,
            out,
            config,
            ..
        } = &mut self;
        flows.finish(&mut |f, why| flow_ended(f, why, inventory, scans, out, config));
        self.absorb_facts();
        self.counters.flows = self.flows.stats();
        self.counters.decode_errors += std::mem::take(&mut self.out.decode_errors);
        WorkerResult {
            devices_over_cap: self.inventory.over_cap,
            devices: self.inventory.into_sorted(),
            scans: self.scans,
            out: self.out,
            counters: self.counters,
        }
    }
}

/// A payload-carrying packet as the analyzers see it.
struct Segment<'a> {
    side: Side,
    ts: Nanos,
    seq: u32,
    syn: bool,
    payload: &'a [u8],
}

fn flow_info(f: &Flow, l4: L4) -> FlowInfo {
    let c = f.client_side();
    let s = c.other();
    FlowInfo {
        l4,
        client: Endpoint {
            ip: f.key.addr(c),
            port: f.key.port(c),
            mac: f.macs[0],
        },
        server: Endpoint {
            ip: f.key.addr(s),
            port: f.key.port(s),
            mac: f.macs[1],
        },
        start: f.first_ts,
    }
}

/// Finds the flow's analyzer on its first payload, then feeds it. A flow no
/// analyzer wants becomes `Ignored` and is never looked at again.
fn dispatch(f: &mut Flow, l4: L4, registry: &Registry, out: &mut Output, seg: &Segment<'_>) {
    let dir = f.dir_of(seg.side);
    // Chosen on the flow's first payload: the streams start right after the
    // handshake. Chosen later (a probe waited through a SOCKS greeting or a
    // STARTTLS exchange): they start at the bytes seen from now on.
    let first_payload = matches!(f.app, App::Undecided);
    let chosen = match &mut f.app {
        App::Ignored => return,
        App::Active(_) => None,
        App::Undecided => {
            let info = flow_info(f, l4);
            match registry.by_port(&info) {
                Some(i) => Some(i),
                None if registry.has_probers() => {
                    probe(f, l4, registry, dir, seg.payload, PROBE_PACKETS)
                }
                None => {
                    f.app = App::Ignored;
                    return;
                }
            }
        }
        App::Probing(left) => {
            let left = *left;
            probe(f, l4, registry, dir, seg.payload, left)
        }
    };
    if let Some(i) = chosen {
        let info = flow_info(f, l4);
        let mut streams = [Stream::default(), Stream::default()];
        if first_payload && f.tcp.syn {
            streams[0].start_at(f.isn[0].wrapping_add(1));
        }
        if first_payload && f.tcp.syn_ack {
            streams[1].start_at(f.isn[1].wrapping_add(1));
        }
        f.app = App::Active(Box::new(ActiveApp {
            analyzer: registry.start(i, &info),
            info,
            streams,
        }));
    }
    let App::Active(app) = &mut f.app else { return };
    let ActiveApp {
        analyzer,
        info,
        streams,
    } = app.as_mut();
    let progress = match l4 {
        L4::Tcp => {
            let mut progress = Progress::More;
            let stream = &mut streams[usize::from(dir == Dir::ToClient)];
            stream.segment(seg.seq, seg.syn, seg.payload, &mut |c: Chunk<'_>| {
                if progress == Progress::More {
                    progress = analyzer.data(info, dir, seg.ts, c, out);
                }
            });
            if streams[0].capped() && streams[1].capped() {
                Progress::Done
            } else {
                progress
            }
        }
        L4::Udp => analyzer.data(info, dir, seg.ts, Chunk::Data(seg.payload), out),
    };
    if progress == Progress::Done {
        f.app = App::Ignored;
    }
}

/// Asks the probing analyzers; `Unsure` keeps the flow probing for at most
/// `left` payload packets.
fn probe(
    f: &mut Flow,
    l4: L4,
    registry: &Registry,
    dir: Dir,
    payload: &[u8],
    left: u8,
) -> Option<usize> {
    match registry.probe(l4, dir, payload) {
        Ok(i) => Some(i),
        Err(Probe::Unsure) if left > 1 => {
            f.app = App::Probing(left - 1);
            None
        }
        Err(_) => {
            f.app = App::Ignored;
            None
        }
    }
}

fn flow_ended(
    mut f: Flow,
    _why: EndReason,
    inventory: &mut Inventory,
    scans: &mut ScanDetector,
    out: &mut Output,
    config: &Config,
) {
    // A TCP first contact: tell the scan detector how it ended.
    if f.tcp.syn {
        let c = f.client_side();
        let answered = if f.tcp.syn_ack {
            Some(true)
        } else if f.tcp.rst {
            Some(false)
        } else {
            None
        };
        scans.outcome(
            f.key.addr(c),
            f.key.addr(c.other()),
            f.key.port(c.other()),
            answered,
            f.first_ts,
            f.last_ts,
        );
    }
    if let App::Active(app) = &mut f.app {
        let ActiveApp {
            analyzer,
            info,
            streams,
        } = app.as_mut();
        for (i, s) in streams.iter_mut().enumerate() {
            let dir = if i == 0 { Dir::ToServer } else { Dir::ToClient };
            s.flush(&mut |c| {
                analyzer.data(info, dir, f.last_ts, c, out);
            });
        }
        analyzer.end(info, f.last_ts, out);
    }
    inventory.flow_ended(&f, &config.home);
}
