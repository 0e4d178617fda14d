//! Writes `demo/home.pcap`, the small capture the README runs: a home LAN
//! built from scratch (no real traffic is copied). It grows as detectors land.
//!
//! Now: a router, a camera offering telnet and HTTP, a phone browsing, a
//! smart plug using DNS; each asking DHCP for an address with its hostname
//! and vendor class (so the report can say what each is); the phone logging into the camera's telnet with its
//! factory password (root/xc3511, in Mirai's list) and into its web page with
//! a password of its own; the camera SYN-scanning the Internet on 23/2323 the
//! way Mirai does (sequence number = destination address) and trying Mirai's
//! dictionary on the telnet of hosts that answered (TEST-NET addresses).
//!
//!     cargo run --example make-demo [-- OUT]

use etherparse::PacketBuilder;

const ROUTER: [u8; 6] = [0x00, 0x1d, 0x7e, 0x10, 0x20, 0x30];
const CAMERA: [u8; 6] = [0x00, 0x12, 0x12, 0x44, 0x55, 0x66];
const PHONE: [u8; 6] = [0x3c, 0x28, 0x6d, 0x01, 0x02, 0x03];
const PLUG: [u8; 6] = [0x50, 0xc7, 0xbf, 0xaa, 0xbb, 0xcc];

struct Pcap {
    bytes: Vec<u8>,
    t_us: u64,
}

impl Pcap {
    fn new() -> Pcap {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        bytes.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        Pcap {
            bytes,
            t_us: 1_764_000_000_000_000,
        }
    }

    fn put(&mut self, step_us: u64, frame: Vec<u8>) {
        self.t_us += step_us;
        for x in [
            (self.t_us / 1_000_000) as u32,
            (self.t_us % 1_000_000) as u32,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            self.bytes.extend_from_slice(&x.to_le_bytes());
        }
        self.bytes.extend_from_slice(&frame);
    }
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    src: [u8; 6],
    dst: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    sp: u16,
    dp: u16,
    seq: u32,
    ack: Option<u32>,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, 64)
        .tcp(sp, dp, seq, 29200);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("frame builds");
    v
}

fn udp(
    src: [u8; 6],
    dst: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    sp: u16,
    dp: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, 64)
        .udp(sp, dp)
        .write(&mut v, payload)
        .expect("frame builds");
    v
}

/// A DHCP request from `mac` with its hostname and vendor class.
fn dhcp_request(mac: [u8; 6], hostname: &str, vendor_class: &str) -> Vec<u8> {
    let mut d = vec![0u8; 240];
    d[0] = 1; // BOOTREQUEST
    d[1] = 1;
    d[2] = 6;
    d[28..34].copy_from_slice(&mac);
    d[236..240].copy_from_slice(&[99, 130, 83, 99]);
    d.extend_from_slice(&[53, 1, 3]);
    d.extend_from_slice(&[55, 4, 1, 3, 6, 15]);
    for (code, v) in [(12u8, hostname), (60, vendor_class)] {
        d.push(code);
        d.push(v.len() as u8);
        d.extend_from_slice(v.as_bytes());
    }
    d.push(255);
    udp(mac, [0xff; 6], [0; 4], [255; 4], 68, 67, &d)
}

