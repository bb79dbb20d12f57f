"""The helo (strict), invalid_mx, rbl and surbl filters through `diguectl scan --json`, with
DNS served by nsd on loopback (dnsharness): for each, a hit, a miss, a timeout (the relay
drops the query) and a malformed answer (the relay garbles the packet); for invalid_mx also
the MX hosts' addresses (missing, loopback, RFC 1918, IP literals, allow_private). Exits
non-zero on any failed check."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import DnsServer, rr  # noqa: E402
from harness import diguectl_scan, dns_config  # noqa: E402

V6 = "2001:db8::10"
V6_REV = ".".join(reversed("20010db8000000000000000000000010"))

ZONE = [
    # helo
    rr("good.example.org", "A", "192.0.2.10"),
    rr("other.example.org", "A", "203.0.113.1"),
    rr("10.2.0.192.in-addr.arpa", "PTR", "out.example.net"),
    rr("out.example.net", "A", "192.0.2.10"),
    rr("mx7.example.net", "A", "198.51.100.77"),
    # invalid_mx. Documentation ranges (192.0.2.0/24, ...) count as public addresses;
    # loopback and RFC 1918 ones make a "bogus MX".
    rr("good.example.org", "MX", (10, "mx.good.example.org")),
    rr("mx.good.example.org", "A", "192.0.2.25"),
    rr("lo.example.org", "A", "127.0.0.1"),
    rr("lan.example.org", "A", "10.0.0.25"),
    rr("mxnx.example.org", "MX", (10, "missing.example.org")),
    rr("mxlo.example.org", "MX", (10, "lo.example.org")),
    rr("mxlan.example.org", "MX", (10, "lan.example.org")),
    rr("mxlit.example.org", "MX", (10, "192.0.2.25")),
    rr("mxlit.example.org", "MX", (20, "[192.0.2.26]")),
    rr("mxmixed.example.org", "MX", (10, "lo.example.org")),
    rr("mxmixed.example.org", "MX", (20, "mx.good.example.org")),
    rr("mxslow.example.org", "MX", (10, "lo.example.org")),
    rr("mxslow.example.org", "MX", (20, "slowhost.example.org")),
    rr("slowhost.example.org", "A", "192.0.2.27"),
    rr("mxgarbled.example.org", "MX", (10, "garbledhost.example.org")),
    rr("garbledhost.example.org", "A", "192.0.2.28"),
    rr("alo.example.org", "A", "127.0.0.2"),
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
    # surbl: URL registered domains (and reversed IPv4 URLs) looked up as <label>.<zone> in
    # u1.test and u2.test; quorum 0.5 of the zones that answered.
    rr("spam-site.com.u1.test", "A", "127.0.0.2"),
    rr("spam-site.com.u2.test", "A", "127.0.0.4"),
    rr("55.2.0.192.u2.test", "A", "127.0.0.2"),
    rr("refused-site.com.u1.test", "A", "127.255.255.254"),  # a refusal, not a listing
    rr("slow-site.com.u1.test", "A", "127.0.0.2"),
    rr("garbled-site.com.u2.test", "A", "127.0.0.2"),
    # a URL host written in UTF-8 is listed (and queried) in its A-label form
    rr("bücher-spam.com".encode("idna").decode() + ".u1.test", "A", "127.0.0.2"),
    rr("bücher-spam.com".encode("idna").decode() + ".u2.test", "A", "127.0.0.2"),
]
DROP = {("slow.example.org", None), ("slowhost.example.org", None), ("10.2.0.192.c.test", None), (V6_REV + ".c.test", None),
        ("slow-site.com.u2.test", None), ("dead-site.com.u1.test", None),
        ("dead-site.com.u2.test", None)}
GARBLE = {("garbled.example.org", None), ("garbledhost.example.org", None), (V6_REV + ".b.test", None),
          ("garbled-site.com.u1.test", None)}

MESSAGE = b"From: bob@example.org\r\nTo: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n"


def url_message(*urls):
    body = "".join("see http://%s/offer\r\n" % u for u in urls)
    return ("From: bob@example.org\r\nTo: a@example.net\r\nSubject: links\r\n\r\n"
            + body).encode()


def main():
    failures = []

    def check(what, cond, detail=None):
        print(("ok   " if cond else "FAIL ") + what + ("" if cond or detail is None
                                                     else "  -- got %r" % (detail,)))
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="digue-netf-") as tmp, \
            DnsServer({".": ZONE}, drop=DROP, garble=GARBLE) as dns:
        cfg = dns_config(tmp, dns.address, """[pipeline]
