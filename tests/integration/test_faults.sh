#!/usr/bin/env bash
# The fault loop (issue 4): FV_FAULT_RUNS times (50), start `record` (a
# tcpreplay into a veth) or `import` (a capture fed through a pipe), kill
# -9 it at a random moment, restart it on the same store (record: a
# second replay, then SIGINT; import: a second capture), then:
#   - fsck finds the store consistent (exit 0);
#   - every flow listed extracts to exactly its packets of the captures
#     sent (killcheck.py: bytes and, for import, ns timestamps; in capture
#     order; as many as its record counts).
# Record runs alternate with import runs when root, network namespaces and
# tcpreplay are here; else every run is an import. Nothing leaves the
# namespaces (no addresses, IPv6 off). The moments come from a fixed seed
# (FV_FAULT_SEED), so a failing run can be replayed. Half the runs of each
# kind write compressed blocks (--compress zstd:1).
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=build/fvgen
[ -x "$GEN" ] || GEN=$B/fvgen
PY=/usr/bin/python3
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN (make)"; exit 1; }
RUNS=${FV_FAULT_RUNS:-50}
RANDOM=${FV_FAULT_SEED:-4242}

. tests/integration/lib.sh
NA=fvf$$a
NB=fvf$$b
VA=fvf$$a0
VB=fvf$$b0
pids=()
live=0
test_cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
}

if [ "$(id -u)" = 0 ] && command -v tcpreplay >/dev/null &&
	veth_pair "$NA" "$NB" "$VA" "$VB"; then
	live=1
else
	echo "note: no root, network namespaces or tcpreplay: import runs only"
fi

# First and second captures; both for the checks (microsecond pcap, for
# tcpreplay).
"$GEN" -q --usec -w "$T/g1.pcap" --flows 200 --seed 31 || exit 1
"$GEN" -q --usec -w "$T/g2.pcap" --flows 40 --seed 32 || exit 1
mergecap -F pcap -w "$T/both.pcap" "$T/g1.pcap" "$T/g2.pcap" || exit 1

feed() { /usr/bin/python3 tests/integration/feed.py "$1" $((1 << 19)) 0.025; } # ~20 MB/s
ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

start_record() { # store
	local rc=0
	# shellcheck disable=SC2086
	record_start "$NB" "$VB" "$1" --max-disk 512M $zopt || rc=1
	RPID=$recpid
	pids+=("$RPID")
	return $rc
}

run_import() { # store delay-ms
	# shellcheck disable=SC2086
	feed "$T/g1.pcap" | "$FV" import -q -r - -s "$1" --max-disk 512M $zopt 2>"$T/imp.err" &
	local p=$!
	pids+=("$p")
	sleep "$(ms "$2")"
	pkill -KILL -f "flowvault import -q -r - -s $1" 2>/dev/null
	wait "$p" 2>/dev/null
	# Restart: the next writer recovers by itself.
	# shellcheck disable=SC2086
	"$FV" import -q -r "$T/g2.pcap" -s "$1" $zopt 2>"$T/imp.err" || {
		echo "import after the kill failed: $(cat "$T/imp.err")"
		return 1
	}
}

run_record() { # store delay-ms
	start_record "$1" || return 1
	ip netns exec "$NA" tcpreplay -q -i "$VA" --mbps 100 "$T/g1.pcap" >/dev/null 2>&1 &
	local tp=$!
	pids+=("$tp")
	sleep "$(ms "$2")"
	kill -KILL "$RPID" 2>/dev/null
	wait "$RPID" 2>/dev/null
	wait "$tp" 2>/dev/null
	# Restart, a second replay, a clean stop.
	start_record "$1" || return 1
	ip netns exec "$NA" tcpreplay -q -i "$VA" --mbps 100 "$T/g2.pcap" >/dev/null 2>&1
	sleep 1.5 # past a commit
	kill -INT "$RPID"
	wait "$RPID" || {
		echo "record after the kill: exit $?: $(cat "$T/rec.err")"
		return 1
	}
}

fail=0
nrec=0
nimp=0
for i in $(seq 1 "$RUNS"); do
	s=$T/s$i
	delay=$((100 + RANDOM % 2400))
	zopt=
	[ $((i % 4)) -ge 2 ] && zopt="--compress zstd:1"
	if [ $live = 1 ] && [ $((i % 2)) = 1 ]; then
		mode=record
		nrec=$((nrec + 1))
		run_record "$s" "$delay" || { fail=$((fail + 1)); continue; }
		opt=--ignore-time
	else
		mode=import
		nimp=$((nimp + 1))
		run_import "$s" "$delay" || { fail=$((fail + 1)); continue; }
		opt=
	fi
	"$FV" fsck -s "$s" >"$T/fsck" 2>&1
	rc=$?
	# shellcheck disable=SC2086
	chk=$($PY tests/integration/killcheck.py "$FV" "$s" "$T/both.pcap" $opt 2>&1)
	crc=$?
	if [ $rc = 0 ] && [ $crc = 0 ]; then
		echo "run $i ($mode${zopt:+, compressed}, kill after $delay ms): fsck consistent ($(sed -n 's/^disk .*, \([0-9]*\) not listed.*/\1/p' "$T/fsck") blocks cut off), $(tail -n 1 <<<"$chk")"
	else
		fail=$((fail + 1))
		echo "FAIL run $i ($mode${zopt:+, compressed}, kill after $delay ms): fsck exit $rc, check exit $crc"
		sed 's/^/    /' "$T/fsck"
		tail -n 5 <<<"$chk" | sed 's/^/    /'
	fi
	rm -rf "$s"
done
echo "$RUNS runs ($nrec record, $nimp import): $fail failed"
[ $fail = 0 ]
