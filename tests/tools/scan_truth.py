#!/usr/bin/env python3
"""Ground truth for scan tests, computed independently of iotwatch.

Reads a classic pcap (Ethernet, IPv4) with the standard library only and
prints, per source address that sent TCP SYNs (without ACK), one JSON line:
{"src", "syns", "fingerprinted" (seq == destination address),
 "distinct_targets"}.

Usage: scan_truth.py FILE.pcap
"""
import json
import struct
import sys


def main(path):
    with open(path, "rb") as f:
        buf = f.read()
    magic = struct.unpack("<I", buf[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", buf[20:24])[0]
    assert linktype == 1, "Ethernet pcap only"
    off = 24
    stats = {}
    while off + 16 <= len(buf):
        _, _, caplen, _ = struct.unpack(endian + "IIII", buf[off:off + 16])
        pkt = buf[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(pkt) < 14 + 20 + 20 or pkt[12:14] != b"\x08\x00":
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or len(ip) < ihl + 20:
            continue
        tcp = ip[ihl:]
        flags = tcp[13]
        if flags & 0x12 != 0x02:
            continue
        src, dst = ip[12:16], ip[16:20]
        seq = tcp[4:8]
        s = stats.setdefault(src, {"syns": 0, "fingerprinted": 0, "targets": set()})
        s["syns"] += 1
        s["targets"].add(dst)
        if seq == dst:
            s["fingerprinted"] += 1
    for src, s in sorted(stats.items()):
        print(json.dumps({
            "src": ".".join(str(b) for b in src),
            "syns": s["syns"],
            "fingerprinted": s["fingerprinted"],
            "distinct_targets": len(s["targets"]),
        }))


if __name__ == "__main__":
    main(sys.argv[1])
