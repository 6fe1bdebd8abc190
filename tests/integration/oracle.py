#!/usr/bin/python3
"""Checks one capture against independent oracles after `flowvault import`.

For the capture FILE it:
  1. imports FILE into a fresh store;
  2. extracts every flow and the whole store (`extract --bpf ''`);
  3. reads the original with tests/integration/capread.py (not flowvault's
     reader) and asks tshark (reassembly off) for each frame's layers and
     its tcp.stream / udp.stream;
and fails if any of these does not hold:
  A. every frame of FILE is in the store, in order, with the same bytes,
     lengths and nanosecond timestamp (whole-store extraction);
  B. every extracted packet of a flow is a frame of FILE, byte for byte and
     ns for ns, in capture order, and no frame is in two flows;
  C. every frame tshark decodes as IP is in a flow, unless its link type is
     one flowvault does not decode (counted);
  D. each tshark TCP/UDP stream (outside tunnels and ICMP quotes) is one
     flowvault flow holding exactly the stream's frames plus the later IP
     fragments of its datagrams; or it is split into several flows only
     where the idle timeout or a new SYN says so (counted);
  E. each flow's per-direction packet and byte counters equal the sums
     over its frames; and agree with tshark's conversation table
     (expected/*.flows.tsv) except where D counted a documented reason.
With FV_COMPRESS=zstd:L it also imports FILE into a second store with
`--compress zstd:L`, and every extraction of step 2 from that store must
equal the one from the first, byte for byte (Z).
Prints one summary line; exit 0 pass, 1 fail.
"""
import collections
import csv
import io
import ipaddress
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capread import read_frames  # noqa: E402

DECODED_LINKTYPES = {0, 1, 9, 12, 14, 101, 108, 113, 228, 229, 239, 276}
TCP_IDLE_NS = 300 * 10**9
UDP_IDLE_NS = 60 * 10**9
LINGER_NS = 5 * 10**9

FIELDS = ['frame.number', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst',
          'ip.proto', 'ip.frag_offset', 'ipv6.fraghdr.offset',
          'tcp.stream', 'udp.stream', 'tcp.flags.syn', 'tcp.flags.ack',
          'icmp.type', 'icmpv6.type', 'gre.proto', 'vxlan.vni', 'geneve.vni',
          'gtp.teid', 'teredo.orig.addr', 'erspan.version',
          'frame.protocols', 'vlan.id', 'ipv6.routing.type', 'tcp.flags.fin',
          'tcp.flags.reset']


def tshark_frames(path):
    cmd = ['tshark', '-r', path, '-n', '-o', 'ip.defragment:FALSE',
           '-o', 'ipv6.defragment:FALSE', '-T', 'fields',
           '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=|']
    for f in FIELDS:
        cmd += ['-e', f]
    r = subprocess.run(cmd, capture_output=True, text=True)
    out = r.stdout
    if r.returncode != 0:
        raise SystemExit(f'tshark failed on {path}: {r.stderr.strip()}')
    rows = []
    for line in out.splitlines():
        v = line.split('\t')
        v += [''] * (len(FIELDS) - len(v))
        rows.append(dict(zip(FIELDS, v)))
    return rows


def run(args, **kw):
    return subprocess.run(args, capture_output=True, **kw)


def norm(addr):
    return str(ipaddress.ip_address(addr))


def outer_src(t):
    """The source address of the outermost IP header tshark decoded."""
    protos = t.get('frame.protocols', '').split(':')
    for p in protos:
        if p == 'ip' and t.get('ip.src'):
            return t['ip.src'].split('|')[0]
        if p == 'ipv6' and t.get('ipv6.src'):
            return t['ipv6.src'].split('|')[0]
    return ''


def outer_vlan(t):
    return t.get('vlan.id', '').split('|')[0].split(',')[0]


