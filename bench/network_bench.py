#!/usr/bin/env python3
"""Network filters benchmark (prints figures; never a pass/fail test).

Same machine, same load, two digued configurations, real servers on loopback only:
  A. the no-op pipeline
  B. the network filters: ip_blacklist_cache, greylist (delay 1 s, warm: the client network
     is auto-whitelisted), never_spam_ips, always_spam_ips, rdns, helo (strict), spf,
     invalid_mx, rbl (3 zones), ip_complaints, honeypot, with nsd serving every zone and
     the resolver cache warm (one message is sent through first).
For each: connect-to-250 latency (one client, sequential sessions: connect, EHLO, MAIL, RCPT,
DATA, the "250 queued" reply; median and p95) and throughput (Postfix smtp-source, N parallel
sessions -> digued -> smtp-sink; msgs/s until smtp-sink has every message). Prints both and
the ratios B/A.

Usage: python3 bench/network_bench.py [--messages 2000] [--sessions 20] [--latency 200]
Needs build/digued, nsd, /usr/sbin/smtp-source and smtp-sink (Debian postfix package).
"""

import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
from dnsharness import DnsServer, rr  # noqa: E402
from harness import Digued, Raw, free_port  # noqa: E402
from relay_bench import start_sink, timed  # noqa: E402

ZONE = [
    rr("1.0.0.127.in-addr.arpa", "PTR", "client.example.org"),
    rr("client.example.org", "A", "127.0.0.1"),
    rr("example.org", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
    rr("example.org", "MX", (10, "mx.example.org")),
    rr("mx.example.org", "A", "192.0.2.25"),
    # 127.0.0.1 is not listed in the DNSBLs: the common case (NXDOMAIN answers).
    rr("2.0.0.127.a.test", "A", "127.0.0.2"),
]

NETWORK = """[pipeline]
order = ["ip_blacklist_cache", "greylist", "never_spam_ips", "always_spam_ips", "rdns", "helo",
         "spf", "invalid_mx", "rbl", "ip_complaints", "honeypot"]
[filters.ip_blacklist_cache]
action = "reject"
[filters.greylist]
action = "tempfail"
delay = 1
[filters.never_spam_ips]
[filters.always_spam_ips]
[filters.rdns]
action = "score"
[filters.helo]
action = "score"
strict = true
[filters.spf]
action = "score"
[filters.invalid_mx]
action = "score"
[filters.rbl]
action = "spam"
zones = ["a.test", "b.test", "c.test"]
[filters.ip_complaints]
file = "%(complaints)s"
[filters.honeypot]
action = "reject"
traps = ["trap@example.test"]
"""


def session(port, body):
    """One SMTP session from connect to the 250 after DATA; returns seconds."""
    t0 = time.perf_counter()
    c = Raw(port)
    try:
        for cmd, want in ((None, 220), ("EHLO client.example.org\r\n", 250),
                          ("MAIL FROM:<bench@example.org>\r\n", 250),
                          ("RCPT TO:<user@example.test>\r\n", 250), ("DATA\r\n", 354),
                          (body + "\r\n.\r\n", 250)):
            if cmd:
                c.send(cmd)
            code, text = c.reply()
            if code != want:
                raise RuntimeError("%r -> %d %s" % (cmd, code, text))
        elapsed = time.perf_counter() - t0
        c.send("QUIT\r\n")
        return elapsed
    finally:
        c.close()


def run(pipeline, dns, n, sessions, latency_n, body):
    sink_port = free_port()
    # + latency_n + 2: the latency sessions and the warm-up messages reach the sink too.
    total = n + latency_n + 2
    sink = start_sink(sink_port, total)
    cfg = pipeline + ('[dns]\nservers = ["%s"]\n[domains."example.test"]\n'
                      'downstream = ["127.0.0.1:%d"]\ngreylisting = true\n'
                      % (dns.address, sink_port))
    d = Digued(cfg, extra_server="max_connections = 5000\nmax_connections_per_ip = 5000\n")
    try:
        d.start()
        # Warm-up: greylisting's first attempt (451), its retry after the delay, which
        # auto-whitelists 127.0.0.0/24, and the resolver's cache.
        try:
            session(d.port, body)
        except RuntimeError:
            time.sleep(1.1)
            session(d.port, body)
        session(d.port, body)
        lat = sorted(session(d.port, body) for _ in range(latency_n))
        elapsed = timed(d.port, sink, n, sessions, 5000, False)
        log = d.log()
    finally:
        d.cleanup()
        if sink.poll() is None:
            sink.kill()
    return {"median": statistics.median(lat), "p95": lat[int(len(lat) * 0.95) - 1],
            "rate": n / elapsed, "queued": log.count("outcome=queued"),
            "spam": log.count(":spam["), "fail": log.count("_FAIL")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--latency", type=int, default=200)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    body = ("From: bench@example.org\r\nTo: user@example.test\r\nSubject: bench\r\n\r\n"
            + "hello world\r\n" * 20)
    with tempfile.TemporaryDirectory(prefix="digue-netbench-") as tmp, \
            DnsServer({".": ZONE}) as dns:
        complaints = os.path.join(tmp, "complaints.txt")
        with open(complaints, "w") as f:
            f.write("".join("198.51.%d.0/24\n" % i for i in range(200)))
        results = {}
        for name, pipeline in (("no-op pipeline", "[pipeline]\norder = []\n"),
                               ("network filters", NETWORK % {"complaints": complaints})):
            results[name] = run(pipeline, dns, a.messages, a.sessions, a.latency, body)
    print("network filters benchmark: %d messages, %d parallel sessions (smtp-source); "
          "%d sequential sessions for latency; nsd on loopback, warm cache"
          % (a.messages, a.sessions, a.latency))
    for name, r in results.items():
        print("[%s]" % name)
        print("  connect-to-250 latency: median %.2f ms, p95 %.2f ms"
              % (r["median"] * 1e3, r["p95"] * 1e3))
        print("  throughput            : %.0f msgs/s (%d queued, %d spam, %d *_FAIL symbols)"
              % (r["rate"], r["queued"], r["spam"], r["fail"]))
    a_, b_ = results["no-op pipeline"], results["network filters"]
    print("[ratio network/no-op]")
    print("  latency median x%.2f, p95 x%.2f; throughput x%.2f"
          % (b_["median"] / a_["median"], b_["p95"] / a_["p95"], b_["rate"] / a_["rate"]))


if __name__ == "__main__":
    main()
