#!/usr/bin/python3
"""Independent oracles for GET /api/v1/stats/top and /stats/timeseries.

  statscheck.py top FLOWS.csv REST.json BY METRIC LIMIT
      recomputes the top-N from `flowvault flows --format csv` (the flows
      the same filter and time range select) with the semantics of
      docs/api.md "Statistics" and compares the whole answer: order, keys,
      counters, totals, other.
  statscheck.py ts FLOWS.csv REST.json
      recomputes the time series with exact fractions: each point of
      bytes and packets (per direction) within 1 of the exact proportional
      share, flows and active_flows exact, the totals the sums of the
      points; and when the range holds every flow whole, the totals equal
      the flows' counters exactly.
  statscheck.py tshark-hosts ENDPOINTS.txt REST.json
      compares by=host with tshark -z endpoints,ip / endpoints,ipv6
      (packets, bytes, tx, rx per address; every host of both).
  statscheck.py tshark-pairs FIELDS.tsv REST.json
      compares by=pair with the frames tshark decodes as IP (first,
      outer, header: ip.src ip.dst ipv6.src ipv6.dst frame.len): packets
      and bytes per unordered pair and per direction, and the totals.
Prints one line; exit 0 pass, 1 fail.
"""
import csv
import ipaddress
import json
import sys
from fractions import Fraction

PORT_PROTOS = {6, 17, 132}
PROTO_NUM = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50,
             "icmp6": 58, "sctp": 132}


def flows(path):
    out = []
    with open(path) as f:
        for r in csv.DictReader(f):
            p = r["proto"]
            out.append({
                "proto": PROTO_NUM[p] if p in PROTO_NUM else int(p),
                "c": ipaddress.ip_address(r["client"]),
                "s": ipaddress.ip_address(r["server"]),
                "sport": int(r["server_port"]),
                "pk": (int(r["c2s_packets"]), int(r["s2c_packets"])),
                "by": (int(r["c2s_bytes"]), int(r["s2c_bytes"])),
                "first": int(r["first_ns"]),
                "last": int(r["last_ns"]),
            })
    return out


def akey(a):
    return (a.version, a.packed)


class Ent:
    def __init__(self):
        self.flows = self.pk = self.by = 0
        self.dpk = [0, 0]
        self.dby = [0, 0]

    def add(self, f, d):
        self.flows += 1
        self.pk += sum(f["pk"])
        self.by += sum(f["by"])
        for i in (0, 1):
            if d == 2:
                self.dpk[i] += sum(f["pk"])
                self.dby[i] += sum(f["by"])
            else:
                self.dpk[i] += f["pk"][i ^ d]
                self.dby[i] += f["by"][i ^ d]


def top(fl, by, metric, limit):
    ents = {}

    def add(k, f, d):
        ents.setdefault(k, Ent()).add(f, d)
    for f in fl:
        c, s = f["c"], f["s"]
        if by == "host":
            if c == s:
                add(("h", akey(c)), f, 2)
            else:
                add(("h", akey(c)), f, 0)
                add(("h", akey(s)), f, 1)
        elif by == "src":
            add(("h", akey(c)), f, 0)
        elif by == "dst":
            add(("h", akey(s)), f, 0)
        elif by == "pair":
            a, b = sorted([c, s], key=akey)
            add(("p", akey(a), akey(b)), f, 0 if a == c else 1)
        elif by == "port":
            has = f["proto"] in PORT_PROTOS
            add(("o", f["proto"], has, f["sport"] if has else 0), f, 0)
        elif by == "proto":
            add(("r", f["proto"]), f, 0)
    val = {"bytes": lambda e: e.by, "packets": lambda e: e.pk,
           "flows": lambda e: e.flows}[metric]
    order = sorted(ents.items(), key=lambda kv: (-val(kv[1]), kv[0]))
    shown, rest = order[:limit], order[limit:]
    names = {"host": ("sent", "received"), "pair": ("a_to_b", "b_to_a")}
    n0, n1 = names.get(by, ("c2s", "s2c"))
    lst = []
    for k, e in shown:
        o = {}
        if k[0] == "h":
            o["host"] = str(ipaddress.ip_address(k[1][1]))
            o["family"] = k[1][0]
        elif k[0] == "p":
            o["a"] = str(ipaddress.ip_address(k[1][1]))
            o["b"] = str(ipaddress.ip_address(k[2][1]))
            o["family"] = k[1][0]
        else:
            o["proto"] = k[1]
            if k[0] == "o":
                o["port"] = k[3] if k[2] else None
        o.update({"flows": e.flows, "packets": e.pk, "bytes": e.by,
                  n0 + "_bytes": e.dby[0], n1 + "_bytes": e.dby[1],
                  n0 + "_packets": e.dpk[0], n1 + "_packets": e.dpk[1]})
        lst.append(o)
    return {
        "keys": len(ents),
        "totals": {"flows": len(fl), "packets": sum(sum(f["pk"]) for f in fl),
                   "bytes": sum(sum(f["by"]) for f in fl)},
        "other": {"keys": len(rest),
                  "flows": sum(e.flows for _, e in rest),
                  "packets": sum(e.pk for _, e in rest),
                  "bytes": sum(e.by for _, e in rest)},
        "top": lst,
    }


