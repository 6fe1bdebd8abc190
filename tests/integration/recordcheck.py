#!/usr/bin/env python3
"""Checks for test_record.sh (independent of flowvault's C code).

  recordcheck.py frames SENT.pcap GOT.pcap
      every frame sent was recorded exactly once, with its bytes and
      wire length (a multiset comparison; times differ on a live link)
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


def frames(sent, got):
    want = collections.Counter((f[4], f[3]) for f in capread.read_frames(sent))
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


def main():
    if sys.argv[1] == 'frames':
        return frames(sys.argv[2], sys.argv[3])
    if sys.argv[1] == 'flows':
        n = 0
        if len(sys.argv) > 5 and sys.argv[4] == '--workers':
            n = int(sys.argv[5])
        return flows(sys.argv[2], sys.argv[3], n)
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main())
