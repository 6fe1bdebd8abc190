#!/usr/bin/env bash
# Format versions (docs/format.md): a store whose settings file, index or
# blocks carry a version this flowvault does not read is refused by every
# command with one clear message (the store, the version found, the one
# read here, what to do), never read as "damaged" and never crashed on;
# the writers (import, record) write nothing into it (checksums of the
# store's files before and after). The stores are real (an import of a
# generated capture), turned into older or newer ones by editing their
# bytes: flowvault.conf "format", the meta "index_format" of the LMDB
# index (mdb_load), a block header's version (its CRC recomputed, so the
# version is the only fault), a flow record's version byte. The current
# versions are the control: the same commands read the unedited store.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
for t in mdb_dump mdb_load md5sum; do
	command -v $t >/dev/null || skip "no $t (make deps installs lmdb-utils)"
done

# run NAME WANT_RC STORE ARGS...: flowvault ARGS -s STORE, stderr in
# $T/err; checks the exit status and that nothing crashed.
run() {
	local name=$1 want=$2 st=$3
	shift 3
	timeout 20 "$FV" "$@" -s "$st" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	if [ $rc -ge 124 ] || grep -qiE 'Sanitizer|runtime error|Segmentation' "$T/err"; then
		bad "$name: rc $rc (crash or hang): $(head -c 400 "$T/err")"
		return 1
	fi
	if [ $rc -ne "$want" ]; then
		bad "$name: rc $rc, want $want: $(head -c 400 "$T/err")"
		return 1
	fi
	return 0
}
# says NAME TEXT: stderr of the last run holds TEXT (fixed string).
says() {
	if grep -qF -- "$2" "$T/err"; then
		ok "$1"
	else
		bad "$1: stderr lacks '$2': $(head -c 600 "$T/err")"
	fi
}
# The store's files but LMDB's lock file (reader slots, rewritten by
# every open, even a read-only one; not data).
sums() { (cd "$1" && find . -type f ! -path ./index/lock.mdb -print0 | sort -z | xargs -0 md5sum); }

# blkver FILE N V: sets the version of block N (0-based) of a segment
# file to V and recomputes the header CRC (CRC32C of the 64 bytes with
# the crc field zero); prints the block's offset.
blkver() {
	$PY - "$@" <<'PY'
import struct, sys

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1))
    return crc ^ 0xffffffff

path, n, ver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    off = 0
    for _ in range(n):
        f.seek(off)
        off += struct.unpack("<I", f.read(64)[48:52])[0]
    f.seek(off)
    h = bytearray(f.read(64))
    assert h[0:4] == b"FBLK", "no block %d in %s" % (n, path)
    h[4:6] = struct.pack("<H", ver)
    h[52:56] = bytes(4)
    h[52:56] = struct.pack("<I", crc32c(bytes(h)))
    f.seek(off)
    f.write(h)
print(off)
PY
}
# meta_put STORE KEY LE64: one meta value of the index, as mdb_load does.
meta_put() {
	printf '%s\n%s\n' "$2" "$3" | mdb_load -T -s meta "$1/index"
}
# A fresh copy of the base store.
copy() {
	rm -rf "${T:?}/$1"
	cp -a "$T/base" "$T/$1"
	S=$T/$1
}

