#!/usr/bin/env bash
# make run: import sample traffic into ./demo-store and show what to try.
# Sample traffic: the corpus captures when ../shared/corpus is there, and
# always 3000 flows from our deterministic generator.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
FV=$B/flowvault
STORE=${FV_DEMO_STORE:-demo-store}
rm -rf "$STORE" "$B/demo.pcap"
"$B/fvgen" -q -w "$B/demo.pcap" --flows 3000 --seed 1 >/dev/null
files=(-r "$B/demo.pcap")
if [ -d ../shared/corpus/mixed ]; then
	for f in ../shared/corpus/mixed/*.pcap ../shared/corpus/http/*.pcap; do
		files+=(-r "$f")
	done
fi
"$FV" import "${files[@]}" -s "$STORE" --max-disk 2G
echo
"$FV" status -s "$STORE"
echo
echo "Top 10 flows by bytes:"
"$FV" flows -s "$STORE" --sort bytes --limit 10
id=$("$FV" flows -s "$STORE" --sort bytes --limit 1 --format csv | tail -n 1 | cut -d, -f1)
cat <<MSG

Try next:
  $FV flows -s $STORE --filter 'tcp and port 443 and bytes > 100k' --sort bytes --limit 20
  $FV flows -s $STORE --filter 'host 127.0.0.1' --format json --limit 5
  $FV extract -s $STORE --flow $id -w flow-$id.pcap && tshark -r flow-$id.pcap | head
  $FV extract -s $STORE --bpf 'udp port 53' -w dns.pcap
  $FV status -s $STORE
(docs/ has the architecture, the on-disk formats and the filter language.)
MSG
# The REST API over the demo store, on loopback, until Ctrl-C
# (FV_DEMO_SERVE=0 skips it).
if [ "${FV_DEMO_SERVE:-1}" != 0 ]; then
	cat <<MSG

Serving the REST API on http://127.0.0.1:8080 (Ctrl-C stops).
MSG
	if [ -f "$B/ui/index.html" ]; then
		echo "Web UI: open http://127.0.0.1:8080/ (flows, packets, dashboard; docs/ui.md)"
	else
		echo "(No web UI: make builds it into $B/ui when npm is there; docs/ui.md)"
	fi
	cat <<MSG
The API with curl, e.g.:
  curl 'localhost:8080/api/v1/flows?sort=bytes&limit=5'
  curl -OJ 'localhost:8080/api/v1/flows/$id/pcap'
  curl localhost:8080/api/v1/status
MSG
	exec "$FV" serve -s "$STORE" --listen 127.0.0.1:8080
fi
