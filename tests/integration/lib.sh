# tests/integration/lib.sh - what the integration tests share (sourced
# from the top of the tree):
#   B FV GEN PY  the build (FV_BUILD, default build), its flowvault and
#              fvgen, python3 (each kept when set before)
#   T          a scratch directory, removed at exit (the server stopped)
#   ok, bad    print a check's result; bad counts into fail
#   serve_start STORE [serve args...]
#              `flowvault serve` on a free loopback port (port 0: the
#              kernel picks one); sets SPID and U (http:// or https://
#              base URL); its stderr goes to $T/serve.err. Returns 1,
#              saying why, if it does not start.
#   serve_stop stops it (SIGTERM) and waits.
#   skip MSG   says why and exits 77 (skipped)
#   veth_pair NA NB VA VB
#              network namespaces NA and NB joined by veths VA (in NA)
#              and VB (in NB), up, no addresses, IPv6 off (nothing
#              leaves them); removed at exit. Returns 1, saying why,
#              where the kernel has no namespaces or veths.
#   record_start NS IFACE STORE [record args...]
#              `flowvault record -i IFACE -s STORE` in namespace NS (as
#              $RUNAS when set), stderr to $T/rec.err; sets recpid and
#              waits until it captures. Returns 1, saying why, if not.
#   test_cleanup, if the test defines it, runs first at exit.
B=${B:-${FV_BUILD:-build}}
FV=${FV:-$B/flowvault}
GEN=${GEN:-$B/fvgen}
PY=${PY:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
T=$(mktemp -d)
SPID=
fail=0
_lib_netns=()
_lib_cleanup() {
	if declare -F test_cleanup >/dev/null; then test_cleanup; fi
	serve_stop
	for ns in "${_lib_netns[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$T"
}
trap _lib_cleanup EXIT
trap 'exit 1' INT TERM
skip() {
	echo "$*"
	exit 77
}
veth_pair() {
	ip netns add "$1" 2>/dev/null || {
		echo "no network namespace support (ip netns add failed)"
		return 1
	}
	_lib_netns+=("$1")
	ip netns add "$2" || exit 1
	_lib_netns+=("$2")
	ip link add "$3" netns "$1" type veth peer name "$4" netns "$2" 2>/dev/null || {
		echo "no veth support"
		return 1
	}
	for ns in "$1" "$2"; do
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 || exit 1
	done
	ip netns exec "$1" ip link set "$3" mtu 9000 up || exit 1
	ip netns exec "$2" ip link set "$4" mtu 9000 up || exit 1
	ip netns exec "$2" ip link set lo up || exit 1
}
ok() { echo "ok   $*"; }
bad() {
	echo "FAIL $*"
	fail=$((fail + 1))
}
serve_start() {
	local s=$1
	shift
	: >"$T/serve.err"
	"$FV" serve -s "$s" --listen 127.0.0.1:0 "$@" 2>"$T/serve.err" &
	SPID=$!
	U=
	for _ in $(seq 100); do
		U=$(grep -Eo 'https?://127\.0\.0\.1:[0-9]+' "$T/serve.err" | head -n 1)
		[ -n "$U" ] && return 0
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "serve did not start: $(cat "$T/serve.err")"
	SPID=
	return 1
}
serve_stop() {
	if [ -n "$SPID" ]; then
		kill "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	SPID=
}
record_start() {
	local ns=$1 ifc=$2 st=$3
	shift 3
	# shellcheck disable=SC2086
	ip netns exec "$ns" ${RUNAS:-} "$FV" record -i "$ifc" -s "$st" "$@" 2>"$T/rec.err" &
	recpid=$!
	for _ in $(seq 100); do
		grep -q "Ctrl-C stops" "$T/rec.err" 2>/dev/null && return 0
		kill -0 "$recpid" 2>/dev/null || break
		sleep 0.1
	done
	echo "record did not start: $(cat "$T/rec.err")"
	return 1
}
