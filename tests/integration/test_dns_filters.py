"""The spf and rdns filters through `diguectl scan --json`, with the DNS served by nsd on
loopback (dnsharness): SPF pass/fail with the Received-SPF header as evidence, and reverse
DNS none / not forward-confirmed / confirmed. Exits non-zero on any failed check."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import DnsServer, rr  # noqa: E402
from harness import diguectl_scan, dns_config  # noqa: E402

ZONE = [
    rr("example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 -all exp=why.example.org"),
    rr("why.example.org", "TXT", "%{i} is not a mail server of %{d}"),
    rr("10.2.0.192.in-addr.arpa", "PTR", "host.example.org"),
    rr("host.example.org", "A", "192.0.2.10"),
    rr("7.100.51.198.in-addr.arpa", "PTR", "liar.example.org"),
    rr("liar.example.org", "A", "203.0.113.1"),
]

MESSAGE = b"From: bob@example.org\r\nTo: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n"


def scan(cfg, msg, ip):
    return diguectl_scan(cfg, msg, ip, "client.example.org", "bob@example.org")


def main():
    failures = []

    def check(what, cond):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="digue-dnsf-") as tmp, \
            DnsServer({".": ZONE}) as dns:
        cfg = dns_config(tmp, dns.address, """[pipeline]
order = ["spf", "rdns"]
[filters.spf]
action = "score"
[filters.rdns]
action = "score"
[domains."example.net"]
downstream = ["127.0.0.1:10026"]
""", timeout_ms=500)
        msg = os.path.join(tmp, "m.eml")
        with open(msg, "wb") as f:
            f.write(MESSAGE)

        s = scan(cfg, msg, "192.0.2.10")
        check("pass: SPF_PASS scores 0", s.get("SPF_PASS", {}).get("score") == 0)
        check("pass: Received-SPF evidence",
              s.get("SPF_PASS", {}).get("evidence", "").startswith("Received-SPF: pass"))
        check("confirmed PTR: RDNS_OK host.example.org",
              s.get("RDNS_OK", {}).get("evidence") == "host.example.org")

        s = scan(cfg, msg, "198.51.100.7")
        fail = s.get("SPF_FAIL", {})
        check("fail: SPF_FAIL scores 5", fail.get("score") == 5)
        check("fail: header names the mechanism",
              'mechanism="-all"' in fail.get("evidence", ""))
        check("unconfirmed PTR: RDNS_UNCONFIRMED",
              "liar.example.org" in s.get("RDNS_UNCONFIRMED", {}).get("evidence", ""))

        s = scan(cfg, msg, "192.0.2.20")
        check("no PTR: RDNS_NONE", "RDNS_NONE" in s)
        check("no PTR, SPF still passes", "SPF_PASS" in s)

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
