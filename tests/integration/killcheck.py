#!/usr/bin/python3
"""After an import was killed with SIGKILL: every flow the index lists must
extract to frames of the original capture (bytes and ns timestamps equal),
exactly as many as its record counts, in capture order. The index may lack
the last second; it must never point at wrong bytes.
usage: killcheck.py FLOWVAULT STORE ORIGINAL.pcap
"""
import csv
import io
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capread import read_frames  # noqa: E402


def main():
    fv, store, orig = sys.argv[1:4]
    frames = read_frames(orig)
    pos = {(f[0], f[4]): i for i, f in enumerate(frames)}
    r = subprocess.run([fv, 'flows', '-s', store, '--format', 'csv'],
                       capture_output=True, text=True)
    if r.returncode:
        print('flows failed:', r.stderr)
        return 1
    flows = list(csv.DictReader(io.StringIO(r.stdout)))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'f.pcap')
        for fl in flows:
            r = subprocess.run([fv, 'extract', '-s', store, '--flow',
                                fl['id'], '-w', out, '--format', 'pcapng'],
                               capture_output=True, text=True)
            if r.returncode:
                print(f'flow {fl["id"]}: extract failed: {r.stderr.strip()}')
                bad += 1
                continue
            got = read_frames(out)
            idx = [pos.get((p[0], p[4])) for p in got]
            if None in idx:
                print(f'flow {fl["id"]}: a packet that is not in the capture')
                bad += 1
            elif idx != sorted(idx):
                print(f'flow {fl["id"]}: packets out of order')
                bad += 1
            elif len(got) != int(fl['packets']):
                print(f'flow {fl["id"]}: {len(got)} packets, record says '
                      f'{fl["packets"]}')
                bad += 1
    print(f"{len(flows)} flows listed, {bad} wrong")
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
