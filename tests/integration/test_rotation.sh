#!/usr/bin/env bash
# Rotation under a small disk budget (issue 4): about 1.5 GB of traffic
# through a 64 MiB store.
#  - disk use of the whole store directory (segments, index, everything),
#    sampled every 0.2 s during both imports, never exceeds 64 MiB;
#  - afterwards the oldest flows still list, with packets_available
#    "expired", and `extract --flow` of them exits 4 saying from when
#    packets are kept; a flow with some packets gone is refused the same
#    way (a flow is written whole or not at all);
#  - the newest flows extract exactly (bytes and ns timestamps) what
#    tcpdump selects from the original capture;
#  - `extract --bpf "" --since T` with T before the retention start
#    writes what is still stored (the same as --since that start) and
#    warns; a range wholly before it exits 4;
#  - while a second import rotates the store, recent committed flows are
#    extracted again and again: each time exactly their packets, or
#    exit 4 (expired), never other bytes.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=build/fvgen
[ -x "$GEN" ] || GEN=$B/fvgen
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
command -v tcpdump >/dev/null || { echo "no tcpdump"; exit 77; }
T=$(mktemp -d)
S=$T/store
SAMPLER=
cleanup() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
BUDGET=$((64 << 20))

# Feeds a file through a pipe at about $2 MiB per 10 ms, so an import
# lasts a few seconds and the sampler sees it.
feed() { /usr/bin/python3 tests/integration/feed.py "$1" $(($2 << 20)) 0.01; } # FILE MIB

# Two captures: 1 GiB, then 512 MiB starting an hour later.
"$GEN" -q --size 1G --seed 9 -w "$T/a.pcap" || { echo "fvgen"; exit 1; }
"$GEN" -q --size 512M --seed 10 --start 1735693200 -w "$T/b.pcap" || { echo "fvgen"; exit 1; }

# Disk use of the store directory every 0.2 s: allocated bytes (du -B1,
# what the budget caps) and apparent sizes (du -b), the larger of the two.
(
	while :; do
		if [ -d "$S" ]; then
			a=$(du -s -B1 "$S" 2>/dev/null | cut -f1)
			b=$(du -s -b "$S" 2>/dev/null | cut -f1)
			[ -n "$a" ] && [ -n "$b" ] && echo $((a > b ? a : b))
		fi
		sleep 0.2
	done
) >"$T/du.log" &
SAMPLER=$!

t0=$SECONDS
feed "$T/a.pcap" 2 | "$FV" import -q -r - -s "$S" --max-disk 64M || bad "import a"
echo "import of 1 GiB into 64 MiB: $((SECONDS - t0)) s"

"$FV" status -s "$S" >"$T/status" || bad "status"
cat "$T/status"
"$FV" status -s "$S" --format json >"$T/status.json" || bad "status json"
read -r from gen_from <<<"$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
w = d["retention"][0]
print(d["packets_from_ns"], w["packets_from_gen"])
' "$T/status.json")"
[ "${from:-0}" -gt 0 ] && [ "${gen_from:-0}" -gt 1 ] &&
	ok "status: packets kept from $from (generation $gen_from on)" ||
	bad "status has no retention start: $from $gen_from"
grep -q "^packets kept   from" "$T/status" && grep -q "^flow times" "$T/status" &&
	ok "status shows packets kept beside the flow times" || bad "status lines"

"$FV" flows -s "$S" --format csv >"$T/flows.csv" || bad "flows"
/usr/bin/python3 - "$T/flows.csv" "$from" >"$T/avail" <<'EOF' || bad "packets_available column"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
frm = int(sys.argv[2])
bad = 0
for r in rows:
    f, l = int(r['first_ns']), int(r['last_ns'])
    want = 'yes' if f >= frm else ('expired' if l < frm else 'partial')
    if r['packets_available'] != want:
        bad += 1
n = {k: sum(1 for r in rows if r['packets_available'] == k)
     for k in ('yes', 'partial', 'expired')}
