#!/usr/bin/env bash
# flowvault serve on a real loopback port, driven with curl: flows equal
# `flowvault flows`, cursor paging gives each flow once (also while an
# import adds flows), pcaps equal `flowvault extract` byte for byte, the
# documented errors come with their codes, every path of docs/api.yaml
# answers, a client that hangs up does not hurt the server, a big download
# runs in constant memory, a download past --max-downloads is 503 busy,
# SIGTERM stops it.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=$B/fvgen
C=${FV_CORPUS:-../shared/corpus}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # a pyenv shim costs ~1 s a start
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
[ -d "$C" ] || { echo "no corpus at $C"; exit 77; }
command -v curl >/dev/null || { echo "no curl"; exit 77; }
. tests/integration/lib.sh

S=$T/s
"$GEN" --flows 300 --seed 3 -q -w "$T/gen.pcap" || bad "fvgen"
"$FV" import -q -r "$C/http/bro.org.pcap" -r "$C/dns/dns-edns-ecs.pcap" \
	-r "$C/communityid/ipv6.pcap" -r "$T/gen.pcap" -s "$S" --max-disk 1G ||
	bad "import"

# The server: a free loopback port, tried until one binds.
serve_start "$S" || { bad "serve did not start"; exit 1; }
ok "serve listening at $U"

code() { # prints the status of a request: code URL [curl args]
	local url=$1; shift
	curl -s -o "$T/body" -w '%{http_code}' "$@" "$url"
}

# Safe by default: another address than loopback needs credentials or --insecure.
"$FV" serve -s "$S" --listen 0.0.0.0:1 2>"$T/err" && bad "0.0.0.0 accepted"
grep -q -- --insecure "$T/err" && ok "a non-loopback address is refused and says --insecure" ||
	bad "non-loopback refusal: $(cat "$T/err")"

# ---- /flows equals `flowvault flows` ----
flows_eq() { # name query cli-args...
	local name=$1 query=$2; shift 2
	"$FV" flows -s "$S" --format json "$@" >"$T/cli.json" 2>/dev/null || { bad "$name: flows failed"; return; }
	curl -s -o "$T/rest.json" "$U/api/v1/flows?limit=100000&$query"
	if $PY - "$T/cli.json" "$T/rest.json" <<'EOF'; then ok "/flows $name: $(cat "$T/n") flows, equal to flowvault flows"; else bad "/flows $name differs"; fi
import json, sys
cli = json.load(open(sys.argv[1]))
rest = json.load(open(sys.argv[2]))
ok = rest["flows"] == cli and rest["count"] == len(cli) and rest["next_cursor"] is None
open(sys.argv[1].rsplit("/", 1)[0] + "/n", "w").write(str(len(cli)))
sys.exit(0 if ok and len(cli) > 0 else 1)
EOF
}
flows_eq "all" "" --filter ''
flows_eq "port 80" "filter=port+80" --filter 'port 80'
flows_eq "udp, by bytes" "filter=udp&sort=bytes" --filter udp --sort bytes
flows_eq "tcp and bytes > 10K, by packets ascending" "filter=tcp%20and%20bytes%20%3E%2010K&sort=packets&order=asc" \
	--filter 'tcp and bytes > 10K' --sort packets --asc
flows_eq "by duration" "sort=duration" --sort duration
flows_eq "time descending" "order=desc" --desc
flows_eq "since/until" "since=2014-01-14T17:04:05Z&until=1735689620" \
	--since 2014-01-14T17:04:05Z --until 1735689620
flows_eq "ipv6" "filter=ipv6" --filter ipv6
for f in ndjson csv; do
	"$FV" flows -s "$S" --format $f --filter 'port 53' >"$T/cli.$f"
	curl -s -o "$T/rest.$f" "$U/api/v1/flows?filter=port+53&format=$f&limit=100000"
	cmp -s "$T/cli.$f" "$T/rest.$f" && ok "/flows format=$f equals flowvault flows --format $f ($(wc -l <"$T/cli.$f") lines)" ||
		bad "/flows format=$f differs"
