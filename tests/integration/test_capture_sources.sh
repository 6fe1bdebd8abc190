#!/usr/bin/env bash
# Live sources (capture/source.h) end to end: two network namespaces
# joined by a veth pair, build/fvcap capturing in one, tcpreplay sending
# in the other, and every frame sent checked against the frames captured
# (as a multiset of bytes, and in order within each worker).
#
#   afpacket 1 and 2 workers, pcap 1 worker: generated traffic (fvgen)
#     and corpus captures with 802.1Q, QinQ and 802.1ad tags (the kernel
#     strips the outer tag; the backend must put it back);
#   2 workers: every flow on exactly one worker, its IP fragments
#     included (fvcap --flows puts a later fragment in the flow of its
#     first), with fragments in the traffic, both workers busy; frames
#     the capturing host sends (outgoing: the fanout program reads them
#     from another offset) as well as frames it receives;
#   a callback that stops every 7 frames: nothing lost or reordered;
#   a slow consumer on a 1 MiB ring: captured + drops = sent;
#   a capture filter with a snap length: the frames tcpdump selects;
#   dpdk: net_pcap reading a file, net_af_packet on the veth;
#   errors: bad filter, missing interface, pcap with 2 workers.
#
# Nothing leaves the namespaces: the veths have no addresses and no
# routes, IPv6 is off on them (no neighbour discovery), and tcpreplay
# writes only to the veth. Exit 0 pass, 1 fail, 77 skip.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
CAP=$B/fvcap
GEN=build/fvgen
[ -x "$GEN" ] || GEN=$B/fvgen
CORPUS=${FV_CORPUS:-$(cd .. && pwd)/shared/corpus}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

FV=$B/flowvault
. tests/integration/lib.sh
[ "$(id -u)" = 0 ] || skip "not root: network namespaces and AF_PACKET need root"
command -v ip >/dev/null || skip "ip (iproute2) missing (make deps)"
command -v tcpreplay >/dev/null || skip "tcpreplay missing (make deps)"
[ -x "$CAP" ] && [ -x "$GEN" ] || {
	echo "no $CAP or $GEN (make)"
	exit 1
}

NA=fvt$$a
NB=fvt$$b
VA=fvt$$a0
VB=fvt$$b0
fvpid=
test_cleanup() {
	[ -n "$fvpid" ] && kill "$fvpid" 2>/dev/null
}
# (Jumbo MTU: corpus frames with two tags are 1522 bytes.)
veth_pair "$NA" "$NB" "$VA" "$VB" >"$T/veth" || skip "$(cat "$T/veth")"
ip netns exec "$NA" sysctl -qw "net.ipv6.conf.$VA.disable_ipv6=1"
ip netns exec "$NB" sysctl -qw "net.ipv6.conf.$VB.disable_ipv6=1"

# The oracle: reads pcaps with tests/integration/capread.py (independent
# of our C readers), compares, concatenates.
cat >"$T/fvt.py" <<'EOF'
import collections, struct, sys
sys.path.insert(0, 'tests/integration')
import capread

def frames(path):
    return capread.read_frames(path)

def compare(args):
    snap, since, until, order = 0, 0, 0, False
    while args[0].startswith('--'):
        opt = args.pop(0)
        if opt == '--order':
            order = True
        else:
            val = int(args.pop(0))
            if opt == '--snaplen': snap = val
            elif opt == '--since': since = val
            elif opt == '--until': until = val
    sent, caps = args[0], args[1:]
    exp = [(f[4][:snap] if snap else f[4], f[3]) for f in frames(sent)]
    want = collections.Counter(exp)
    got, bad, disorder = collections.Counter(), 0, 0
    pos = collections.defaultdict(list)
    for i, k in enumerate(exp):
        pos[k].append(i)
    for c in caps:
        fr = frames(c)
        nxt = {k: 0 for k in pos}
        last = -1
        for ts, lt, cl, ol, data in fr:
            if lt != 1 or cl != len(data) or (snap and cl > snap):
                bad += 1
            if since and not (since <= ts <= until):
                bad += 1
            k = (data, ol)
            got[k] += 1
            # Order: each worker's frames are a subsequence of the sent.
            if k in pos:
                p = pos[k]
                while nxt[k] < len(p) and p[nxt[k]] <= last:
                    nxt[k] += 1
                if nxt[k] == len(p):
                    disorder += 1
                else:
                    last = p[nxt[k]]
                    nxt[k] += 1
    miss, extra = want - got, got - want
    print('compare: sent=%d captured=%d missing=%d extra=%d bad=%d%s' % (
        len(exp), sum(got.values()), sum(miss.values()),
        sum(extra.values()), bad,
        (' disordered=%d' % disorder) if order else ''))
    for k in list(miss)[:2]:
        print('  missing %d bytes: %s' % (len(k[0]), k[0][:24].hex()))
    for k in list(extra)[:2]:
        print('  extra %d bytes: %s' % (len(k[0]), k[0][:24].hex()))
    return 0 if not (miss or extra or bad or (order and disorder)) else 1