/// A TLS 1.2 ClientHello record asking for `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    let name = sni.as_bytes();
    let list_len = name.len() + 3;
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    ext.extend_from_slice(&[0, 13, 0, 6, 0, 4, 4, 3, 8, 4]); // signature algorithms
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0xc0, 0x30]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A whole TCP conversation: handshake, request/answer exchanges, close.
fn conversation(
    p: &mut Pcap,
    c: ([u8; 6], [u8; 4], u16),
    s: ([u8; 6], [u8; 4], u16),
    exchanges: &[(&[u8], &[u8])],
) {
    let (cm, ci, cp) = c;
    let (sm, si, sp) = s;
    let (mut cs, mut ss) = (1000u32, 5000u32);
    p.put(1000, tcp(cm, sm, ci, si, cp, sp, cs, None, "S", b""));
    p.put(300, tcp(sm, cm, si, ci, sp, cp, ss, Some(cs + 1), "S", b""));
    cs += 1;
    ss += 1;
    p.put(200, tcp(cm, sm, ci, si, cp, sp, cs, Some(ss), "", b""));
    for (request, answer) in exchanges {
        if !request.is_empty() {
            p.put(200, tcp(cm, sm, ci, si, cp, sp, cs, Some(ss), "P", request));
            cs += request.len() as u32;
        }
        if !answer.is_empty() {
            p.put(5000, tcp(sm, cm, si, ci, sp, cp, ss, Some(cs), "P", answer));
            ss += answer.len() as u32;
        }
    }
    p.put(200, tcp(cm, sm, ci, si, cp, sp, cs, Some(ss), "F", b""));
    p.put(200, tcp(sm, cm, si, ci, sp, cp, ss, Some(cs + 1), "F", b""));
    p.put(
        200,
        tcp(cm, sm, ci, si, cp, sp, cs + 1, Some(ss + 1), "", b""),
    );
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "demo/home.pcap".into());
    let mut p = Pcap::new();
    let (router_ip, cam_ip, phone_ip, plug_ip) = (
        [192, 168, 1, 1],
        [192, 168, 1, 20],
        [192, 168, 1, 30],
        [192, 168, 1, 40],
    );
    // Each device asks for an address, saying what it is.
    p.put(1_000, dhcp_request(CAMERA, "IPCAM-20", "udhcp 1.19.3"));
    p.put(1_000, dhcp_request(PHONE, "Pixel-5", "android-dhcp-11"));
    p.put(1_000, dhcp_request(PLUG, "HS110", "udhcp 1.21.1"));
    // The plug and the phone resolve names through the router: the plug its
    // maker's cloud.
    let queries: [(&[u8], _, _); 2] = [
        (b"\x04devs\x0btplinkcloud\x03com\x00", PLUG, plug_ip),
        (b"\x03www\x07example\x03com\x00", PHONE, phone_ip),
    ];
    for (i, (name, m, ip)) in queries.into_iter().enumerate() {
        let port = 40000 + i as u16;
        let mut q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        q.extend_from_slice(name);
        q.extend_from_slice(b"\x00\x01\x00\x01");
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        p.put(10_000, udp(m, ROUTER, ip, router_ip, port, 53, &q));
        p.put(2_000, udp(ROUTER, m, router_ip, ip, 53, port, &a));
    }
    // The phone opens the camera's web page with its own (not default) password.
    conversation(
        &mut p,
        (PHONE, phone_ip, 51000),
        (CAMERA, cam_ip, 80),
        &[(
            b"GET / HTTP/1.1\r\nHost: 192.168.1.20\r\nUser-Agent: Mozilla/5.0 (Linux; Android 11; Pixel 5 Build/RQ3A.210805.001) AppleWebKit/537.36 Chrome/92.0 Mobile Safari/537.36\r\nAuthorization: Basic b3duZXI6c2VjcmV0LWhvcnNlLTQy\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nServer: Hikvision-Webs\r\nContent-Length: 0\r\n\r\n",
        )],
    );
    // Then logs into the camera's telnet with the factory password, one of
    // Mirai's: root / xc3511.
    conversation(
        &mut p,
        (PHONE, phone_ip, 51001),
        (CAMERA, cam_ip, 23),
        &[
            (
                b"\xff\xfd\x01\xff\xfd\x03",
                b"\xff\xfb\x01\xff\xfb\x03\r\n(none) login: ",
            ),
            (b"root\r\n", b"root\r\nPassword: "),
            (
                b"xc3511\r\n",
                b"\r\n\r\nBusyBox v1.19.3 (2016-03-04) built-in shell (ash)\r\n# ",
            ),
            (b"exit\r\n", b""),
        ],
    );
    // The phone browses the web.
    let hello = client_hello("www.example.com");
    for i in 0..5u16 {
        conversation(
            &mut p,
            (PHONE, phone_ip, 52000 + i),
            (ROUTER, [93, 184, 216, 34], 443),
            &[(&hello, b"\x16\x03\x03\x00\x05world")],
        );
    }
    // The camera, now infected, tries Mirai's dictionary on the telnet of
    // Internet hosts that answered its scan (TEST-NET addresses: nothing real).
    let pairs: [(&[u8], &[u8]); 6] = [
        (b"root", b"vizxv"),
        (b"admin", b"admin"),
        (b"root", b"888888"),
        (b"support", b"support"),
        (b"root", b"default"),
        (b"guest", b"12345"),
    ];
    for (i, (user, pass)) in pairs.iter().enumerate() {
        let target = [203, 0, 113, 10 + (i / 2) as u8];
        let u = [*user, b"\r\n"].concat();
        let pw = [*pass, b"\r\n"].concat();
        conversation(
            &mut p,
            (CAMERA, cam_ip, 45000 + i as u16),
            (ROUTER, target, 23),
            &[
                (b"", b"\r\nlogin: "),
                (&u, b"Password: "),
                (&pw, b"\r\nLogin incorrect\r\n\r\nlogin: "),
            ],
        );
    }
    // The camera scans like Mirai: SYNs to random public addresses on 23 and
    // 2323 (about 9:1), sequence number equal to the destination address.
    let mut x: u32 = 0x1234_5678;
    for i in 0..400u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let dst = [
            (x >> 24) as u8 % 200 + 11,
            (x >> 16) as u8,
            (x >> 8) as u8,
            x as u8,
        ];
        let port = if i % 10 == 9 { 2323 } else { 23 };
        let seq = u32::from_be_bytes(dst);
        p.put(
            2_000,
            tcp(
                CAMERA,
                ROUTER,
                cam_ip,
                dst,
                40000 + (i % 5000) as u16,
                port,
                seq,
                None,
                "S",
                b"",
            ),
        );
    }
    std::fs::write(&out, &p.bytes).expect("write demo capture");
    eprintln!("wrote {out} ({} bytes)", p.bytes.len());
}