done
c=$(code "$U/api/v1/flows/1")
"$FV" flows -s "$S" --format ndjson --filter 'flow 1' >"$T/one.json"
[ "$c" = 200 ] && cmp -s "$T/body" "$T/one.json" && ok "/flows/1 is flow 1's record" || bad "/flows/1: $c"

# ---- cursor paging ----
# The X-Next-Cursor header is the body's next_cursor, byte for byte (the
# header once held freed memory: curl let it pass, browsers did not).
curl -s -D "$T/hdr" -o "$T/page.json" "$U/api/v1/flows?limit=20"
hc=$(tr -d '\r' <"$T/hdr" | sed -n 's/^X-Next-Cursor: //p' | od -An -c | tr -s ' ')
bc=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_cursor"])' "$T/page.json" | od -An -c | tr -s ' ')
[ -n "$hc" ] && [ "$hc" = "$bc" ] && ok "X-Next-Cursor equals the body's next_cursor" ||
	bad "X-Next-Cursor '$hc', body '$bc'"
page_all() { # query -> ids, one per line, in order
	local cur="" q=$1 n=0
	: >"$T/ids"
	while :; do
		curl -s -o "$T/page.json" "$U/api/v1/flows?limit=20&$q${cur:+&cursor=$cur}"
		cur=$($PY -c '
import json, sys
p = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as f:
    for r in p["flows"]:
        f.write("%d\n" % r["id"])
print(p["next_cursor"] or "")' "$T/page.json" "$T/ids")
		n=$((n + 1))
		[ -z "$cur" ] && break
		[ "$n" -gt 10000 ] && { bad "paging does not end"; break; }
		[ -n "${2:-}" ] && [ "$n" -eq 3 ] && $2
	done
	echo "$n" >"$T/pages"
}
for q in "sort=time" "sort=bytes" "sort=duration&order=asc" "sort=id&order=desc"; do
	page_all "$q"
	curl -s "$U/api/v1/flows?limit=100000&$q" | $PY -c '
import json, sys
for r in json.load(sys.stdin)["flows"]: print(r["id"])' >"$T/want"
	if cmp -s "$T/ids" "$T/want" && [ "$(sort "$T/ids" | uniq -d | wc -l)" -eq 0 ]; then
		ok "paging $q: $(wc -l <"$T/ids") flows in $(cat "$T/pages") pages, each once, in order"
	else
		bad "paging $q: $(wc -l <"$T/ids") ids, $(sort "$T/ids" | uniq -d | wc -l) twice, want $(wc -l <"$T/want")"
	fi
done
# New flows arrive between pages: every flow there at the start comes
# once, none twice.
curl -s "$U/api/v1/flows?limit=100000" | $PY -c '
import json, sys
for r in json.load(sys.stdin)["flows"]: print(r["id"])' | sort >"$T/before"
import_more() { "$FV" import -q -r "$C/http/100-continue.pcap" -r "$C/dns/mdns.pcap" -s "$S" || bad "import while serving"; }
page_all "sort=time" import_more
nnew=$("$FV" flows -s "$S" --format csv | tail -n +2 | wc -l)
missing=$(sort "$T/ids" | comm -13 - "$T/before" | wc -l)
twice=$(sort "$T/ids" | uniq -d | wc -l)
[ "$missing" -eq 0 ] && [ "$twice" -eq 0 ] && [ "$nnew" -gt "$(wc -l <"$T/before")" ] &&
	ok "paging while an import adds flows ($(wc -l <"$T/before") -> $nnew): none missed, none twice" ||
	bad "paging during an import: $missing missed, $twice twice"

# ---- a flow's pcap equals extract --flow ----
ids=$("$FV" flows -s "$S" --format csv | tail -n +2 | cut -d, -f1 | awk 'NR % 17 == 1')
n=0 nbad=0
for id in $ids; do
	"$FV" extract -s "$S" --flow "$id" -w "$T/x.pcap" 2>/dev/null || { bad "extract $id"; continue; }
	curl -s -D "$T/h" -o "$T/r.pcap" "$U/api/v1/flows/$id/pcap"
	if cmp -s "$T/x.pcap" "$T/r.pcap" &&
		grep -qi '^content-type: application/vnd.tcpdump.pcap' "$T/h" &&
		grep -qiE "^content-disposition: attachment; filename=\"flow-$id-[^\"/]+-[a-z0-9]+\\.pcap\"" "$T/h"; then
		n=$((n + 1))
	else
		nbad=$((nbad + 1))
		[ "$nbad" -le 3 ] && bad "flow $id pcap differs from extract or its headers are wrong: $(tr -d '\r' <"$T/h" | grep -i content)"
	fi
done
[ "$n" -gt 10 ] && [ "$nbad" -eq 0 ] && ok "$n flows' /pcap equal extract --flow byte for byte, with type and filename" ||
	bad "only $n flows' /pcap checked"
curl -s -D "$T/h" -o "$T/r.pcapng" "$U/api/v1/flows/1/pcap?format=pcapng"
"$FV" extract -s "$S" --flow 1 --format pcapng -w "$T/x.pcapng"
cmp -s "$T/r.pcapng" "$T/x.pcapng" && grep -qi 'filename="flow-1-10.0.2.15.55079-192.150.187.43.80-tcp.pcapng"' "$T/h" &&
	ok "format=pcapng equals extract --format pcapng; filename $(grep -io 'flow-1-[^"]*' "$T/h")" ||
	bad "format=pcapng: $(grep -i disposition "$T/h")"

