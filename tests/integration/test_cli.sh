#!/usr/bin/env bash
# The CLI as scripts use it: two imports into one store keep both, a second
# writer is refused, bad input gets a precise message and the documented
# exit code, filters and time ranges select what tshark selects.
set -u
cd "$(dirname "$0")/../.."
FV=${FV_BUILD:-build}/flowvault
C=${FV_CORPUS:-../shared/corpus}
[ -x "$FV" ] || { echo "no $FV"; exit 1; }
[ -d "$C" ] || { echo "no corpus at $C"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
expect_rc() { # want name cmd...
	local want=$1 name=$2; shift 2
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$name (rc $rc)"; else bad "$name: rc $rc, want $want: $(head -c 300 "$T/err")"; fi
}

A=$C/http/bro.org.pcap
B=$C/mixed/modbusBig.pcap
S=$T/s
# Two imports into one store: both captures stay whole.
"$FV" import -q -r "$A" -s "$S" --max-disk 256M || bad "import A"
"$FV" import -q -r "$B" -s "$S" || bad "import B"
na=$(tcpdump -r "$A" 2>/dev/null | wc -l)
nb=$(tcpdump -r "$B" 2>/dev/null | wc -l)
"$FV" extract -s "$S" --bpf '' -w "$T/all.pcap"
nall=$(tcpdump -r "$T/all.pcap" 2>/dev/null | wc -l)
[ "$nall" -eq $((na + nb)) ] && ok "two imports: $nall frames = $na + $nb" || bad "two imports: $nall frames, want $((na + nb))"
p=$("$FV" status -s "$S" --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])')
[ "$p" -eq $((na + nb)) ] && ok "status counts $p packets" || bad "status says $p packets"
# Every flow of the first capture still extracts to what tcpdump selects.
"$FV" flows -s "$S" --format csv --filter 'port 80' >"$T/f.csv"
n=0
while IFS=, read -r id _ _ _ proto ca cp sa sp _; do
	[ "$id" = id ] && continue
	"$FV" extract -s "$S" --flow "$id" -w "$T/x.pcap" || bad "extract $id"
	tcpdump -r "$A" -w "$T/y.pcap" "$proto and host $ca and host $sa and port $cp and port $sp" 2>/dev/null
	if cmp -s <(tcpdump -nn -tt -r "$T/x.pcap" -x 2>/dev/null) <(tcpdump -nn -tt -r "$T/y.pcap" -x 2>/dev/null); then
		n=$((n + 1))
	else
		bad "flow $id differs from tcpdump's selection"
	fi
