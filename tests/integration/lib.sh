# tests/integration/lib.sh - what the integration tests that drive the
# REST server share (sourced, after FV is set):
#   T          a scratch directory, removed at exit (the server stopped)
#   ok, bad    print a check's result; bad counts into fail
#   serve_start STORE [serve args...]
#              `flowvault serve` on a free loopback port (port 0: the
#              kernel picks one); sets SPID and U (http:// or https://
#              base URL); its stderr goes to $T/serve.err. Returns 1,
#              saying why, if it does not start.
#   serve_stop stops it (SIGTERM) and waits.
T=$(mktemp -d)
SPID=
fail=0
_lib_cleanup() {
	serve_stop
	rm -rf "$T"
}
trap _lib_cleanup EXIT
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
