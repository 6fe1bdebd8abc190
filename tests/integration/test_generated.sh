#!/usr/bin/env bash
# Traffic from our deterministic generator (thousands of flows: IPv4 and
# IPv6, TCP handshakes, data, retransmissions, resets, UDP, ICMP, VLAN,
# QinQ, IP fragments): import it, then check every flow against tshark
# and the independent reader (oracle.py) and against the generator's own
# ground truth (groundtruth.py).
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=build/fvgen
[ -x "$GEN" ] || GEN=$B/fvgen
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
command -v tshark >/dev/null || { echo "tshark missing (make deps)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
N=${FV_GEN_FLOWS:-3000}
[ -n "${FV_QUICK:-}" ] && N=500
"$GEN" -q -w "$T/g.pcap" --flows "$N" --seed 42 --summary "$T/g.tsv" || exit 1
fail=0
/usr/bin/python3 tests/integration/oracle.py "$FV" "$T/g.pcap" || fail=1
rm -rf "$T/s"
"$FV" import -q -r "$T/g.pcap" -s "$T/s" --max-disk 2G || exit 1
"$FV" flows -s "$T/s" --format csv >"$T/f.csv" || exit 1
/usr/bin/python3 tests/integration/groundtruth.py "$T/f.csv" "$T/g.tsv" || fail=1
# The same traffic as pcapng and with microsecond timestamps.
"$GEN" -q -w "$T/g.pcapng" --pcapng --flows 300 --seed 43 || exit 1
/usr/bin/python3 tests/integration/oracle.py "$FV" "$T/g.pcapng" || fail=1
"$GEN" -q -w "$T/gu.pcap" --usec --flows 300 --seed 44 || exit 1
/usr/bin/python3 tests/integration/oracle.py "$FV" "$T/gu.pcap" || fail=1
exit $fail
