#!/usr/bin/env bash
# GET /api/v1/stats/top and /api/v1/stats/timeseries on a real loopback
# port, driven with curl, against independent oracles
# (tests/integration/statscheck.py): the top-N of every key and metric
# recomputed from `flowvault flows --format csv` (also with a filter and
# a time range), hosts and host pairs equal to what tshark counts in the
# captures, time series within 1 of the exact proportional share per
# point with totals equal to the flows' counters, and the documented
# errors with their codes.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=$B/fvgen
C=${FV_CORPUS:-../shared/corpus}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
CHECK="$PY tests/integration/statscheck.py"
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
[ -d "$C" ] || { echo "no corpus at $C"; exit 77; }
command -v curl >/dev/null || { echo "no curl"; exit 77; }
command -v tshark >/dev/null || { echo "no tshark"; exit 77; }
. tests/integration/lib.sh

# Generated traffic (IPv4 and IPv6, TCP, UDP, ICMP, VLANs, fragments)
# and corpus captures (a browser page load, DNS with fragments, IPv6,
# SCTP, pings, mDNS over both families), each of whose IP frames is in
# exactly one flow with the frame's own addresses.
FILES="$T/gen.pcap $C/http/bro.org.pcap $C/dns/dns-edns-ecs.pcap $C/communityid/ipv6.pcap
$C/communityid/sctp.pcap $C/icmp/5-pings.pcap $C/dns/mdns.pcap"
"$GEN" --flows 1500 --seed 5 -q -w "$T/gen.pcap" || bad "fvgen"
S=$T/s
args=()
for f in $FILES; do args+=(-r "$f"); done
"$FV" import -q "${args[@]}" -s "$S" --max-disk 1G || bad "import"

serve_start "$S" || { bad "serve did not start"; exit 1; }
ok "serve listening at $U"

code() { # prints the status of a request: code URL [curl args]
	local url=$1; shift
	curl -s -o "$T/body" -w '%{http_code}' "$@" "$url"
}

# ---- top against flows CSV ----
top_eq() { # name query limit by metric flows-cli-args...
	local name=$1 q=$2 limit=$3 by=$4 metric=$5 c r; shift 5
	"$FV" flows -s "$S" --format csv "$@" >"$T/f.csv" 2>/dev/null || { bad "top $name: flows failed"; return; }
	c=$(code "$U/api/v1/stats/top?by=$by&metric=$metric&limit=$limit&$q")
	if [ "$c" != 200 ]; then
		bad "top $name by=$by metric=$metric: $c $(head -c 200 "$T/body")"
		return
	fi
	r=$($CHECK top "$T/f.csv" "$T/body" "$by" "$metric" "$limit") &&
		ok "top $name by=$by metric=$metric: $r" || bad "top $name by=$by metric=$metric: $r"
}
for by in host src dst port proto pair; do
	for metric in bytes packets flows; do
		top_eq "all" "" 20 $by $metric
	done
done
top_eq "default limit" "" 10 host bytes
top_eq "filter udp" "filter=udp" 15 dst packets --filter udp
top_eq "filter tcp and bytes > 100K" "filter=tcp%20and%20bytes%20%3E%20100K" 30 pair bytes --filter 'tcp and bytes > 100K'
top_eq "filter ipv6 or icmp" "filter=ipv6+or+icmp" 25 host flows --filter 'ipv6 or icmp'
# A range inside the generated traffic: flows that overlap it count whole.
top_eq "since/until" "since=2025-01-01T00:00:05Z&until=1735689610.5" 50 port bytes \
	--since 2025-01-01T00:00:05Z --until 1735689610.5
top_eq "since/until" "since=2025-01-01T00:00:05Z&until=1735689610.5" 50 src flows \
	--since 2025-01-01T00:00:05Z --until 1735689610.5
top_eq "every host" "" 10000 host bytes
c=$(code "$U/api/v1/stats/top?limit=1")
n1=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["keys"], len(d["top"]), d["other"]["keys"])' "$T/body")
set -- $n1
[ "$c" = 200 ] && [ "$2" = 1 ] && [ $(($2 + $3)) = "$1" ] && ok "limit=1: 1 shown, $3 others of $1 keys" || bad "limit=1: $c $n1"
c=$(code "$U/api/v1/stats/top?since=2030-01-01T00:00:00Z")
[ "$c" = 200 ] && $PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["top"] == [] and d["keys"] == 0 and d["totals"]["flows"] == 0
assert d["since"] == "2030-01-01T00:00:00.000000000Z" and d["until"] is None' "$T/body" &&
	ok "a range without flows: 200, empty" || bad "empty range: $c $(head -c 200 "$T/body")"

