"""The helo (strict), invalid_mx and rbl filters through `diguectl scan --json`, with DNS
served by nsd on loopback (dnsharness): for each, a hit, a miss, a timeout (the relay drops
the query) and a malformed answer (the relay garbles the packet). Exits non-zero on any
failed check."""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import DnsServer, rr  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("DIGUE_BUILD", os.path.join(HERE, "..", "..", "build"))
DIGUECTL = os.path.join(BUILD, "diguectl")

V6 = "2001:db8::10"
V6_REV = ".".join(reversed("20010db8000000000000000000000010"))

ZONE = [
    # helo
    rr("good.example.org", "A", "192.0.2.10"),
    rr("other.example.org", "A", "203.0.113.1"),
    rr("10.2.0.192.in-addr.arpa", "PTR", "out.example.net"),
    rr("out.example.net", "A", "192.0.2.10"),
    rr("mx7.example.net", "A", "198.51.100.77"),
    # invalid_mx
    rr("good.example.org", "MX", (10, "mx.good.example.org")),
    rr("aonly.example.org", "A", "192.0.2.30"),
    rr("nullmx.example.org", "MX", (0, ".")),
    rr("txtonly.example.org", "TXT", "no mail here"),
    # rbl: 192.0.2.10 listed in a.test and b.test, c.test times out
    rr("10.2.0.192.a.test", "A", "127.0.0.2"),
    rr("10.2.0.192.b.test", "A", "127.0.0.4"),
    rr("10.2.0.192.c.test", "A", "127.0.0.2"),
    # 192.0.2.20: only a code b.test does not accept, and a refusal
    rr("20.2.0.192.b.test", "A", "127.0.0.9"),
    rr("20.2.0.192.a.test", "A", "127.255.255.254"),
    rr(V6_REV + ".a.test", "A", "127.0.0.2"),
    rr(V6_REV + ".b.test", "A", "127.0.0.2"),
]
DROP = {("slow.example.org", None), ("10.2.0.192.c.test", None), (V6_REV + ".c.test", None)}
GARBLE = {("garbled.example.org", None), (V6_REV + ".b.test", None)}

MESSAGE = b"From: bob@example.org\r\nTo: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n"


