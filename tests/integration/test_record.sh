#!/usr/bin/env bash
# flowvault record on a live link: two network namespaces joined by a
# veth pair, `flowvault record` in one, tcpreplay of generated traffic in
# the other. Checks, for 1 worker (afpacket), 2 workers (afpacket) and
# the pcap backend:
#   - every frame sent is recorded exactly once with its bytes
#     (extract --bpf "" of the store against the pcap that was sent);
#   - the flows equal those of `flowvault import` of the same pcap
#     (packets and bytes per endpoint, per bidirectional key);
#   - with 2 workers every flow lives on one worker and both got flows;
#   - while it records: `status` works, the connections that finished
#     (FIN/RST) are listed within 2 s of the end of the replay, and a
#     second `record` on the store is refused;
#   - SIGTERM: everything flushed, exit 0.
# Nothing leaves the namespaces: the veths have no addresses and IPv6 is
# off on them. Exit 0 pass, 1 fail, 77 skip.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=$B/fvgen
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
. tests/integration/lib.sh
[ "$(id -u)" = 0 ] || skip "not root: network namespaces and AF_PACKET need root"
command -v ip >/dev/null || skip "ip (iproute2) missing (make deps)"
command -v tcpreplay >/dev/null || skip "tcpreplay missing (make deps)"
[ -x "$FV" ] && [ -x "$GEN" ] || {
	echo "no $FV or $GEN (make)"
	exit 1
}

NA=fvr$$a
NB=fvr$$b
VA=fvr$$a0
VB=fvr$$b0
recpid=
test_cleanup() {
	[ -n "$recpid" ] && kill -KILL "$recpid" 2>/dev/null
}
veth_pair "$NA" "$NB" "$VA" "$VB" >"$T/veth" || skip "$(cat "$T/veth")"

# Generated traffic: TCP with handshakes and FIN/RST, UDP, ICMP, VLAN,
# IPv4 and IPv6, fragments (docs/generator.md). Microsecond pcap for
# tcpreplay.
"$GEN" --flows 400 --seed 11 --usec -q -w "$T/g.pcap" || exit 1
"$FV" import -q -r "$T/g.pcap" -s "$T/imp" --max-disk 256M || exit 1
"$FV" flows -s "$T/imp" --format csv >"$T/imp.csv" || exit 1
nfin=$(grep -c -E ',(fin|rst),' "$T/imp.csv")

# Starts `record` in namespace B with the given options; waits until it
# captures.
start_record() { # store opts...
	local s=$1
	shift
	record_start "$NB" "$VB" "$s" --max-disk 512M "$@"
}