def frags(args):
    """IP fragments in the Ethernet frames of a file (RFC 791 flags and
    offset; RFC 8200 fragment header after hop-by-hop, routing and
    destination options), an oracle for fvcap's frags= count."""
    n = 0
    for ts, lt, cl, ol, d in frames(args[0]):
        off, et = 14, struct.unpack('>H', d[12:14])[0]
        while et in (0x8100, 0x88a8, 0x9100) and off + 4 <= len(d):
            et = struct.unpack('>H', d[off + 2:off + 4])[0]
            off += 4
        if et == 0x0800 and off + 8 <= len(d):
            n += (struct.unpack('>H', d[off + 6:off + 8])[0] & 0x3fff) != 0
        elif et == 0x86dd and off + 40 <= len(d):
            nh, off = d[off + 6], off + 40
            while nh in (0, 43, 60) and off + 2 <= len(d):
                nh, off = d[off], off + 8 * (d[off + 1] + 1)
            n += nh == 44
    print(n)
    return 0

def fanout(args):
    """Every frame on the worker afpacket's fanout program picks
    (capture/afpacket.c, docs/capture.md): the XOR of the IP address
    words, h ^= h >> 16, times 0x9e3779b1, h ^= h >> 16, modulo the
    number of workers; worker 0 without IP. Args: PREFIX.w0.pcap ..."""
    n, bad = len(args), 0
    for w, path in enumerate(args):
        for ts, lt, cl, ol, d in frames(path):
            off, et = 14, struct.unpack('>H', d[12:14])[0]
            for _ in range(5):
                if et not in (0x8100, 0x88a8, 0x9100) or off + 4 > len(d):
                    break
                et = struct.unpack('>H', d[off + 2:off + 4])[0]
                off += 4
            if et == 0x0800 and off + 20 <= len(d):
                ws = struct.unpack('>2I', d[off + 12:off + 20])
            elif et == 0x86dd and off + 40 <= len(d):
                ws = struct.unpack('>8I', d[off + 8:off + 40])
            else:
                ws = ()
            h = 0
            for x in ws:
                h ^= x
            if ws:
                h ^= h >> 16
                h = h * 0x9e3779b1 & 0xffffffff
                h ^= h >> 16
            bad += (h % n) != w
    print('fanout: workers=%d frames elsewhere than the hash says=%d' % (n, bad))
    return 1 if bad else 0

def subset(args):
    """Every captured frame was sent (a sub-multiset)."""
    want = collections.Counter((f[4], f[3]) for f in frames(args[0]))
    got = collections.Counter()
    for c in args[1:]:
        got.update((f[4], f[3]) for f in frames(c))
    extra = got - want
    print('subset: captured=%d not-sent=%d' % (sum(got.values()),
                                              sum(extra.values())))
    return 1 if extra else 0

