#!/usr/bin/python3
"""After an import was killed with SIGKILL: every flow the index lists must
extract to frames of the original capture (bytes and ns timestamps equal),
exactly as many as its record counts, in capture order. The index may lack
the last second; it must never point at wrong bytes. A flow whose packets
rotated away (packets_available expired or partial) must be refused with
exit 4.
usage: killcheck.py FLOWVAULT STORE ORIGINAL.pcap [--ignore-time]
--ignore-time: the store was recorded live (timestamps are the receiver's):
a flow's frames must be, bytes for bytes, frames of the capture in its
order (a subsequence of the frames with its key).
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
    ignore_time = '--ignore-time' in sys.argv[4:]
    frames = read_frames(orig)
    pos = {(f[0], f[4]): i for i, f in enumerate(frames)}
    at = {}  # bytes -> the indexes of the frames with them, ascending
    for i, f in enumerate(frames):
        at.setdefault(f[4], []).append(i)
    r = subprocess.run([fv, 'flows', '-s', store, '--format', 'csv'],
                       capture_output=True, text=True)
    if r.returncode:
        print('flows failed:', r.stderr)
        return 1
    flows = list(csv.DictReader(io.StringIO(r.stdout)))
    bad = gone = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'f.pcap')
        nexp = sum(1 for fl in flows
                   if fl.get('packets_available', 'yes') != 'yes')
        step = max(1, nexp // 100)  # about 100 of them are tried
        k = 0
        for fl in flows:
            if fl.get('packets_available', 'yes') != 'yes':
                k += 1
                if k % step:
                    continue
            r = subprocess.run([fv, 'extract', '-s', store, '--flow',
                                fl['id'], '-w', out, '--format', 'pcapng'],
                               capture_output=True, text=True)
            if fl.get('packets_available', 'yes') != 'yes':
                # Rotated away, wholly or in part: extract refuses it
                # (exit 4), never gives a part.
                if r.returncode == 4:
                    gone += 1
                else:
                    print(f'flow {fl["id"]}: packets {fl["packets_available"]}'
                          f', extract exit {r.returncode}')
                    bad += 1
                continue
            if r.returncode:
                print(f'flow {fl["id"]}: extract failed: {r.stderr.strip()}')
                bad += 1
                continue
            got = read_frames(out)
            if ignore_time:
                idx, last = [], -1
                for p in got:  # the first match after the previous one
                    nxt = [i for i in at.get(p[4], ()) if i > last]
                    last = nxt[0] if nxt else None
                    idx.append(last)
                    if last is None:
                        break
            else:
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
    print(f"{len(flows)} flows listed, {bad} wrong"
          + (f" ({gone} of the {nexp} with expired packets tried: refused,"
             " exit 4)" if nexp else ""))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