def main():
    failures = []

    def check(what, cond, detail=None):
        print(("ok   " if cond else "FAIL ") + what + ("" if cond or detail is None
                                                     else "  -- got %r" % (detail,)))
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="digue-netf-") as tmp, \
            DnsServer({".": ZONE}, drop=DROP, garble=GARBLE) as dns:
        cfg = os.path.join(tmp, "digue.toml")
        with open(cfg, "w") as f:
            f.write(f"""[server]
hostname = "mx.digue.test"
[spool]
dir = "{tmp}/spool"
[store]
dir = "{tmp}/store"
[dns]
servers = ["{dns.address}"]
timeout_ms = 400
tries = 1
[pipeline]
order = ["helo", "invalid_mx", "rbl"]
[filters.helo]
action = "score"
strict = true
[filters.invalid_mx]
action = "score"
[filters.rbl]
action = "score"
zones = ["a.test", {{zone = "b.test", codes = ["127.0.0.2", "127.0.0.4"]}}, "c.test"]
[domains."example.net"]
downstream = ["127.0.0.1:10026"]
""")
        msg = os.path.join(tmp, "m.eml")
        with open(msg, "wb") as f:
            f.write(MESSAGE)

        def scan(ip, helo, sender):
            out = subprocess.run([DIGUECTL, "--config", cfg, "scan", msg, "--json",
                                  "--client-ip", ip, "--helo", helo, "--from", sender,
                                  "--rcpt", "a@example.net"],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError("diguectl scan failed: %s" % out.stderr)
            return {s["name"]: s for s in json.loads(out.stdout.splitlines()[-1])["symbols"]}

        # helo
        s = scan("192.0.2.10", "good.example.org", "bob@good.example.org")
        check("helo resolving to the client: no HELO symbol",
              not [n for n in s if n.startswith("HELO")], list(s))
        s = scan("192.0.2.10", "nowhere.example.org", "bob@good.example.org")
        check("helo hit: HELO_NOT_RESOLVING names the verified PTR",
              "out.example.net" in s.get("HELO_NOT_RESOLVING", {}).get("evidence", ""), s)
        s = scan("192.0.2.10", "other.example.org", "bob@good.example.org")
        check("helo hit: HELO_MISMATCH_PTR", "203.0.113.1" in
              s.get("HELO_MISMATCH_PTR", {}).get("evidence", ""), s)
        s = scan("192.0.2.10", "mx7.example.net", "bob@good.example.org")
        check("helo in the PTR's registered domain: HELO_PTR_DOMAIN", "HELO_PTR_DOMAIN" in s, s)
        s = scan("192.0.2.10", "slow.example.org", "bob@good.example.org")
        check("helo timeout: HELO_FAIL (temperror), not a hit",
              "temperror" in s.get("HELO_FAIL", {}).get("evidence", ""), s)
        s = scan("192.0.2.10", "garbled.example.org", "bob@good.example.org")
        check("helo malformed answer: HELO_FAIL (permerror)",
              "permerror" in s.get("HELO_FAIL", {}).get("evidence", ""), s)
        s = scan("192.0.2.10", "[192.0.2.99]", "bob@good.example.org")
        check("helo literal of another IP: HELO_IP_MISMATCH", "HELO_IP_MISMATCH" in s, s)
        s = scan("192.0.2.10", "mx.digue.test", "bob@good.example.org")
        check("helo claiming our name: HELO_OURS", "HELO_OURS" in s, s)

        # invalid_mx
        s = scan("192.0.2.20", "good.example.org", "bob@good.example.org")
        check("MX present: MX_OK", s.get("MX_OK", {}).get("evidence")
              == "good.example.org MX mx.good.example.org", s)
        s = scan("192.0.2.20", "good.example.org", "bob@nx.example.org")
        check("NXDOMAIN: INVALID_MX scores 3", s.get("INVALID_MX", {}).get("score") == 3, s)
        s = scan("192.0.2.20", "good.example.org", "bob@aonly.example.org")
        check("A only: MX_A_FALLBACK, score 0",
              s.get("MX_A_FALLBACK", {}).get("score") == 0 and "INVALID_MX" not in s, s)
        s = scan("192.0.2.20", "good.example.org", "bob@nullmx.example.org")
        check("null MX: INVALID_MX", "null MX" in s.get("INVALID_MX", {}).get("evidence", ""), s)
        s = scan("192.0.2.20", "good.example.org", "bob@txtonly.example.org")
        check("no MX, no A: INVALID_MX", "INVALID_MX" in s, s)
        s = scan("192.0.2.20", "good.example.org", "bob@slow.example.org")
        check("MX timeout: INVALID_MX_FAIL, no INVALID_MX",
              "INVALID_MX_FAIL" in s and "INVALID_MX" not in s, s)
        s = scan("192.0.2.20", "good.example.org", "bob@garbled.example.org")
        check("MX malformed answer: INVALID_MX_FAIL",
              "permerror" in s.get("INVALID_MX_FAIL", {}).get("evidence", ""), s)

        # rbl
        s = scan("192.0.2.10", "good.example.org", "bob@good.example.org")
        ev = s.get("RBL_LISTED", {}).get("evidence", "")
        check("rbl hit: listed in a.test and b.test", ev.startswith(
            "listed in a.test (127.0.0.2), b.test (127.0.0.4); 2/2 answered"), s)
        check("rbl timeout: c.test excluded and reported",
              "timed out or failed: c.test(temperror)" in ev, ev)
        check("rbl hit scores 5", s.get("RBL_LISTED", {}).get("score") == 5, s)
        s = scan("192.0.2.20", "good.example.org", "bob@good.example.org")
        check("rbl miss: unaccepted code and refusal are not listings",
              not [n for n in s if n.startswith("RBL")], list(s))
        s = scan(V6, "good.example.org", "bob@good.example.org")
        ev = s.get("RBL_LISTED", {}).get("evidence", "")
        check("rbl IPv6 nibbles: listed in a.test; garbled b.test and dropped c.test excluded",
              ev.startswith("listed in a.test (127.0.0.2); 1/1 answered")
              and "b.test(permerror)" in ev and "c.test(temperror)" in ev, ev)

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
