"""The spf and rdns filters through `diguectl scan --json`, with the DNS served by nsd on
loopback (dnsharness): SPF pass/fail with the Received-SPF header as evidence, a DNS outage
as SPF_TEMPERROR (a filter error, not a result), and reverse DNS none / not
forward-confirmed / confirmed / forward lookup timed out; then the real digued delivering to
smtp-sink: the delivered message carries the Received-SPF trace header. Exits non-zero on
any failed check."""

import os
import re
import smtplib
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import DnsServer, rr  # noqa: E402
from harness import Digued, Sink, diguectl_scan, dns_config, wait_until  # noqa: E402

ZONE = [
    rr("example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 -all exp=why.example.org"),
    rr("why.example.org", "TXT", "%{i} is not a mail server of %{d}"),
    rr("10.2.0.192.in-addr.arpa", "PTR", "host.example.org"),
    rr("host.example.org", "A", "192.0.2.10"),
    rr("7.100.51.198.in-addr.arpa", "PTR", "liar.example.org"),
    rr("liar.example.org", "A", "203.0.113.1"),
    rr("loop.example.org", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
    rr("slow.example.org", "TXT", "v=spf1 -all"),
    rr("30.2.0.192.in-addr.arpa", "PTR", "slowhost.example.org"),
    rr("slowhost.example.org", "A", "192.0.2.30"),
]
DROP = {("slow.example.org", None), ("slowhost.example.org", None)}

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
            DnsServer({".": ZONE}, drop=DROP) as dns:
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

        s = diguectl_scan(cfg, msg, "192.0.2.30", "client.example.org", "bob@slow.example.org")
        check("SPF DNS timeout: SPF_TEMPERROR, scoring 0, not SPF_FAIL",
              s.get("SPF_TEMPERROR", {}).get("score") == 0 and "SPF_FAIL" not in s)
        check("forward lookup timed out: an rdns error, not RDNS_UNCONFIRMED",
              "RDNS_UNCONFIRMED" not in s and "RDNS_NONE" not in s
              and "slowhost.example.org" in s.get("RDNS_FAIL", {}).get("evidence", ""))

        # The real daemon: the delivered message carries the SPF result.
        with Sink() as sink, Digued(
                '[dns]\nservers = ["%s"]\ntimeout_ms = 500\ntries = 1\n'
                '[pipeline]\norder = ["spf"]\n[filters.spf]\naction = "score"\n'
                '[domains."example.net"]\ndownstream = ["127.0.0.1:%d"]\n'
                % (dns.address, sink.port)) as d:
            with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as c:
                c.ehlo("client.example.org")
                c.sendmail("bob@loop.example.org", ["a@example.net"], MESSAGE)
            wait_until(lambda: sink.messages(), 15)
            got = sink.messages()
            # Unfolded (smtp-sink stores LF line ends).
            body = re.sub(r"\r?\n[ \t]+", " ", got[0].decode("utf-8", "replace")) if got else ""
            spf = body.find("\nReceived-SPF: pass (mx.test.invalid: domain of "
                            "bob@loop.example.org designates 127.0.0.1 as permitted sender)")
            check("delivered message carries Received-SPF: pass, above our Received:",
                  0 <= spf < body.find("\nReceived: from client.example.org"))
            check("Received-SPF names the client and the identity",
                  "client-ip=127.0.0.1;" in body and "identity=mailfrom;" in body)

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
