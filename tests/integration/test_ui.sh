#!/usr/bin/env bash
# The web UI (docs/ui.md): flowvault serve's static files (types, caching,
# no way out of the UI directory, --ui), then the pages in headless
# Chromium driven by playwright-core (ui_check.mjs): the flow explorer
# (filter, sort, paging, details, a downloaded pcap equal to `flowvault
# extract --flow`, a bad filter's error), the packet query and the
# dashboard against /api/v1/status (and the stats routes when the server
# has them). Skips (77) without node 20+ or chromium.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
GEN=$B/fvgen
C=${FV_CORPUS:-../shared/corpus}
CHROME=${FV_CHROMIUM:-/usr/bin/chromium}
[ -x "$FV" ] && [ -x "$GEN" ] || { echo "no $FV or $GEN"; exit 1; }
command -v node >/dev/null || { echo "skip: no node (make deps installs Debian's nodejs and npm)"; exit 77; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "skip: node $major: playwright-core needs node 20 or later"; exit 77; }
[ -x "$CHROME" ] || { echo "skip: no $CHROME (make deps installs Debian's chromium)"; exit 77; }
[ -d "$C" ] || { echo "skip: no corpus at $C"; exit 77; }
command -v curl >/dev/null && command -v tshark >/dev/null || { echo "skip: no curl or tshark"; exit 77; }
# With node there, make built the UI (or failed): its absence is a failure.
[ -f "$B/ui/index.html" ] || { echo "no $B/ui/index.html: make builds the UI when npm is there"; exit 1; }
[ -f ui/node_modules/playwright-core/package.json ] || { echo "no ui/node_modules/playwright-core: make runs npm ci in ui/"; exit 1; }

. tests/integration/lib.sh

S=$T/s
"$GEN" --flows 300 --seed 3 -q -w "$T/gen.pcap" || bad "fvgen"
"$FV" import -q -r "$C/http/bro.org.pcap" -r "$C/dns/dns-edns-ecs.pcap" \
	-r "$T/gen.pcap" -s "$S" --max-disk 1G || bad "import"

# serve_stop, and no sanitizer report in the server's stderr.
stop_server() {
	serve_stop
	if grep -Eq "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$T/serve.err"; then
		bad "sanitizer report in the server's stderr:"
		grep -E -A20 "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$T/serve.err" | head -40
	fi
}
hdr() { # hdr URL NAME [curl args]: the value of a response header
	local url=$1 name=$2; shift 2
	curl -s -o /dev/null -D - "$@" "$url" | tr -d '\r' |
		awk -v n="$(echo "$name" | tr A-Z a-z)" 'BEGIN{FS=": "} tolower($1)==n {print $2}'
}
code() { # code URL [curl args]: the status
	local url=$1; shift
	curl -s -o "$T/body" -w '%{http_code}' "$@" "$url"
}

# ---- the files, found beside the program ----
serve_start "$S" || { bad "serve did not start"; exit 1; }
ok "serve listening at $U"
grep -q "web UI at / (files from .*$B/ui)" "$T/serve.err" &&
	ok "serve found the UI beside the program: $(grep 'web UI' "$T/serve.err")" ||
	bad "serve did not find $B/ui: $(cat "$T/serve.err")"