def cmd_top(csv_path, rest_path, by, metric, limit):
    fl = flows(csv_path)
    rest = json.load(open(rest_path))
    want = top(fl, by, metric, int(limit))
    got = dict(rest)
    for o in got.get("top", []):
        o.pop("proto_name", None)
    for k in want:
        if got.get(k) != want[k]:
            if k == "top":
                for i, (g, w) in enumerate(zip(got["top"], want["top"])):
                    if g != w:
                        print("FAIL top[%d]: got %s want %s" % (i, g, w))
                        return 1
            print("FAIL %s: got %s want %s" % (k, str(got.get(k))[:300],
                                               str(want[k])[:300]))
            return 1
    if rest["by"] != by or rest["metric"] != metric:
        print("FAIL by/metric echoed wrong")
        return 1
    print("ok %d keys, %d shown, %d flows" % (want["keys"], len(want["top"]),
                                             len(fl)))
    return 0


def cmd_ts(csv_path, rest_path):
    fl = flows(csv_path)
    r = json.load(open(rest_path))
    pts = r["points"]
    since, until, step = r["since_ns"], r["until_ns"], r["step_ns"]
    end = until + 1
    n = len(pts)
    t0 = since - since % step
    if n != (until - t0) // step + 1:
        print("FAIL %d points, want %d" % (n, (until - t0) // step + 1))
        return 1
    series = ["c2s_bytes", "s2c_bytes", "c2s_packets", "s2c_packets"]
    exact = {q: [Fraction(0)] * n for q in series}
    started, active = [0] * n, [0] * n
    whole = True
    for f in fl:
        lo, hi = max(f["first"], since), min(f["last"] + 1, end)
        if lo >= hi:
            print("FAIL flow outside the range in the CSV")
            return 1
        whole = whole and f["first"] >= since and f["last"] + 1 <= end
        d = f["last"] + 1 - f["first"]
        ka, kb = (lo - t0) // step, (hi - 1 - t0) // step
        if f["first"] >= since:
            started[ka] += 1
        for k in range(ka, kb + 1):
            active[k] += 1
            blo = max(t0 + k * step, lo)
            bhi = min(t0 + (k + 1) * step, hi)
            for i, q in enumerate(series):
                tot = (f["by"] + f["pk"])[i]
                exact[q][k] += Fraction(tot * (bhi - blo), d)
    worst = 0
    for k, p in enumerate(pts):
        if p["t_ns"] != t0 + k * step:
            print("FAIL point %d at %d" % (k, p["t_ns"]))
            return 1
        if p["flows"] != started[k] or p["active_flows"] != active[k]:
            print("FAIL point %d: flows %d/%d active %d/%d" % (
                k, p["flows"], started[k], p["active_flows"], active[k]))
            return 1
        for q in series:
            err = abs(p[q] - exact[q][k])
            worst = max(worst, err)
            if err > 1:
                print("FAIL point %d %s: %d, exact %s" % (k, q, p[q],
                                                          float(exact[q][k])))
                return 1
        if p["bytes"] != p["c2s_bytes"] + p["s2c_bytes"] or \
                p["packets"] != p["c2s_packets"] + p["s2c_packets"]:
            print("FAIL point %d: sums of directions" % k)
            return 1
    tot = r["totals"]
    for q in series + ["bytes", "packets", "flows"]:
        if tot[q] != sum(p[q] for p in pts):
            print("FAIL totals.%s is not the sum of the points" % q)
            return 1
    for i, q in enumerate(series):
        ex = sum(exact[q])
        if abs(tot[q] - ex) > 1:
            print("FAIL total %s %d, exact %s" % (q, tot[q], float(ex)))
            return 1
        if whole and tot[q] != sum((f["by"] + f["pk"])[i] for f in fl):
            print("FAIL total %s %d is not the flows' sum" % (q, tot[q]))
            return 1
    print("ok %d points of %g s, %d flows%s, worst point off by %.3f" % (
        n, step / 1e9, len(fl), " (whole: totals exact)" if whole else "",
        float(worst)))
    return 0


def cmd_tshark_hosts(txt_path, rest_path):
    want = {}
    for line in open(txt_path):
        parts = line.split()
        if len(parts) != 7 or not parts[1].isdigit():
            continue
        try:
            a = ipaddress.ip_address(parts[0])
        except ValueError:
            continue
        pk, by, tp, tb, rp, rb = map(int, parts[1:])
        want[str(a)] = (pk, by, tb, rb, tp, rp)
    rest = json.load(open(rest_path))
    got = {o["host"]: (o["packets"], o["bytes"], o["sent_bytes"],
                       o["received_bytes"], o["sent_packets"],
                       o["received_packets"]) for o in rest["top"]}
    if rest["other"]["keys"] or not want:
        print("FAIL not every host listed (%d), or tshark gave none" %
              rest["other"]["keys"])
        return 1
    if got != want:
        bad = sorted(set(got.items()) ^ set(want.items()))[:6]
        print("FAIL %d hosts vs tshark's %d; differences: %s" % (
            len(got), len(want), bad))
        return 1
    print("ok %d hosts equal to tshark's endpoints" % len(got))
    return 0


def cmd_tshark_pairs(tsv_path, rest_path):
    want, frames, nbytes = {}, 0, 0
    for line in open(tsv_path):
        f = line.rstrip("\n").split("\t")
        src, dst = (f[0], f[1]) if f[0] else (f[2], f[3])
        if not src:
            continue
        a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        ln = int(f[4])
        lo, hi = sorted([a, b], key=akey)
        e = want.setdefault((str(lo), str(hi)), [0, 0, 0, 0, 0, 0])
        e[0] += 1
        e[1] += ln
        d = 0 if a == lo else 1
        e[2 + d] += ln  # a_to_b_bytes, b_to_a_bytes
        e[4 + d] += 1
        frames += 1
        nbytes += ln
    rest = json.load(open(rest_path))
    got = {(o["a"], o["b"]): [o["packets"], o["bytes"], o["a_to_b_bytes"],
                              o["b_to_a_bytes"], o["a_to_b_packets"],
                              o["b_to_a_packets"]] for o in rest["top"]}
    if rest["other"]["keys"] or not want:
        print("FAIL not every pair listed, or tshark gave none")
        return 1
    if got != want:
        diff = [(k, got.get(k), want.get(k)) for k in set(got) | set(want)
                if got.get(k) != want.get(k)]
        print("FAIL %d pairs vs tshark's %d; %d differ: %s" % (
            len(got), len(want), len(diff), diff[:4]))
        return 1
    t = rest["totals"]
    if (t["packets"], t["bytes"]) != (frames, nbytes):
        print("FAIL totals %s vs tshark's %d frames, %d bytes" % (
            t, frames, nbytes))
        return 1
    print("ok %d pairs and the totals (%d frames, %d bytes) equal tshark's" %
          (len(got), frames, nbytes))
    return 0


def main(argv):
    cmds = {"top": cmd_top, "ts": cmd_ts, "tshark-hosts": cmd_tshark_hosts,
            "tshark-pairs": cmd_tshark_pairs}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
