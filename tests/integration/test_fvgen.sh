#!/usr/bin/env bash
# tools/fvgen, the deterministic traffic generator, checked against tshark
# and against an independent reader of the capture (the python below):
#   1. determinism: the same seed and options give the same bytes (file
#      and stdout) and the same summary; another seed gives other bytes;
#   2. pcapng and --usec output hold the same frames as pcap;
#   3. tshark reads the capture cleanly: no expert error (malformed
#      packets, bad IP/TCP/UDP checksums with validation on), and only the
#      warnings the generated TCP behaviour explains;
#   4. every flow of --summary is found frame by frame in the capture
#      (packets, bytes, first/last ns, VLAN, later fragments), nothing else
#      is there but ARP, timestamps strictly increase with ns digits, and
#      the 5-tuples are unique;
#   5. tshark's TCP and UDP conversation tables equal the summary, frame
#      counts per direction and start times to the nanosecond;
#   6. the mix: every flow kind shows up, mean frame 600..900 bytes, and
#      payloads do not compress.
# Exit 0 pass, 1 fail, 77 skip. FV_BUILD names the build directory.
set -u
cd "$(dirname "$0")/../.."
GEN=${FV_BUILD:-build}/fvgen
PY=/usr/bin/python3
[ -x "$GEN" ] || { echo "no $GEN: run make first"; exit 1; }
command -v tshark >/dev/null || { echo "tshark missing (make deps)"; exit 77; }
[ -x "$PY" ] || { echo "no $PY"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fvgen-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
N=2000

# 1. determinism
"$GEN" -w "$tmp/a.pcap" --flows $N --seed 42 --summary "$tmp/a.tsv"
rc=$?
[ $rc -eq 0 ] || { echo "FAIL fvgen exited with $rc"; exit 1; }
h1=$(sha256sum <"$tmp/a.pcap" | cut -d' ' -f1)
h2=$("$GEN" -w - --flows $N --seed 42 --summary "$tmp/b.tsv" -q | sha256sum | cut -d' ' -f1)
h3=$("$GEN" -w - --flows $N --seed 43 -q | sha256sum | cut -d' ' -f1)
if [ "$h1" = "$h2" ]; then ok "seed 42 twice (file, stdout): same sha256 $h1"; else bad "seed 42 twice: $h1 vs $h2"; fi
if cmp -s "$tmp/a.tsv" "$tmp/b.tsv"; then ok "seed 42 twice: same summary"; else bad "seed 42 twice: summaries differ"; fi
if [ "$h1" != "$h3" ]; then ok "seed 43 differs: $h3"; else bad "seed 43 gives the bytes of seed 42"; fi

# 2. the same traffic as pcapng and with microseconds
"$GEN" -w "$tmp/s.pcap" --flows 200 --seed 5 -q &&
	"$GEN" -w "$tmp/s.pcapng" --flows 200 --seed 5 --pcapng -q &&
	"$GEN" -w "$tmp/s-us.pcap" --flows 200 --seed 5 --usec -q &&
	"$GEN" -w "$tmp/s-us.pcapng" --flows 200 --seed 5 --usec --pcapng -q ||
	bad "fvgen --pcapng / --usec failed"
ref=$(tshark -r "$tmp/s.pcap" -T fields -e frame.len -e frame.protocols 2>/dev/null | md5sum)
for f in s.pcapng s-us.pcap s-us.pcapng; do
	if [ "$(tshark -r "$tmp/$f" -T fields -e frame.len -e frame.protocols 2>/dev/null | md5sum)" = "$ref" ]; then
		ok "tshark reads $f: the frames and protocols of s.pcap"
	else
		bad "tshark on $f: frames differ from s.pcap"
	fi
done

# 3 and 5: one tshark pass, checksums validated, TCP reassembly that
# understands out-of-order segments (the generator sends some, on purpose)
tshark -r "$tmp/a.pcap" -q -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
	-o ip.check_checksum:TRUE -o tcp.reassemble_out_of_order:TRUE \
	-z expert -z conv,tcp -z conv,udp >"$tmp/tshark.txt" 2>"$tmp/tshark.err" ||
	bad "tshark failed: $(tail -n 3 "$tmp/tshark.err")"

# 3, 4, 5, 6 in python
"$PY" - "$tmp/a.pcap" "$tmp/a.tsv" "$tmp/tshark.txt" "$tmp" <<'PY' || fail=1
import collections, csv, ipaddress, re, struct, sys, zlib

pcap, tsv, tsh, tmp = sys.argv[1:5]
failed = []

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failed.append(what)

rows = list(csv.DictReader(open(tsv), delimiter='\t'))
for r in rows:
    for k in ('pkts_c2s', 'bytes_c2s', 'pkts_s2c', 'bytes_s2c', 'first_ns',
              'last_ns', 'vlan', 'vlan_inner', 'later_frags_c2s',
              'later_frags_s2c', 'client_port', 'server_port', 'proto',
              'retrans'):
        r[k] = int(r[k])
    r['client'] = ipaddress.ip_address(r['client'])
    r['server'] = ipaddress.ip_address(r['server'])
check(len(rows) == 2000 and [int(r['idx']) for r in rows] == list(range(2000)),
      f"summary: {len(rows)} rows, indexes 0..1999")

def frames(path):
    """(ns timestamp, bytes) of every frame of a pcap or pcapng file."""
    b = open(path, 'rb').read()
    out = []
    if b[:4] == b'\x0a\x0d\x0d\x0a':
        off, res = 0, 9
        while off < len(b):
            t, ln = struct.unpack_from('<II', b, off)
            if t == 1:  # IDB: if_tsresol is the only option fvgen writes
                res = b[off + 20] if struct.unpack_from('<H', b, off + 16)[0] == 9 else 6
            elif t == 6:
                hi, lo, cap = struct.unpack_from('<III', b, off + 12)
                v = hi << 32 | lo
                out.append((v if res == 9 else v * 1000, b[off + 28:off + 28 + cap]))
            off += ln
        return out
    mul = 1 if struct.unpack_from('<I', b)[0] == 0xa1b23c4d else 1000
    off = 24
    while off + 16 <= len(b):
        sec, frac, cap, _ = struct.unpack_from('<IIII', b, off)
        out.append((sec * 10**9 + frac * mul, b[off + 16:off + 16 + cap]))
        off += 16 + cap
    return out

ref = frames(tmp + '/s.pcap')
for name in ('s.pcapng', 's-us.pcap', 's-us.pcapng'):
    got = frames(tmp + '/' + name)
    same = len(got) == len(ref) and all(g[1] == r[1] for g, r in zip(got, ref))
    if name.startswith('s-us'):
        ts_ok = all(g[0] % 1000 == 0 for g in got) and \
            all(a[0] < b[0] for a, b in zip(got, got[1:]))
        what = "microsecond timestamps, strictly increasing"
    else:
        ts_ok = [g[0] for g in got] == [r[0] for r in ref]
        what = "the same nanosecond timestamps"
    check(same and ts_ok, f"{name}: the {len(ref)} frames of s.pcap byte for byte, {what}")

# 4. an independent reader: Ethernet, 802.1Q/802.1ad, IPv4, IPv6, TCP,
# UDP, ICMP echo; later IPv4 fragments go to the flow of their first one.
def key(proto, a, ap, b, bp):
    return (proto, frozenset([(a, ap), (b, bp)]))

by_key = {}
for r in rows:
    k = key(r['proto'], r['client'], r['client_port'], r['server'], r['server_port'])
    if k in by_key:
        print(f"  flow {r['idx']} repeats the 5-tuple of flow {by_key[k]['idx']}")
    by_key[k] = r
check(len(by_key) == len(rows), f"{len(by_key)} distinct 5-tuples for {len(rows)} flows")

seen = {}   # idx -> [pk0, by0, pk1, by1, first, last, frags0, frags1, vlans]
frag_owner = {}
arp = other = 0
nframes = nbytes = subus = 0
prev = -1
mono = True
first_from_server = maxgap = 0
with open(pcap, 'rb') as f:
    hdr = f.read(24)
    magic, vmaj, vmin, _, _, snap, link = struct.unpack('<IHHiIII', hdr)
    check(magic == 0xa1b23c4d and link == 1, "pcap: nanosecond magic, LINKTYPE_ETHERNET")
    data = f.read()
off = 0
while off + 16 <= len(data):
    sec, frac, cap, orig = struct.unpack_from('<IIII', data, off)
    fr = data[off + 16: off + 16 + cap]
    off += 16 + cap
    ts = sec * 1000000000 + frac
    if ts <= prev:
        mono = False
    prev = ts
    nframes += 1
    nbytes += orig
    if ts % 1000:
        subus += 1
    et = struct.unpack_from('>H', fr, 12)[0]
    o = 14
    vl = []
    while et in (0x8100, 0x88a8):
        vl.append(struct.unpack_from('>H', fr, o)[0] & 0xfff)
        et = struct.unpack_from('>H', fr, o + 2)[0]
        o += 4
    if et == 0x0806:
        arp += 1
        continue
    later = False
    if et == 0x0800:
        ihl = (fr[o] & 15) * 4
        proto = fr[o + 9]
        src = ipaddress.ip_address(fr[o + 12:o + 16])
        dst = ipaddress.ip_address(fr[o + 16:o + 20])
        fl = struct.unpack_from('>H', fr, o + 6)[0]
        fid = (src, dst, proto, struct.unpack_from('>H', fr, o + 4)[0])
        l4 = o + ihl
        if fl & 0x1fff:
            later = True
    elif et == 0x86dd:
        proto = fr[o + 6]
        src = ipaddress.ip_address(fr[o + 8:o + 24])
        dst = ipaddress.ip_address(fr[o + 24:o + 40])
        l4 = o + 40
    else:
        other += 1
        continue
    if later:
        r = frag_owner.get(fid)
    else:
        if proto in (6, 17):
            sp, dp = struct.unpack_from('>HH', fr, l4)
        elif proto in (1, 58):
            sp = dp = struct.unpack_from('>H', fr, l4 + 4)[0]
        else:
            sp = dp = 0
        r = by_key.get(key(proto, src, sp, dst, dp))
        if r is not None and et == 0x0800 and fl & 0x2000:
            frag_owner[fid] = r
    if r is None:
        other += 1
        continue
    d = 0 if src == r['client'] else 1
    s = seen.get(int(r['idx']))
    if s is None:
        s = seen[int(r['idx'])] = [0, 0, 0, 0, ts, ts, 0, 0, vl]
        if d:
            first_from_server += 1
    if ts - s[5] > maxgap:
        maxgap = ts - s[5]
    s[2 * d] += 1
    s[2 * d + 1] += orig
    s[5] = ts
    if later:
        s[6 + d] += 1
    if s[8] != vl:
        s[8] = None

check(mono, f"{nframes} frames, timestamps strictly increasing")
check(subus > nframes // 2, f"{subus} frames with non-zero sub-microsecond digits")
check(other == 0, f"{other} frames outside the flows of the summary and ARP")
check(first_from_server == 0, f"{first_from_server} flows whose first frame is not the client's")
check(maxgap < 10 * 10**9, f"longest silence inside a flow {maxgap / 1e9:.3f} s (< 10 s)")
good = 0
for r in rows:
    s = seen.get(int(r['idx']))
    want = [r['pkts_c2s'], r['bytes_c2s'], r['pkts_s2c'], r['bytes_s2c'],
            r['first_ns'], r['last_ns'], r['later_frags_c2s'], r['later_frags_s2c']]
    vl = [v for v in (r['vlan'], r['vlan_inner']) if v]
    if s is None or s[:8] != want or s[8] != vl:
        if len(failed) < 20:
            print(f"  flow {r['idx']}: summary {want} vlan {vl}, capture {s}")
        continue
    good += 1
check(good == len(rows), f"{good} of {len(rows)} flows: packets, bytes, first/last ns, VLAN, fragments as in the capture")
sp = sum(r['pkts_c2s'] + r['pkts_s2c'] for r in rows)
check(sp + arp == nframes and arp > 0, f"{sp} flow frames + {arp} ARP frames = {nframes}")

# 3. tshark's expert information
text = open(tsh).read()
sect = {}
for m in re.finditer(r'^(Errors|Warns|Notes|Chats) \((\d+)\)\n=+\n.*?\n((?:\s+\d+\s+.*\n)*)', text, re.M):
    sect[m.group(1)] = [l.split(None, 3) for l in m.group(3).splitlines()]
errs = sect.get('Errors', [])
check(not errs, f"tshark: no expert errors (malformed, bad checksum) {errs[:5]}")
allowed = ('Connection reset (RST)', 'out-of-order segment',
           'Previous segment(s) not captured')
warns = [w for w in sect.get('Warns', []) if not any(a in w[3] for a in allowed)]
check(not warns, f"tshark: only expected warnings (RST, out-of-order, previous segment not captured) {warns[:5]}")
rst = sum(int(w[0]) for w in sect.get('Warns', []) if 'Connection reset' in w[3])
want_rst = sum(1 for r in rows if re.search(r'rst-|refused', r['notes']))
check(rst == want_rst, f"tshark: {rst} RST frames, summary: {want_rst} flows ending in RST")
check('Checksum' not in ''.join(' '.join(w) for v in sect.values() for w in v),
      "tshark: no checksum expert info")

# 5. conversations: frames per direction, start to the ns, duration
conv = {}
t0 = min(r['first_ns'] for r in rows)
for m in re.finditer(r'^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+)\s+(\d+ \w+)\s+(\d+)\s+(\d+ \w+)\s+\d+\s+\d+ \w+\s+([\d.]+)\s+([\d.]+)', text, re.M):
    proto = 6 if text.rfind('TCP Conversations', 0, m.start()) > text.rfind('UDP Conversations', 0, m.start()) else 17
    a = (ipaddress.ip_address(m.group(1)), int(m.group(2)))
    b = (ipaddress.ip_address(m.group(3)), int(m.group(4)))
    k = (proto, frozenset([a, b]))
    if k in conv:
        print(f"  tshark lists the conversation {a} {b} twice")
    conv[k] = (a, int(m.group(5)), m.group(6), int(m.group(7)), m.group(8), m.group(9), float(m.group(10)))
tcpudp = [r for r in rows if r['proto'] in (6, 17)]
check(len(conv) == len(tcpudp), f"tshark: {len(conv)} TCP/UDP conversations, summary: {len(tcpudp)} TCP/UDP flows")
good = 0
for r in tcpudp:
    k = key(r['proto'], r['client'], r['client_port'], r['server'], r['server_port'])
    c = conv.get(k)
    if c is None:
        print(f"  flow {r['idx']}: no tshark conversation")
        continue
    a, ba_fr, ba_by, ab_fr, ab_by, start, dur = c
    if a[0] != r['client'] or a[1] != r['client_port']:
        ab_fr, ba_fr, ab_by, ba_by = ba_fr, ab_fr, ba_by, ab_by
    c2s = r['pkts_c2s'] - r['later_frags_c2s']
    s2c = r['pkts_s2c'] - r['later_frags_s2c']
    errs = []
    if (ab_fr, ba_fr) != (c2s, s2c):
        errs.append(f"frames {ab_fr}/{ba_fr} vs {c2s}/{s2c}")
    if not (r['later_frags_c2s'] or r['later_frags_s2c']):
        for got, want in ((ab_by, r['bytes_c2s']), (ba_by, r['bytes_s2c'])):
            if got.endswith(' bytes') and int(got.split()[0]) != want:
                errs.append(f"bytes {got} vs {want}")
    want_start = f"{(r['first_ns'] - t0) // 10**9}.{(r['first_ns'] - t0) % 10**9:09d}"
    if start != want_start:
        errs.append(f"start {start} vs {want_start}")
    if not (r['later_frags_c2s'] or r['later_frags_s2c']) and \
            abs(dur - (r['last_ns'] - r['first_ns']) / 1e9) > 0.00006:
        errs.append(f"duration {dur} vs {(r['last_ns'] - r['first_ns']) / 1e9}")
    if errs:
        if len(failed) < 20:
            print(f"  flow {r['idx']} {r['kind']}: " + ", ".join(errs))
        continue
    good += 1
check(good == len(tcpudp), f"tshark conversations: {good} of {len(tcpudp)} flows agree (frames per direction, bytes, start ns, duration)")

# 6. the mix
kinds = collections.Counter(r['kind'] for r in rows)
print("     kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
want = {'tcp-tls', 'tcp-http', 'tcp-ssh', 'tcp-smtp', 'tcp-mysql', 'tcp-pgsql',
        'tcp-syn', 'tcp-refused', 'udp-dns', 'udp-dns-frag', 'udp-ntp',
        'udp-rtp', 'icmp-echo', 'icmp6-echo'}
check(want <= set(kinds), f"every flow kind present (missing: {sorted(want - set(kinds))})")
notes = collections.Counter(n for r in rows for n in r['notes'].split(','))
print("     notes: " + ", ".join(f"{k} {v}" for k, v in sorted(notes.items())))
check(all(notes[n] for n in ('nosyn', 'synretx', 'retrans', 'ooo', 'fin-c', 'fin-s',
                             'rst-c', 'rst-s', 'frag', 'qinq')),
      "TCP variants, fragments and QinQ present")
check(sum(1 for r in rows if r['vlan']) > 50, "802.1Q-tagged flows present")
check(sum(1 for r in rows if r['client'].version == 6) > 100, "IPv6 flows present")
mean = nbytes / nframes
check(600 <= mean <= 900, f"mean frame {mean:.0f} bytes (600..900)")
ratio = len(data[:16 << 20]) / len(zlib.compress(data[:16 << 20], 1))
check(ratio < 1.3, f"first 16 MiB compress {ratio:.2f}x with zlib -1 (< 1.3)")
sys.exit(1 if failed else 0)
PY

if [ $fail -ne 0 ]; then
	echo "tshark expert summary:"
	sed -n '/^Errors/,/^Notes/p' "$tmp/tshark.txt" | head -n 30
	exit 1
fi
echo "all fvgen checks passed"
exit 0