c=$(code "$U/")
[ "$c" = 200 ] && cmp -s "$T/body" "$B/ui/index.html" && ok "GET / is $B/ui/index.html" || bad "GET /: $c"
ct=$(hdr "$U/" Content-Type)
[ "$ct" = "text/html; charset=utf-8" ] && ok "/ is text/html" || bad "/ Content-Type: $ct"
[ "$(hdr "$U/" Cache-Control)" = no-cache ] && ok "/ is revalidated (no-cache)" || bad "/ Cache-Control: $(hdr "$U/" Cache-Control)"
csp=$(hdr "$U/" Content-Security-Policy)
[[ $csp == *"default-src 'self'"* ]] && ok "/ has a Content-Security-Policy" || bad "CSP: $csp"
js=$(cd "$B/ui" && ls assets/*.js | head -n 1)
css=$(cd "$B/ui" && ls assets/*.css | head -n 1)
c=$(code "$U/$js")
[ "$c" = 200 ] && cmp -s "$T/body" "$B/ui/$js" && ok "GET /$js" || bad "GET /$js: $c"
[ "$(hdr "$U/$js" Content-Type)" = "text/javascript; charset=utf-8" ] && ok "JavaScript as text/javascript" || bad "js type: $(hdr "$U/$js" Content-Type)"
[ "$(hdr "$U/$css" Content-Type)" = "text/css; charset=utf-8" ] && ok "CSS as text/css" || bad "css type: $(hdr "$U/$css" Content-Type)"
[ "$(hdr "$U/favicon.svg" Content-Type)" = "image/svg+xml" ] && ok "SVG as image/svg+xml" || bad "svg type"
[[ $(hdr "$U/$js" Cache-Control) == *immutable* ]] && ok "hashed assets cached for good ($(hdr "$U/$js" Cache-Control))" || bad "asset Cache-Control: $(hdr "$U/$js" Cache-Control)"
etag=$(hdr "$U/" ETag)
c=$(code "$U/" -H "If-None-Match: $etag")
[ -n "$etag" ] && [ "$c" = 304 ] && ok "ETag $etag: a revalidation is 304" || bad "If-None-Match $etag: $c"
c=$(code "$U/" -I)
[ "$c" = 200 ] && [ "$(hdr "$U/" Content-Length -I)" = "$(stat -c %s "$B/ui/index.html")" ] && ok "HEAD / (Content-Length)" || bad "HEAD /: $c"
c=$(code "$U/" -X POST -d x)
[ "$c" = 405 ] && [ "$(hdr "$U/" Allow -X POST -d x)" = "GET, HEAD" ] && ok "POST / is 405, Allow: GET, HEAD" || bad "POST /: $c"
[ "$(code "$U/api/v1/status")" = 200 ] && ok "the API beside it still answers" || bad "/api/v1/status"
[ "$(code "$U/api/v2/x")" = 404 ] && grep -q '"error"' "$T/body" && ok "an unknown /api/ path is still the API's JSON 404" || bad "/api/v2/x"

# No way out of the UI directory: every one a JSON 404.
n=0
for p in "/../../../etc/passwd" "/%2e%2e/%2e%2e/etc/passwd" "/assets/../../../etc/passwd" \
	"/assets/%2e%2e/%2e%2e/etc/passwd" "/%2e%2e%2f%2e%2e%2fetc%2fpasswd" "//etc/passwd" \
	"/assets//etc/passwd" "/%2fetc%2fpasswd" "/..%5c..%5cetc%5cpasswd" "/.%2e/.%2e/etc/passwd" \
	"/%252e%252e/etc/passwd" "/.hidden" "/assets/.x" "/assets" "/assets/" "/index.html%3f" \
	"/nosuch.js" "/a/b/c" "/$js/x" "/$(printf 'x%.0s' $(seq 300))"; do
	c=$(code "$U$p" --path-as-is)
	if [ "$c" = 404 ] && grep -q '"error"' "$T/body" && ! grep -q 'root:' "$T/body"; then
		n=$((n + 1))
	else
		bad "GET $p: $c $(head -c 100 "$T/body")"
	fi
done
[ "$n" = 20 ] && ok "20 escapes and strangers (.., %2e%2e, //, absolute, hidden, directories): JSON 404s"
stop_server

# ---- --ui DIR: another directory, no symlink followed ----
cp -r "$B/ui" "$T/ui2"
echo '<!doctype html><title>other</title>' >"$T/ui2/index.html"
ln -s /etc/passwd "$T/ui2/passwd.txt"
ln -s /etc/passwd "$T/ui2/assets/passwd.js"
serve_start "$S" --ui "$T/ui2" || { bad "serve --ui did not start"; exit 1; }
c=$(code "$U/")
[ "$c" = 200 ] && grep -q other "$T/body" && ok "serve --ui DIR serves DIR" || bad "--ui: $c"
for p in /passwd.txt /assets/passwd.js; do
	c=$(code "$U$p")
	[ "$c" = 404 ] && ! grep -q 'root:' "$T/body" && ok "a symlink in the UI directory is not followed ($p: 404)" || bad "symlink $p: $c"
done
stop_server
"$FV" serve -s "$S" --listen 127.0.0.1:1 --ui "$T/nosuch" 2>"$T/err"
rc=$?
[ $rc = 2 ] && grep -q 'no index.html' "$T/err" && ok "--ui without index.html: exit 2, says why" || bad "--ui nosuch: rc=$rc $(cat "$T/err")"

# ---- the pages, in Chromium ----
serve_start "$S" || { bad "serve did not start"; exit 1; }
stats=0
if [ "$(code "$U/api/v1/stats/timeseries")" = 200 ] && [ "$(code "$U/api/v1/stats/top")" = 200 ]; then
	stats=1
	ok "the server has the stats routes: the dashboard's chart and top hosts are checked"
else
	echo "note: no /api/v1/stats routes on this server: only the dashboard's health figures are checked"
fi
timeout 300 node tests/integration/ui_check.mjs "$U" "$FV" "$S" "$T" "$CHROME" "$stats" || fail=$((fail + 1))
stop_server

# ---- a server that wants a token: the page asks for it ----
openssl rand -hex 24 >"$T/token"
chmod 600 "$T/token"
serve_start "$S" --auth-token-file "$T/token" || { bad "serve with a token did not start"; exit 1; }
timeout 120 node tests/integration/ui_token.mjs "$U" "$(cat "$T/token")" "$FV" "$S" "$T" "$CHROME" || fail=$((fail + 1))
stop_server

echo
[ $fail = 0 ] && echo "all UI checks passed" || echo "$fail UI check(s) failed"
[ $fail = 0 ]
