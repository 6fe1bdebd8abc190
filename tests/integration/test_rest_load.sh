#!/usr/bin/env bash
# The REST API under load while a recording runs (issue 5, "Load"): two
# network namespaces joined by a veth pair, `flowvault record --listen`
# in one (on a store that already holds an import), tcpreplay of
# generated traffic from the other at a rate the recorder keeps up with.
# During the replay, inside the recorder's namespace:
#   - wrk, 2 threads, 120 connections, 10 s on /api/v1/flows?limit=100;
#   - 10 parallel curl loops, each downloading one flow's pcap again and
#     again for as long as wrk runs (5 imported flows, 5 recorded in the
#     first part of the replay).
# Checks:
#   - wrk: no socket error (connect, read, write, timeout), every
#     response a 2xx, and a fair number of them;
#   - every download: curl exit 0, HTTP 200, byte for byte `flowvault
#     extract --flow ID` of the same store;
#   - the recorder: exit 0 on SIGINT, kernel_drops and if_drops 0, and it
#     recorded exactly the packets tcpreplay says it sent.
# Nothing leaves the namespaces: the veths have no addresses and IPv6 is
# off on them. Exit 0 pass, 1 fail, 77 skip.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
[ "$(id -u)" = 0 ] || skip "not root: network namespaces and AF_PACKET need root"
command -v ip >/dev/null || skip "ip (iproute2) missing (make deps)"
command -v tcpreplay >/dev/null || skip "tcpreplay missing (make deps)"
command -v wrk >/dev/null || skip "wrk missing (make deps)"
command -v curl >/dev/null || skip "curl missing (make deps)"
[ -x "$FV" ] && [ -x "$GEN" ] || {
	echo "no $FV or $GEN (make)"
	exit 1
}

CONNS=120    # wrk connections
DURATION=10  # seconds of wrk, and of the download loops
NDL=10       # parallel downloads
MBPS=50      # replay rate: 192 MiB last ~33 s (slack for a busy machine)...
PICK=8.5     # ...flows picked after 8.5 s, the load runs after that
NA=fvl$$a
NB=fvl$$b
VA=fvl$$a0
VB=fvl$$b0
recpid=
rpid=
test_cleanup() {
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null
	[ -n "$recpid" ] && kill -KILL "$recpid" 2>/dev/null
	# The download loops and wrk, if we got interrupted.
	jobs -p | xargs -r kill 2>/dev/null
}
veth_pair "$NA" "$NB" "$VA" "$VB" >"$T/veth" || skip "$(cat "$T/veth")"

S=$T/store
"$GEN" --size 16M --seed 7 -q -w "$T/imp.pcap" || exit 1
"$GEN" --size 192M --seed 8 --usec -q -w "$T/live.pcap" || exit 1
"$FV" import -q -r "$T/imp.pcap" -s "$S" --max-disk 512M || exit 1
"$FV" flows -s "$S" --format csv | tail -n +2 | cut -d, -f1 | sort >"$T/imp.ids"
jnum() { # key: a number of `status --format json`
	"$FV" status -s "$S" --format json | $PY -c '
import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[k]
print(d)' "$1"
}
p0=$(jnum packets) || exit 1

# ---- record, with the REST API from its process ----
record_start "$NB" "$VB" "$S" --max-disk 512M --listen 127.0.0.1:0 >/dev/null
U=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$T/rec.err" | head -n 1)
if [ -z "$U" ]; then
	bad "record --listen did not start: $(tail -n 3 "$T/rec.err")"
	exit 1
fi
nbx() { ip netns exec "$NB" "$@"; }

ip netns exec "$NA" tcpreplay -i "$VA" --mbps "$MBPS" "$T/live.pcap" >"$T/replay.log" 2>&1 &
rpid=$!

# ---- the flows to download: 5 of the import, 5 recorded by now ----
# A recorded connection is listed at its FIN or RST but rewritten if a
# late packet comes within its linger (--fin-linger, 5 s): take those
# that ended 7 s (linger, and a commit) before the newest packet, so
# that their packets are final and extract's pcap is the one to expect.
sleep "$PICK"
newest=$(jnum last_ns) || exit 1
"$FV" flows -s "$S" --format csv --sort bytes --filter tcp >"$T/flows.csv" || exit 1
awk -F, -v newest="$newest" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	($c["end"] == "fin" || $c["end"] == "rst") &&
	$c["last_ns"] + 7000000000 < newest { print $c["id"] }' "$T/flows.csv" >"$T/done.ids"
ids="$(grep -Fxf "$T/imp.ids" "$T/done.ids" | head -n $((NDL / 2))) \
$(grep -vFxf "$T/imp.ids" "$T/done.ids" | head -n $((NDL - NDL / 2)))"
# shellcheck disable=SC2206
ids=($ids)
if [ "${#ids[@]}" -ne "$NDL" ]; then
	bad "only ${#ids[@]} finished flows to download $PICK s into the replay: ${ids[*]}"
	exit 1
fi
mkdir "$T/ref" "$T/dl"
refbytes=0
for id in "${ids[@]}"; do
	"$FV" extract -s "$S" --flow "$id" -w "$T/ref/$id.pcap" 2>"$T/ex.err" || {
		bad "extract --flow $id: $(cat "$T/ex.err")"
		exit 1
	}
	refbytes=$((refbytes + $(stat -c %s "$T/ref/$id.pcap")))
done

# ---- the load: wrk and the download loops at once ----
cat >"$T/count.lua" <<'EOF'
-- Counts every response whose status is not 2xx (wrk itself counts only
-- >= 400 as errors) and prints wrk's own error counters.
local threads = {}
function setup(thread)
	table.insert(threads, thread)
end
function init(args)
	non2xx = 0
	responses = 0
