#!/usr/bin/env bash
# make bench, query part (issue 5): flow query latency over a store of a
# million flows, beside nfdump answering the same question over the same
# traffic (nfcapd files made by nfpcapd from the same pcap), in the same
# run:
#   - a host filter: GET /api/v1/flows?filter=host H (every flow of H)
#     vs nfdump -R DIR 'host H';
#   - a top-N: GET /api/v1/stats/top?by=host&metric=bytes&limit=10
#     vs nfdump -R DIR -s ip/bytes -n 10;
# p50 and p99 of FV_BENCH_QUERY_RUNS (51) runs each, hosts taken in turn
# from the busiest clients. flowvault is asked over HTTP on a kept-alive
# connection (as the UI and scripts ask it); nfdump is a command, its only
# interface. The answers are compared: flow counts (nfpcapd makes one
# NetFlow record per direction, flowvault one per connection: the ratio
# is printed) and the top-10 hosts.
#
# Traffic: tools/bench/manyflows.py, FV_BENCH_FLOWS (1000000) short flows
# (DNS-like UDP, short TCP connections, ICMP echo) between 4096 clients and
# 512 servers. FV_BENCH_QUERY=0 skips this part; FV_BENCH_DIR where files go.
set -u
cd "$(dirname "$0")/../.."
B=${1:-build}
FV=$B/flowvault
DIR=${FV_BENCH_DIR:-$B/bench}
N=${FV_BENCH_FLOWS:-1000000}
RUNS=${FV_BENCH_QUERY_RUNS:-51}
PY=/usr/bin/python3
echo
echo "== flow queries (issue 5): flowvault over REST vs nfdump, $N flows"
[ "${FV_BENCH_QUERY:-1}" = 0 ] && { echo "skipped (FV_BENCH_QUERY=0)"; exit 0; }
for c in nfpcapd nfdump curl; do
	command -v "$c" >/dev/null || { echo "skipped: $c missing (Debian package nfdump; make deps)"; exit 0; }
done
mkdir -p "$DIR"
PCAP=$DIR/manyflows-$N.pcap
if [ ! -s "$PCAP" ]; then
	echo "generating $N flows into $PCAP ..."
	$PY tools/bench/manyflows.py "$PCAP" "$N" 7 || exit 1
fi
S=$DIR/qstore
NF=$DIR/nfcap
SPID=
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
}
trap cleanup EXIT
rm -rf "$S" "$NF"
mkdir -p "$NF"
t0=$(date +%s.%N)
"$FV" import -q -r "$PCAP" -s "$S" --max-disk 8G || exit 1
t1=$(date +%s.%N)
# One nfcapd file for the whole capture (-t longer than it lasts).
nfpcapd -r "$PCAP" -w "$NF" -t 86400 -e 300,60 >"$DIR/nfpcapd.log" 2>&1 || {
	echo "nfpcapd failed: $(tail -n 3 "$DIR/nfpcapd.log")"
	exit 1
}
t2=$(date +%s.%N)
nfl=$("$FV" status -s "$S" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)["flows"])')
nnf=$(nfdump -R "$NF" -q -o csv 2>/dev/null | grep -c '^[0-9]')
printf '%-46s %8.2f s  %s flows (%s in the index)\n' "flowvault import" "$(echo "$t1 - $t0" | bc)" "$nfl" \
	"$(numfmt --to=iec "$("$FV" status -s "$S" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)["index_used_bytes"])')")"
printf '%-46s %8.2f s  %s NetFlow records (one per direction)\n' "nfpcapd -r (nfcapd files)" "$(echo "$t2 - $t1" | bc)" "$nnf"

"$FV" serve -s "$S" --listen 127.0.0.1:0 2>"$DIR/qserve.err" &
SPID=$!
U=
for _ in $(seq 100); do
	U=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$DIR/qserve.err" | head -n 1)
	[ -n "$U" ] && break
	sleep 0.1
done
[ -n "$U" ] || { echo "serve did not start: $(cat "$DIR/qserve.err")"; exit 1; }

PYTHONPATH=tools/bench $PY - "$U" "$NF" "$RUNS" <<'EOF'
import json, statistics, subprocess, sys, time, urllib.parse
from httpget import Conn

url, nfdir, runs = urllib.parse.urlparse(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = Conn(url.hostname, url.port)


def rest(path):
    t = time.perf_counter()
    status, _, body = c.get(path)
    if status != 200:
        sys.exit("REST %s: %d %s" % (path, status, body[:200]))
    return time.perf_counter() - t, body


def nfdump(args):
    t = time.perf_counter()
    p = subprocess.run(["nfdump", "-R", nfdir] + args, capture_output=True, text=True)
    if p.returncode:
        sys.exit("nfdump %s: %s" % (args, p.stderr[:200]))
    return time.perf_counter() - t, p.stdout


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def line(name, a, b, extra):
    pa50, pa99, pb50, pb99 = pct(a, .5), pct(a, .99), pct(b, .5), pct(b, .99)
    print("%-24s flowvault p50 %8.4f s  p99 %8.4f s | nfdump p50 %8.4f s  p99 %8.4f s | "
          "ratio p50 %.1f x, p99 %.1f x faster  %s" % (name, pa50, pa99, pb50, pb99,
                                                         pb50 / pa50, pb99 / pa99, extra))


# The top-10 by bytes, both ways (also gives the hosts for the filter).
_, top = rest("/api/v1/stats/top?by=host&metric=bytes&limit=10")
top = json.loads(top)
fv_hosts = [r["host"] for r in top["top"]]
_, nf_top = nfdump(["-q", "-s", "ip/bytes", "-n", "10", "-o", "csv"])
nf_hosts = []
for ln in nf_top.splitlines():
    f = ln.split(",")
    for x in f:
        if x.count(".") == 3 and x.replace(".", "").isdigit():
            nf_hosts.append(x)
            break
same = len(set(fv_hosts) & set(nf_hosts))

# Host filter: the busiest clients (10.1.x.y) of the top list, in turn;
# the servers' flows are a large share of the store, a client's a few
# hundred: the question an analyst asks of one machine.
_, cl = rest("/api/v1/stats/top?by=src&metric=flows&limit=20")
clients = [r["host"] for r in json.loads(cl)["top"]]
a, b, counts = [], [], []
for i in range(runs):
    h = clients[i % len(clients)]
    ta, body = rest("/api/v1/flows?limit=100000&filter=" + urllib.parse.quote("host " + h))
    tb, out = nfdump(["-q", "-o", "csv", "host " + h])
    a.append(ta)
    b.append(tb)
    if i < len(clients):
        counts.append((json.loads(body)["count"], sum(1 for ln in out.splitlines() if ln[:1].isdigit())))
ratio = statistics.mean(n / f for f, n in counts if f)
line("host filter", a, b, "(%d flows per host on average; nfdump's records / flowvault's flows = %.2f)"
     % (statistics.mean(f for f, _ in counts), ratio))
a, b = [], []
for i in range(runs):
    a.append(rest("/api/v1/stats/top?by=host&metric=bytes&limit=10")[0])
    b.append(nfdump(["-q", "-s", "ip/bytes", "-n", "10"])[0])
line("top-10 hosts by bytes", a, b, "(the two top-10 lists share %d hosts)" % same)
EOF
