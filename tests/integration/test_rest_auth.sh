#!/usr/bin/env bash
# REST credentials (issue 5, "safe by default"): with a bearer token, and
# with TLS and a client CA, every route of the served OpenAPI description
# (docs/api.yaml: the route table as the server publishes it, not a list
# kept here) answers 401 without the credentials and something else with
# them; a wrong token is a 401 too; HTTPS serves a pcap equal to extract's;
# a non-loopback address is refused without a token, TLS or --insecure.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
PY=/usr/bin/python3
C=${FV_CORPUS:-../shared/corpus}
[ -x "$FV" ] || { echo "no $FV (make)"; exit 1; }
command -v openssl >/dev/null || { echo "openssl missing (make deps)"; exit 77; }
. tests/integration/lib.sh

"$FV" import -q -r "$C/http/bro.org.pcap" -s "$T/s" --max-disk 256M || exit 1
FID=$("$FV" flows -s "$T/s" --format csv --filter tcp --limit 1 | tail -n 1 | cut -d, -f1)
"$FV" extract -s "$T/s" --flow "$FID" -w "$T/want.pcap" || exit 1

# Every path of the served api.yaml, {id} made a real flow id; GET each
# with curl args; prints "code path" lines.
walk() { # curl-args...
	curl -s "$@" "$U/api/v1/openapi.yaml" -o "$T/api.yaml"
	$PY - "$T/api.yaml" "$FID" <<'EOF' >"$T/paths"
import re, sys
paths = [m.group(1) for m in re.finditer(r"(?m)^  (/[^:]*):\s*$", open(sys.argv[1]).read())]
for p in paths:
    print(re.sub(r"\{[^}]*\}", sys.argv[2], p))
EOF
	while read -r p; do
		echo "$(curl -s -o /dev/null -w '%{http_code}' "$@" "$U$p") $p"
	done <"$T/paths"
}

# ---- bearer token ----
openssl rand -hex 32 >"$T/token"
chmod 600 "$T/token"
TOK=$(cat "$T/token")
serve_start "$T/s" --auth-token-file "$T/token" || exit 1
# The yaml itself is a route that needs the token: fetch it with it.
walk -H "Authorization: Bearer $TOK" >"$T/with"
n=$(wc -l <"$T/with")
if [ "$n" -ge 6 ] && ! grep -q "^401 " "$T/with" && ! grep -q "^000 " "$T/with"; then
	ok "token: $n routes of api.yaml answer with the token ($(cut -d' ' -f1 "$T/with" | sort | uniq -c | tr -s ' ' | tr '\n' ';'))"
else
	bad "token: with it: $(tr '\n' ';' <"$T/with")"
fi
cp "$T/paths" "$T/paths.keep"
while read -r p; do
	c0=$(curl -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$U$p")
	c1=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer x$TOK" "$U$p")
	c2=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $TOK" "$U$p")
	if [ "$c0" = 401 ] && [ "$c1" = 401 ] && [ "$c2" = 401 ] &&
		grep -qi '^WWW-Authenticate: Bearer' "$T/hdr" && grep -q '"error":"unauthorized"' "$T/body"; then
		:
	else
		bad "token: $p without it $c0, wrong $c1, Basic $c2"
	fi
done <"$T/paths.keep"
[ $fail -eq 0 ] && ok "token: every route without it, with a wrong one or as Basic: 401 with WWW-Authenticate and a JSON error"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"bpf":"tcp"}' "$U/api/v1/packets")
[ "$c" = 401 ] && ok "token: a POST without it is refused before its body is read: 401" || bad "POST without token: $c"
curl -s -H "Authorization: Bearer $TOK" -o "$T/got.pcap" "$U/api/v1/flows/$FID/pcap"
cmp -s "$T/got.pcap" "$T/want.pcap" && ok "token: flow $FID's pcap equals extract's" || bad "token: flow pcap differs"
serve_stop
printf 'short\n' >"$T/short"
"$FV" serve -s "$T/s" --listen 127.0.0.1:0 --auth-token-file "$T/short" 2>"$T/err" && bad "a short token accepted"
grep -q "16 at least" "$T/err" && ok "a token under 16 characters is refused: $(cat "$T/err")" || bad "short token: $(cat "$T/err")"

# ---- TLS, with a client CA ----
cd "$T" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=test CA" -keyout ca.key -out ca.pem 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout srv.key -out srv.csr 2>/dev/null &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >srv.ext &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile srv.ext -out srv.pem 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=analyst" -keyout cli.key -out cli.csr 2>/dev/null &&
	openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out cli.pem 2>/dev/null &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=stranger" -keyout other.key -out other.pem 2>/dev/null ||
	{ bad "openssl could not make the certificates"; exit 1; }
cd - >/dev/null || exit 1
serve_start "$T/s" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" --tls-client-ca "$T/ca.pem" || exit 1
walk --cacert "$T/ca.pem" --cert "$T/cli.pem" --key "$T/cli.key" >"$T/with"
n=$(wc -l <"$T/with")
if [ "$n" -ge 6 ] && ! grep -Eq "^(401|000) " "$T/with"; then
	ok "TLS: $n routes answer with a client certificate the CA signed"
else
	bad "TLS with a client certificate: $(tr '\n' ';' <"$T/with")"
fi
nok=0
while read -r p; do
	c0=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" "$U$p")
	c1=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" --cert "$T/other.pem" --key "$T/other.key" "$U$p")
	# 401, or a handshake the server broke off (000): never an answer.
	case "$c0$c1" in 401401 | 000401 | 401000 | 000000) nok=$((nok + 1)) ;; *) bad "TLS: $p without a certificate $c0, with a stranger's $c1" ;; esac
done <"$T/paths"
[ "$nok" -ge 6 ] && ok "TLS: $nok routes refuse no certificate and a certificate the CA did not sign"
curl -s --cacert "$T/ca.pem" --cert "$T/cli.pem" --key "$T/cli.key" -o "$T/got.pcap" "$U/api/v1/flows/$FID/pcap"
cmp -s "$T/got.pcap" "$T/want.pcap" && ok "TLS: flow $FID's pcap over HTTPS equals extract's" || bad "TLS: flow pcap differs"
c=$(curl -s -o /dev/null -w '%{http_code}' "http://${U#https://}/api/v1/status")
[ "$c" != 200 ] && ok "TLS: plain HTTP on the port gets no answer ($c)" || bad "TLS: plain HTTP answered 200"
serve_stop

# ---- where it may listen ----
"$FV" serve -s "$T/s" --listen 0.0.0.0:0 2>"$T/err" && bad "0.0.0.0 without credentials accepted"
grep -q -- "--insecure" "$T/err" && ok "a non-loopback address without token or TLS is refused and says --insecure" ||
	bad "non-loopback refusal: $(cat "$T/err")"
"$FV" serve -s "$T/s" --listen 127.0.0.1:0 --tls-cert "$T/srv.pem" 2>"$T/err" && bad "a certificate without a key accepted"
grep -q "both --tls-cert and --tls-key" "$T/err" && ok "--tls-cert without --tls-key is refused" || bad "cert without key: $(cat "$T/err")"
exit $fail