run() { # name opts...
	local name=$1 s=$T/$1
	shift
	if ! start_record "$s" "$@"; then
		bad "$name: record starts"
		return
	fi
	# shellcheck disable=SC2086
	ip netns exec "$NA" tcpreplay -q -i "$VA" --mbps 200 $SENT >"$T/replay.log" 2>&1 ||
		bad "$name: tcpreplay: $(tail -n 2 "$T/replay.log")"
	sleep 2
	# While recording: status works, finished connections are listed.
	if "$FV" status -s "$s" >"$T/status" 2>&1 && grep -q "^recording  *yes" "$T/status"; then
		ok "$name: status while recording: $(grep '^recording' "$T/status")"
	else
		bad "$name: status while recording: $(head -c 300 "$T/status")"
	fi
	n=$("$FV" flows -s "$s" --format csv 2>/dev/null | grep -c -E ',(fin|rst),')
	if [ -z "$nfin" ]; then
		:
	elif [ "$n" -ge "$nfin" ]; then
		ok "$name: $n finished connections listed 2 s after the replay (import: $nfin)"
	else
		bad "$name: $n finished connections listed 2 s after the replay, import has $nfin"
	fi
	# record --listen: the REST API from the recording process (in
	# namespace B, on its loopback).
	url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$T/rec.err" | head -n 1)
	if [ -n "$url" ]; then
		rcurl() { ip netns exec "$NB" curl -s "$@"; }
		nrest=$(rcurl "$url/api/v1/flows?limit=100000" | $PY -c 'import json,sys; print(json.load(sys.stdin)["count"])')
		ncli=$("$FV" flows -s "$s" --format csv | tail -n +2 | wc -l)
		fid=$("$FV" flows -s "$s" --format csv --filter tcp --sort packets --limit 1 | tail -n 1 | cut -d, -f1)
		rcurl -o "$T/rest.pcap" "$url/api/v1/flows/$fid/pcap"
		"$FV" extract -s "$s" --flow "$fid" -w "$T/cli.pcap" 2>/dev/null
		rec=$(rcurl "$url/api/v1/status" | $PY -c 'import json,sys; print(json.load(sys.stdin)["capture"]["recording"])')
		if [ "${nrest:-0}" -gt 0 ] && [ "$ncli" -ge "$nrest" ] && [ "$rec" = True ] &&
			cmp -s "$T/rest.pcap" "$T/cli.pcap"; then
			ok "$name: --listen: the recorder serves $nrest flows (flows then: $ncli), status says recording, flow $fid's pcap equals extract's"
		else
			bad "$name: --listen: $nrest flows over REST, $ncli by the CLI, recording=$rec, flow $fid pcap $(cmp "$T/rest.pcap" "$T/cli.pcap" 2>&1)"
		fi
	fi
	if [ "$name" = one ]; then
		ip netns exec "$NB" "$FV" record -i "$VB" -s "$s" >"$T/second" 2>&1
		rc=$?
		if [ $rc -ne 0 ] && grep -q "another flowvault process" "$T/second"; then
			ok "$name: a second record on the store is refused (rc $rc)"
		else
			bad "$name: second record: rc $rc: $(head -c 300 "$T/second")"
		fi
	fi
	kill -TERM "$recpid"
	wait "$recpid"
	rc=$?
	recpid=
	if [ $rc -eq 0 ]; then ok "$name: SIGTERM, exit 0: $(tail -n 1 "$T/rec.err")"; else bad "$name: exit $rc: $(tail -n 3 "$T/rec.err")"; fi
	"$FV" extract -s "$s" --bpf "" -w "$T/got.pcap" 2>"$T/ex.err" ||
		bad "$name: extract: $(cat "$T/ex.err")"
	if out=$("$PY" tests/integration/recordcheck.py frames "$T/got.pcap" $SENT); then
		ok "$name: $out"
	else
		bad "$name: $out"
	fi
	"$FV" flows -s "$s" --format csv >"$T/rec.csv"
	local w=""
	case " $* " in *"--threads 2"*) w="--workers 2" ;; esac
	# Several workers: extract --bpf merges them by timestamp.
	if out=$("$PY" tests/integration/recordcheck.py timeorder "$T/got.pcap"); then
		ok "$name: $out"
	else
		bad "$name: $out"
	fi
	# shellcheck disable=SC2086
	if out=$("$PY" tests/integration/recordcheck.py flows "$IMP" "$T/rec.csv" $w); then
		ok "$name: $out"
	else
		bad "$name: $out"
	fi
	"$FV" status -s "$s" >"$T/status" 2>&1
	grep -E "drop|worker" "$T/status" | sed "s/^/     $name status: /"
	# Drop counters are kept for charts: a sample per worker at least.
	ns=$(mdb_dump -s meta -p "$s/index" 2>/dev/null | grep -c '^ capstats\.')
	if [ "$ns" -ge 1 ]; then ok "$name: $ns capture-statistics samples kept"; else bad "$name: no capstats samples in meta"; fi
}

RUNAS=
SENT="$T/g.pcap"
IMP="$T/imp.csv"
run one --threads 1 --listen 127.0.0.1:0
run two --threads 2
run pcap --backend pcap
# As the systemd unit runs it (tools/systemd/flowvault@.service): an
# unprivileged user with CAP_NET_RAW, CAP_NET_ADMIN and CAP_IPC_LOCK only.
if command -v setpriv >/dev/null; then
	chmod 0711 "$T"
	mkdir -m 0777 "$T/u"
	RUNAS="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_raw,+net_admin,+ipc_lock --ambient-caps=+net_raw,+net_admin,+ipc_lock"
	run u/caps --threads 2
	RUNAS=
else
	echo "skip: setpriv (util-linux) missing, the capabilities-only run"
fi

