#!/usr/bin/env bash
# A full or read-only disk under import and record (issue 4): writing
# stops with a clear message that names the store, what was stored before
# is indexed and extracts to exactly its packets, `status` says why it
# stopped, fsck finds the store consistent, and the next writer on the
# same store works once there is room.
#
#   - import into a 64 MiB tmpfs with a budget of 1 GB: the disk fills
#     first (warned at start), import exits 1 naming the store;
#   - record (a veth, tcpreplay) into a 48 MiB tmpfs with a budget of
#     300 MB (segments of ~18 MB): the same, live.
# (A disk that turns read-only or fails with EIO stops writing the same
# way, with the error, but has no test here: a tmpfs with files open for
# writing cannot be remounted read-only.)
# Needs root (mount, network namespaces): exit 77 without.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
[ "$(id -u)" = 0 ] || skip "not root: tmpfs mounts and network namespaces need root"
[ -x "$FV" ] && [ -x "$GEN" ] || {
	echo "no $FV or $GEN (make)"
	exit 1
}
M=$T/mnt
recpid=
test_cleanup() {
	[ -n "$recpid" ] && kill -KILL "$recpid" 2>/dev/null
	umount "$M" 2>/dev/null
}
mkdir -p "$M"
mount -t tmpfs -o size=64m tmpfs "$M" || skip "cannot mount a tmpfs"

# What a store must be after writing stopped: consistent, its flows
# exactly packets of what was sent, its stop reason shown.
check_store() { # name store sent.pcap [--ignore-time] reason-regex
	local name=$1 s=$2 sent=$3 opt=$4 why=$5 rc
	"$FV" fsck -s "$s" >"$T/fsck" 2>&1
	rc=$?
	[ "$rc" = 0 ] && ok "$name: fsck: $(grep '^result' "$T/fsck")" ||
		bad "$name: fsck exit $rc: $(tail -n 4 "$T/fsck")"
	# shellcheck disable=SC2086
	if out=$($PY tests/integration/killcheck.py "$FV" "$s" "$sent" $opt 2>&1); then
		ok "$name: $(tail -n 1 <<<"$out")"
	else
		bad "$name: the flows listed are not the packets sent: $(tail -n 3 <<<"$out")"
	fi
	"$FV" status -s "$s" >"$T/status" 2>&1
	if grep -Eq "^stopped .*$why" "$T/status"; then
		ok "$name: status says why: $(grep '^stopped' "$T/status")"
	else
		bad "$name: status: no stop reason matching '$why': $(tail -n 3 "$T/status")"
	fi
	"$FV" status -s "$s" --format json | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["stop_error"] and d["stop_error"]["ns"] > 0, d.get("stop_error")
print(d["stop_error"]["message"])' >"$T/sj" 2>&1 &&
		ok "$name: status --format json: stop_error \"$(cat "$T/sj")\"" ||
		bad "$name: status json: $(cat "$T/sj")"
	# The same over REST (the UI's status).
	serve_start "$s" || bad "$name: serve did not start"
	curl -s "$U/api/v1/status" | $PY -c '
import json, sys
d = json.load(sys.stdin)["stop_error"]
assert d and d["ns"] > 0 and "disk is full" in d["message"], d
print(d["message"])' >"$T/rj" 2>&1 &&
		ok "$name: GET /api/v1/status: stop_error \"$(cat "$T/rj")\"" ||
		bad "$name: REST status: $(tail -n 2 "$T/rj")"
	serve_stop
}

# ---- import: the disk fills before the budget ----
"$GEN" --size 256M --seed 5 -q -w "$T/g.pcap" || exit 1
S=$M/imp
"$FV" import -r "$T/g.pcap" -s "$S" --max-disk 1G >"$T/out" 2>&1
rc=$?
grep -q "warning: the budget of $S is" "$T/out" &&
	ok "import: warned at start: $(grep -m1 warning "$T/out" | cut -c1-150)" ||
	bad "import: no warning about the budget: $(head -n 3 "$T/out")"
if [ "$rc" = 1 ] && grep -q "the disk of $S is full (No space left on device): stopped after [1-9]" "$T/out"; then
	ok "import: exit 1: $(grep 'is full' "$T/out" | cut -c1-160)"
else
	bad "import: exit $rc: $(tail -n 3 "$T/out")"
fi
np=$("$FV" status -s "$S" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)["packets"])')
[ "${np:-0}" -gt 1000 ] && ok "import: $np packets stored and indexed before the disk filled" ||
	bad "import: $np packets indexed"
check_store import "$S" "$T/g.pcap" "" "disk is full"
# The next writer, once there is room: the stop reason is cleared.
rm -rf "$S"
"$GEN" --flows 50 --seed 1 -q -w "$T/small.pcap" || exit 1
"$FV" import -q -r "$T/small.pcap" -s "$M/imp3" --max-disk 40M &&
	! "$FV" status -s "$M/imp3" | grep -q '^stopped' &&
	ok "import into a store the disk can hold: exit 0, no stop reason" ||
	bad "import within the disk's room failed"
rm -rf "$M"/imp*

# ---- record: the same live ----
command -v tcpreplay >/dev/null || {
	echo "tcpreplay missing: the record checks are skipped"
	[ "$fail" -eq 0 ] && exit 0 || exit 1
}
NA=fvd$$a NB=fvd$$b VA=fvd$$a0 VB=fvd$$b0
veth_pair "$NA" "$NB" "$VA" "$VB" >"$T/veth" || skip "$(cat "$T/veth")"
"$GEN" --size 96M --seed 6 --usec -q -w "$T/live.pcap" || exit 1

start_record() { record_start "$NB" "$VB" "$1" --max-disk "$2"; } # store budget
wait_record() { # seconds: its exit status, or 124 if it still runs
	for _ in $(seq $(($1 * 10))); do
		kill -0 "$recpid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$recpid" 2>/dev/null; then
		kill -TERM "$recpid"
		wait "$recpid"
		recpid=
		return 124
	fi
	wait "$recpid"
	local rc=$?
	recpid=
	return $rc
}

umount "$M" && mount -t tmpfs -o size=48m tmpfs "$M" || exit 1
S=$M/rec
if start_record "$S" 300M; then
	ip netns exec "$NA" tcpreplay -q -i "$VA" --mbps 300 "$T/live.pcap" >"$T/replay.log" 2>&1
	wait_record 20
	rc=$?
	if [ "$rc" = 1 ] && grep -q "the disk of $S is full" "$T/rec.err" &&
		grep -q "worker 0: the disk is full: No space left on device" "$T/rec.err"; then
		ok "record: exit 1: $(grep 'worker 0' "$T/rec.err" | cut -c1-120)"
	else
		bad "record: exit $rc: $(tail -n 3 "$T/rec.err")"
	fi
	np=$("$FV" status -s "$S" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)["packets"])')
	[ "${np:-0}" -gt 1000 ] && ok "record: $np packets stored and indexed before the disk filled" ||
		bad "record: $np packets indexed"
	check_store record "$S" "$T/live.pcap" --ignore-time "disk is full"
else
	bad "record into $S did not start"
fi

[ "$fail" -eq 0 ] && echo "all disk error checks passed" || echo "$fail disk error checks failed"
[ "$fail" -eq 0 ]