# ---- top against tshark ----
: >"$T/ep.txt"
: >"$T/fields.tsv"
for f in $FILES; do
	tshark -r "$f" -q -z endpoints,ip -z endpoints,ipv6 2>/dev/null >>"$T/ep.txt"
	tshark -r "$f" -T fields -E occurrence=f -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst \
		-e frame.len 2>/dev/null >>"$T/fields.tsv"
done
# tshark's endpoint tables are per file: sum them by address first.
$PY - "$T/ep.txt" >"$T/ep-sum.txt" <<'EOF'
import collections, ipaddress, sys
s = collections.defaultdict(lambda: [0] * 6)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) != 7 or not p[1].isdigit():
        continue
    try:
        ipaddress.ip_address(p[0])
    except ValueError:
        continue
    for i, v in enumerate(p[1:]):
        s[p[0]][i] += int(v)
for a, v in s.items():
    print(a, *v)
EOF
c=$(code "$U/api/v1/stats/top?by=host&limit=10000")
r=$($CHECK tshark-hosts "$T/ep-sum.txt" "$T/body") && ok "by=host vs tshark -z endpoints,ip/ipv6: $r" ||
	bad "by=host vs tshark: $c $r"
c=$(code "$U/api/v1/stats/top?by=pair&limit=10000")
r=$($CHECK tshark-pairs "$T/fields.tsv" "$T/body") && ok "by=pair vs tshark's IP frames: $r" ||
	bad "by=pair vs tshark: $c $r"
# With a filter on ports: the same frames tshark selects by port.
c=$(code "$U/api/v1/stats/top?by=pair&limit=10000&filter=port+443")
tshark -r "$T/gen.pcap" -Y 'tcp.port == 443 or udp.port == 443' -T fields -E occurrence=f \
	-e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e frame.len 2>/dev/null >"$T/f443.tsv"
r=$($CHECK tshark-pairs "$T/f443.tsv" "$T/body") && ok "by=pair filter=port 443 vs tshark -Y 'tcp.port == 443': $r" ||
	bad "by=pair port 443 vs tshark: $c $r"

# ---- timeseries against the flows ----
ts_eq() { # name query flows-cli-args...
	local name=$1 q=$2 c r; shift 2
	"$FV" flows -s "$S" --format csv "$@" >"$T/f.csv" 2>/dev/null || { bad "ts $name: flows failed"; return; }
	c=$(code "$U/api/v1/stats/timeseries?$q")
	if [ "$c" != 200 ]; then
		bad "timeseries $name: $c $(head -c 200 "$T/body")"
		return
	fi
	r=$($CHECK ts "$T/f.csv" "$T/body") && ok "timeseries $name: $r" || bad "timeseries $name: $r"
}
ts_eq "default range and step" ""
ts_eq "generated traffic, step=1s" "since=2025-01-01T00:00:00Z&until=2025-01-01T00:01:00Z&step=1s" \
	--since 2025-01-01T00:00:00Z --until 2025-01-01T00:01:00Z
ts_eq "cut range, step=250ms, filter=tcp" "since=1735689603.3&until=1735689611.7&step=250ms&filter=tcp" \
	--since 1735689603.3 --until 1735689611.7 --filter tcp
ts_eq "step=7s, filter=udp or icmp" "since=2025-01-01T00:00:02Z&until=2025-01-01T00:00:40Z&step=7s&filter=udp+or+icmp" \
	--since 2025-01-01T00:00:02Z --until 2025-01-01T00:00:40Z --filter 'udp or icmp'
ts_eq "bro.org, step=100ms" "since=2014-01-14T17:00:00Z&until=2014-01-14T17:10:00Z&step=100ms" \
	--since 2014-01-14T17:00:00Z --until 2014-01-14T17:10:00Z
# The totals over the store are what tshark counts as IP frames.
c=$(code "$U/api/v1/stats/timeseries")
$PY - "$T/fields.tsv" "$T/body" <<'EOF' && ok "timeseries totals = tshark's IP frames and bytes" || bad "timeseries totals vs tshark"
import json, sys
n = b = 0
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] or f[2]:
        n += 1
        b += int(f[4])
t = json.load(open(sys.argv[2]))["totals"]
print("   ", t["packets"], t["bytes"], "vs tshark", n, b)
sys.exit(0 if (t["packets"], t["bytes"]) == (n, b) else 1)
EOF
c=$(code "$U/api/v1/stats/timeseries?metric=flows&step=10s&since=1735689600&until=1735689660")
[ "$c" = 200 ] && $PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["metric"] == "flows" and len(d["points"]) == 7, d["points"]
assert all(set(p) == {"t", "t_ns", "flows", "active_flows"} for p in d["points"])
assert set(d["totals"]) == {"flows"} and d["totals"]["flows"] == 1500' "$T/body" &&
	ok "metric=flows: only flows and active_flows; 1500 generated flows started" || bad "metric=flows: $c $(head -c 300 "$T/body")"
