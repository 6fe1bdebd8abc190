#!/usr/bin/env bash
# make bench: flowvault against its peers, measured in the same run on the
# same files, reported as ratios (these machines are shared and noisy).
#
#   import      vs  tcpdump -r X -w Y          (a plain copy, indexes nothing)
#   import      vs  fio, O_DIRECT io_uring QD8 (raw write bandwidth of the disk)
#   extract --flow (a flow near the end) vs tcpdump -r X -w Y '<its filter>':
#     from the command line, in process, and over REST (flowvault serve)
#   index bytes / stored packet bytes
#   import --compress zstd:1 and :3 vs without: ratio, time, CPU, and the
#     in-process extraction of the same flow from the compressed store
#   peak RSS of import, at 1/2 and at full capture size
#   recovery after kill -9: the next writer's time and disk reads
#   flow query latency over a million flows vs nfdump (tools/bench/query.sh)
#   live capture vs tcpdump and stenographer (tools/bench/live.sh)
#
# FV_BENCH_SIZE (default 2G) sets the generated capture's size;
# FV_BENCH_DIR (default build/bench) where files go.
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build}
FV=$B/flowvault
GEN=$B/fvgen
SIZE=${FV_BENCH_SIZE:-2G}
DIR=${FV_BENCH_DIR:-$B/bench}
CORPUS=${FV_CORPUS:-../shared/corpus}
mkdir -p "$DIR"
secs() { /usr/bin/python3 -c 'import sys; v = float(sys.argv[1]); print(f"{v:.6f}" if v < 0.01 else f"{v:.3f}")' "$1"; }
now() { date +%s.%N; }
elapsed() { /usr/bin/python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$1" "$2"; }
ratio() { /usr/bin/python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f"{a / b:.2f}" if b > 0 else "inf")' "$1" "$2"; }
# best of N runs of a command, in seconds; $PREP, when set, runs untimed
# before each run (removing the last run's output: on this disk, mounted
# with discard, deleting a 64 MiB file takes ~20 ms, which is not import)
best() {
	local n=$1; shift
	local b=""
	for _ in $(seq "$n"); do
		local t0 t1 d
		if [ -n "${PREP:-}" ]; then $PREP; sync; fi
		t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
		d=$(elapsed "$t0" "$t1")
		if [ -z "$b" ] || /usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$d" "$b"; then b=$d; fi
	done
	echo "$b"
}
# Peak RSS of a command, total and anonymous (heap, stacks, buffers; not
# the file-backed pages of the LMDB map, which the kernel can drop), in KB,
# sampled from /proc every 10 ms.
peak_rss() {
	"$@" >/dev/null 2>"$DIR/rss.err" &
	local pid=$! rss=0 anon=0 r a rc=0
	while kill -0 "$pid" 2>/dev/null; do
		r=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null)
		a=$(awk '/^RssAnon/ {print $2}' /proc/$pid/status 2>/dev/null)
		# A zombie (exited, not yet waited for) has no VmRSS and
		# still answers kill -0.
		[ -n "$r" ] || break
		[ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
		[ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
		sleep 0.01
	done
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || echo "peak_rss: '$*' exited $rc: $(cat "$DIR/rss.err")" >&2
	echo "$rss $anon"
}

gen="$DIR/gen-$SIZE.pcap"
if [ ! -s "$gen" ]; then
	echo "generating $SIZE of traffic into $gen ..."
	"$GEN" -w "$gen" --size "$SIZE" --seed 7 >/dev/null
fi
largest=$(ls -S "$CORPUS"/*/*.pcap* 2>/dev/null | grep -v malformed | head -n 1 || true)

# The path users take (the UI's download, curl): `flowvault serve` kept
# running, GET /api/v1/flows/ID/pcap on a kept-alive connection, timed
# from the request to the last byte; the body must equal extract's file.
rest_extract() { # store flowid tcpdump-seconds
	local store=$1 flowid=$2 t_tdf=$3 spid url="" t_rest same
	"$FV" serve -s "$store" --listen 127.0.0.1:0 2>"$DIR/serve.err" &
	spid=$!
	for _ in $(seq 1 50); do
		url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$DIR/serve.err" | head -n 1 || true)
		[ -n "$url" ] && break
		sleep 0.1
	done
	if [ -z "$url" ]; then
		echo "  (REST: serve did not start: $(cat "$DIR/serve.err"))"
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		return 0
	fi
	read -r t_rest same < <(PYTHONPATH=tools/bench /usr/bin/python3 - "$url" "$flowid" "$DIR/flow.pcap" <<'PY'
import statistics, sys, time, urllib.parse
from httpget import Conn
u = urllib.parse.urlparse(sys.argv[1])
path = "/api/v1/flows/%s/pcap" % sys.argv[2]
want = open(sys.argv[3], "rb").read()
c = Conn(u.hostname, u.port)
st, _, body = c.get(path)  # warm-up
ts = []
for _ in range(21):
    t0 = time.perf_counter()
    st, _, body = c.get(path)
    ts.append(time.perf_counter() - t0)
print(statistics.median(ts), "same" if st == 200 and body == want else "DIFFERENT")
PY
	)
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	printf '%-44s %8s s  ratio %s x faster (median of 21; the pcap is %s)\n' "  same, over REST (GET /api/v1/flows/ID/pcap)" \
		"$(secs "$t_rest")" "$(ratio "$t_tdf" "$t_rest")" "$([ "$same" = same ] && echo "extract's, byte for byte" || echo "NOT extract's")"
}

bench_file() {
	local X=$1 label=$2
	local bytes store flowid filter t_fv t_td t_dd t_ex t_tdf idx pk
	bytes=$(stat -c %s "$X")
	store="$DIR/store"
	cat "$X" >/dev/null # page cache, for both sides
	echo
	echo "== $label: $X ($(numfmt --to=iec "$bytes"))"
	imp() { "$FV" import -q -r "$X" -s "$store" --max-disk $((bytes * 3 + (1 << 30))); }
	td() { tcpdump -r "$X" -w "$DIR/copy.pcap" 2>/dev/null; sync "$DIR/copy.pcap" 2>/dev/null || true; }
	rmcopy() { rm -f "$DIR/copy.pcap"; }
	rmstore() { rm -rf "$store"; }
	t_td=$(PREP=rmcopy best 3 td)
	t_fv=$(PREP=rmstore best 3 imp)
	rm -f "$DIR/copy.pcap"
	printf '%-44s %8s s  %8.0f MB/s\n' "tcpdump -r X -w Y" "$(secs "$t_td")" "$(/usr/bin/python3 -c "print($bytes/$t_td/1e6)")"
	printf '%-44s %8s s  %8.0f MB/s   ratio %s x tcpdump (target >= 1.0)\n' "flowvault import" "$(secs "$t_fv")" "$(/usr/bin/python3 -c "print($bytes/$t_fv/1e6)")" "$(ratio "$t_td" "$t_fv")"
	# Raw O_DIRECT write bandwidth of the same disk: fio, 1 MiB writes,
	# io_uring at queue depth 8 (what the ring does), into a new file.
	raw() { rm -f "$DIR/fio.bin"; fio --name=raw --filename="$DIR/fio.bin" --rw=write --bs=1M --iodepth=8 \
		--ioengine=io_uring --direct=1 --size=$(( (bytes >> 20) + 1 ))M --fallocate=native --end_fsync=1 >/dev/null 2>&1; }
	t_dd=$(best 2 raw)
	rm -f "$DIR/fio.bin"
	printf '%-44s %8s s  %8.0f MB/s   import = %s of it\n' "fio O_DIRECT 1 MiB QD8 (raw write bandwidth)" "$(secs "$t_dd")" "$(/usr/bin/python3 -c "print($bytes/$t_dd/1e6)")" "$(ratio "$t_dd" "$t_fv")"
	# A flow near the end of the capture, and the same selection by tcpdump.
	read -r flowid filter < <("$FV" flows -s "$store" --sort time --desc --limit 50 --filter 'tcp or udp' --format csv |
		/usr/bin/python3 -c '
import csv, sys
rows = list(csv.DictReader(sys.stdin))
r = max(rows, key=lambda r: int(r["packets"]))
v = "vlan and " if r["vlan"] != "0" else ""
print(r["id"], v + "%s and host %s and host %s and port %s and port %s" % (r["proto"], r["client"], r["server"], r["client_port"], r["server_port"]))')
	ex() { "$FV" extract -s "$store" --flow "$flowid" -w "$DIR/flow.pcap"; }
	tdf() { tcpdump -r "$X" -w "$DIR/flow-td.pcap" "$filter" 2>/dev/null; }
	t_ex=$(best 5 ex)
	t_tdf=$(best 1 tdf)
	printf '%-44s %8s s\n' "tcpdump -r X -w Y '$filter'" "$(secs "$t_tdf")"
	printf '%-44s %8s s  ratio %s x faster (target >= 1000), %s packets, tcpdump %s\n' "flowvault extract --flow $flowid" "$(secs "$t_ex")" "$(ratio "$t_tdf" "$t_ex")" \
		"$(tcpdump -r "$DIR/flow.pcap" 2>/dev/null | wc -l)" "$(tcpdump -r "$DIR/flow-td.pcap" 2>/dev/null | wc -l)"
	# What starting any process costs here: the command line's ratio
	# cannot exceed tcpdump's time over this.
	t_nop=$(best 5 "$FV" --version)
	printf '%-44s %8s s  (a command-line ratio cannot exceed %s x)\n' "  process start floor: flowvault --version" "$(secs "$t_nop")" "$(ratio "$t_tdf" "$t_nop")"
	read -r t_inp _ < <("$B/fvbench" extract-flow "$store" "$flowid" 21)
	printf '%-44s %8s s  ratio %s x faster (the store kept open, as a server does)\n' "  same, in process (median of 21)" "$(secs "$t_inp")" "$(ratio "$t_tdf" "$t_inp")"
	rest_extract "$store" "$flowid" "$t_tdf"
	if cmp -s <(tcpdump -nn -tt -x -r "$DIR/flow.pcap" 2>/dev/null) <(tcpdump -nn -tt -x -r "$DIR/flow-td.pcap" 2>/dev/null); then
		echo "  (the two outputs hold the same packets, bytes and times)"
	else
		echo "  WARNING: the extracted flow differs from tcpdump's selection"
	fi
	# The same with nothing in the page cache, as on a store larger than
	# memory (root only: drop_caches).
	if [ -w /proc/sys/vm/drop_caches ]; then
		cold() { sync; echo 3 >/proc/sys/vm/drop_caches; "$@"; }
		t_exc=$(best 3 cold ex)
		t_tdfc=$(best 1 cold tdf)
		printf '%-44s %8s s vs tcpdump %s s: ratio %s x faster (target >= 1000)\n' "cold cache: extract --flow" "$(secs "$t_exc")" "$(secs "$t_tdfc")" "$(ratio "$t_tdfc" "$t_exc")"
		read -r t_inpc _ < <("$B/fvbench" extract-flow "$store" "$flowid" 5 cold)
		printf '%-44s %8s s  ratio %s x faster than tcpdump cold\n' "  same, in process, cold (median of 5)" "$(secs "$t_inpc")" "$(ratio "$t_tdfc" "$t_inpc")"
		cat "$X" >/dev/null
	fi
	idx=$("$FV" status -s "$store" --format json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["index_used_bytes"], d["stored_bytes"])')
	read -r ib pk <<<"$idx"
	printf '%-44s %8s of %s stored packet bytes = %s%% (target <= 2%%)\n' "index size" "$(numfmt --to=iec "$ib")" "$(numfmt --to=iec "$pk")" "$(/usr/bin/python3 -c "print(f'{100*$ib/$pk:.2f}')")"
	bench_compress
	rm -f "$DIR/flow.pcap" "$DIR/flow-td.pcap"
}

# CPU seconds (user + system) of a command.
cpu() { /usr/bin/time -f '%U %S' "$@" 2>&1 >/dev/null | tail -n 1 | awk '{print $1 + $2}'; }

# Compression (issue 4), inside bench_file (its variables): the same import
# with --compress zstd:L, its size on disk against the plain store's, its
# time and CPU against the plain import's (same run), and the in-process
# extraction of the same flow, which must give the same bytes.
bench_compress() {
	local L t_z c_plain c_z raw disk t_inz
	rmstore
	c_plain=$(cpu "$FV" import -q -r "$X" -s "$store" --max-disk $((bytes * 3 + (1 << 30))))
	for L in 1 3; do
		impz() { "$FV" import -q -r "$X" -s "$store" --max-disk $((bytes * 3 + (1 << 30))) --compress "zstd:$L"; }
		t_z=$(PREP=rmstore best 3 impz)
		rmstore
		c_z=$(cpu "$FV" import -q -r "$X" -s "$store" --max-disk $((bytes * 3 + (1 << 30))) --compress "zstd:$L")
		read -r raw disk < <("$FV" status -s "$store" --format json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["block_raw_bytes"], d["block_disk_bytes"])')
		printf '%-44s %8s s  %8.0f MB/s   ratio %s x tcpdump, %s x plain import; size %s x smaller; CPU %s s vs %s s plain (%s x)\n' \
			"flowvault import --compress zstd:$L" "$(secs "$t_z")" "$(/usr/bin/python3 -c "print($bytes/$t_z/1e6)")" \
			"$(ratio "$t_td" "$t_z")" "$(ratio "$t_fv" "$t_z")" "$(ratio "$raw" "$disk")" "$c_z" "$c_plain" "$(ratio "$c_z" "$c_plain")"
		read -r t_inz _ < <("$B/fvbench" extract-flow "$store" "$flowid" 21)
		"$FV" extract -s "$store" --flow "$flowid" -w "$DIR/flow-z.pcap"
		printf '%-44s %8s s  ratio %s x faster than tcpdump, %s x the plain store; output %s\n' "  extract --flow $flowid, in process" \
			"$(secs "$t_inz")" "$(ratio "$t_tdf" "$t_inz")" "$(ratio "$t_inz" "$t_inp")" \
			"$(cmp -s "$DIR/flow.pcap" "$DIR/flow-z.pcap" && echo "identical to the plain store's" || echo "DIFFERS from the plain store's")"
		rm -f "$DIR/flow-z.pcap"
	done
	rmstore
}

bench_file "$gen" "generated"
if [ -n "$largest" ]; then bench_file "$largest" "largest corpus file"; fi

# Peak RSS must not grow with the capture's size.
q="$DIR/half.pcap"
/usr/bin/python3 - "$gen" "$q" <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
import os
n = os.path.getsize(src) // 2
with open(src, 'rb') as f, open(dst, 'wb') as o:
    o.write(f.read(24)); off = 24
    while off < n:
        h = f.read(16)
        if len(h) < 16: break
        cap = int.from_bytes(h[8:12], 'little')
        o.write(h); o.write(f.read(cap)); off += 16 + cap
PY
rm -rf "$DIR/store"
read -r r1 a1 < <(peak_rss "$FV" import -q -r "$q" -s "$DIR/store" --max-disk 8G)
rm -rf "$DIR/store"
read -r r4 a4 < <(peak_rss "$FV" import -q -r "$gen" -s "$DIR/store" --max-disk 8G)
rm -rf "$DIR/store" "$q"
echo
printf '%-44s %s MB at 1/2 size, %s MB at full size (ratio %s)\n' "peak RSS of import, total" $((r1 / 1024)) $((r4 / 1024)) "$(ratio "$r4" "$r1")"
printf '%-44s %s MB at 1/2 size, %s MB at full size (ratio %s, target ~1.0)\n' "peak RSS of import, anonymous" $((a1 / 1024)) $((a4 / 1024)) "$(ratio "$a4" "$a1")"

# Recovery after kill -9 (issue 4): an import of the generated capture is
# killed once the store holds 2 GB on disk; then the next writer starts on
# that store with the page cache dropped (root only): its time, and what
# it read from the disk (rusage inblock), against the store's size.
# Recovery must not read the whole store.
if [ -w /proc/sys/vm/drop_caches ]; then
	s="$DIR/store"
	rm -rf "$s"
	"$GEN" --flows 20 --seed 3 -q -w "$DIR/small.pcap"
	"$FV" import -q -r "$gen" -s "$s" --max-disk 8G &
	ipid=$!
	while kill -0 "$ipid" 2>/dev/null; do
		[ "$(du -sb "$s/segments" 2>/dev/null | cut -f1)" -ge 2000000000 ] 2>/dev/null && break
		sleep 0.05
	done
	kill -KILL "$ipid" 2>/dev/null || true
	irc=0
	wait "$ipid" 2>/dev/null || irc=$?
	[ "$irc" = 137 ] || echo "  WARNING: the import ended (exit $irc) before it could be killed"
	/usr/bin/python3 - "$FV" "$s" "$DIR/small.pcap" <<'PY'
import os, subprocess, sys, time
fv, store, small = sys.argv[1:4]
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(store) for f in fs)
def cold(args):
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    t = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t, ru.ru_inblock * 512, os.waitstatus_to_exitcode(status)
t0, b0, _ = cold([fv, "--version"])  # the program and its libraries
t, b, rc = cold([fv, "import", "-q", "-r", small, "-s", store])
print("%-44s %8.3f s  read %.1f MB from disk of a %.2f GB store (%.2f%%), exit %d"
      % ("recovery: next import after kill -9", t, (b - b0) / 1e6, size / 1e9,
         100 * (b - b0) / size, rc))
print("  (cold cache; the program and its libraries, %.1f MB and %.3f s, taken off)" % (b0 / 1e6, t0))
PY
	"$FV" fsck -s "$s" --quick >"$DIR/fsck.out" 2>&1 &&
		echo "  (fsck --quick after it: $(grep '^result' "$DIR/fsck.out"))" ||
		echo "  WARNING: fsck after recovery: $(tail -n 2 "$DIR/fsck.out")"
	rm -rf "$s" "$DIR/small.pcap" "$DIR/fsck.out"
fi
tools/bench/query.sh "$B" # flow queries vs nfdump (FV_BENCH_QUERY=0 skips it)
tools/bench/live.sh "$B" # live capture vs tcpdump and stenographer (FV_BENCH_LIVE=0 skips it)