done <"$T/f.csv"
[ "$n" -eq 13 ] && ok "13 HTTP flows of bro.org equal tcpdump's selection after a second import" || bad "only $n of 13 flows checked"
# Time ranges: flows and extract honour --since/--until (inclusive).
first=$(tcpdump -tt -r "$B" -c 1 2>/dev/null | cut -d' ' -f1)
mid=$(tcpdump -tt -r "$B" 2>/dev/null | sed -n "$((nb / 2))p" | cut -d' ' -f1)
"$FV" extract -s "$S" --bpf 'tcp' --since "$first" --until "$mid" -w "$T/r.pcap"
want=$(tcpdump -tt -r "$B" 2>/dev/null | awk -v a="$first" -v b="$mid" '$1 >= a && $1 <= b' | wc -l)
got=$(tcpdump -r "$T/r.pcap" 2>/dev/null | wc -l)
[ "$got" -eq "$want" ] && ok "time-range BPF extraction: $got packets" || bad "time-range BPF extraction: $got, want $want"
# Errors and exit codes.
expect_rc 2 "bad flow filter" "$FV" flows -s "$S" --filter 'host 10.0.0.1 and port banana'
grep -q '\^' "$T/err" && grep -q "banana" "$T/err" && ok "filter error points at the token" || bad "filter error without caret: $(cat "$T/err")"
expect_rc 2 "bad BPF" "$FV" extract -s "$S" --bpf 'tcp port' -w "$T/z.pcap"
expect_rc 3 "unknown flow" "$FV" extract -s "$S" --flow 999999 -w "$T/z.pcap"
[ ! -e "$T/z.pcap" ] && ok "no output file left behind on error" || bad "output left behind"
expect_rc 1 "no store" "$FV" flows -s "$T/nope"
expect_rc 2 "bad time" "$FV" flows -s "$S" --since yesterday
expect_rc 1 "not a capture" "$FV" import -q -r "$C/malformed/not-a-pcap.pcap" -s "$S"
# A second writer is refused while the first holds the store.
mkfifo "$T/fifo"
"$FV" import -q -r - -s "$S" <"$T/fifo" &
pid=$!
exec 3>"$T/fifo"
head -c 24 "$A" >&3
sleep 1
expect_rc 1 "second writer refused" "$FV" import -q -r "$A" -s "$S"
grep -q "another flowvault process" "$T/err" && ok "lock message" || bad "lock message: $(cat "$T/err")"
exec 3>&-
wait $pid
# --format json is valid JSON; csv has a header and a row per flow.
"$FV" flows -s "$S" --format json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d) > 10 and "community_id" in d[0]' && ok "json" || bad "json"
"$FV" flows -s "$S" --format ndjson | /usr/bin/python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' && ok "ndjson" || bad "ndjson"
# Sorting and limits.
top=$("$FV" flows -s "$S" --sort bytes --limit 1 --format csv | tail -n 1 | cut -d, -f16)
max=$("$FV" flows -s "$S" --format csv | tail -n +2 | cut -d, -f16 | sort -n | tail -n 1)
[ "$top" = "$max" ] && ok "--sort bytes --limit 1 gives the largest ($top)" || bad "sort: $top vs $max"
# A budget smaller than the capture: the ring recycles its oldest
# segments, the newest flows still extract exactly, and the oldest say
# "expired" with exit code 4 instead of returning other bytes.
GEN=build/fvgen
[ -x "$GEN" ] || GEN=${FV_BUILD:-build}/fvgen
if [ -x "$GEN" ]; then
	"$GEN" -q -w "$T/big.pcap" --flows 1500 --seed 5 || bad "fvgen"
	"$FV" import -q -r "$T/big.pcap" -s "$T/small" --max-disk 64M || bad "import into 64M"
	used=$(du -sb "$T/small/segments" | cut -f1)
	[ "$used" -le $((64 << 20)) ] && ok "segments use $used bytes of a 64 MiB budget" || bad "segments use $used bytes > 64 MiB"
	expect_rc 4 "oldest flow expired" "$FV" extract -s "$T/small" --flow 1 -w "$T/old.pcap"
	grep -q "expired" "$T/err" && ok "expired message" || bad "expired message: $(cat "$T/err")"
	last=$("$FV" flows -s "$T/small" --filter 'tcp or udp' --sort id --desc --limit 1 --format csv | tail -n 1)
	IFS=, read -r id _ _ _ proto ca cp sa sp vlan _ <<<"$last"
	"$FV" extract -s "$T/small" --flow "$id" -w "$T/new.pcap" || bad "extract newest flow"
	v=""; [ "$vlan" != 0 ] && v="vlan and "
	tcpdump -r "$T/big.pcap" -w "$T/new-td.pcap" "$v$proto and host $ca and host $sa and port $cp and port $sp" 2>/dev/null
	cmp -s <(tcpdump -nn -tt -x -r "$T/new.pcap" 2>/dev/null) <(tcpdump -nn -tt -x -r "$T/new-td.pcap" 2>/dev/null) &&
		ok "newest flow $id after rotation equals tcpdump's selection" || bad "newest flow $id differs after rotation"
else
	bad "no fvgen"
fi
echo "$fail failed"
[ $fail -eq 0 ]