print(n['yes'], n['partial'], n['expired'], len(rows), bad)
sys.exit(1 if bad or not n['expired'] or not n['yes'] else 0)
EOF
read -r nyes npart nexp nall nbad <"$T/avail"
[ "${nbad:-1}" = 0 ] && ok "$nall flows listed: $nyes yes, $npart partial, $nexp expired (as their times say)" ||
	bad "packets_available: $(cat "$T/avail")"
"$FV" flows -s "$S" --limit 1 --format json | grep -q '"packets_available":"expired"' &&
	ok "json: the oldest flow says packets_available expired" || bad "json packets_available"

# The oldest flow: exit 4, naming when packets start; no file left.
"$FV" extract -s "$S" --flow 1 -w "$T/old.pcap" 2>"$T/err"
rc=$?
[ $rc = 4 ] && grep -q "expired" "$T/err" && grep -q "keeps packets from 20" "$T/err" && [ ! -e "$T/old.pcap" ] &&
	ok "expired flow: exit 4, $(cat "$T/err")" || bad "expired flow: rc=$rc $(cat "$T/err")"
# A partial flow: refused too, with the count gone.
pid=$(awk -F, 'NR > 1 && $NF == "partial" { print $1; exit }' "$T/flows.csv")
if [ -n "$pid" ]; then
	"$FV" extract -s "$S" --flow "$pid" -w "$T/part.pcap" 2>"$T/err"
	rc=$?
	[ $rc = 4 ] && grep -q "of its .* packets have expired" "$T/err" && [ ! -e "$T/part.pcap" ] &&
		ok "partial flow $pid: exit 4, $(cat "$T/err")" || bad "partial flow $pid: rc=$rc $(cat "$T/err")"
else
	bad "no partial flow to try"
fi

# The newest flows: exactly tcpdump's selection from the original.
same_frames() { # a.pcap b.pcap: same frames, bytes and ns timestamps
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import os, sys
sys.path.insert(0, 'tests/integration')
from capread import read_frames
a, b = read_frames(sys.argv[1]), read_frames(sys.argv[2])
ka = [(f[0], f[4]) for f in a]
kb = [(f[0], f[4]) for f in b]
sys.exit(0 if ka == kb and ka else 1)
EOF
}
checked=0
for id in $(awk -F, 'NR > 1 && $NF == "yes" && ($5 == "tcp" || $5 == "udp") { print $1 }' "$T/flows.csv" | sort -n | tail -n 4); do
	IFS=, read -r _ _ _ _ proto ca cp sa sp vlan _ < <(awk -F, -v id="$id" '$1 == id' "$T/flows.csv")
	v=""
	[ "$vlan" != 0 ] && v="vlan and "
	tcpdump --time-stamp-precision=nano -r "$T/a.pcap" -w "$T/td-$id.pcap" \
		"$v$proto and host $ca and host $sa and port $cp and port $sp" 2>/dev/null
	"$FV" extract -s "$S" --flow "$id" -w "$T/fl-$id.pcap" || { bad "extract newest flow $id"; continue; }
	if same_frames "$T/fl-$id.pcap" "$T/td-$id.pcap"; then
		checked=$((checked + 1))
	else
		bad "newest flow $id differs from tcpdump's selection"
	fi
done
[ $checked = 4 ] && ok "4 newest flows equal tcpdump's selection (bytes, ns timestamps)" || bad "only $checked newest flows checked"

# A time range reaching before the retention start: what is left, and a
# warning; wholly before it: exit 4.
"$FV" extract -s "$S" --bpf "" --since 1735689600 -w "$T/since.pcap" 2>"$T/err"
rc=$?
fts=$(date -u -d "@$((from / 1000000000))" +%Y-%m-%dT%H:%M:%S).$(printf %09d $((from % 1000000000)))Z
"$FV" extract -s "$S" --bpf "" --since "$fts" -w "$T/since-from.pcap" 2>"$T/err2"
rc2=$?
[ $rc = 0 ] && grep -q "have expired" "$T/err" && [ $rc2 = 0 ] && [ ! -s "$T/err2" ] &&
	cmp -s "$T/since.pcap" "$T/since-from.pcap" &&
	ok "--since before the retention start: what is left (= --since the start), warning: $(cat "$T/err")" ||
	bad "--since before retention: rc=$rc/$rc2 $(cat "$T/err" "$T/err2")"
