#!/usr/bin/env bash
# ../shared/corpus/malformed: no crash, no hang (a timeout per file), a
# clear error or a count of undecodable frames, and every frame that
# libpcap (or our pcapng reader) can read is stored: the whole-store
# extraction holds as many frames as `tcpdump -r` reads.
set -u
cd "$(dirname "$0")/../.."
FV=${FV_BUILD:-build}/flowvault
CORPUS=${FV_CORPUS:-../shared/corpus}
[ -x "$FV" ] || { echo "no $FV"; exit 1; }
[ -d "$CORPUS/malformed" ] || { echo "no corpus at $CORPUS"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
for f in "$CORPUS"/malformed/*; do
	n=$((n + 1))
	b=$(basename "$f")
	rm -rf "$tmp/s"
	timeout 60 "$FV" import -q -r "$f" -s "$tmp/s" --max-disk 64M 2>"$tmp/err"
	rc=$?
	if [ $rc -ge 124 ] || [ $rc -gt 4 ]; then
		echo "FAIL $b: import rc=$rc (crash or hang)"; cat "$tmp/err"; fail=$((fail + 1)); continue
	fi
	want=$(tcpdump --count -r "$f" 2>/dev/null | awk '{print $1}')
	want=${want:-0}
	if [ ! -f "$tmp/s/flowvault.conf" ]; then
		echo "FAIL $b: no store created"; fail=$((fail + 1)); continue
	fi
	if [ $rc -ne 0 ] && [ ! -s "$tmp/err" ]; then
		echo "FAIL $b: rc=$rc without a message"; fail=$((fail + 1)); continue
	fi
	timeout 60 "$FV" extract -s "$tmp/s" --bpf '' --format pcapng -w "$tmp/all.pcapng" 2>>"$tmp/err"
	erc=$?
	if [ $erc -ne 0 ]; then
		echo "FAIL $b: extract rc=$erc"; cat "$tmp/err"; fail=$((fail + 1)); continue
	fi
	got=$(tshark -r "$tmp/all.pcapng" 2>/dev/null | wc -l)
	und=$("$FV" status -s "$tmp/s" --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["undecodable"])')
	if [ "$got" -lt "$want" ]; then
		echo "FAIL $b: stored $got frames, tcpdump reads $want"; fail=$((fail + 1)); continue
	fi
	msg=$(head -c 200 "$tmp/err" | tr '\n' ' ')
	echo "ok   $b: rc=$rc, $got frames stored (tcpdump reads $want), $und undecodable${msg:+; said: $msg}"
done
echo "$n files, $fail failed"
[ $fail -eq 0 ]
