"""Minimal pcap / pcapng reader for the tests: an implementation
independent of flowvault's C readers (written from the file format specs),
so the tests compare two readings of the same bytes.

read_frames(path) -> list of (ts_ns, linktype, caplen, origlen, bytes)
"""
import struct


def _pcap(data):
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        e = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '>'
    else:
        raise ValueError('not pcap')
    nano = magic in (b'\x4d\x3c\xb2\xa1', b'\xa1\xb2\x3c\x4d')
    linktype = struct.unpack(e + 'I', data[20:24])[0] & 0x0fffffff
    off, out = 24, []
    while off + 16 <= len(data):
        sec, frac, cap, orig = struct.unpack(e + 'IIII', data[off:off + 16])
        if off + 16 + cap > len(data):
            break
        ns = sec * 10**9 + (frac if nano else frac * 1000)
        out.append((ns, linktype, cap, orig, data[off + 16:off + 16 + cap]))
        off += 16 + cap
    return out


def _pcapng(data):
    off, out, e, ifs = 0, [], '<', []
    while off + 12 <= len(data):
        btype = struct.unpack('<I', data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8:off + 12]
            e = '<' if bom == b'\x4d\x3c\x2b\x1a' else '>'
            ifs = []
        btype, blen = struct.unpack(e + 'II', data[off:off + 8])
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # IDB
            lt, _, snap = struct.unpack(e + 'HHI', body[:8])
            res, tsoff = 10**6, 0
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack(e + 'HH', body[o:o + 4])
                val = body[o + 4:o + 4 + olen]
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    v = val[0]
                    res = 2 ** (v & 0x7f) if v & 0x80 else 10 ** v
                if code == 14 and olen == 8:
                    tsoff = struct.unpack(e + 'q', val)[0]
                o += 4 + ((olen + 3) & ~3)
            ifs.append((lt, snap, res, tsoff))
        elif btype == 6:  # EPB
            iid, hi, lo, cap, orig = struct.unpack(e + 'IIIII', body[:20])
            lt, snap, res, tsoff = ifs[iid]
            ts = (hi << 32) | lo
            ns = ts * 10**9 // res + tsoff * 10**9
            out.append((ns, lt, cap, orig, body[20:20 + cap]))
        elif btype == 3:  # SPB
            orig = struct.unpack(e + 'I', body[:4])[0]
            lt, snap, res, tsoff = ifs[0]
            cap = min(orig, snap or orig, len(body) - 4)
            out.append((0, lt, cap, orig, body[4:4 + cap]))
        elif btype == 2:  # obsolete PB
            iid, _, hi, lo, cap, orig = struct.unpack(e + 'HHIIII', body[:20])
            lt, snap, res, tsoff = ifs[iid]
            ts = (hi << 32) | lo
            out.append((ts * 10**9 // res + tsoff * 10**9, lt, cap, orig,
                        body[20:20 + cap]))
        off += blen
    return out


def read_frames(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:4] == b'\x0a\x0d\x0d\x0a':
        return _pcapng(data)
    return _pcap(data)
