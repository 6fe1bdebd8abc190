#!/usr/bin/env bash
# Bad input against the REST server (issue 5): a few thousand malformed
# requests - broken filters, huge numbers, bad dates and cursors, path
# tricks, percent-encoding games, overlong URLs and headers, bad JSON
# bodies, other methods - from a fixed seed, against the sanitizer build
# when there is one. Every answer must be a 4xx with a JSON error body
# (or a 200), never a 5xx or a dropped connection; the server must live
# through it and its stderr must hold no sanitizer report.
set -u
cd "$(dirname "$0")/../.."
B=${FV_BUILD:-build}
FV=$B/flowvault
[ -x build-san/flowvault ] && FV=build-san/flowvault
PY=/usr/bin/python3
C=${FV_CORPUS:-../shared/corpus}
[ -x "$FV" ] || { echo "no $FV (make)"; exit 1; }
. tests/integration/lib.sh

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
"$FV" import -q -r "$C/http/bro.org.pcap" -r "$C/dns/dns-edns-ecs.pcap" \
	-r "$C/communityid/ipv6.pcap" -s "$T/s" --max-disk 512M || exit 1
serve_start "$T/s" || exit 1
echo "server ($FV) at $U"

$PY - "$U" "${FV_FUZZ_REQUESTS:-3000}" <<'EOF'
import http.client, json, random, sys, urllib.parse

url = urllib.parse.urlparse(sys.argv[1])
N = int(sys.argv[2])
rnd = random.Random(20261202)

routes = ["/api/v1/flows", "/api/v1/flows/1", "/api/v1/flows/2/pcap",
          "/api/v1/packets", "/api/v1/status", "/metrics",
          "/api/v1/openapi.yaml"]
words = ["host", "net", "port", "src", "dst", "and", "or", "not", "(", ")",
         "tcp", "udp", "icmp", "ipv6", "vlan", "flow", "bytes", ">", "<",
         "=", "!=", "10.0.0.1", "::1", "fe80::1%eth0", "300.1.1.1", "1/33",
         "65536", "-1", "99999999999999999999999", "1e309", "0x", "'",
         '"', "\\", "\x00", "\u00e9", "\U0001f600", "K", "M", "G", "T",
         "portrange", "1-", "less", "greater", "ether", "proto"]
params = ["filter", "bpf", "since", "until", "limit", "cursor", "sort",
          "order", "format", "host", "port", "proto", "x"]
times = ["2026-13-45T99:99:99Z", "-999999999999h", "1e309", "", "now-",
         "99999999999999999999999", "-1", "2026-11-22T10:00:00+25:00",
         "2026-11-22", "1735689620.5", "T", "-1h", "+1h", "18446744073709551616",
         "2026-11-22T10:00:00.0000000000000000001Z"]


def junk(n):
    return "".join(rnd.choice("%&=?/#+;:@!$'()*,[]{}\\ \"<>^`|~azAZ09._-")
                   for _ in range(n))


def value(p):
    k = rnd.random()
    if p in ("since", "until"):
        return rnd.choice(times)
    if p in ("limit",):
        return rnd.choice(["-1", "0", "1e9", "99999999999999999999", "x",
                           "100001", " 5", "5 ", "0x10"])
    if p == "cursor":
        return rnd.choice(["", "zz", "00" * 19, "ff" * 19, "0" * 10000,
                           junk(38)])
    if k < 0.6:
        return " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 12)))
    if k < 0.8:
        return junk(rnd.randint(0, 60))
    return "A" * rnd.choice([1000, 8000, 70000])


def query():
    q = []
    for _ in range(rnd.randint(0, 5)):
        p = rnd.choice(params)
        v = value(p)
        # Quoted whole, or only what cannot go into a request line at
        # all (controls, spaces, non-ASCII): the rest goes in raw.
        v = urllib.parse.quote(v, safe="" if rnd.random() < 0.7 else
                               "".join(map(chr, range(33, 127))))
        q.append(p + "=" + v)
    if rnd.random() < 0.2:  # percent-encoding games
        q.append(rnd.choice(["filter=%zz", "filter=%", "filter=%0",
                             "filter=%c0%af", "since=%00", "%=%", "&&&",
                             "filter=%252e%252e", "=x", "limit"]))
    return "&".join(q)


def path():
    k = rnd.random()
    if k < 0.5:
        return rnd.choice(routes)
    return rnd.choice([
        "/api/v1/flows/../../etc/passwd", "/api/v1/flows/%2e%2e/x",
        "/api/v1/flows/18446744073709551616/pcap", "/api/v1/flows/-1",
        "/api/v1/flows/1/pcap/", "//api//v1//flows", "/api/v1/flows/0x10",
        "/api/v1/flows/%00", "/api/v1/flows/1%2fpcap", "/api/v2/flows",
        "/api/v1/flows/" + "9" * 5000, "/" + junk(30), "/api/v1/",
        "/api/v1/packets/", "/metrics/x", "/api/v1/flows/1/pcap?" + "&" * 999])


statuses = {}
bad = 0
conn = None
for i in range(N):
    if conn is None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    method = rnd.choice(["GET"] * 8 + ["POST", "PUT", "DELETE", "OPTIONS"])
    p = path()
    q = query()
    target = urllib.parse.quote(p, safe="".join(map(chr, range(33, 127))))
    target += "?" + q if q and "?" not in p else ""
    headers = {}
    if rnd.random() < 0.05:
        headers["X-Junk"] = "x" * rnd.choice([100, 10000, 70000])
    if rnd.random() < 0.05:
        for j in range(rnd.choice([50, 200])):
            headers["X-H%d" % j] = junk(20).replace("\n", "")
    body = None
    if method == "POST":
        body = rnd.choice([
            "", "{", "[]", "null", '{"bpf": 5}', '{"bpf": "tcp", "x": 1}',
            json.dumps({"bpf": value("filter"), "since": value("since")}),
            '{"bpf": "' + "A" * 200000 + '"}', junk(500),
            json.dumps({"bpf": "tcp", "limit": 10**30})]).encode()
        headers["Content-Type"] = rnd.choice(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"])
    try:
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        st = r.status
        if r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None
    except (http.client.HTTPException, OSError) as e:
        # The server may close a connection it refuses (an overlong
        # request line or header): that must leave the server up.
        conn.close()
        conn = None
        st = "closed"
    statuses[st] = statuses.get(st, 0) + 1
    if isinstance(st, int):
        if st >= 500:
            bad += 1
            print("5xx: %s %s -> %d %r" % (method, target[:200], st, data[:200]))
        elif st >= 400 and st not in (405, 414, 431, 413):
            try:
                e = json.loads(data)
                assert isinstance(e.get("error"), str) and e["error"]
            except Exception:
                bad += 1
                print("%d without a JSON error: %s %s %r" %
                      (st, method, target[:200], data[:200]))
# One well-formed request at the end: the server is alive and right.
c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
c.request("GET", "/api/v1/status")
r = c.getresponse()
alive = r.status == 200 and json.loads(r.read())["flows"] > 0
print("requests:", N, "answers:", dict(sorted(statuses.items(), key=str)))
print("server alive and answering after them:", alive)
sys.exit(1 if bad or not alive else 0)
EOF
rc=$?
serve_stop
if grep -Eq "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$T/serve.err"; then
	echo "FAIL: sanitizer report in the server's stderr:"
	grep -E -A20 "ERROR: AddressSanitizer|runtime error:" "$T/serve.err" | head -40
	rc=1
fi
[ $rc = 0 ] && echo "ok: no 5xx, every error a JSON body, no sanitizer report"
exit $rc
