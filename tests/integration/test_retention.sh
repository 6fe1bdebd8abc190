#!/usr/bin/env bash
# Flow records' own retention (issue 4, docs/flows.md "When flow records
# expire"):
#   - --flow-retention T: the records that ended T before the newest
#     packet go, the rest stay; status says how many went and from when
#     the records are complete; every flow left extracts whole (fsck);
#     host and port queries list no deleted flow; the setting is kept in
#     the store (a later import without the option applies it);
#   - the index's share of the budget (5% of --max-disk) is a hard cap:
#     a store of 256 MiB given 200k short flows, then 3 x 40k more in
#     other runs, never has more than the share in STORE/index (du -b,
#     sampled all along): the oldest records go, counted (kept + expired
#     = imported), and the store stays consistent, every block indexed;
#     `flowvault serve`, opened on the store before (its map the size the
#     store recorded, not the writer's), answers all along.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
js() { # a field of status --format json
	"$FV" status -s "$1" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# ---- by age ----
"$GEN" -q -w "$T/g.pcap" --flows 2000 --seed 9 --duration 60 || exit 1
"$FV" import -q -r "$T/g.pcap" -s "$T/all" --max-disk 1G || exit 1
"$FV" import -q -r "$T/g.pcap" -s "$T/s" --max-disk 1G --flow-retention 20s || exit 1
"$FV" flows -s "$T/all" --format csv >"$T/all.csv"
"$FV" flows -s "$T/s" --format csv >"$T/kept.csv"
newest=$(js "$T/all" flows_last_ns)
if out=$($PY - "$T/all.csv" "$T/kept.csv" "$newest" <<'EOF'
import csv, sys
def rows(p): return {r["id"]: r for r in csv.DictReader(open(p))}
allf, kept, newest = rows(sys.argv[1]), rows(sys.argv[2]), int(sys.argv[3])
cut = newest - 20 * 10**9
def last(r): return int(r["first_ns"]) + int(float(r["duration"]) * 1e9)
old = [i for i, r in allf.items() if last(r) < cut - 10**6]    # clearly before
young = [i for i, r in allf.items() if last(r) >= cut + 10**6]  # clearly after
gone_young = [i for i in young if i not in kept]
kept_old = [i for i in old if i in kept]
extra = [i for i in kept if i not in allf]
print(len(allf), len(kept), len(old), len(young))
sys.exit(1 if gone_young or extra or len(kept_old) > len(old) // 20 else 0)
EOF
); then
	read -r na nk no ny <<<"$out"
	ok "--flow-retention 20s: $nk of $na records kept; all $ny that ended in the last 20 s stay, of the $no older ones at most 5% (long-flow buckets read again later)"
else
	bad "--flow-retention: $out"
fi
ne=$(js "$T/s" flows_expired)
[ "$ne" -gt 0 ] && [ "$(js "$T/s" flows_from_ns)" -gt 0 ] &&
	"$FV" status -s "$T/s" | grep -q "older records expired: complete from" &&
	ok "status: $ne records expired, complete from $(js "$T/s" flows_from_ns)" || bad "status: flows_expired $ne"
"$FV" fsck -s "$T/s" >"$T/fsck" 2>&1 && ok "fsck: consistent ($(grep '^flows' "$T/fsck"))" || bad "fsck: $(cat "$T/fsck")"
# Secondary keys went with their records: a query by host or port gives
# only flows that are there (a dangling key would be an error).
h=$(cut -d, -f6 "$T/kept.csv" | sed -n 2p)
for q in "host $h" "port 53" "port 443" "udp"; do
	"$FV" flows -s "$T/s" --filter "$q" --format csv >"$T/q.csv" 2>"$T/q.err" &&
		[ ! -s "$T/q.err" ] || bad "query '$q' after expiry: $(cat "$T/q.err")"
done
[ $fail = 0 ] && ok "host and port queries after expiry: no dangling key"
# Kept in the store: the next import applies it without the option.
"$GEN" -q -w "$T/h.pcap" --flows 500 --seed 10 --start 1735700000 --duration 30 || exit 1
"$FV" import -q -r "$T/h.pcap" -s "$T/s" || exit 1
left=$("$FV" flows -s "$T/s" --format csv --until 1735699999 | tail -n +2 | wc -l)
[ "$left" = 0 ] && ok "the retention is the store's: a later import without the option dropped every older record" ||
	bad "a later import kept $left older records"

# ---- by size: the index's share is a hard cap ----
# Runs a command while du -b of STORE/index (data.mdb, lock.mdb and the
# directory) is sampled every 50 ms, and once after it (data.mdb never
# shrinks: that last sample is its largest); the samples are in $T/du.
watch_du() { # store command...
	local s=$1 w rc
	shift
	: >"$T/du"
	rm -f "$T/du.stop"
	(while [ ! -e "$T/du.stop" ]; do
		du -sb "$s/index" 2>/dev/null | cut -f1 >>"$T/du"
		sleep 0.05
	done) &
	w=$!
	"$@"
	rc=$?
	touch "$T/du.stop"
	wait $w
	du -sb "$s/index" | cut -f1 >>"$T/du"
	return $rc
}
dumax() { sort -n "$T/du" | tail -1; }
# The flows an import counted ("...: N flows, ...").
imported() { grep -o '[0-9]* flows' "$T/imp" | cut -d' ' -f1; }
share=$((256 * 1024 * 1024 / 100 * 5)) # fv_store_index_share(256 MiB)
$PY tools/bench/manyflows.py "$T/m.pcap" 200000 3 || exit 1
t0=$(date +%s%N)
watch_du "$T/small" "$FV" import -r "$T/m.pcap" -s "$T/small" --max-disk 256M 2>"$T/imp" || {
	cat "$T/imp"
	exit 1
}
ms=$((($(date +%s%N) - t0) / 1000000))
total=$(imported)
mx=$(dumax)
ns=$(wc -l <"$T/du")
ib=$(js "$T/small" index_file_bytes)
nf=$(js "$T/small" flows)
ne=$(js "$T/small" flows_expired)
# The records kept fill the share with their copies (docs/flows.md):
# about 20k of these flows; all the others went, oldest first, counted.
if [ "$mx" -le "$share" ] && [ "$ne" -gt 0 ] && [ "$nf" -ge 10000 ] &&
	[ $((nf + ne)) = "$total" ]; then
	ok "index share: 200k short flows into 256 MiB in $ms ms: STORE/index at most $mx bytes in $ns samples (share $share; data.mdb $ib), $nf records kept, $ne dropped oldest first, of $total"
else
	bad "index share: STORE/index up to $mx bytes (share $share; data.mdb $ib), $nf kept + $ne dropped of $total"
fi
"$FV" fsck -s "$T/small" >"$T/fsck" 2>&1 && grep -q ' 0 not listed by the index' "$T/fsck" &&
	ok "fsck after dropping by size: consistent, every block on disk indexed" || bad "fsck: $(cat "$T/fsck")"
# Churn in several runs into the same store, full from the first, while
# the REST server reads it.
$PY tools/bench/manyflows.py "$T/m2.pcap" 40000 4 || exit 1
serve_start "$T/small" || bad "serve did not start"
(
	n=0 e=0
	while [ ! -e "$T/q.stop" ]; do
		for p in "api/v1/flows?limit=5&sort=bytes" "api/v1/flows?filter=port+53&limit=5" api/v1/status; do
			c=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$U/$p")
			n=$((n + 1))
			[ "$c" = 200 ] || e=$((e + 1))
		done
		sleep 0.1
	done
	echo "$n $e" >"$T/q.res"
) &
qpid=$!
mx=0
for r in 1 2 3; do
	watch_du "$T/small" "$FV" import -r "$T/m2.pcap" -s "$T/small" 2>"$T/imp" || {
		cat "$T/imp"
		exit 1
	}
	total=$((total + $(imported)))
	m=$(dumax)
	[ "$m" -gt "$mx" ] && mx=$m
done
touch "$T/q.stop"
wait $qpid
read -r nq eq <"$T/q.res"
[ "$nq" -gt 0 ] && [ "$eq" = 0 ] && ! grep -qi error "$T/serve.err" &&
	ok "serve beside the churn: $nq requests, all 200" ||
	bad "serve beside the churn: $eq of $nq requests failed: $(cat "$T/serve.err")"
serve_stop
nf=$(js "$T/small" flows)
ne=$(js "$T/small" flows_expired)
if [ "$mx" -le "$share" ] && [ "$nf" -ge 10000 ] && [ $((nf + ne)) = "$total" ]; then
	ok "index share: 3 more imports of 40k flows into it: STORE/index at most $mx bytes (share $share), $nf records kept, $ne dropped, of $total"
else
	bad "index share, 3 more imports: STORE/index up to $mx bytes (share $share), $nf kept + $ne dropped of $total"
fi
"$FV" fsck -s "$T/small" >"$T/fsck" 2>&1 && grep -q ' 0 not listed by the index' "$T/fsck" &&
	ok "fsck after the churn: consistent, every block on disk indexed" || bad "fsck: $(cat "$T/fsck")"
exit $fail