def concat(args):
    out = open(args[0], 'wb')
    out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    for p in args[1:]:
        for ts, lt, cl, ol, data in frames(p):
            assert lt == 1 and cl == ol, p
            out.write(struct.pack('<IIII', ts // 10**9,
                                  ts % 10**9 // 1000, cl, ol) + data)
    return 0

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == 'count':
    print(len(frames(args[0])))
    sys.exit(0)
sys.exit({'compare': compare, 'subset': subset, 'concat': concat,
          'frags': frags, 'fanout': fanout}[cmd](args))
EOF

fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}

# Starts fvcap in namespace $CAPNS (default A) with the given options
# (writing $T/$name.w*.pcap, $T/$name.out, $T/$name.err), waits until its
# sources are open.
start_cap() { # name fvcap-args...
	local name=$1 i
	shift
	rm -f "$T/$name".w*.pcap
	ip netns exec "${CAPNS:-$NA}" timeout 60 "$CAP" "$@" -w "$T/$name" \
		>"$T/$name.out" 2>"$T/$name.err" &
	fvpid=$!
	for i in $(seq 100); do
		grep -q '^fvcap: capturing' "$T/$name.err" && return 0
		kill -0 "$fvpid" 2>/dev/null || break
		sleep 0.1
	done
	bad "$name: fvcap did not start: $(tail -n 2 "$T/$name.err")"
	return 1
}

# Sends FILE from namespace B; fails unless tcpreplay sent every frame.
replay() { # name file [tcpreplay options]
	local name=$1 file=$2
	shift 2
	ip netns exec "$NB" tcpreplay -i "$VB" "$@" "$file" >"$T/$name.tr" 2>&1 ||
		bad "$name: tcpreplay: $(tail -n 1 "$T/$name.tr")"
	grep -q 'Failed packets: *0$' "$T/$name.tr" ||
		bad "$name: tcpreplay did not send every frame: $(grep Failed "$T/$name.tr")"
}

finish_cap() { # name
	wait "$fvpid" || bad "$1: fvcap exited with $?: $(tail -n 2 "$T/$1.err")"
	fvpid=
	sed "s/^/  $1: /" "$T/$1.out"
}

field() { # name key [line]: a key=value of the total (or worker) line
	grep "^${3:-total}" "$T/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# One capture of a whole file, compared frame by frame with what was sent.
# On $CAPIF (default: the receiving end, $VA).
check_file() { # name file nworkers fvcap-args...
	local name=$1 file=$2 nw=$3 n t0 t1 w
	shift 3
	n=$($PY "$T/fvt.py" count "$file")
	t0=$(date +%s%N)
	start_cap "$name" -i "${CAPIF:-$VA}" --threads "$nw" --count "$n" --seconds 30 \
		--flows "$@" || return
	replay "$name" "$file" --topspeed
	finish_cap "$name"
	t1=$(date +%s%N)
	[ "$(field "$name" drops)" = 0 ] || bad "$name: drops reported"
	$PY "$T/fvt.py" compare --order --since "$t0" --until "$t1" "$file" \
		"$T/$name".w*.pcap | sed "s/^/  $name: /"
	[ "${PIPESTATUS[0]}" = 0 ] || bad "$name: captured frames differ from sent"
	if [ "$nw" -gt 1 ]; then
		# Split counts fragments with their flow, so it proves
		# something only when the fragments were all there.
		[ "$(field "$name" frags)" = "$($PY "$T/fvt.py" frags "$file")" ] ||
			bad "$name: frags=$(field "$name" frags), the file has $($PY "$T/fvt.py" frags "$file")"
		[ "$(field "$name" split)" = 0 ] ||
			bad "$name: flows split across workers"
		case "$*" in
		*afpacket*)
			$PY "$T/fvt.py" fanout $(for ((w = 0; w < nw; w++)); do
				echo "$T/$name.w$w.pcap"; done) | sed "s/^/  $name: /"
			[ "${PIPESTATUS[0]}" = 0 ] ||
				bad "$name: frames on another worker than the fanout hash's"
			;;
		esac
		for ((w = 0; w < nw; w++)); do
			[ "$(field "$name" flows "worker $w:")" -gt 0 ] ||
				bad "$name: worker $w got no flow"
		done
	fi
}

"$GEN" -q --usec --flows 300 --seed 5 -w "$T/gen.pcap" || exit 1
echo "generated: $($PY "$T/fvt.py" count "$T/gen.pcap") frames, $($PY "$T/fvt.py" frags "$T/gen.pcap") fragments"

# Corpus: Ethernet captures with 802.1Q (VLAN 123, and VLAN 0 with PCP and
# DEI bits), 802.1Q-in-802.1Q, an 802.1ad S-tag, IPv4 fragments (UDP and
# TCP flows whose whole packets and fragments mix, a SYN in two
# fragments, fragments without their first), and a 13-connection HTTP
# page load. "plain" leaves out the 802.1ad frames and the fragments for
# DPDK's net_af_packet (see docs/capture.md).
plain="http/http-vlan-0.pcap vlan/icmp_dot1q.pcap vlan/q-in-q.pcap http/bro.org.pcap"
special="vlan/802.1ad_QinQ.pcap dns/dns-edns-ecs.pcap fragments/fragmented-1.pcap
	fragments/fragmented-2.pcap fragments/fragmented-3.pcap
	fragments/fragmented-4.pcap fragments/fragmented-syn.pcap"
have_corpus=1
for f in $plain $special; do
	[ -f "$CORPUS/$f" ] || have_corpus=0
done
if [ $have_corpus = 1 ]; then
	$PY "$T/fvt.py" concat "$T/plain.pcap" $(for f in $plain; do echo "$CORPUS/$f"; done) || exit 1
	$PY "$T/fvt.py" concat "$T/corpus.pcap" $(for f in $plain $special; do echo "$CORPUS/$f"; done) || exit 1
	echo "corpus: $($PY "$T/fvt.py" count "$T/corpus.pcap") frames, $($PY "$T/fvt.py" frags "$T/corpus.pcap") fragments"
else
	echo "corpus: not found in $CORPUS, corpus cases skipped"
fi

echo "== afpacket"
check_file afp1 "$T/gen.pcap" 1 --backend afpacket
check_file afp2 "$T/gen.pcap" 2 --backend afpacket
[ $have_corpus = 1 ] && check_file afp2-corpus "$T/corpus.pcap" 2 --backend afpacket
check_file afp3 "$T/gen.pcap" 3 --backend afpacket
# Outgoing frames: fvcap on the sending end, where skb->data starts at
# the Ethernet header and the tags are in the frame.
CAPNS=$NB CAPIF=$VB check_file afp2-out "$T/gen.pcap" 2 --backend afpacket
[ $have_corpus = 1 ] && CAPNS=$NB CAPIF=$VB check_file afp2-out-corpus \
	"$T/corpus.pcap" 2 --backend afpacket
[ $have_corpus = 1 ] && check_file afp1-corpus "$T/corpus.pcap" 1 --backend afpacket
# The callback stops delivery every 7 frames: the next poll resumes.
check_file afp-stop "$T/gen.pcap" 1 --backend afpacket --stop-every 7

echo "== pcap"
check_file pcap1 "$T/gen.pcap" 1 --backend pcap
[ $have_corpus = 1 ] && check_file pcap1-corpus "$T/corpus.pcap" 1 --backend pcap

# A slow consumer on a small ring: the drop counters (read every 20 ms,
# so the backend must sum them) account for every frame not captured.
echo "== drops"
n=$($PY "$T/fvt.py" count "$T/gen.pcap")
for b in afpacket pcap; do
	start_cap drop-$b -i "$VA" --backend $b --ring 1M --pause-us 20 \
		--stats-ms 20 --idle 0.5 --seconds 30 || continue
	replay drop-$b "$T/gen.pcap" --topspeed
	finish_cap drop-$b
	p=$(field drop-$b packets)
	d=$(field drop-$b drops)
	[ "$d" -gt 0 ] || bad "drop-$b: the slow consumer caused no drops"
	[ $((p + d)) = "$n" ] || bad "drop-$b: captured $p + dropped $d != sent $n"
	$PY "$T/fvt.py" subset "$T/gen.pcap" "$T"/drop-$b.w*.pcap | sed "s/^/  drop-$b: /"
	[ "${PIPESTATUS[0]}" = 0 ] || bad "drop-$b: frames that were never sent"
done

# A filter with a snap length: exactly the frames tcpdump selects from
# the file, cut to 100 bytes, original lengths kept. "vlan" needs the
# kernel's VLAN extensions (the tag is stripped before the filter runs).
if command -v tcpdump >/dev/null; then
	echo "== filter"
	flt='vlan and (udp or icmp)'
	tcpdump -r "$T/gen.pcap" -w "$T/flt.pcap" "$flt" 2>/dev/null || exit 1
	n=$($PY "$T/fvt.py" count "$T/flt.pcap")
	[ "$n" -gt 0 ] || bad "filter: '$flt' selects nothing in the generated file"
	for b in "afpacket --threads 2" "pcap"; do
		name=flt-${b%% *}
		start_cap $name -i "$VA" --backend $b --bpf "$flt" --snaplen 100 \
			--idle 0.5 --seconds 30 || continue
		replay $name "$T/gen.pcap" --topspeed
		finish_cap $name
		$PY "$T/fvt.py" compare --snaplen 100 "$T/flt.pcap" "$T/$name".w*.pcap |
			sed "s/^/  $name: /"
		[ "${PIPESTATUS[0]}" = 0 ] || bad "$name: filtered frames differ"
	done
fi

echo "== errors"
experr() { # name expected-text fvcap-args...
	local name=$1 want=$2
	shift 2
	if ip netns exec "$NA" "$CAP" "$@" --seconds 0.2 >"$T/$name.out" 2>"$T/$name.err"; then
		bad "$name: fvcap succeeded"
	elif ! grep -q "$want" "$T/$name.err"; then
		bad "$name: no '$want' in: $(tail -n 1 "$T/$name.err")"
	else
		echo "  $name: $(grep "$want" "$T/$name.err" | tail -n 1)"
	fi
}
experr bad-bpf "bad filter" --backend afpacket -i "$VA" --bpf 'tcp port'
experr bad-bpf-pcap "bad filter" --backend pcap -i "$VA" --bpf 'tcp port'
experr no-iface "no such interface" --backend afpacket -i fvtnone0
experr no-iface-pcap "no such interface" --backend pcap -i fvtnone0
experr pcap-threads "one worker" --backend pcap -i "$VA" --threads 2

echo "== dpdk"
EAL="--no-huge -m 256 --no-pci --no-shconf -l 0"
if ldd "$B/flowvault" | grep -q librte_; then
	bad "dpdk: $B/flowvault links DPDK libraries"
fi
if [ ! -f "$B/flowvault-dpdk.so" ]; then
	echo "dpdk: $B/flowvault-dpdk.so not built (no libdpdk-dev): dpdk cases skipped"
	experr dpdk-missing "not built" --backend dpdk --dpdk-args "$EAL"
else
	# net_pcap reads the file itself: every frame, in order.
	n=$($PY "$T/fvt.py" count "$T/gen.pcap")
	t0=$(date +%s%N)
	timeout 60 "$CAP" --backend dpdk --dpdk-args "$EAL --vdev net_pcap0,rx_pcap=$T/gen.pcap" \
		--count "$n" --seconds 30 --flows -w "$T/dpdk-pcap" >"$T/dpdk-pcap.out" 2>"$T/dpdk-pcap.err" ||
		bad "dpdk-pcap: fvcap failed: $(tail -n 2 "$T/dpdk-pcap.err")"
	t1=$(date +%s%N)
	sed "s/^/  dpdk-pcap: /" "$T/dpdk-pcap.out"
	$PY "$T/fvt.py" compare --order --since "$t0" --until "$t1" "$T/gen.pcap" \
		"$T"/dpdk-pcap.w*.pcap | sed "s/^/  dpdk-pcap: /"
	[ "${PIPESTATUS[0]}" = 0 ] || bad "dpdk-pcap: captured frames differ from the file"
	experr dpdk-rss "use one worker" --backend dpdk --threads 2 \
		--dpdk-args "$EAL --vdev net_pcap0,rx_pcap=$T/gen.pcap"
	experr dpdk-port "no port 5" --backend dpdk --dpdk-port 5 \
		--dpdk-args "$EAL --vdev net_pcap0,rx_pcap=$T/gen.pcap"
	# net_af_packet on the veth: its default ring (512 frames) overflows
	# at tcpreplay's top speed, so give it 32768 frames.
	if [ $have_corpus = 1 ]; then
		check_file dpdk-afp "$T/plain.pcap" 1 --backend dpdk \
			--dpdk-args "$EAL --vdev net_af_packet0,iface=$VA,framecnt=32768"
	fi
fi

echo
if [ $fail = 0 ]; then
	echo "capture sources: all checks passed"
else
	echo "capture sources: FAILED"
fi
exit $fail