def main():
    fv, path = sys.argv[1], sys.argv[2]
    expected_tsv = sys.argv[3] if len(sys.argv) > 3 else ''
    name = path
    errors, notes = [], collections.Counter()

    def fail(msg):
        if len(errors) < 20:
            errors.append(msg)
        else:
            notes['more errors'] += 1

    frames = read_frames(path)
    tsh = tshark_frames(path)
    if len(tsh) != len(frames):
        fail(f'tshark sees {len(tsh)} frames, the file has {len(frames)}')
    with tempfile.TemporaryDirectory(prefix='fvoracle') as tmp:
        store = os.path.join(tmp, 'store')
        budget = max(256 << 20, 3 * os.path.getsize(path))
        r = run([fv, 'import', '-q', '-r', path, '-s', store,
                 '--max-disk', str(budget)])
        if r.returncode != 0:
            print(f'{name}: import failed rc={r.returncode}: '
                  f'{r.stderr.decode(errors="replace").strip()}')
            return 1
        zstore = None
        if os.environ.get('FV_COMPRESS'):
            zstore = os.path.join(tmp, 'zstore')
            r = run([fv, 'import', '-q', '-r', path, '-s', zstore,
                     '--max-disk', str(budget), '--compress',
                     os.environ['FV_COMPRESS']])
            if r.returncode != 0:
                print(f'{name}: import --compress failed '
                      f'rc={r.returncode}: '
                      f'{r.stderr.decode(errors="replace").strip()}')
                return 1

        def same_compressed(args, out, what):
            """Z: the same extraction from the compressed store."""
            if not zstore:
                return
            zout = out + '.z'
            r = run([fv, 'extract', '-s', zstore] + args + ['-w', zout])
            if r.returncode != 0:
                fail(f'Z: {what} from the compressed store failed: '
                     f'{r.stderr.decode().strip()}')
                return
            with open(out, 'rb') as a, open(zout, 'rb') as b:
                if a.read() != b.read():
                    fail(f'Z: {what} differs in the compressed store')
                else:
                    notes['extractions equal in the compressed store'] += 1
            os.unlink(zout)

        # A. the whole store back, in order.
        allp = os.path.join(tmp, 'all.pcap')
        r = run([fv, 'extract', '-s', store, '--bpf', '', '-w', allp,
                 '--format', 'pcapng'])
        if r.returncode != 0:
            fail(f'extract --bpf "" failed: {r.stderr.decode().strip()}')
            got = []
        else:
            got = read_frames(allp)
            same_compressed(['--bpf', '', '--format', 'pcapng'], allp,
                            'the whole store')
        if len(got) != len(frames):
            fail(f'A: store holds {len(got)} frames, file has {len(frames)}')
        for i, (a, b) in enumerate(zip(frames, got)):
            if a[0] != b[0] or a[3] != b[3] or a[4] != b[4] or a[1] != b[1]:
                fail(f'A: frame {i + 1} differs (ts {a[0]} vs {b[0]}, '
                     f'len {a[3]} vs {b[3]}, linktype {a[1]} vs {b[1]})')
                break
        # The flows.
        r = run([fv, 'flows', '-s', store, '--format', 'csv'])
        if r.returncode != 0:
            print(f'{name}: flows failed: {r.stderr.decode().strip()}')
            return 1
        flows = list(csv.DictReader(io.StringIO(r.stdout.decode())))
        index = collections.defaultdict(collections.deque)
        for i, fr in enumerate(frames):
            index[(fr[0], fr[4])].append(i)
        owner = {}
        members = {}
        for fl in flows:
            fid = int(fl['id'])
            out = os.path.join(tmp, f'f{fid}.pcap')
            sel = ['--flow', str(fid)]
            r = run([fv, 'extract', '-s', store] + sel + ['-w', out])
            if r.returncode == 2 and b'pcapng' in r.stderr:
                notes['flows past 2106, extracted as pcapng'] += 1
                sel += ['--format', 'pcapng']
                r = run([fv, 'extract', '-s', store] + sel + ['-w', out])
            if r.returncode != 0:
                fail(f'B: extract --flow {fid} failed: '
                     f'{r.stderr.decode().strip()}')
                continue
            same_compressed(sel, out, f'flow {fid}')
            idx = []
            for p in read_frames(out):
                q = index.get((p[0], p[4]))
                if not q:
                    fail(f'B: flow {fid}: a packet (ts {p[0]}) that is not '
                         f'a frame of the file, or taken twice')
                    continue
                i = q.popleft()
                if frames[i][3] != p[3]:
                    fail(f'B: flow {fid}: frame {i + 1} origlen differs')
                idx.append(i)
                if i in owner:
                    fail(f'B: frame {i + 1} in flows {owner[i]} and {fid}')
                owner[i] = fid
            if idx != sorted(idx):
                fail(f'B: flow {fid}: packets not in capture order')
            members[fid] = idx
            os.unlink(out)

    # C. IP frames belong to flows.
    for i, t in enumerate(tsh[:len(frames)]):
        has_ip = bool(t['ip.src'] or t['ipv6.src'])
        if has_ip and i not in owner:
            if frames[i][1] not in DECODED_LINKTYPES:
                notes['IP frames on link types we do not decode'] += 1
            else:
                fail(f'C: frame {i + 1} is IP for tshark but in no flow')
        if not has_ip and i in owner:
            notes['frames in a flow that tshark does not decode as IP'] += 1

    # D. tshark streams vs our flows.
    stream_frames = collections.defaultdict(list)
    later_frag = set()
    tunnel_frames, tunnel_streams = set(), set()
    by_id = {int(f['id']): f for f in flows}
    for i, t in enumerate(tsh[:len(frames)]):
        if (t['ip.frag_offset'] not in ('', '0') or
                t['ipv6.fraghdr.offset'] not in ('', '0')):
            later_frag.add(i)
        layers = (t['ip.src'].count('|') + t['ipv6.src'].count('|') +
                  (1 if t['ip.src'] else 0) + (1 if t['ipv6.src'] else 0))
        tunnel = layers > 1 or any(t[k] for k in (
            'gre.proto', 'vxlan.vni', 'geneve.vni', 'gtp.teid',
            'teredo.orig.addr', 'erspan.version'))
        quoted = bool(t['icmp.type'] or t['icmpv6.type'])
        if tunnel:
            notes['tunnelled frames (flow is the outer header)'] += 1
            tunnel_frames.add(i)
            for k, proto in (('tcp.stream', 'tcp'), ('udp.stream', 'udp')):
                for sv in t[k].split('|'):
                    if sv:
                        tunnel_streams.add((proto, sv))
            continue
        if quoted:
            continue
        if t['tcp.stream']:
            stream_frames[('tcp', t['tcp.stream'].split('|')[0])].append(i)
        elif t['udp.stream']:
            stream_frames[('udp', t['udp.stream'].split('|')[0])].append(i)
    explained_streams = set()
    for sid, fr in stream_frames.items():
        fids = [owner.get(i) for i in fr]
        if None in fids:
            if frames[fr[0]][1] not in DECODED_LINKTYPES:
                continue
            fail(f'D: {sid[0]} stream {sid[1]}: frame '
                 f'{fr[fids.index(None)] + 1} in no flow')
            continue
        distinct = sorted(set(fids), key=fids.index)
        if len(distinct) > 1:
            # Allowed only at an idle gap or a new SYN.
            ok = True
            for a, b in zip(fr, fr[1:]):
                if owner[a] == owner[b]:
                    continue
                gap = frames[b][0] - frames[a][0]
                t = tsh[b]
                syn = t['tcp.flags.syn'] in ('1', 'True') and \
                    t['tcp.flags.ack'] in ('0', 'False')
                limit = TCP_IDLE_NS if sid[0] == 'tcp' else UDP_IDLE_NS
                closed = by_id[owner[a]]['end'] in ('fin', 'rst') and \
                    gap >= LINGER_NS
                vlan = outer_vlan(tsh[a]) != outer_vlan(t)
                if not (syn or gap >= limit or closed or vlan):
                    ok = False
            if ok:
                notes['streams split by idle timeout, SYN, FIN/RST '
                      'linger or a different VLAN'] += 1
                explained_streams.add(sid)
            else:
                fail(f'D: {sid[0]} stream {sid[1]} spread over flows '
                     f'{distinct} without an idle gap or SYN')
            continue
        fid = distinct[0]
        extra = set(members.get(fid, [])) - set(fr)
        extra_frag = {i for i in extra if i in later_frag}
        other = extra - extra_frag
        if extra_frag:
            notes['later IP fragments attached to their flow'] += len(
                extra_frag)
            explained_streams.add(sid)
        if other:
            other_streams = {k for k, v in stream_frames.items()
                             if set(v) & other}
            fail(f'D: flow {fid} = {sid[0]} stream {sid[1]} plus frames '
                 f'{sorted(i + 1 for i in other)[:5]} '
                 f'(streams {sorted(other_streams)[:3]})')

    # E. counters.
    for fid, idx in members.items():
        fl = by_id[fid]
        c = [0, 0, 0, 0]
        client = norm(fl['client']) if fl['client'] != '-' else None
        for i in idx:
            t = tsh[i] if i < len(tsh) else {}
            src = outer_src(t)
            if not src:
                # tshark sees no IP (e.g. a link type it treats
                # differently): trust the file order, count as c2s.
                d = 0
            else:
                d = 0 if norm(src) == client else 1
            if (fl['client'] == fl['server'] and
                    fl['client_port'] == fl['server_port']):
                d = None
            if d is not None:
                c[2 * d] += 1
                c[2 * d + 1] += frames[i][3]
        if c != [0, 0, 0, 0] or fl['client'] != fl['server']:
            mine = [int(fl['c2s_packets']), int(fl['c2s_bytes']),
                    int(fl['s2c_packets']), int(fl['s2c_bytes'])]
            if fl['client'] != fl['server'] and mine != c:
                fail(f'E: flow {fid} counters {mine}, frames say {c}')
    agree = 0
    if expected_tsv and os.path.exists(expected_tsv):
        with open(expected_tsv) as f:
            rows = list(csv.DictReader(f, delimiter='\t'))
        keyed = collections.defaultdict(list)
        for fl in flows:
            a = (norm(fl['client']), int(fl['client_port']))
            b = (norm(fl['server']), int(fl['server_port']))
            keyed[(fl['proto'], frozenset((a, b)))].append(fl)
        for row in rows:
            a = (norm(row['addr_a']), int(row['port_a']))
            b = (norm(row['addr_b']), int(row['port_b']))
            cands = keyed.get((row['proto'], frozenset((a, b))), [])
            sid = (row['proto'], row['stream'])
            want = [int(row['frames_a_to_b']), int(row['bytes_a_to_b']),
                    int(row['frames_b_to_a']), int(row['bytes_b_to_a'])]
            match = False
            for fl in cands:
                mine = [int(fl['c2s_packets']), int(fl['c2s_bytes']),
                        int(fl['s2c_packets']), int(fl['s2c_bytes'])]
                if norm(fl['client']) != a[0] or \
                        int(fl['client_port']) != a[1]:
                    mine = mine[2:] + mine[:2]
                if mine == want:
                    match = True
            if match:
                agree += 1
            elif sid in explained_streams:
                notes['conversations that differ for a reason D counted'] += 1
            elif sid in tunnel_streams or any(
                    set(members.get(int(fl['id']), [])) & tunnel_frames
                    for fl in cands):
                notes['conversations that mix tunnelled frames'] += 1
            elif any(tsh[i]['ipv6.routing.type'] for i in
                     stream_frames.get(sid, [])) or any(
                    tsh[i]['ipv6.routing.type']
                    for fl in cands for i in members.get(int(fl['id']), [])):
                notes['conversations with an IPv6 routing header'] += 1
            elif not cands:
                notes['tshark conversations without a flow of that '
                      'tuple (tunnel inner / quoted / reassembled)'] += 1
            else:
                fail(f'E: {row["proto"]} conversation {a}<->{b}: tshark '
                     f'{want}, flowvault '
                     f'{[[fl["c2s_packets"], fl["c2s_bytes"], fl["s2c_packets"], fl["s2c_bytes"]] for fl in cands]}')
    status = 'FAIL' if errors else 'ok'
    extra = '; '.join(f'{v} {k}' for k, v in sorted(notes.items()))
    print(f'{status} {name}: {len(frames)} frames, {len(flows)} flows, '
          f'{agree} conversations agree with tshark'
          + (f'; {extra}' if extra else ''))
    for e in errors:
        print('   ', e)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