# ---- packet queries equal extract --bpf ----
pk_eq() { # name query extract-args...
	local name=$1 q=$2; shift 2
	"$FV" extract -s "$S" "$@" -w "$T/x.pcap" 2>/dev/null
	local c
	c=$(code "$U/api/v1/packets?$q")
	[ "$c" = 200 ] && cmp -s "$T/body" "$T/x.pcap" &&
		ok "/packets $name equals extract ($(stat -c %s "$T/x.pcap") bytes)" ||
		bad "/packets $name: $c, differs from extract"
}
pk_eq "bpf=tcp port 80" "bpf=tcp+port+80" --bpf 'tcp port 80'
pk_eq "everything" "" --bpf ''
pk_eq "bpf=udp, since/until" "bpf=udp&since=2014-01-14T17:04:05Z&until=1735689610.5" \
	--bpf udp --since 2014-01-14T17:04:05Z --until 1735689610.5
pk_eq "host= port= proto= shortcuts" "host=10.0.2.15&port=80&proto=tcp" --bpf 'host 10.0.2.15 and port 80 and tcp'
pk_eq "bpf + proto=17" "bpf=port+53&proto=17" --bpf '(port 53) and (ip proto 17 or ip6 proto 17)'
pk_eq "format=pcapng" "bpf=icmp6&format=pcapng" --bpf icmp6 --format pcapng
"$FV" extract -s "$S" --bpf 'udp or icmp6' --since 1735689600 -w "$T/x.pcap" 2>/dev/null
c=$(code "$U/api/v1/packets" -H 'Content-Type: application/json' -d '{"bpf": "udp or icmp6", "since": 1735689600}')
[ "$c" = 200 ] && cmp -s "$T/body" "$T/x.pcap" && ok "POST /packets with a JSON body equals extract" || bad "POST /packets: $c"