order = ["helo", "invalid_mx", "rbl", "surbl"]
[filters.helo]
action = "score"
strict = true
[filters.invalid_mx]
action = "score"
[filters.rbl]
action = "score"
zones = ["a.test", {zone = "b.test", codes = ["127.0.0.2", "127.0.0.4"]}, "c.test"]
[filters.surbl]
action = "score"
zones = ["u1.test", "u2.test"]
[domains."example.net"]
downstream = ["127.0.0.1:10026"]
""", timeout_ms=400)
        msg = os.path.join(tmp, "m.eml")
        with open(msg, "wb") as f:
            f.write(MESSAGE)

        def scan(ip, helo, sender, message=msg):
            return diguectl_scan(cfg, message, ip, helo, sender)

        def scan_urls(*urls):
            path = os.path.join(tmp, "urls.eml")
            with open(path, "wb") as f:
                f.write(url_message(*urls))
            return scan("192.0.2.20", "good.example.org", "bob@good.example.org", path)

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

        def invalid_mx(domain):
            s = scan("192.0.2.20", "good.example.org", "bob@" + domain)
            return s, s.get("INVALID_MX", {}).get("evidence", "")

        s, ev = invalid_mx("mxnx.example.org")
        check("MX host NXDOMAIN: INVALID_MX names the host",
              ev == "mxnx.example.org: no MX host can receive mail: "
                    "missing.example.org does not exist", s)
        s, ev = invalid_mx("mxlo.example.org")
        check("MX host only on 127.0.0.1: INVALID_MX (bogus MX)",
              ev.endswith("lo.example.org resolves only to 127.0.0.1 (loopback)"), s)
        s, ev = invalid_mx("mxlan.example.org")
        check("MX host only on 10.0.0.25: INVALID_MX (bogus MX)",
              ev.endswith("lan.example.org resolves only to 10.0.0.25 (private)"), s)
        s, ev = invalid_mx("mxlit.example.org")
        check("MX hosts that are IP literals: INVALID_MX",
              ev == "mxlit.example.org: no MX host can receive mail: 192.0.2.25 is an IP "
                    "literal; [192.0.2.26] is an IP literal", s)
        s, ev = invalid_mx("mxmixed.example.org")
        check("one bogus and one good MX host: MX_OK naming the bogus one", not ev
              and s.get("MX_OK", {}).get("evidence") == "mxmixed.example.org MX "
              "lo.example.org mx.good.example.org; unusable: lo.example.org resolves only "
              "to 127.0.0.1 (loopback)", s)
        s, ev = invalid_mx("mxslow.example.org")
        check("bogus MX host and one timing out: INVALID_MX_FAIL, no INVALID_MX",
              not ev and "slowhost.example.org lookup failed (temperror)"
              in s.get("INVALID_MX_FAIL", {}).get("evidence", ""), s)
        s, ev = invalid_mx("mxgarbled.example.org")
        check("MX host malformed answer: INVALID_MX_FAIL, no INVALID_MX",
              not ev and "garbledhost.example.org lookup failed (permerror)"
              in s.get("INVALID_MX_FAIL", {}).get("evidence", ""), s)
        s, ev = invalid_mx("alo.example.org")
        check("no MX, A only on loopback: INVALID_MX",
              ev == "alo.example.org has no MX and resolves only to 127.0.0.2 (loopback)", s)

        # allow_private: RFC 1918 MX addresses are usable, loopback still is not.
        lab = os.path.join(tmp, "lab")
        os.mkdir(lab)
        lab_cfg = dns_config(lab, dns.address, """[pipeline]
