#!/usr/bin/env bash
# kill -9 in the middle of an import, several times: what the index lists
# afterwards extracts to exactly the original frames (killcheck.py), the
# lock is free again, and the next import into the same store works and
# extracts exactly too; fsck finds the store consistent after each kill.
# (The full fault loop of issue 4 goes further.)
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=build/fvgen
[ -x "$GEN" ] || GEN=$B/fvgen
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$GEN" -q -w "$T/g.pcap" --flows 1500 --seed 11 || exit 1
fail=0
# The capture (about 165 MB) is fed through a pipe at about 50 MB/s, so
# the import runs for a few seconds and commits about once a second.
feed() { /usr/bin/python3 tests/integration/feed.py "$1" $((1 << 20)) 0.02; }
for i in 1 2 3 4 5; do
	rm -rf "$T/s"
	feed "$T/g.pcap" | "$FV" import -q -r - -s "$T/s" --max-disk 2G &
	# Kill once the index holds some flows (a commit went through),
	# at a different moment each time.
	for _ in $(seq 100); do
		n=$("$FV" status -s "$T/s" --format json 2>/dev/null |
			/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"])' 2>/dev/null)
		[ "${n:-0}" -gt 0 ] && break
		sleep 0.1
	done
	t=$(( i * 170 ))
	sleep "0.$(printf %03d $t)"
	pkill -9 -f "flowvault import -q -r - -s $T/s" 2>/dev/null
	wait 2>/dev/null
	echo "kill $i, $t ms after the first commit was seen:"
	/usr/bin/python3 tests/integration/killcheck.py "$FV" "$T/s" "$T/g.pcap" || fail=1
	if "$FV" fsck -s "$T/s" >"$T/fsck" 2>&1; then
		echo "  fsck: consistent; $(grep '^disk' "$T/fsck")"
	else
		echo "  FAIL: fsck after the kill:"
		sed 's/^/    /' "$T/fsck"
		fail=1
	fi
done
# The killed store takes the next import (a new generation) and stays exact:
# every flow, old or new, extracts to frames of one of the two captures.
"$GEN" -q -w "$T/h.pcap" --flows 200 --seed 12 || exit 1
"$FV" import -q -r "$T/h.pcap" -s "$T/s" || { echo "import after kill failed"; fail=1; }
echo "after the kills, a new import into the same store:"
mergecap -F nsecpcap -w "$T/both.pcap" "$T/g.pcap" "$T/h.pcap" || exit 1
/usr/bin/python3 tests/integration/killcheck.py "$FV" "$T/s" "$T/both.pcap" || fail=1
exit $fail
