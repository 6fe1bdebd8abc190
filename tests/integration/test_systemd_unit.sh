#!/usr/bin/env bash
# tools/systemd/flowvault@.service is a valid unit (systemd-analyze verify,
# with ExecStart pointed at the built binary) and keeps its hardening:
# not root, only CAP_NET_RAW/CAP_NET_ADMIN/CAP_IPC_LOCK, read-only system.
# (test_record.sh records as such a user.) Exit 0 pass, 1 fail, 77 skip.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
U=tools/systemd/flowvault@.service
command -v systemd-analyze >/dev/null || {
	echo "systemd-analyze missing (package systemd): cannot verify the unit"
	exit 77
}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
sed "s|/usr/local/bin/flowvault|$(pwd)/$B/flowvault|" "$U" >"$T/flowvault@eth9.service"
fail=0
if systemd-analyze verify "$T/flowvault@eth9.service" >"$T/out" 2>&1 && ! grep -q . "$T/out"; then
	echo "ok   systemd-analyze verify: no complaint"
else
	echo "FAIL systemd-analyze verify: $(cat "$T/out")"
	fail=1
fi
for want in "User=flowvault" "NoNewPrivileges=yes" "ProtectSystem=strict" \
	"CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK" \
	"AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK" "KillSignal=SIGTERM"; do
	if grep -qx "$want" "$U"; then echo "ok   $want"; else
		echo "FAIL missing: $want"
		fail=1
	fi
done
score=$(systemd-analyze security --offline=yes "$T/flowvault@eth9.service" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 4.0) }'; then
	echo "ok   systemd-analyze security: exposure $score (below 4.0)"
else
	echo "FAIL systemd-analyze security: exposure '$score'"
	fail=1
fi
exit $fail