# ---- the base store and the control (current versions) ----
"$GEN" -q -w "$T/g.pcap" --flows 80 --seed 3 || exit 1
"$FV" import -q -r "$T/g.pcap" -s "$T/base" --max-disk 64M || exit 1
SEG=segments/w00/s000001.fvseg # generation 1: the import's only fill
[ -f "$T/base/$SEG" ] || { bad "no $SEG in the base store"; exit 1; }
nblocks=$("$FV" status -s "$T/base" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)["blocks"])')
[ "${nblocks:-0}" -ge 6 ] || { bad "the base store has ${nblocks:-no} blocks, want 6 or more"; exit 1; }
# meta "index_format": u64 LE, in mdb_dump's hex form (key line, value line).
IXF=$(mdb_dump -s meta "$T/base/index" | $PY -c '
import sys
l = [x.strip() for x in sys.stdin]
i = l.index(b"index_format".hex())
print(int.from_bytes(bytes.fromhex(l[i + 1]), "little"))')
conf_fmt=$(sed -n 's/^format = //p' "$T/base/flowvault.conf")
blk_ver=$($PY -c 'import struct,sys; print(struct.unpack("<H", open(sys.argv[1],"rb").read(6)[4:6])[0])' "$T/base/$SEG")
if [ "$conf_fmt" = 1 ] && [ "$IXF" = 4 ] && [ "$blk_ver" = 2 ]; then
	ok "a new store: store format 1, index format 4, block version 2 (docs/format.md)"
else
	bad "a new store: store format $conf_fmt, index format $IXF, block version $blk_ver; want 1, 4, 2 (update docs/format.md, api/cli_common.c and this test)"
fi
# The CRC helper is right: writing the same version back changes no byte.
copy crc
blkver "$S/$SEG" 3 2 >/dev/null
cmp -s "$T/base/$SEG" "$S/$SEG" && ok "block header CRC recomputed as flowvault does" ||
	bad "the test's block CRC differs from flowvault's"
S=$T/base
run "control: status" 0 "$S" status && ok "control: status reads the current versions"
run "control: flows" 0 "$S" flows --format csv && ok "control: flows"
nflows=$(grep -c '^[0-9]' "$T/out")
run "control: extract --flow 1" 0 "$S" extract --flow 1 -w "$T/o.pcap" && ok "control: extract --flow"
run "control: extract --bpf" 0 "$S" extract --bpf '' -w "$T/o.pcap" && ok "control: extract --bpf"
if run "control: fsck" 0 "$S" fsck; then
	grep -q '^result    consistent' "$T/out" && ok "control: fsck consistent" || bad "control: fsck: $(cat "$T/out")"
fi
base_sum=$(sums "$T/base")

# ---- a whole store of another version: every command refuses ----
# check_refused CASE MESSAGE: each command on $S, the same message.
check_refused() {
	local c=$1 msg=$2 before
	before=$(sums "$S")
	run "$c: status" 1 "$S" status && says "$c: status" "$msg"
	run "$c: status --format json" 1 "$S" status --format json && says "$c: status --format json" "$msg"
	run "$c: flows" 1 "$S" flows && says "$c: flows" "$msg"
	run "$c: extract --flow" 1 "$S" extract --flow 1 -w "$T/o.pcap" && says "$c: extract --flow" "$msg"
	run "$c: extract --bpf" 1 "$S" extract --bpf tcp -w "$T/o.pcap" && says "$c: extract --bpf" "$msg"
	run "$c: fsck" 1 "$S" fsck && says "$c: fsck" "$msg"
	run "$c: serve" 1 "$S" serve --listen 127.0.0.1:0 && says "$c: serve does not start" "$msg"
	for w in "fsck --repair" "import -q -r $T/g.pcap" "record -i lo -q"; do
		# shellcheck disable=SC2086
		if run "$c: $w" 1 "$S" $w; then
			says "$c: ${w%% *} refuses" "$msg"
			says "$c: ${w%% *} says it wrote nothing" "; nothing was written to it"
		fi
	done
	[ "$(sums "$S")" = "$before" ] && ok "$c: the store's files are as they were" ||
		bad "$c: a command changed the store: $(diff <(echo "$before") <(sums "$S") | head -n 4)"
}

copy conf0
sed -i 's/^format = 1$/format = 0/' "$S/flowvault.conf"
check_refused "store format 0" \
	"flowvault: $S: store format 0 was written by an older flowvault (this one reads store format 1): import the captures again into a new store"
copy conf2
sed -i 's/^format = 1$/format = 2/' "$S/flowvault.conf"
check_refused "store format 2" \
	"flowvault: $S: store format 2 was written by a newer flowvault (this one reads store format 1): use that flowvault"
copy index3
meta_put "$S" index_format '\03\00\00\00\00\00\00\00' || bad "mdb_load index_format 3"
check_refused "index format 3" \
	"flowvault: $S: its index ($S/index) is not in index format $IXF, the only one this flowvault reads"
copy index5
meta_put "$S" index_format '\05\00\00\00\00\00\00\00' || bad "mdb_load index_format 5"
check_refused "index format 5" \
	"flowvault: $S: its index ($S/index) is not in index format $IXF, the only one this flowvault reads"

# ---- one block of an older version in the middle of the store ----
copy midblock
off=$(blkver "$S/$SEG" 3 1)
ref=$(printf '0000000001%06x' $((off / 4096)))
blk="block $ref (worker 0, generation 1: $SEG at byte $off) is in block format 1, written by an older flowvault (this one reads block format"
if run "old block: fsck" 5 "$S" fsck; then
	if grep -qF "$blk" "$T/out" && ! grep -q "damaged:" "$T/out" &&
		grep -q "^blocks .* 1 in a block format this flowvault does not read" "$T/out"; then
		ok "old block: fsck names it, its version and the ones read here, not as damage"
	else
		bad "old block: fsck says: $(head -c 800 "$T/out")"
	fi
fi
nin=$(sed -n 's/^flows .*, \([0-9]*\) in a block format this flowvault does not read$/\1/p' "$T/out")
grep -q "^flow [0-9]*: not read: $blk" "$T/out" && [ "${nin:-0}" -gt 0 ] &&
	ok "old block: fsck names the flows in it ($nin)" || bad "old block: fsck names no flow in block $ref"
# Every flow: those in the block fail as a format version, the others
# extract whole; as many fail as fsck counts.
nfail=0 nok=0 fl= good=
for id in $(seq 1 "$nflows"); do
	"$FV" extract -s "$S" --flow "$id" -w "$T/o.pcap" 2>"$T/err"
	rc=$?
	if [ $rc -eq 0 ]; then
		nok=$((nok + 1)) good=${good:-$id}
	elif [ $rc -eq 1 ] && grep -q "is in block format 1, written by an older flowvault" "$T/err" &&
		grep -q "flow $id not written" "$T/err" && ! grep -qiE "damaged|CRC|corrupt" "$T/err"; then
		nfail=$((nfail + 1)) fl=${fl:-$id}
	else
		bad "old block: extract --flow $id: rc $rc: $(head -c 300 "$T/err")"
	fi
done
[ "$nfail" = "${nin:-x}" ] && [ "$nok" -gt 0 ] &&
	ok "old block: extract --flow: $nfail flows refused as a format version (not damage), as fsck counts; $nok extract" ||
	bad "old block: extract --flow: $nfail refused, fsck counts ${nin:-none}, $nok extract"
before=$(sums "$S")
if run "old block: fsck --repair" 5 "$S" fsck --repair; then
	grep -qF "which --repair leaves alone" "$T/out" && [ "$(sums "$S")" = "$before" ] &&
		ok "old block: fsck --repair leaves it (and the index) alone" ||
		bad "old block: fsck --repair: $(tail -n 2 "$T/out")"
fi
run "old block: status" 0 "$S" status && ok "old block: status reads the index (rc 0)"
run "old block: extract --bpf" 1 "$S" extract --bpf '' -w "$T/o.pcap" &&
	says "old block: extract --bpf says it is a format version" "format version"
if [ -n "$fl" ] && [ -n "$good" ] && serve_start "$S"; then
	code=$(curl -s -o "$T/body" -w '%{http_code}' "$U/api/v1/flows/$fl/pcap")
	[ "$code" = 500 ] && grep -q '"error": *"block format"' "$T/body" &&
		ok "old block: REST flow $fl pcap refused ($code): $(head -c 200 "$T/body")" ||
		bad "old block: REST flow $fl pcap: $code $(head -c 200 "$T/body")"
	code=$(curl -s -o /dev/null -w '%{http_code}' "$U/api/v1/flows/$good/pcap")
	[ "$code" = 200 ] && ok "old block: REST flow $good pcap 200" || bad "old block: REST flow $good pcap: $code"
	serve_stop
	grep -qiE 'Sanitizer|runtime error' "$T/serve.err" && bad "serve: $(head -c 300 "$T/serve.err")"
else
	bad "old block: no flow refused ($fl) or none good ($good), or serve did not start"
fi

# ---- a newer block (9) in the middle: named as newer ----
copy newblock
off=$(blkver "$S/$SEG" 4 9)
ref=$(printf '0000000001%06x' $((off / 4096)))
run "newer block: fsck" 5 "$S" fsck
grep -qF "block $ref (worker 0, generation 1: $SEG at byte $off) is in block format 9, written by a newer flowvault" "$T/out" &&
	ok "newer block: fsck names block $ref, format 9, a newer flowvault" || bad "newer block: fsck says: $(head -c 600 "$T/out")"

# ---- the first block of a segment file of an older version: the writers
# would not see its generation (and could refill a segment the index
# points into): they refuse, and write nothing ----
copy firstblock
off=$(blkver "$S/$SEG" 0 1)
msg="flowvault: $S: block 0000000001000000 (worker 0, generation 1: $SEG at byte 0) is in block format 1, written by an older flowvault (this one reads block format"
before=$(sums "$S")
if run "old first block: import" 1 "$S" import -q -r "$T/g.pcap"; then
	says "old first block: import refuses" "$msg"
	says "old first block: import says it wrote nothing" "nothing was written to it"
fi
run "old first block: record" 1 "$S" record -i lo -q && says "old first block: record refuses" "$msg"
[ "$(sums "$S")" = "$before" ] && ok "old first block: the store's files are as they were" ||
	bad "old first block: a writer changed the store"

# ---- a flow record of another version (the index is format 4): named ----
copy record
mdb_dump -p -s flows "$S/index" | grep -A1 '^ \\00\\00\\00\\00\\00\\00\\00\\02$' |
	sed 's/^ //; 2s/^\\02/\\01/' | mdb_load -T -s flows "$S/index" || bad "mdb_load flow 2"
if run "flow record 1: fsck" 1 "$S" fsck; then
	says "flow record 1: fsck names flow 2" "$S: reading the flows: flow 2: record of"
	says "flow record 1: fsck says the version read here" "reads flow record version 2 only"
fi
run "flow record 1: flows" 1 "$S" flows && says "flow record 1: flows says it is a format version" "format version"
run "flow record 1: extract --flow 2" 1 "$S" extract --flow 2 -w "$T/o.pcap" &&
	says "flow record 1: extract names flow 2" "flow 2: unknown on-disk format version"
run "flow record 1: extract --flow 1" 0 "$S" extract --flow 1 -w "$T/o.pcap" && ok "flow record 1: flow 1 extracts"

# The base store was only ever copied.
[ "$(sums "$T/base")" = "$base_sum" ] || bad "the base store changed"

[ "$fail" -eq 0 ] && echo "all format version checks passed" || echo "$fail format version checks failed"
[ "$fail" -eq 0 ]