"$FV" extract -s "$S" --bpf "" --until 1735689610 -w "$T/until.pcap" 2>"$T/err"
rc=$?
[ $rc = 4 ] && grep -q "expired" "$T/err" && [ ! -e "$T/until.pcap" ] &&
	ok "range wholly before the retention start: exit 4, $(cat "$T/err")" || bad "--until before retention: rc=$rc $(cat "$T/err")"

# Extraction while the store rotates: recent committed flows, again and
# again, while a second import (an hour later) recycles their segments.
refs=""
for id in $(awk -F, 'NR > 1 && $NF == "yes" { print $1 }' "$T/flows.csv" | sort -n | tail -n 200 | awk 'NR % 40 == 0'); do
	"$FV" extract -s "$S" --flow "$id" -w "$T/ref-$id.pcap" && refs="$refs $id"
done
feed "$T/b.pcap" 1 | "$FV" import -q -r - -s "$S" --max-disk 64M &
IMP=$!
same=0 expired=0 wrong=0 loops=0
while kill -0 $IMP 2>/dev/null; do
	for id in $refs; do
		"$FV" extract -s "$S" --flow "$id" -w "$T/x.pcap" 2>"$T/xerr"
		rc=$?
		if [ $rc = 0 ] && cmp -s "$T/x.pcap" "$T/ref-$id.pcap"; then
			same=$((same + 1))
		elif [ $rc = 4 ] && grep -q "expired" "$T/xerr" && [ ! -e "$T/x.pcap" ]; then
			expired=$((expired + 1))
		else
			wrong=$((wrong + 1))
			echo "flow $id: rc=$rc $(cat "$T/xerr")"
		fi
		rm -f "$T/x.pcap"
	done
	loops=$((loops + 1))
done
wait $IMP || bad "import b"
[ $wrong = 0 ] && [ $expired -gt 0 ] && [ $same -gt 0 ] &&
	ok "during rotation: $same exact, $expired expired, 0 wrong ($loops rounds of$refs)" ||
	bad "during rotation: $same exact, $expired expired, $wrong wrong"
for id in $refs; do
	"$FV" extract -s "$S" --flow "$id" -w "$T/x.pcap" 2>/dev/null
	[ $? = 4 ] || bad "flow $id not expired after the second import"
done

kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=
n=$(wc -l <"$T/du.log")
max=$(sort -n "$T/du.log" | tail -n 1)
end=$(du -s -B1 "$S" | cut -f1)
[ "$n" -ge 20 ] && [ "${max:-$BUDGET}" -le $BUDGET ] && [ "$end" -le $BUDGET ] &&
	ok "disk use of the store: at most $max bytes in $n samples, $end at the end (budget $BUDGET)" ||
	bad "disk use: max ${max:-?} in $n samples, $end at the end > $BUDGET"

# After months of rotation, in small: the index and the segments agree,
# and the flows whose packets expired are counted as such.
"$FV" fsck -s "$S" >"$T/fsck" 2>&1
rc=$?
nexp=$(sed -n 's/^flows .* \([0-9][0-9]*\) expired.*/\1/p' "$T/fsck")
[ $rc -eq 0 ] && [ "${nexp:-0}" -gt 0 ] &&
	ok "fsck after rotation: consistent, $nexp flows with expired packets ($(grep '^blocks' "$T/fsck"))" ||
	bad "fsck after rotation: rc=$rc $(cat "$T/fsck")"

echo "$fail failed"
[ $fail -eq 0 ]