c=$(code "$U/api/v1/stats/timeseries?since=-1h")
[ "$c" = 200 ] && $PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["totals"]["flows"] == 0 and len(d["points"]) >= 1' "$T/body" &&
	ok "since=-1h (relative, no flows then): 200, zeros" || bad "since=-1h: $c $(head -c 300 "$T/body")"

# ---- errors ----
err_is() { # name want-code url [curl args] ; the body must be our JSON error
	local name=$1 want=$2 url=$3; shift 3
	local c
	c=$(code "$url" "$@")
	if [ "$c" = "$want" ] && $PY -c '
import json, sys
e = json.load(open(sys.argv[1]))
assert isinstance(e["error"], str) and isinstance(e["detail"], str)' "$T/body" 2>/dev/null; then
		ok "$name: $c $(head -c 150 "$T/body")"
	else
		bad "$name: $c (want $want): $(head -c 200 "$T/body")"
	fi
}
err_is "top: bad by" 400 "$U/api/v1/stats/top?by=mac"
err_is "top: bad metric" 400 "$U/api/v1/stats/top?metric=bits"
err_is "top: limit 0" 400 "$U/api/v1/stats/top?limit=0"
err_is "top: limit not a number" 400 "$U/api/v1/stats/top?limit=ten"
err_is "top: limit too large" 422 "$U/api/v1/stats/top?limit=10001"
err_is "top: bad filter" 400 "$U/api/v1/stats/top?filter=src+host+10.0.0.1+and+dst+port+99999"
at=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["at"])' "$T/body" 2>/dev/null)
[ "$at" = 31 ] && ok "top: bad filter gives at=31, as /flows" || bad "top: bad filter at=$at, want 31"
err_is "top: bad time" 400 "$U/api/v1/stats/top?since=yesterday"
err_is "top: since after until" 400 "$U/api/v1/stats/top?since=2000&until=1000"
err_is "top: unknown parameter" 400 "$U/api/v1/stats/top?step=1s"
err_is "top: POST" 405 "$U/api/v1/stats/top" -d '{}'
err_is "timeseries: bad step" 400 "$U/api/v1/stats/timeseries?step=often"
err_is "timeseries: step 0" 400 "$U/api/v1/stats/timeseries?step=0"
err_is "timeseries: too many steps" 422 "$U/api/v1/stats/timeseries?step=1ms&since=2025-01-01T00:00:00Z&until=2025-01-01T00:01:00Z"
grep -q '60001 steps' "$T/body" && ok "... and the detail says how many (60001)" || bad "too many steps detail: $(cat "$T/body")"
c=$(code "$U/api/v1/stats/timeseries?step=6ms&metric=flows&since=2025-01-01T00:00:00Z&until=2025-01-01T00:00:59.994Z")
[ "$c" = 200 ] && $PY -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["points"]) == 10000' "$T/body" &&
	ok "timeseries: 10000 steps (the most) is fine" || bad "10000 steps: $c"
err_is "timeseries: 10001 steps" 422 "$U/api/v1/stats/timeseries?step=6ms&since=2025-01-01T00:00:00Z&until=2025-01-01T00:01:00Z"
err_is "timeseries: bad metric" 400 "$U/api/v1/stats/timeseries?metric=bits"
err_is "timeseries: bad filter" 400 "$U/api/v1/stats/timeseries?filter=port+banana"
err_is "timeseries: since after until" 400 "$U/api/v1/stats/timeseries?since=2000&until=1000"
err_is "timeseries: unknown parameter" 400 "$U/api/v1/stats/timeseries?by=host"
err_is "timeseries: POST" 405 "$U/api/v1/stats/timeseries" -d '{}'
grep -q 'stats' docs/api.yaml && grep -q '/api/v1/stats/top:' docs/api.yaml &&
	grep -q '/api/v1/stats/timeseries:' docs/api.yaml && ok "docs/api.yaml describes both paths" ||
	bad "docs/api.yaml lacks the stats paths"

kill -TERM "$SPID"
wait "$SPID"
rc=$?
SPID=
[ "$rc" -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: rc $rc"
grep -qiE 'AddressSanitizer|runtime error|LeakSanitizer' "$T/serve.err" &&
	bad "sanitizer: $(grep -m3 -iE 'Sanitizer|runtime error' "$T/serve.err")"

[ "$fail" -eq 0 ] && echo "all REST stats checks passed" || echo "$fail REST stats checks failed"
[ "$fail" -eq 0 ]
