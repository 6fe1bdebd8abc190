#!/usr/bin/python3
"""Compares `flowvault flows --format csv` with fvgen's --summary file, the
generator's own record of every flow it wrote: each generated flow must be
exactly one flowvault flow with the same client/server, VLAN and per-
direction packet and byte counts (later IP fragments included), and
flowvault must have no flow the generator did not write.
usage: groundtruth.py FLOWS.csv SUMMARY.tsv
"""
import csv
import ipaddress
import sys


def key(proto, a, ap, b, bp, vlan):
    return (int(proto), ipaddress.ip_address(a), int(ap),
            ipaddress.ip_address(b), int(bp), int(vlan))


PROTO = {'tcp': 6, 'udp': 17, 'icmp': 1, 'icmp6': 58, 'sctp': 132}


def main():
    with open(sys.argv[1]) as f:
        ours = list(csv.DictReader(f))
    with open(sys.argv[2]) as f:
        truth = list(csv.DictReader(f, delimiter='\t'))
    mine = {}
    for r in ours:
        p = PROTO.get(r['proto'], None)
        p = int(r['proto']) if p is None else p
        k = key(p, r['client'], r['client_port'], r['server'],
                r['server_port'], r['vlan'])
        mine.setdefault(k, []).append(r)
    bad, matched, reversed_n = [], 0, [0]
    for t in truth:
        k = key(t['proto'], t['client'], t['client_port'], t['server'],
                t['server_port'], t['vlan'])
        got = mine.pop(k, None)
        swapped = False
        if not got and int(t['proto']) != 6:
            # Without a SYN the client is the first sender; a generated
            # "server" that speaks first is flowvault's client.
            rk = (k[0], k[3], k[4], k[1], k[2], k[5])
            got = mine.pop(rk, None)
            swapped = bool(got)
        if not got:
            bad.append(f'flow {t["idx"]} ({t["kind"]}) {k}: no flowvault flow')
            continue
        if len(got) != 1:
            bad.append(f'flow {t["idx"]} ({t["kind"]}): {len(got)} flows')
            continue
        g = got[0]
        want = [t['pkts_c2s'], t['bytes_c2s'], t['pkts_s2c'], t['bytes_s2c'],
                t['first_ns'], t['last_ns']]
        have = [g['c2s_packets'], g['c2s_bytes'], g['s2c_packets'],
                g['s2c_bytes'], g['first_ns'], g['last_ns']]
        if swapped:
            have = have[2:4] + have[0:2] + have[4:]
            reversed_n[0] += 1
        if [int(x) for x in want] != [int(x) for x in have]:
            bad.append(f'flow {t["idx"]} ({t["kind"]}): generator {want}, '
                       f'flowvault {have}')
        else:
            matched += 1
    for k, v in mine.items():
        bad.append(f'flowvault flow {v[0]["id"]} {k} was never generated')
    print(f'{matched} of {len(truth)} generated flows match flowvault '
          f'exactly ({reversed_n[0]} non-TCP flows whose server spoke '
          f'first, so flowvault calls it the client); {len(bad)} problems')
    for b in bad[:20]:
        print('   ', b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