# Corpus captures (Ethernet; 802.1Q, QinQ, 802.1ad, IPv4 fragments, an
# HTTP page load, DNS, Modbus): the same checks against an import of the
# same files, with 2 workers.
CORPUS=${FV_CORPUS:-$(cd .. && pwd)/shared/corpus}
cfiles="http/http-vlan-0.pcap vlan/icmp_dot1q.pcap vlan/q-in-q.pcap http/bro.org.pcap
	vlan/802.1ad_QinQ.pcap dns/dns-edns-ecs.pcap fragments/fragmented-1.pcap
	fragments/fragmented-2.pcap fragments/fragmented-3.pcap fragments/fragmented-4.pcap
	fragments/fragmented-syn.pcap mixed/modbusBig.pcap tcp/fin_retransmission.pcap"
SENT=
for f in $cfiles; do
	[ -f "$CORPUS/$f" ] && SENT="$SENT $CORPUS/$f"
done
if [ -n "$SENT" ]; then
	# shellcheck disable=SC2086
	"$FV" import -q $(for f in $SENT; do echo "-r $f"; done) -s "$T/cimp" --max-disk 256M || bad "corpus import"
	"$FV" flows -s "$T/cimp" --format csv >"$T/cimp.csv"
	IMP="$T/cimp.csv"
	nfin=
	run corpus --threads 2
else
	echo "skip: no corpus at $CORPUS, corpus replay"
fi

# SIGINT in the middle of a replay: exit 0, and everything recorded
# before the signal is consistent and extracts exactly.
if start_record "$T/int" --threads 2; then
	ip netns exec "$NA" tcpreplay -q -i "$VA" --mbps 20 "$T/g.pcap" >"$T/replay.log" 2>&1 &
	rp=$!
	sleep 3
	kill -INT "$recpid"
	wait "$recpid"
	rc=$?
	recpid=
	kill "$rp" 2>/dev/null
	wait "$rp" 2>/dev/null
	if [ $rc -eq 0 ]; then ok "sigint: exit 0 in the middle of a replay: $(tail -n 1 "$T/rec.err")"; else bad "sigint: exit $rc: $(tail -n 3 "$T/rec.err")"; fi
	if out=$("$PY" tests/integration/recordcheck.py consistent "$FV" "$T/int" "$T/g.pcap"); then ok "sigint: $out"; else bad "sigint: $out"; fi
else
	bad "sigint: record starts"
fi

# A long-lived flow is listed, with its packets so far, within 2 s of
# its active-timeout checkpoint: 30 flows replayed over ~8 s with
# --active-timeout 2s; 5 s in, checkpoints must be listed, and their
# packets extract.
"$GEN" --flows 30 --seed 12 --usec -q -w "$T/l.pcap" || exit 1
nl=$("$PY" -c 'import sys; sys.path.insert(0, "tests/integration"); import capread; print(len(capread.read_frames(sys.argv[1])))' "$T/l.pcap")
if start_record "$T/long" --active-timeout 2s; then
	ip netns exec "$NA" tcpreplay -q -i "$VA" --pps $((nl / 8 + 1)) "$T/l.pcap" >"$T/replay.log" 2>&1 &
	rp=$!
	sleep 5
	"$FV" flows -s "$T/long" --format csv >"$T/mid.csv" 2>&1
	nact=$(grep -c ',active,' "$T/mid.csv")
	id=$(grep ',active,' "$T/mid.csv" | head -n 1 | cut -d, -f1)
	if [ "$nact" -gt 0 ] && "$FV" extract -s "$T/long" --flow "$id" -w "$T/mid.pcap" 2>"$T/ex.err"; then
		ok "long flows: $nact checkpoints listed 5 s into an 8 s replay (--active-timeout 2s), flow $id extracts $(tcpdump -r "$T/mid.pcap" 2>/dev/null | wc -l) packets so far"
	else
		bad "long flows: $nact checkpoints listed 5 s into the replay: $(head -c 300 "$T/mid.csv") $(cat "$T/ex.err" 2>/dev/null)"
	fi
	wait "$rp"
	kill -TERM "$recpid"
	wait "$recpid"
	recpid=
	"$FV" import -q -r "$T/l.pcap" -s "$T/limp" --max-disk 256M
	"$FV" flows -s "$T/limp" --format csv >"$T/limp.csv"
	"$FV" flows -s "$T/long" --format csv >"$T/long.csv"
	if out=$("$PY" tests/integration/recordcheck.py flows "$T/limp.csv" "$T/long.csv"); then ok "long flows: $out"; else bad "long flows: $out"; fi