# ---- errors ----
err_is() { # name want-code url [curl args] ; the body must be our JSON error
	local name=$1 want=$2 url=$3; shift 3
	local c
	c=$(code "$url" "$@")
	if [ "$c" = "$want" ] && $PY -c '
import json, sys
e = json.load(open(sys.argv[1]))
assert isinstance(e["error"], str) and isinstance(e["detail"], str)' "$T/body" 2>/dev/null; then
		ok "$name: $c $(head -c 150 "$T/body")"
	else
		bad "$name: $c (want $want): $(head -c 200 "$T/body")"
	fi
}
err_is "bad filter" 400 "$U/api/v1/flows?filter=src+host+10.0.0.1+and+dst+port+99999"
at=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["at"])' "$T/body" 2>/dev/null)
[ "$at" = 31 ] && ok "bad filter gives at=31, the parser's position" || bad "bad filter at=$at, want 31"
err_is "bad time" 400 "$U/api/v1/flows?since=yesterday"
err_is "since after until" 400 "$U/api/v1/packets?since=2000&until=1000"
err_is "bad sort" 400 "$U/api/v1/flows?sort=color"
err_is "unknown parameter" 400 "$U/api/v1/flows?filtre=tcp"
err_is "limit too large" 422 "$U/api/v1/flows?limit=1000000"
err_is "limit 0" 400 "$U/api/v1/flows?limit=0"
err_is "bad cursor" 400 "$U/api/v1/flows?cursor=zz"
err_is "unknown flow" 404 "$U/api/v1/flows/999999"
err_is "unknown flow pcap" 404 "$U/api/v1/flows/999999/pcap"
err_is "bad flow id" 400 "$U/api/v1/flows/12abc/pcap"
err_is "bad bpf" 400 "$U/api/v1/packets?bpf=tcp+port+banana"
err_is "bad host shortcut" 400 "$U/api/v1/packets?host=10.0.0.1+or+udp"
err_is "bad JSON body" 400 "$U/api/v1/packets" -d '{"bpf": tcp}'
err_is "body over 1 MiB" 413 "$U/api/v1/packets" --data-binary @<(head -c 1100000 /dev/zero | tr '\0' ' ')
err_is "chunked body over 1 MiB" 413 "$U/api/v1/packets" -H 'Transfer-Encoding: chunked' \
	--data-binary @<(head -c 1100000 /dev/zero | tr '\0' ' ')
err_is "unknown path" 404 "$U/api/v2/flows"
err_is "wrong method" 405 "$U/api/v1/flows" -X DELETE
err_is "POST on a GET path" 405 "$U/api/v1/status" -d '{}'

# ---- status, metrics ----
"$FV" status -s "$S" --format json >"$T/st.json"
c=$(code "$U/api/v1/status")
if [ "$c" = 200 ] && $PY - "$T/st.json" "$T/body" <<'EOF'; then ok "/status has every field of status --format json, equal, plus version"; else bad "/status differs"; fi
import json, sys
cli = json.load(open(sys.argv[1])); rest = json.load(open(sys.argv[2]))
for k, v in cli.items():
    if k == "capture":
        continue
    assert rest[k] == v, (k, rest.get(k), v)
assert set(cli["capture"]) <= set(rest["capture"])
assert rest["version"]
EOF
c=$(code "$U/metrics")
nfl=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["flows"])' "$T/st.json")
[ "$c" = 200 ] && grep -q '^flowvault_up 1$' "$T/body" && grep -q "^flowvault_flows $nfl\$" "$T/body" &&
	grep -q '^flowvault_index_file_bytes [0-9]' "$T/body" && grep -q '^flowvault_kernel_drops_total 0$' "$T/body" &&
	ok "/metrics: up 1, $nfl flows, index bytes, drops" || bad "/metrics: $c $(head -c 300 "$T/body")"

