"""Recipient verification end to end: the real digued with smtp-sink downstreams on loopback.
An unknown recipient (the downstream refuses RCPT with 5xx: smtp-sink -f RCPT) gets 550 5.1.1
at RCPT time and no DSN is ever made; a known one gets 250 and its message is delivered; the
second check of an address comes from the cache (SIGUSR1 counters); with the downstream
stopped an unverified address gets 450 4.1.1 (or 250 with verify_tempfail = "accept"). A static
recipient list refuses the unlisted without a callout and is reloaded on SIGHUP. Past the
domain's max_callouts_per_session a session's unverified recipients get 450 4.7.1. With
recipient_delimiter = "+", user's cached answer holds for user+tag. A callout for an IDN
(U-label) domain sends MAIL FROM:<> SMTPUTF8, or asks in A-labels a downstream without
SMTPUTF8 (a Recorder: a small SMTP listener on loopback that keeps the commands it gets;
smtp-sink logs no MAIL parameters without DATA). `diguectl verify` lists and flushes the
cache while the daemon runs."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (DIGUECTL, Digued, Raw, Sink, accept_loop, message, run_tests,  # noqa: E402
                     wait_until)


def domains(bad_port, good_port, extra=""):
    out = ""
    for name, port in (("bad.test", bad_port), ("good.test", good_port)):
        out += ('[domains."%s"]\ndownstream = ["127.0.0.1:%d"]\nspam_mode = "tag"\n'
                'verify_recipients = "callout"\nverify_timeout = 5\n%s' % (name, port, extra))
    return out


def session(port, rcpts, data=None, mail_params=""):
    """One transaction: the reply code and text to each RCPT, then the reply to DATA."""
    c = Raw(port)
    try:
        assert c.reply()[0] == 220
        c.send("EHLO client.example.org\r\n")
        assert c.reply()[0] == 250
        c.send("MAIL FROM:<forged@example.org>%s\r\n" % mail_params)
        assert c.reply()[0] == 250
        out = []
        for r in rcpts:
            c.send("RCPT TO:<%s>\r\n" % r)
            out.append(c.reply())
        if data is not None:
            c.send("DATA\r\n")
            assert c.reply()[0] == 354
            c.send(data + "\r\n.\r\n")
            out.append(c.reply())
        c.send("QUIT\r\n")
        c.reply()
        return out
    finally:
        c.close()


def stats(d, key):
    """Counter key from the stats lines a SIGUSR1 makes digued log now."""
    before = d.log().count("stats rcpt_verify")
    d.signal(signal.SIGUSR1)
    assert wait_until(lambda: d.log().count("stats rcpt_verify") > before, 10), d.log()
    log = d.log()
    rv = re.findall(r"stats rcpt_verify .*", log)[-1]
    main = re.findall(r"stats connections=.*", log)[-1]
    line = rv + " " + main
    return int(re.search(r"\b%s=(\d+)" % key, line).group(1))


def test_unknown_recipient_refused_at_rcpt_known_delivered_cached_then_450():
    with Sink(extra=["-f", "RCPT"]) as bad, Sink() as good, Sink() as bounces:
        with Digued(domains(bad.port, good.port),
                    extra_delivery='bounce_relay = "127.0.0.1:%d"\n' % bounces.port) as d:
            (bad_code, bad_text), (ok_code, ok_text), (data_code, data_text) = session(
                d.port, ["nobody@bad.test", "user@good.test"],
                message("verified", to="user@good.test"))
            assert bad_code == 550 and "5.1.1" in bad_text, bad_text
            assert ok_code == 250, ok_text
            assert data_code == 250, data_text
            assert wait_until(lambda: len(good.messages()) == 1, 15), d.log()
            assert stats(d, "callouts") == 2

            # The same addresses again: answered from the cache, no new callout.
            (bad_code, bad_text), (ok_code, ok_text) = session(
                d.port, ["nobody@bad.test", "user@good.test"])
            assert bad_code == 550 and "5.1.1" in bad_text, bad_text
            assert ok_code == 250, ok_text
            assert stats(d, "cache_hits") == 2
            assert stats(d, "callouts") == 2
            assert stats(d, "rejected") == 2

            # Downstream gone: an address not in the cache cannot be verified: 450, never 250.
            good.stop()
            [(code, text)] = session(d.port, ["other@good.test"])
            assert code == 450 and "4.1.1" in text, text
            assert stats(d, "tempfailed") == 1
            # The cached address is still accepted.
            [(code, text)] = session(d.port, ["user@good.test"])
            assert code == 250, text

            # No DSN was ever made or sent, and the refused downstream got no message.
            assert stats(d, "dsn") == 0
            time.sleep(1)
            assert bounces.messages() == []
            assert bad.messages() == []
            assert len(good.messages()) == 1


def test_off_by_default_accepts_any_local_part():
    with Sink(extra=["-f", "RCPT"]) as bad:
        body = '[domains."bad.test"]\ndownstream = ["127.0.0.1:%d"]\n' % bad.port
        with Digued(body) as d:
            [(code, text)] = session(d.port, ["anyone@bad.test"])
            assert code == 250, text
            assert stats(d, "callouts") == 0


def test_static_list_refuses_unlisted_without_callout():
    with Sink() as good:
        fd, path = tempfile.mkstemp(prefix="digue-rcpts-")
        with os.fdopen(fd, "w") as f:
            f.write("# known users\nalice\n")
        try:
            body = ('[domains."good.test"]\ndownstream = ["127.0.0.1:%d"]\n'
                    'verify_recipients = "callout"\nrecipients = "%s"\n' % (good.port, path))
            with Digued(body) as d:
                (a_code, a_text), (m_code, m_text) = session(
                    d.port, ["alice@good.test", "mallory@good.test"])
                assert a_code == 250, a_text
                assert m_code == 550 and "5.1.1" in m_text, m_text
                assert stats(d, "callouts") == 1
                # The list is reloaded with the config.
                with open(path, "w") as f:
                    f.write("alice\nmallory@good.test\n")
                d.signal(signal.SIGHUP)
                assert wait_until(lambda: "config reloaded" in d.log(), 10), d.log()
                [(code, text)] = session(d.port, ["mallory@good.test"])
                assert code == 250, text
        finally:
            os.unlink(path)


def test_tempfail_accept_takes_the_recipient_and_counts_it():
    with Sink() as gone:
        gone.stop()  # a downstream that refuses connections
        body = ('[domains."lenient.test"]\ndownstream = ["127.0.0.1:%d"]\n'
                'verify_recipients = "callout"\nverify_tempfail = "accept"\n' % gone.port)
        with Digued(body) as d:
            [(code, text)] = session(d.port, ["user@lenient.test"])
            assert code == 250, text
            assert stats(d, "tempfailed") == 1
            assert "result=tempfail action=accept" in d.log()


def test_client_refused_by_a_filter_causes_no_callout():
    with Sink(extra=["-f", "RCPT"]) as bad:
        body = ('[pipeline]\norder = ["relay_ips"]\n[filters.relay_ips]\naction = "reject"\n'
                '[domains."bad.test"]\ndownstream = ["127.0.0.1:%d"]\n'
                'verify_recipients = "callout"\nrelay_ips = ["192.0.2.0/24"]\n' % bad.port)
        with Digued(body) as d:
            [(code, text)] = session(d.port, ["nobody@bad.test"])
            assert code == 550 and "5.7.1" in text, text
            assert stats(d, "callouts") == 0


def test_session_callout_limit_from_the_config():
    with Sink(extra=["-f", "RCPT"]) as bad, Sink() as good:
        with Digued(domains(bad.port, good.port, "max_callouts_per_session = 2\n")) as d:
            replies = session(d.port, ["a1@bad.test", "a2@bad.test", "a3@bad.test"])
            assert [code for code, _ in replies] == [550, 550, 450], replies
            assert "4.7.1" in replies[2][1], replies
            assert stats(d, "callouts") == 2
            assert stats(d, "limited") == 1


def test_delimiter_user_answers_for_user_plus_tag():
    with Sink(extra=["-f", "RCPT"]) as bad, Sink() as good:
        with Digued(domains(bad.port, good.port, 'recipient_delimiter = "+"\n')) as d:
            (bad_code, _), (ok_code, ok_text) = session(d.port,
                                                        ["nobody@bad.test", "user@good.test"])
            assert bad_code == 550 and ok_code == 250, ok_text
            # user's acceptance holds for user+tag; nobody's refusal does not hold for
            # nobody+x (a mailbox of its own with "-" or "." as delimiter): that one is asked.
            (ok_code, ok_text), (bad_code, _) = session(
                d.port, ["user+news@good.test", "nobody+x@bad.test"])
            assert ok_code == 250 and bad_code == 550, ok_text
            assert stats(d, "callouts") == 3
            assert stats(d, "cache_hits") == 1


def diguectl(d, *args):
    """`diguectl verify ARGS` on the daemon's own config (and so its store): (rc, output)."""
    out = subprocess.run([DIGUECTL, "--config", d.config_path, "verify", *args],
                         capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout + out.stderr


def test_diguectl_verify_lists_and_flushes_the_cache_of_the_running_daemon():
    with Sink(extra=["-f", "RCPT"]) as bad, Sink() as good:
        with Digued(domains(bad.port, good.port)) as d:
            (bad_code, _), (ok_code, ok_text) = session(d.port,
                                                        ["nobody@bad.test", "user@good.test"])
            assert bad_code == 550 and ok_code == 250, ok_text
            rc, out = diguectl(d, "list")
            assert rc == 0, out
            assert '<nobody@bad.test>  rejected  "' in out, out
            assert "<user@good.test>  accepted" in out, out
            assert "-- 2 cached answer(s)" in out, out
            rc, out = diguectl(d, "list", "GOOD.test")
            assert rc == 0 and "nobody" not in out and "-- 1 cached" in out, out

            rc, out = diguectl(d, "flush", "Nobody@bad.test")
            assert rc == 0 and "flushed <Nobody@bad.test>" in out, out
            rc, out = diguectl(d, "flush", "nobody@bad.test")
            assert rc == 1 and "not in the verification cache" in out, out
            rc, out = diguectl(d, "flush", "@good.test")
            assert rc == 0 and "-- 1 cached answer(s) flushed" in out, out
            rc, out = diguectl(d, "list")
            assert rc == 0 and "-- 0 cached answer(s)" in out, out
            for bad_usage in (["frobnicate"], ["list", "a@b.test"], ["flush", "a@"], ["flush", "@"],
                              ["flush", "a", "b"]):
                rc, out = diguectl(d, *bad_usage)
                assert rc == 2 and "usage:" in out, (bad_usage, out)

            # Flushed: the running daemon asks the downstream again.
            [(code, text)] = session(d.port, ["user@good.test"])
            assert code == 250, text
            assert stats(d, "callouts") == 3


class Recorder:
    """A minimal SMTP server on loopback that records every command line it receives and
    accepts them all (250; 354 never: it refuses DATA). Bounded: serves connections one at a
    time, each with a timeout, until stop()."""

    def __init__(self, smtputf8=True):
        self.smtputf8 = smtputf8
        self.commands = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        accept_loop(self.sock, self.stopping, self._one)

    def _one(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                self._serve(conn)
            except OSError:
                pass

    def _serve(self, conn):
        conn.sendall(b"220 recorder.test ESMTP\r\n")
        buf = b""
        while len(buf) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                cmd = line.decode("utf-8", errors="replace")
                with self.lock:
                    self.commands.append(cmd)
                verb = cmd[:4].upper()
                if verb == "EHLO":
                    caps = "250-recorder.test\r\n250-PIPELINING\r\n"
                    if self.smtputf8:
                        caps += "250-SMTPUTF8\r\n"
                    conn.sendall((caps + "250 8BITMIME\r\n").encode())
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb == "DATA":
                    conn.sendall(b"554 no DATA here\r\n")
                else:
                    conn.sendall(b"250 ok\r\n")

    def recorded(self):
        with self.lock:
            return list(self.commands)

    def stop(self):
        self.stopping.set()
        self.sock.close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def test_idn_callout_smtputf8_or_a_labels():
    buecher, muenchen = "b\u00fccher.test", "m\u00fcnchen.test"
    with Recorder(smtputf8=True) as utf8, Recorder(smtputf8=False) as ascii_only:
        body = ""
        for name, port in ((buecher, utf8.port), (muenchen, ascii_only.port)):
            body += ('[domains."%s"]\ndownstream = ["127.0.0.1:%d"]\n'
                     'verify_recipients = "callout"\nverify_timeout = 5\n' % (name, port))
        with Digued(body) as d:
            (code1, text1), (code2, text2), (code3, text3) = session(
                d.port, ["user@" + buecher, "user@" + muenchen, "j\u00f6rg@" + muenchen],
                mail_params=" SMTPUTF8")
            got = utf8.recorded()
            assert "MAIL FROM:<> SMTPUTF8" in got, got
            assert "RCPT TO:<user@%s>" % buecher in got, got
            assert code1 == 250, text1
            got = ascii_only.recorded()
            assert "MAIL FROM:<>" in got, got
            assert "RCPT TO:<user@xn--mnchen-3ya.test>" in got, got
            assert not any("\u00f6" in c or "\u00fc" in c or "SMTPUTF8" in c for c in got), got
            assert code2 == 250, text2
            # A UTF-8 local part cannot be asked without SMTPUTF8 (nor delivered): refused.
            assert code3 == 550 and "SMTPUTF8" in text3, text3
            # The cache names the domain as the config does; either spelling lists it.
            rc, out = diguectl(d, "list", "xn--bcher-kva.test")
            assert rc == 0 and "<user@%s>  accepted" % buecher in out, out
            assert "-- 1 cached answer(s)" in out, out


run_tests(globals())
