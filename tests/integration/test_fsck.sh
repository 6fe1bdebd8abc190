#!/usr/bin/env bash
# flowvault fsck: a clean store is consistent (exit 0) and counts every
# packet; a flipped byte in a record and in a block header, and a segment
# cut short, are each found (exit 5) with the block and the flows they
# touch, and extraction of such a flow fails instead of giving other
# bytes; --repair deletes the index entries of the bad blocks (status then
# counts fewer packets); fsck refuses a store that a writer holds.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=build/fvgen
[ -x "$GEN" ] || GEN=$B/fvgen
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
PY=/usr/bin/python3

"$GEN" -q -w "$T/g.pcap" --flows 400 --seed 5 || exit 1
frames=$(capinfos -c -M "$T/g.pcap" | awk '/Number of packets/ {print $NF}')
fresh() {
	rm -rf "$T/s"
	"$FV" import -q -r "$T/g.pcap" -s "$T/s" --max-disk 1G || exit 1
	SEG=$(ls "$T"/s/segments/w00/*.fvseg | head -n 1)
}
field() { # the number before word on the line starting with key
	sed -n "s/^$1 .*[ :(]\([0-9][0-9]*\) $2.*/\1/p" "$T/out" | head -n 1
}
st() { # a number of status --format json
	"$FV" status -s "$T/s" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
# Offset of block i (0-based) of a segment: blocks follow each other,
# each disk_len long (u32 LE at header byte 48).
block_off() {
	$PY - "$SEG" "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb")
off = 0
for _ in range(int(sys.argv[2])):
    f.seek(off)
    off += struct.unpack("<I", f.read(64)[48:52])[0]
print(off)
PY
}
flip() { # file offset: xor the byte with 0xff
	$PY - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))
PY
}

# 1. A clean store.
fresh
"$FV" fsck -s "$T/s" >"$T/out" 2>&1
rc=$?
cat "$T/out"
n=$(field flows packets)
want=$((frames - $(st undecodable))) # frames of no flow are in no flow's places
if [ $rc -eq 0 ] && grep -q "^result    consistent" "$T/out" && [ "$n" = "$want" ]; then
	ok "clean store consistent, its flows extract $n packets: the capture's $frames but $(st undecodable) of no flow"
else
	bad "clean store: rc=$rc, flows' packets $n, want $want"
fi
"$FV" fsck -s "$T/s" --quick >"$T/out" 2>&1 && ! grep -q "^flows" "$T/out" &&
	ok "--quick skips the flows" || bad "--quick: $(cat "$T/out")"

# 2. A byte of a frame in the first block (past the 64-byte block header
# and the first 32-byte record header).
fresh
before=$(st blocks)
flip "$SEG" $((64 + 32 + 20))
"$FV" fsck -s "$T/s" >"$T/out" 2>&1
rc=$?
cat "$T/out"
if [ $rc -eq 5 ] && grep -q "damaged: a CRC does not match" "$T/out" &&
	[ "$(field flows damaged)" -ge 1 ]; then
	ok "a flipped frame byte: the block and its flows are damaged (exit 5)"
else
	bad "flipped frame byte: rc=$rc"
fi
fid=$(sed -n 's/^flow \([0-9]*\): .*/\1/p' "$T/out" | head -n 1)
if [ -n "$fid" ]; then
	"$FV" extract -s "$T/s" --flow "$fid" -w "$T/x.pcap" 2>"$T/err"
	rc=$?
	[ $rc -ne 0 ] && [ -s "$T/err" ] && ok "extract of damaged flow $fid fails: $(cat "$T/err")" ||
		bad "extract of damaged flow $fid: rc=$rc"
fi
"$FV" fsck -s "$T/s" --repair >"$T/out" 2>&1
rc=$?
cat "$T/out"
after=$(st blocks)
grep -q "^repaired  1 index entries" "$T/out" && [ "$after" -eq $((before - 1)) ] &&
	ok "--repair deleted the block's entry: status lists $after blocks, was $before" ||
	bad "--repair: rc=$rc, blocks $before -> $after"
"$FV" fsck -s "$T/s" >"$T/out" 2>&1
rc=$?
# The flows that had packets in it still say so: that is not repairable.
[ $rc -eq 5 ] && grep -q "0 gone, 0 damaged" "$T/out" && [ "$(field flows damaged)" -ge 1 ] &&
	ok "after --repair: no bad block listed; the damaged flows stay reported (exit 5)" ||
	bad "after --repair: rc=$rc $(cat "$T/out")"

# 3. A byte of the second block's header.
fresh
flip "$SEG" $(( $(block_off 1) + 20 ))
"$FV" fsck -s "$T/s" >"$T/out" 2>&1
rc=$?
[ $rc -eq 5 ] && grep -q "^block .*damaged" "$T/out" &&
	ok "a flipped header byte: block damaged (exit 5)" || bad "header byte: rc=$rc $(cat "$T/out")"

# 4. The segment cut after its first block.
fresh
truncate -s "$(block_off 1)" "$SEG"
"$FV" fsck -s "$T/s" >"$T/out" 2>&1
rc=$?
[ $rc -eq 5 ] && grep -Eq "^blocks .* [1-9][0-9]* (gone|damaged)" "$T/out" &&
	ok "a segment cut short: its lost blocks found (exit 5)" || bad "cut segment: rc=$rc $(cat "$T/out")"

# 5. A store a writer holds.
fresh
flock "$T/s/lock" sleep 5 &
sleep 0.5
"$FV" fsck -s "$T/s" >"$T/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "stop it first" "$T/out" && ok "refused while the store is locked" ||
	bad "locked store: rc=$rc $(cat "$T/out")"
kill %1 2>/dev/null
wait 2>/dev/null
exit $fail
