#!/usr/bin/python3
"""Writes a deterministic pcap of N short flows for the query benchmark
(tools/bench/query.sh): fvgen's flows are long (about 100 KB each), so a
store of a million flows from it would take 100 GB; these take ~300 bytes.

Mix: 60% DNS-like UDP (query + answer), 30% short TCP connections
(SYN, SYN-ACK, ACK, request, response, FIN, FIN, ACK), 10% ICMP echo
pairs, between 4096 clients (10.1.0.0/20) and 512 servers
(10.200.0.0/23, a few popular ones), one flow every 100 us, so flows
overlap in time like a busy link. IPv4 checksums are valid.

usage: manyflows.py OUT.pcap N [seed]
"""
import random
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(src, dst, proto, payload, ident):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF,
                    0x4000, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def eth(payload):
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + payload


def addr(a, b, c, d):
    return bytes((a, b, c, d))


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    t0 = 1735689600 * 10**6  # microseconds
    pkts = []  # (ts_us, frame), flushed in time order

    def emit(f):
        pkts.sort(key=lambda p: p[0])
        for ts, fr in pkts:
            f.write(struct.pack("<IIII", ts // 10**6, ts % 10**6, len(fr), len(fr)))
            f.write(fr)
        pkts.clear()

    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            t = t0 + i * 100
            cl = rnd.randrange(4096)
            c = addr(10, 1, cl >> 8, cl & 255)
            sv = min(int(rnd.paretovariate(1.2)) - 1, 511)
            s = addr(10, 200, sv >> 8, sv & 255)
            sport = 1024 + rnd.randrange(64000)
            k = rnd.random()
            if k < 0.6:
                q = struct.pack("!HHHH", sport, 53, 8 + 30, 0) + bytes(30)
                a = struct.pack("!HHHH", 53, sport, 8 + 90, 0) + bytes(90)
                pkts.append((t, eth(ip4(c, s, 17, q, i))))
                pkts.append((t + 300 + rnd.randrange(2000), eth(ip4(s, c, 17, a, i))))
            elif k < 0.9:
                dport = rnd.choice((80, 443, 443, 443, 22, 3306, 8080))
                seq, ack = rnd.getrandbits(32), rnd.getrandbits(32)

                def tcp(sp, dp, sq, ak, fl, data=b""):
                    return struct.pack("!HHIIBBHHH", sp, dp, sq & 0xFFFFFFFF,
                                       ak & 0xFFFFFFFF, 0x50, fl, 65535, 0, 0) + data
                req, rsp = bytes(rnd.randrange(60, 400)), bytes(rnd.randrange(100, 1400))
                steps = [
                    (c, s, tcp(sport, dport, seq, 0, 0x02)),
                    (s, c, tcp(dport, sport, ack, seq + 1, 0x12)),
                    (c, s, tcp(sport, dport, seq + 1, ack + 1, 0x10)),
                    (c, s, tcp(sport, dport, seq + 1, ack + 1, 0x18, req)),
                    (s, c, tcp(dport, sport, ack + 1, seq + 1 + len(req), 0x18, rsp)),
                    (c, s, tcp(sport, dport, seq + 1 + len(req), ack + 1 + len(rsp), 0x11)),
                    (s, c, tcp(dport, sport, ack + 1 + len(rsp), seq + 2 + len(req), 0x11)),
                    (c, s, tcp(sport, dport, seq + 2 + len(req), ack + 2 + len(rsp), 0x10)),
                ]
                dt = 0
                for j, (a_, b_, seg) in enumerate(steps):
                    pkts.append((t + dt, eth(ip4(a_, b_, 6, seg, i * 8 + j))))
                    dt += 200 + rnd.randrange(3000)
            else:
                ident = rnd.randrange(65536)
                e = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + bytes(56)
                e = e[:2] + struct.pack("!H", csum(e)) + e[4:]
                r = struct.pack("!BBHHH", 0, 0, 0, ident, 1) + bytes(56)
                r = r[:2] + struct.pack("!H", csum(r)) + r[4:]
                pkts.append((t, eth(ip4(c, s, 1, e, i))))
                pkts.append((t + 500 + rnd.randrange(5000), eth(ip4(s, c, 1, r, i))))
            # Flush what can no longer be overtaken (flows last < 30 ms).
            if len(pkts) > 20000:
                keep = [p for p in pkts if p[0] >= t - 30000]
                done = [p for p in pkts if p[0] < t - 30000]
                pkts[:] = done
                emit(f)
                pkts[:] = keep
        emit(f)


if __name__ == "__main__":
    main()
