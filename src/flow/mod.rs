//! Flow stage: conversations keyed by symmetric 5-tuple, in a bounded table.

mod key;
mod reassembly;
mod syn_cache;
mod table;

pub use key::{ALL_BUCKETS, FlowKey, SHARD_BUCKETS, Side, shard_bucket_of16};
pub use reassembly::{Chunk, STREAM_CAP, Stream};
pub use table::{FlowStats, FlowTable, PacketView, Timeouts};

use crate::capture::Nanos;
use crate::decode::Mac;
use crate::proto::{Dir, FlowAnalyzer, FlowInfo};

/// TCP connection progress, as far as a passive observer can tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpProgress {
    /// The client's SYN was seen.
    pub syn: bool,
    /// The server answered with SYN-ACK: its port is open.
    pub syn_ack: bool,
    /// The client acknowledged the SYN-ACK: the handshake completed.
    pub established: bool,
    /// FIN seen from [client, server].
    pub fin: [bool; 2],
    pub rst: bool,
    /// First packet seen was not a SYN: the flow began before the capture.
    pub midstream: bool,
}

impl TcpProgress {
    pub fn closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }
}

/// What a flow does with its payload.
#[derive(Default)]
pub enum App {
    /// No payload seen yet.
    #[default]
    Undecided,
    /// No analyzer claimed it by port; the next payloads are probed (at most this many).
    Probing(u8),
    /// No analyzer wants it: payload is ignored.
    Ignored,
    Active(Box<ActiveApp>),
}

pub struct ActiveApp {
    pub analyzer: Box<dyn FlowAnalyzer>,
    pub info: FlowInfo,
    /// Reassembly per direction: [to server, to client].
    pub streams: [Stream; 2],
}

/// One conversation. Small and fixed-size: analyzer state lives behind `app`
/// only for the flows an analyzer claimed.
#[derive(Default)]
pub struct Flow {
    pub key: FlowKey,
    /// The side that opened the flow.
    pub client: Option<Side>,
    pub first_ts: Nanos,
    pub last_ts: Nanos,
    /// [to server, to client].
    pub packets: [u32; 2],
    pub bytes: [u64; 2],
    /// Link-layer sources of [client, server] as first seen.
    pub macs: [Option<Mac>; 2],
    pub tcp: TcpProgress,
    /// Initial sequence numbers of [client, server], valid when
    /// `tcp.syn` / `tcp.syn_ack` are set.
    pub isn: [u32; 2],
    pub app: App,
    // Table bookkeeping: the table's time at the flow's last packet (it goes
    // idle by that, see `FlowTable::update`), and the intrusive LRU list it
    // is on: its shard bucket's, of its timeout class (bucket × 4 + class).
    last_clock: Nanos,
    prev: u32,
    next: u32,
    list: u8,
}

impl Flow {
    pub fn client_side(&self) -> Side {
        self.client.unwrap_or(Side::Lo)
    }

    /// Direction of a packet sent by `side`.
    pub fn dir_of(&self, side: Side) -> Dir {
        if side == self.client_side() {
            Dir::ToServer
        } else {
            Dir::ToClient
        }
    }

    pub fn is_tcp(&self) -> bool {
        self.key.proto == 6
    }

    /// The server answered: a completed TCP handshake, or a UDP reply.
    pub fn answered(&self) -> bool {
        if self.is_tcp() {
            self.tcp.syn_ack
        } else {
            self.packets[1] > 0
        }
    }
}

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Closed,
    Idle,
    /// Evicted to make room: the table was full.
    Evicted,
    /// End of the capture.
    Finished,
}
