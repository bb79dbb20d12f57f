"""Integration harness: the real digued and real downstream servers, on loopback only.

- Digued(cfg_text): writes the config into a temp dir, starts build/digued, waits (bounded)
  until it accepts connections; stop() sends SIGTERM and waits, kill9() simulates a crash.
- Sink(): Postfix's smtp-sink on a free loopback port, dumping each message to a file;
  messages() returns their contents. Always stopped by stop() / the context manager.
- run_tests(globals()): runs every test_* function, prints "N passed, M failed", exits 1 on
  any failure. Every server a test starts is stopped in a finally block.
- dns_config(tmp, dns_address, body): a diguectl config in tmp whose resolver asks only the
  test's DNS server (dnsharness); diguectl_scan(cfg, msg, ...): `diguectl scan --json`, its
  symbols by name.
- SHARED: the shared data directory (corpus, SPF suite); DIGUE_DATA overrides it.
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("DIGUE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("DIGUE_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.abspath(os.environ.get("DIGUE_DATA",
                                        os.path.join(SOURCE, "..", "shared", "data")))
DIGUED = os.path.join(BUILD, "digued")
DIGUECTL = os.path.join(BUILD, "diguectl")
SMTP_SINK = "/usr/sbin/smtp-sink"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def accept_loop(sock, stopping, on_conn):
    """Accepts connections on a listening socket until stopping (a threading.Event) is set or
    the socket is closed, handing each to on_conn(conn); bounded by the socket's timeout
    (set here to 0.2 s), so that it notices stopping. For the test servers' threads."""
    sock.settimeout(0.2)
    while not stopping.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        on_conn(conn)


def wait_until(pred, timeout=10.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Sink:
    """Postfix smtp-sink: a real SMTP server that dumps every message it accepts."""

    def __init__(self, port=None, extra=()):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="digue-sink-")
        os.chmod(self.dir, 0o777)
        self.extra = list(extra)
        self.proc = None

    def start(self):
        args = [SMTP_SINK, "-u", "nobody", "-d", os.path.join(self.dir, "%Y%m%d%H%M%S."),
                *self.extra, "127.0.0.1:%d" % self.port, "256"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_port(self.port, 5):
            self.stop()
            raise RuntimeError("smtp-sink did not start")
        return self

    def messages(self):
        """The transactions smtp-sink has finished: it creates a dump file at MAIL and writes
        it as the message arrives, so a file it still holds open is left out (a test would
        otherwise read an empty or partial message)."""
        out = []
        files = sorted(glob.glob(os.path.join(self.dir, "*")))
        writing = self._open_files()
        for f in files:
            if f in writing:
                continue
            with open(f, "rb") as fh:
                out.append(fh.read())
        return out

    def _open_files(self):
        if not self.proc:
            return set()
        fd_dir = "/proc/%d/fd" % self.proc.pid
        held = set()
        try:
            for fd in os.listdir(fd_dir):
                try:
                    held.add(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass  # closed between the listing and the readlink
        except OSError:
            pass  # the process is gone: nothing is being written
        return held

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class Digued:
    """The real daemon with a config made for the test."""

    def __init__(self, config_body, port=None, tmp=None, extra_server="", extra_delivery="",
                 extra_listen=()):
        self.tmp = tmp or tempfile.mkdtemp(prefix="digue-it-")
        self.port = port or free_port()
        listen = ", ".join('"%s"' % a for a in ("127.0.0.1:%d" % self.port, *extra_listen))
        self.config_path = os.path.join(self.tmp, "digue.toml")
        self.log_path = os.path.join(self.tmp, "digued.log")
        text = ('[server]\nhostname = "mx.test.invalid"\nlisten = [%s]\n'
                'threads = 2\nshutdown_grace = 5\n%s\n'
                '[spool]\ndir = "%s/spool"\n[store]\ndir = "%s/store"\nmap_size = 67108864\n'
                '[delivery]\nmaildir_root = "%s/mail"\nretry_min = 1\nretry_max = 2\n'
                'connect_timeout = 2\n%s\n'
                % (listen, extra_server, self.tmp, self.tmp, self.tmp, extra_delivery))
        text += config_body
        with open(self.config_path, "w") as f:
            f.write(text)
        self.proc = None

    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([DIGUED, "--config", self.config_path],
                                     stdout=self.logf, stderr=self.logf)
        if wait and not wait_port(self.port, 10):
            self.stop()
            raise RuntimeError("digued did not start:\n" + self.log())
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class Raw:
    """A raw SMTP client socket, for what smtplib will not send (pipelining in one packet,
    garbage, NUL bytes, over-long lines)."""

    def __init__(self, port, timeout=10, host="127.0.0.1"):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One complete (possibly multi-line) reply: (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed; got %r" % (lines,))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(lines)

    def start_data(self, sender="sender@example.org", rcpt="user@example.test"):
        """MAIL, RCPT, DATA, each answered as it should (250, 250, 354)."""
        self.send("MAIL FROM:<%s>\r\n" % sender)
        assert self.reply()[0] == 250
        self.send("RCPT TO:<%s>\r\n" % rcpt)
        code, text = self.reply()
        assert code == 250, text
        self.send("DATA\r\n")
        assert self.reply()[0] == 354

    def closed(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return True

    def close(self):
        self.s.close()


def message(subject="test", body="hello\r\n", sender="sender@example.org", to="user@example.test",
            extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s.%d@example.org>\r\n%s\r\n%s" % (sender, to, subject, subject,
                                                           int(time.time() * 1e6), extra, body))


def dns_config(tmp, dns_address, body="", hostname="mx.digue.test", timeout_ms=400, tries=1):
    """Writes tmp/digue.toml for diguectl: our hostname, spool and store under tmp, the
    resolver asking only dns_address ("127.0.0.1:PORT", e.g. DnsServer.address) with a short
    timeout, then body (pipeline, filters, domains). Returns the file's path."""
    path = os.path.join(tmp, "digue.toml")
    with open(path, "w") as f:
        f.write('[server]\nhostname = "%s"\n'
                '[spool]\ndir = "%s/spool"\n'
                '[store]\ndir = "%s/store"\n'
                '[dns]\nservers = ["%s"]\ntimeout_ms = %d\ntries = %d\n'
                % (hostname, tmp, tmp, dns_address, timeout_ms, tries))
        f.write(body)
    return path


def diguectl_scan(cfg, msg, ip, helo, sender, rcpt="a@example.net", timeout=60):
    """`diguectl scan --json` of the message file msg as if received from ip/helo/sender for
    rcpt: {symbol name: symbol}. Raises when diguectl fails."""
    out = subprocess.run([DIGUECTL, "--config", cfg, "scan", msg, "--json", "--client-ip", ip,
                          "--helo", helo, "--from", sender, "--rcpt", rcpt],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("diguectl scan failed: %s" % out.stderr)
    return {s["name"]: s for s in json.loads(out.stdout.splitlines()[-1])["symbols"]}


def run_tests(namespace):
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    only = os.environ.get("DIGUE_TEST_ONLY")
    passed = failed = 0
    for name, fn in tests:
        if only and only not in name:
            continue
        t0 = time.time()
        try:
            fn()
            passed += 1
            print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (name, time.time() - t0), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