order = ["invalid_mx"]
[filters.invalid_mx]
action = "score"
allow_private = true
[domains."example.net"]
downstream = ["127.0.0.1:10026"]
""", timeout_ms=400)
        s = diguectl_scan(lab_cfg, msg, "192.0.2.20", "good.example.org", "bob@mxlan.example.org")
        check("allow_private: MX host on 10.0.0.25 is MX_OK",
              "MX_OK" in s and "INVALID_MX" not in s, s)
        s = diguectl_scan(lab_cfg, msg, "192.0.2.20", "good.example.org", "bob@mxlo.example.org")
        check("allow_private: MX host on 127.0.0.1 is still INVALID_MX", "INVALID_MX" in s, s)

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
              "RBL_LISTED" not in s and "RBL_BELOW_QUORUM" not in s, list(s))
        check("rbl refusal: named in RBL_REFUSED",
              s.get("RBL_REFUSED", {}).get("evidence") == "refused: a.test", s)
        s = scan(V6, "good.example.org", "bob@good.example.org")
        ev = s.get("RBL_LISTED", {}).get("evidence", "")
        check("rbl IPv6 nibbles: listed in a.test; garbled b.test and dropped c.test excluded",
              ev.startswith("listed in a.test (127.0.0.2); 1/1 answered")
              and "b.test(permerror)" in ev and "c.test(temperror)" in ev, ev)

        # surbl
        s = scan_urls("www.spam-site.com")
        check("surbl hit: the registered domain listed in both zones",
              s.get("SURBL", {}).get("evidence") == "spam-site.com (u1.test, u2.test)", s)
        check("surbl hit scores 5, nothing unanswered",
              s.get("SURBL", {}).get("score") == 5 and "SURBL_FAIL" not in s
              and "SURBL_REFUSED" not in s, s)
        s = scan_urls("www.bücher-spam.com")
        check("surbl: a UTF-8 URL host is looked up as its A-label (punycode) form",
              s.get("SURBL", {}).get("evidence") == "bücher-spam.com (u1.test, u2.test)", s)
        s = scan_urls("192.0.2.55")
        check("surbl IPv4 URL looked up reversed: listed in u2.test",
              s.get("SURBL", {}).get("evidence") == "192.0.2.55 (u2.test)", s)
        s = scan_urls("clean-site.com", "refused-site.com")
        check("surbl miss: unlisted domain and refusal code are not listings",
              "SURBL" not in s, list(s))
        check("surbl refusal: named in SURBL_REFUSED",
              s.get("SURBL_REFUSED", {}).get("evidence") == "refused: u1.test", s)
        s = scan("192.0.2.20", "good.example.org", "bob@good.example.org")
        check("surbl: a message without URLs asks nothing",
              not [n for n in s if n.startswith("SURBL")], list(s))
        s = scan_urls("slow-site.com")
        check("surbl timeout: u2.test excluded from the quorum, listed in u1.test",
              s.get("SURBL", {}).get("evidence") == "slow-site.com (u1.test)", s)
        check("surbl timeout: named in SURBL_FAIL",
              s.get("SURBL_FAIL", {}).get("evidence") == "timed out or failed: u2.test(temperror)", s)
        s = scan_urls("garbled-site.com")
        check("surbl malformed answer: u1.test excluded, listed in u2.test",
              s.get("SURBL", {}).get("evidence") == "garbled-site.com (u2.test)", s)
        check("surbl malformed answer: named in SURBL_FAIL",
              s.get("SURBL_FAIL", {}).get("evidence") == "timed out or failed: u1.test(permerror)", s)
        s = scan_urls("dead-site.com")
        check("surbl: no zone answered is a filter error (SURBL_FAIL, score 0), not a hit",
              "SURBL" not in s and s.get("SURBL_FAIL", {}).get("score") == 0
              and s["SURBL_FAIL"]["evidence"] ==
              "timed out or failed: u1.test(temperror) u2.test(temperror)", s)

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
