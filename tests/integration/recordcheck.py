#!/usr/bin/env python3
"""Checks for test_record.sh (independent of flowvault's C code).

  recordcheck.py frames GOT.pcap SENT.pcap [SENT2.pcap ...]
      every frame sent was recorded exactly once, with its bytes and
      wire length (a multiset comparison; times differ on a live link)
  recordcheck.py timeorder GOT.pcap
      the frames are in time order (an extract over several workers is
      merged by timestamp)
  recordcheck.py consistent FLOWVAULT STORE SENT.pcap
      after a recording was stopped in the middle: every flow listed
      extracts to exactly as many frames as its record counts, each one
      a frame that was sent, in the order sent; the whole store extracts
      to a sub-multiset of what was sent
  recordcheck.py flows IMPORT.csv RECORD.csv [--workers N]
      the flows of a live recording equal those of an import of the same
      capture: per bidirectional key (proto, endpoints, vlan), the packets
      and bytes sent by each endpoint; with --workers N, every key lives
      on exactly one worker and every worker got flows
"""
import collections
import csv
import sys

sys.path.insert(0, 'tests/integration')
import capread  # noqa: E402


def frames(got, sent):
    want = collections.Counter()
    for p in sent:
        want.update((f[4], f[3]) for f in capread.read_frames(p))
    have = collections.Counter((f[4], f[3]) for f in capread.read_frames(got))
    miss, extra = want - have, have - want
    print('frames: sent=%d recorded=%d missing=%d extra=%d' % (
        sum(want.values()), sum(have.values()), sum(miss.values()),
        sum(extra.values())))
    for k in list(miss)[:3]:
        print('  missing %d bytes: %s' % (len(k[0]), k[0][:40].hex()))
    for k in list(extra)[:3]:
        print('  extra %d bytes: %s' % (len(k[0]), k[0][:40].hex()))
    return 1 if miss or extra else 0


def load(path):
    """key -> {endpoint: [packets, bytes]}, and key -> set of workers."""
    agg = collections.defaultdict(lambda: collections.defaultdict(
        lambda: [0, 0]))
    workers = collections.defaultdict(set)
    with open(path) as f:
        for r in csv.DictReader(f):
            c = (r['client'], r['client_port'])
            s = (r['server'], r['server_port'])
            key = (r['proto'], r['vlan']) + tuple(sorted([c, s]))
            agg[key][c][0] += int(r['c2s_packets'])
            agg[key][c][1] += int(r['c2s_bytes'])
            agg[key][s][0] += int(r['s2c_packets'])
            agg[key][s][1] += int(r['s2c_bytes'])
            workers[key].add(r.get('worker', '0'))
    return agg, workers


def flows(imp, rec, nworkers):
    a, _ = load(imp)
    b, wk = load(rec)
    bad = 0
    for k in sorted(set(a) | set(b)):
        x = {e: tuple(v) for e, v in a.get(k, {}).items() if v != [0, 0]}
        y = {e: tuple(v) for e, v in b.get(k, {}).items() if v != [0, 0]}
        if x != y:
            bad += 1
            if bad <= 5:
                print('  differs: %s import %s record %s' % (k, x, y))
    split = [k for k, w in wk.items() if len(w) > 1]
    used = set(w for s in wk.values() for w in s)
    print('flows: %d keys imported, %d recorded, %d differ; '
          'workers used %s, keys on more than one worker %d' % (
              len(a), len(b), bad, ','.join(sorted(used)), len(split)))
    for k in split[:5]:
        print('  split: %s on workers %s' % (k, sorted(wk[k])))
    if nworkers and len(used) != nworkers:
        print('  not every worker got flows')
        return 1
    return 1 if bad or split else 0


def consistent(fv, store, sent):
    import io
    import os
    import subprocess
    import tempfile
    frames_sent = capread.read_frames(sent)
    pos = collections.defaultdict(list)
    for i, f in enumerate(frames_sent):
        pos[f[4]].append(i)
    want = collections.Counter((f[4], f[3]) for f in frames_sent)
    r = subprocess.run([fv, 'flows', '-s', store, '--format', 'csv'],
                       capture_output=True, text=True)
    if r.returncode:
        print('flows failed:', r.stderr)
        return 1
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'f.pcap')
        for fl in rows:
            r = subprocess.run([fv, 'extract', '-s', store, '--flow',
                                fl['id'], '-w', out], capture_output=True,
                               text=True)
            if r.returncode:
                print('flow %s: extract failed: %s' % (fl['id'],
                                                       r.stderr.strip()))
                bad += 1
                continue
            got = capread.read_frames(out)
            last, ok = -1, True
            for p in got:
                nxt = [i for i in pos.get(p[4], []) if i > last]
                if not nxt:
                    ok = False
                    break
                last = nxt[0]
            if not ok:
                print('flow %s: a frame not sent, or out of order' %
                      fl['id'])
                bad += 1
            elif len(got) != int(fl['packets']):
                print('flow %s: %d frames, record says %s' % (
                    fl['id'], len(got), fl['packets']))
                bad += 1
        r = subprocess.run([fv, 'extract', '-s', store, '--bpf', '',
                            '-w', out], capture_output=True, text=True)
        allf = capread.read_frames(out) if r.returncode == 0 else []
        have = collections.Counter((f[4], f[3]) for f in allf)
        extra = have - want
        if r.returncode or extra:
            print('whole store: rc %d, %d frames not sent' % (
                r.returncode, sum(extra.values())))
            bad += 1
    print('consistent: %d flows listed, %d frames stored of %d sent, '
          '%d wrong' % (len(rows), len(allf), len(frames_sent), bad))
    return 1 if bad else 0


def timeorder(got):
    ts = [f[0] for f in capread.read_frames(got)]
    back = sum(1 for a, b in zip(ts, ts[1:]) if b < a)
    print('time order: %d frames, %d steps back in time' % (len(ts), back))
    return 1 if back else 0


def main():
    if sys.argv[1] == 'timeorder':
        return timeorder(sys.argv[2])
    if sys.argv[1] == 'frames':
        return frames(sys.argv[2], sys.argv[3:])
    if sys.argv[1] == 'consistent':
        return consistent(sys.argv[2], sys.argv[3], sys.argv[4])
    if sys.argv[1] == 'flows':
        n = 0
        if len(sys.argv) > 5 and sys.argv[4] == '--workers':
            n = int(sys.argv[5])
        return flows(sys.argv[2], sys.argv[3], n)
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main())