else
	bad "long flows: record starts"
fi

# Rotation while recording: 96 MB through a 64 MiB store (3 segments of
# 17 MB, each filled in ~1.7 s at 80 Mbit/s). The committer
# drops the index entries of the segment to be overwritten while the one
# before it fills (recycling ahead), so the capture thread does not wait
# for that commit; the store stays consistent and every flow listed
# extracts to exactly packets that were sent.
"$GEN" --size 96M --seed 13 --usec -q -w "$T/big.pcap" || exit 1
if start_record "$T/rot" --max-disk 64M; then
	ip netns exec "$NA" tcpreplay -q -i "$VA" --mbps 80 "$T/big.pcap" >"$T/replay.log" 2>&1
	sleep 1
	kill -INT "$recpid"
	wait "$recpid"
	rc=$?
	recpid=
	sum=$(grep '^recorded' "$T/rec.err")
	ahead=$(sed -n 's/.* segments recycled (\([0-9]*\) ahead.*/\1/p' <<<"$sum")
	if [ "$rc" = 0 ] && [ "${ahead:-0}" -gt 0 ]; then
		ok "rotation: $sum"
	else
		bad "rotation: exit $rc, no recycle ahead: $(tail -n 2 "$T/rec.err")"
	fi
	"$FV" fsck -s "$T/rot" >"$T/fsck" 2>&1 && ok "rotation: fsck $(grep '^result' "$T/fsck")" ||
		bad "rotation: fsck: $(tail -n 3 "$T/fsck")"
	grep -q '^packets kept *from' <(("$FV" status -s "$T/rot")) &&
		ok "rotation: $(grep '^packets kept' <("$FV" status -s "$T/rot"))" ||
		bad "rotation: status says nothing expired: $(grep '^packets kept' <("$FV" status -s "$T/rot"))"
	if out=$("$PY" tests/integration/killcheck.py "$FV" "$T/rot" "$T/big.pcap" --ignore-time 2>&1); then
		ok "rotation: $(tail -n 1 <<<"$out")"
	else
		bad "rotation: $(tail -n 3 <<<"$out")"
	fi
else
	bad "rotation: record starts"
fi

# DPDK without hugepages or a NIC: the net_pcap driver reads the capture
# file as a port would receive it (docs/capture.md).
if [ -f "$B/flowvault-dpdk.so" ]; then
	s=$T/dpdk
	"$FV" record --backend dpdk -s "$s" --max-disk 512M --dpdk-args \
		"--no-huge -m 256 --no-pci --no-shconf -l 0 --vdev net_pcap0,rx_pcap=$T/g.pcap" \
		2>"$T/rec.err" &
	recpid=$!
	want=$("$PY" -c 'import sys; sys.path.insert(0, "tests/integration"); import capread; print(len(capread.read_frames(sys.argv[1])))' "$T/g.pcap")
	got=0
	for _ in $(seq 150); do
		got=$("$FV" status -s "$s" --format json 2>/dev/null | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["packets"])' 2>/dev/null || echo 0)
		[ "$got" = "$want" ] && break
		kill -0 "$recpid" 2>/dev/null || break
		sleep 0.2
	done
	kill -TERM "$recpid" 2>/dev/null
	wait "$recpid"
	rc=$?
	recpid=
	if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then
		ok "dpdk: net_pcap, $got of $want packets committed while recording, exit 0"
	else
		bad "dpdk: rc $rc, $got of $want packets: $(tail -n 3 "$T/rec.err")"
	fi
	"$FV" extract -s "$s" --bpf "" -w "$T/got.pcap" 2>"$T/ex.err" ||
		bad "dpdk: extract: $(cat "$T/ex.err")"
	if out=$("$PY" tests/integration/recordcheck.py frames "$T/got.pcap" "$T/g.pcap"); then ok "dpdk: $out"; else bad "dpdk: $out"; fi
	"$FV" flows -s "$s" --format csv >"$T/rec.csv"
	if out=$("$PY" tests/integration/recordcheck.py flows "$T/imp.csv" "$T/rec.csv"); then ok "dpdk: $out"; else bad "dpdk: $out"; fi
else
	bad "dpdk: $B/flowvault-dpdk.so was not built"
fi

echo "$fail failed"
[ "$fail" -eq 0 ]
