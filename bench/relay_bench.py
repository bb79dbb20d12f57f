#!/usr/bin/env python3
"""Relay throughput and memory benchmark (prints figures; never a pass/fail test).

Same run, same machine, same load generator:
  A. Postfix smtp-source -> smtp-sink directly (the reference)
  B. smtp-source -> digued (no-op pipeline, spool fsync on) -> smtp-sink
Timed until smtp-sink has received every message (it exits after -M N). Prints msgs/s of
both, the ratio B/A, digued's CPU per message (utime+stime from /proc), and digued's peak
RSS with 1,000 idle connections open.

Usage: python3 bench/relay_bench.py [--messages 5000] [--sessions 20] [--size 5000]
                                    [--pipeline-file FILE]  (TOML for [pipeline]/[filters])
Needs build/digued, /usr/sbin/smtp-source and smtp-sink (Debian postfix package).
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from harness import Digued, free_port, wait_port  # noqa: E402

SOURCE = "/usr/sbin/smtp-source"
SINK = "/usr/sbin/smtp-sink"
CLK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid):
    """(user, system) CPU seconds of a process, all threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK, int(fields[12]) / CLK


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def start_sink(port, count):
    p = subprocess.Popen([SINK, "-u", "nobody", "-M", str(count), "127.0.0.1:%d" % port, "1024"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port, 5):
        stop(p)
        raise RuntimeError("smtp-sink did not start")
    return p


def stop(proc):
    """Ends a child we started (TERM, then KILL), bounded."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_source(port, n, sessions, size, reuse, errfile):
    args = [SOURCE, "-s", str(sessions), "-m", str(n), "-l", str(size), "-f", "bench@example.org",
            "-t", "user@example.test", "-M", "client.example.org"]
    if reuse:
        args.append("-d")
    # stderr into a file: a pipe nobody reads would block smtp-source once it fills.
    return subprocess.Popen(args + ["127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                            stderr=errfile)


def timed(port_to_source, sink, n, sessions, size, reuse):
    # smtp-sink -M exits after the n-th message, so smtp-source often ends with "lost
    # connection" on its last sessions: its exit status says nothing; the sink's exit does.
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        src = run_source(port_to_source, n, sessions, size, reuse, err)
        try:
            src.wait(600)
            sink.wait(600)
        except subprocess.TimeoutExpired:
            err.seek(0)
            raise RuntimeError("smtp-sink did not get %d messages in time; smtp-source said: %s"
                               % (n, err.read().decode(errors="replace")))
        finally:
            stop(src)  # still running only when a wait above timed out
        return time.perf_counter() - t0


def bench(n, sessions, size, reuse, pipeline_text):
    # A: direct.
    p1 = free_port()
    sink = start_sink(p1, n)
    try:
        direct = timed(p1, sink, n, sessions, size, reuse)
    finally:
        stop(sink)
    # B: through digued.
    p2 = free_port()
    sink = start_sink(p2, n)
    cfg = pipeline_text + '[domains."example.test"]\ndownstream = ["127.0.0.1:%d"]\n' % p2
    d = Digued(cfg, extra_server="max_connections = 5000\nmax_connections_per_ip = 5000\n")
    try:
        d.start()
        time.sleep(0.3)
        u0, s0 = cpu_times(d.proc.pid)
        relay = timed(d.port, sink, n, sessions, size, reuse)
        u1, s1 = cpu_times(d.proc.pid)
        log = d.log()
    finally:
        d.cleanup()
        stop(sink)
    queued = log.count("outcome=queued")
    return direct, relay, (u1 - u0, s1 - s0), queued


def idle_rss(count):
    d = Digued('[domains."example.test"]\n',
               extra_server="max_connections = 5000\nmax_connections_per_ip = 5000\n"
                            "greeting_timeout = 600\n")
    socks = []
    try:
        d.start()
        time.sleep(0.3)
        base = status(d.proc.pid, "VmRSS")
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            socks.append(s)
        for s in socks:
            s.recv(512)  # the 220 greeting: the session is fully set up
        time.sleep(0.5)
        rss = status(d.proc.pid, "VmRSS")
        hwm = status(d.proc.pid, "VmHWM")
        return base, rss, hwm
    finally:
        for s in socks:
            s.close()
        d.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--pipeline-file")
    ap.add_argument("--idle", type=int, default=1000)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    pipeline = '[pipeline]\norder = []\n'
    if a.pipeline_file:
        with open(a.pipeline_file) as f:
            pipeline = f.read()
    print("relay benchmark: %d messages of ~%d bytes, %d parallel sessions, spool fsync on"
          % (a.messages, a.size, a.sessions))
    for reuse in (False, True):
        direct, relay, cpu, queued = bench(a.messages, a.sessions, a.size, reuse, pipeline)
        mode = "one connection per message" if not reuse else "connections reused (-d)"
        print("[%s]" % mode)
        print("  smtp-source -> smtp-sink          : %8.0f msgs/s (%.2f s)" % (a.messages / direct, direct))
        print("  smtp-source -> digued -> smtp-sink: %8.0f msgs/s (%.2f s), %d queued"
              % (a.messages / relay, relay, queued))
        print("  ratio digued/direct               : %8.2f" % (direct / relay))
        print("  digued CPU per message            : %8.3f ms (user %.3f + system %.3f)"
              % (sum(cpu) * 1000 / a.messages, cpu[0] * 1000 / a.messages,
                 cpu[1] * 1000 / a.messages))
    base, rss, hwm = idle_rss(a.idle)
    print("[%d idle connections]" % a.idle)
    print("  digued RSS before / with idle / peak: %d / %d / %d KiB (%.1f KiB per connection)"
          % (base, rss, hwm, (rss - base) / a.idle))


if __name__ == "__main__":
    main()