# ---- the OpenAPI description: served, and every path answers ----
c=$(code "$U/api/v1/openapi.yaml")
cp "$T/body" "$T/api.yaml"
[ "$c" = 200 ] && cmp -s "$T/api.yaml" docs/api.yaml && ok "openapi.yaml is docs/api.yaml" || bad "openapi.yaml: $c"
if $PY -c 'import yaml' 2>/dev/null; then
	paths=$($PY -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["openapi"].startswith("3.0")
for p, ops in d["paths"].items():
    if "get" in ops: print(p)' "$T/api.yaml")
else
	paths=$(grep -E '^  /' "$T/api.yaml" | tr -d ' :')
fi
np=0
for p in $paths; do
	c=$(code "$U${p//\{id\}/1}")
	if [ "$c" = 404 ] || [ "$c" = 405 ] || [ "$c" = 000 ]; then bad "GET $p: $c"; else np=$((np + 1)); fi
done
[ "$np" -ge 7 ] && ok "all $np GET paths of the OpenAPI description answer" || bad "only $np paths answer"

# ---- a client that hangs up mid-download ----
"$GEN" --seed 4 --flows 4000 --size 200M -q -w "$T/big.pcap" &&
	"$FV" import -q -r "$T/big.pcap" -s "$S" || bad "big import"
rm -f "$T/big.pcap"
for i in 1 2 3; do
	curl -s "$U/api/v1/packets" | head -c 100000 >/dev/null
	curl -s --max-time 0.3 -o /dev/null "$U/api/v1/packets?format=pcapng"
done
c=$(code "$U/api/v1/status")
kill -0 "$SPID" 2>/dev/null && [ "$c" = 200 ] && ok "six clients hung up mid-download; the next request is fine" ||
	bad "after hang-ups: $c"

# ---- constant memory ----
rss() { awk '/^VmRSS/ {print $2}' "/proc/$SPID/status"; }
r0=$(rss)
size=$(curl -s "$U/api/v1/packets" | wc -c)
curl -s "$U/api/v1/packets?format=pcapng" -o /dev/null &
p1=$!
curl -s "$U/api/v1/packets?bpf=tcp" -o /dev/null &
p2=$!
wait "$p1" "$p2"
r1=$(rss)
[ "$size" -gt 200000000 ] && [ $((r1 - r0)) -lt 40000 ] &&
	ok "downloads of the whole store ($((size / 1000000)) MB, then two at once): RSS $((r0 / 1024)) -> $((r1 / 1024)) MB" ||
	bad "RSS $r0 -> $r1 kB after $size bytes"

# ---- a failure mid-stream cuts the transfer off ----
# A second link type after the first: a pcap cannot hold both, so extract
# stops with exit 2 and the download must not end like a complete one.
"$FV" import -q -r "$C/linktypes/linuxsll-arp.pcap" -s "$S" || bad "import SLL"
"$FV" extract -s "$S" --bpf 'arp or udp' -w "$T/x.pcap" 2>/dev/null
rc=$?
curl -s -o "$T/cut.pcap" "$U/api/v1/packets?bpf=arp+or+udp"
crc=$?
[ "$rc" -eq 2 ] && [ "$crc" -ne 0 ] &&
	ok "two link types in one pcap: extract exit 2, the download is cut off (curl exit $crc)" ||
	bad "mid-stream failure: extract rc $rc, curl rc $crc"
"$FV" extract -s "$S" --bpf 'arp or udp' --format pcapng -w "$T/x.pcapng" 2>/dev/null
c=$(code "$U/api/v1/packets?bpf=arp+or+udp&format=pcapng")
[ "$c" = 200 ] && cmp -s "$T/body" "$T/x.pcapng" && ok "... and format=pcapng holds both, equal to extract" ||
	bad "pcapng with two link types: $c"

# ---- answers made whole before the reply ----
# What fits in the first pieces goes with a Content-Length (one send),
# and a failure there gets an error reply that says what, not a cut
# transfer: the same two link types, in a store holding little else.
S2=$T/s2
"$FV" import -q -r "$C/linktypes/quic_handshake.pcap" -s "$S2" &&
	"$FV" import -q -r "$C/linktypes/linuxsll-arp.pcap" -s "$S2" || bad "import into $S2"
P2=$SPID U1=$U
SPID=
serve_start "$S2" || bad "serve $S2 did not start"
c=$(code "$U/api/v1/packets")
[ "$c" = 400 ] && grep -q 'format=pcapng' "$T/body" &&
	ok "two link types in the first pieces: 400, $(head -c 160 "$T/body")" ||
	bad "early failure: $c $(head -c 300 "$T/body")"
"$FV" extract -s "$S2" --flow 1 -w "$T/f1.pcap" || bad "extract --flow 1 from $S2"
len=$(curl -s -D - -o "$T/body" "$U/api/v1/flows/1/pcap" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-length" {print $2}')
[ -n "$len" ] && [ "$len" = "$(stat -c %s "$T/f1.pcap")" ] && cmp -s "$T/body" "$T/f1.pcap" &&
	ok "a small flow's pcap: Content-Length $len, extract's bytes" ||
	bad "flow 1: Content-Length '$len', extract $(stat -c %s "$T/f1.pcap") bytes"
len=$(curl -s -D - -o "$T/body" "$U/api/v1/packets?format=pcapng" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-length" {print $2}')
[ "$len" = "$(stat -c %s "$T/body")" ] && ok "the whole small store as pcapng: Content-Length $len" ||
	bad "pcapng of $S2: Content-Length '$len', body $(stat -c %s "$T/body")"
serve_stop
SPID=$P2 U=$U1

# ---- at most --max-downloads at once: one more is 503, Retry-After ----
P2=$SPID U1=$U
SPID=
serve_start "$S" --max-downloads 1 || bad "serve --max-downloads 1 did not start"
active() { # waits until the server counts N downloads
	for _ in $(seq 100); do
		curl -s "$U/api/v1/status" | grep -q "\"downloads_active\":$1[,}]" && return 0
		sleep 0.1
	done
	return 1
}
# The whole store, read slowly: tens of MB, more than the socket buffers.
curl -s --limit-rate 100k -o /dev/null "$U/api/v1/packets" &
slow=$!
if active 1; then
	c=$(curl -s -D "$T/hdr" -o "$T/body" -w '%{http_code}' "$U/api/v1/flows/1/pcap")
	[ "$c" = 503 ] && grep -qi '^retry-after: 1' "$T/hdr" && grep -q '"error":"busy"' "$T/body" &&
		ok "a second download past --max-downloads 1: 503, Retry-After: 1, $(head -c 120 "$T/body")" ||
		bad "a second download past --max-downloads 1: $c $(head -c 200 "$T/body")"
	c=$(code "$U/api/v1/packets?bpf=tcp")
	[ "$c" = 503 ] && ok "a packet query past it: 503" || bad "a packet query past it: $c"
	c=$(code "$U/api/v1/flows?limit=1")
	[ "$c" = 200 ] && ok "other requests meanwhile: 200" || bad "flows beside a full download slot: $c"
else
	bad "the slow download is not counted: $(curl -s "$U/api/v1/status" | head -c 300)"
fi
kill "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
if active 0; then
	c=$(code "$U/api/v1/flows/1/pcap")
	"$FV" extract -s "$S" --flow 1 -w "$T/f1s.pcap"
	[ "$c" = 200 ] && cmp -s "$T/body" "$T/f1s.pcap" &&
		ok "the slot freed once the client hung up: a download is 200 again, extract's bytes" ||
		bad "after the slow client left: $c"
else
	bad "the hung-up download still counted: $(curl -s "$U/api/v1/status" | head -c 300)"
fi
n=$(curl -s "$U/metrics" | awk '$1 == "flowvault_http_downloads_refused_total" {print $2}')
[ "$n" = 2 ] && ok "metrics: 2 downloads refused" || bad "metrics: downloads refused '$n'"
serve_stop
SPID=$P2 U=$U1

# ---- SIGTERM stops it cleanly ----
kill -TERM "$SPID"
wait "$SPID"
rc=$?
SPID=
[ "$rc" -eq 0 ] && grep -q stopping "$T/serve.err" && ok "SIGTERM: exit 0" || bad "SIGTERM: rc $rc"
grep -qiE 'AddressSanitizer|runtime error' "$T/serve.err" && bad "sanitizer: $(grep -m3 -iE 'Sanitizer|runtime error' "$T/serve.err")"

[ "$fail" -eq 0 ] && echo "all REST checks passed" || echo "$fail REST checks failed"
[ "$fail" -eq 0 ]