end
function response(status, headers, body)
	responses = responses + 1
	if status < 200 or status > 299 then
		non2xx = non2xx + 1
	end
end
function done(summary, latency, requests)
	local n, bad = 0, 0
	for _, t in ipairs(threads) do
		n = n + t:get("responses")
		bad = bad + t:get("non2xx")
	end
	local e = summary.errors
	io.write(string.format("LOAD requests=%d responses=%d non2xx=%d connect=%d read=%d write=%d timeout=%d status=%d rps=%.0f p99ms=%.1f\n",
		summary.requests, n, bad, e.connect, e.read, e.write, e.timeout,
		e.status, summary.requests / (summary.duration / 1e6),
		latency:percentile(99) / 1000))
end
EOF
dl_loop() { # i id: downloads flow id until the deadline
	local i=$1 id=$2 n=0 code rc end=$((SECONDS + DURATION))
	while [ "$SECONDS" -lt "$end" ]; do
		n=$((n + 1))
		code=$(nbx curl -sS --max-time 30 -o "$T/dl/$i.pcap" -w '%{http_code}' \
			"$U/api/v1/flows/$id/pcap" 2>"$T/dl/$i.err")
		rc=$?
		if [ "$rc" != 0 ] || [ "$code" != 200 ]; then
			echo "flow $id download $n: curl exit $rc, HTTP $code: $(head -c 200 "$T/dl/$i.err")"
		elif ! cmp -s "$T/dl/$i.pcap" "$T/ref/$id.pcap"; then
			echo "flow $id download $n: differs from extract: $(cmp "$T/dl/$i.pcap" "$T/ref/$id.pcap" 2>&1 | head -c 200)"
		fi
	done
	echo "DONE $n"
}
nbx wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$T/count.lua" \
	"$U/api/v1/flows?limit=100" >"$T/wrk.out" 2>&1 &
wpid=$!
dpids=()
for i in $(seq 0 $((NDL - 1))); do
	dl_loop "$i" "${ids[$i]}" >"$T/dl/$i.log" 2>&1 &
	dpids+=($!)
done
wait "$wpid"
wrc=$?
for p in "${dpids[@]}"; do wait "$p"; done
# Still replaying: the load was on while packets came in.
kill -0 "$rpid" 2>/dev/null && during=yes || during=no
wait "$rpid"
rrc=$?
rpid=

# ---- wrk ----
line=$(grep '^LOAD ' "$T/wrk.out")
val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
if [ "$wrc" = 0 ] && [ -n "$line" ] &&
	[ "$(val non2xx)" = 0 ] && [ "$(val connect)" = 0 ] && [ "$(val read)" = 0 ] &&
	[ "$(val write)" = 0 ] && [ "$(val timeout)" = 0 ] && [ "$(val status)" = 0 ] &&
	[ "$(val responses)" -ge 1000 ] && [ "$(val requests)" -ge "$(val responses)" ]; then
	ok "wrk -c$CONNS ${DURATION}s on /api/v1/flows?limit=100: $(val requests) requests, $(val rps) requests/s, p99 $(val p99ms) ms, 0 non-2xx, 0 socket errors"
else
	bad "wrk (exit $wrc): ${line:-no summary}: $(grep -Ev '^LOAD ' "$T/wrk.out" | tail -n 5 | tr '\n' ' ')"
fi

# ---- downloads ----
ndl=0
nerr=0
for i in $(seq 0 $((NDL - 1))); do
	n=$(sed -n 's/^DONE //p' "$T/dl/$i.log")
	ndl=$((ndl + ${n:-0}))
	e=$(grep -vc '^DONE ' "$T/dl/$i.log")
	nerr=$((nerr + e))
	[ -z "$n" ] && nerr=$((nerr + 1))
done
if [ "$nerr" = 0 ] && [ "$ndl" -ge "$NDL" ]; then
	ok "$NDL parallel download loops: $ndl flow pcaps (flows ${ids[*]}; $refbytes bytes a round), all HTTP 200, each equal to extract --flow"
else
	bad "downloads: $nerr of $ndl failed: $(cat "$T"/dl/*.log | grep -v '^DONE ' | head -n 5)"
fi

# ---- the recorder ----
sent=$(sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' "$T/replay.log")
if [ "$rrc" = 0 ] && [ -n "$sent" ] && [ "$during" = yes ]; then
	ok "tcpreplay at $MBPS Mbps: $sent packets sent, still sending when the load ended"
else
	bad "tcpreplay: exit $rrc, sent '$sent', replay outlasted the load: $during: $(tail -n 3 "$T/replay.log")"
fi
# Let the last packets reach a commit, then stop it.
want=$((p0 + ${sent:-0}))
for _ in $(seq 50); do
	[ "$(jnum packets)" -ge "$want" ] 2>/dev/null && break
	sleep 0.1
done
kill -INT "$recpid"
wait "$recpid"
rc=$?
recpid=
[ "$rc" = 0 ] && ok "record: SIGINT, exit 0: $(tail -n 1 "$T/rec.err")" ||
	bad "record: exit $rc: $(tail -n 3 "$T/rec.err")"
kd=$(jnum capture.kernel_drops)
id=$(jnum capture.if_drops)
p1=$(jnum packets)
got=$((p1 - p0))
if [ "$kd" = 0 ] && [ "$id" = 0 ] && [ "$got" = "${sent:-x}" ]; then
	ok "record under load: kernel_drops $kd, if_drops $id, $got packets recorded = $sent sent"
else
	bad "record under load: kernel_drops $kd, if_drops $id, $got packets recorded, $sent sent"
fi

[ "$fail" -eq 0 ] && echo "all load checks passed" || echo "$fail load checks failed"
[ "$fail" -eq 0 ]
