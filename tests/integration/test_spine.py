"""The spine end to end: the real digued between a real client (smtplib / raw sockets) and a
real downstream (Postfix smtp-sink), all on loopback."""

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (DIGUECTL, DIGUED, Digued, Raw, Sink, free_port, message, run_tests,
                     wait_until)


def domain_cfg(sink_port, extra="", name="example.test"):
    return '[domains."%s"]\ndownstream = ["127.0.0.1:%d"]\nspam_mode = "tag"\n%s\n' % (
        name, sink_port, extra)


PIPELINE = ('[pipeline]\norder = ["relay_ips", "empty_sender", "same_sender_rcpt"]\n'
            '[filters.relay_ips]\naction = "reject"\n'
            '[filters.empty_sender]\naction = "spam"\n'
            '[filters.same_sender_rcpt]\naction = "score"\nscore = 4.0\n')


def send(port, msg, sender="sender@example.org", rcpts=("user@example.test",)):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example.org")
        return s.sendmail(sender, list(rcpts), msg)


def test_delivers_with_trace_headers():
    with Sink() as sink, Digued(PIPELINE + domain_cfg(sink.port)) as d:
        send(d.port, message(subject="hello", extra="X-Spam-Status: Yes, spoofed\r\n"))
        assert wait_until(lambda: len(sink.messages()) == 1), d.log()
        m = sink.messages()[0].decode()
        assert "Received: from client.example.org ([127.0.0.1])" in m, m
        assert "by mx.test.invalid (digue) with ESMTP id " in m
        assert "X-Digue-Envelope-From: <sender@example.org>" in m
        assert "X-Digue-HELO: client.example.org" in m
        assert "X-Digue-Client-IP: 127.0.0.1" in m
        assert "X-Digue-Envelope-To: <user@example.test>" in m
        assert "X-Digue-Queue-ID: " in m
        assert "X-Spam-Status: No, score=0.0 required=7.5 tests=none" in m
        assert "spoofed" not in m, "incoming X-Spam-Status must be removed"
        assert "Subject: hello" in m
        assert "queue=" in d.log() and "outcome=queued" in d.log()


def test_maildir_is_the_embedded_default():
    with Digued(PIPELINE + '[domains."example.test"]\n') as d:
        send(d.port, message(subject="to maildir"))
        new = os.path.join(d.tmp, "mail", "example.test", "user", "new")
        assert wait_until(lambda: os.path.isdir(new) and len(os.listdir(new)) == 1), d.log()
        with open(os.path.join(new, os.listdir(new)[0])) as f:
            body = f.read()
        assert "Subject: to maildir" in body and "X-Digue-Queue-ID" in body


def test_never_an_open_relay():
    with Sink() as sink, Digued(PIPELINE + domain_cfg(sink.port)) as d:
        c = Raw(d.port)
        assert c.reply()[0] == 220
        c.send("EHLO x.example.org\r\n")
        c.reply()
        c.send("MAIL FROM:<a@example.org>\r\n")
        assert c.reply()[0] == 250
        for rcpt in ["<u@other.example>", "<u%other.example@example.test>",
                     "<\"u@other.example\"@example.test>", "<u!other@example.test>",
                     "<@example.test:u@other.example>", "<u@[127.0.0.1]>",
                     "<u@example.test.>", "<u@EXAMPLE.test.other.example>"]:
            c.send("RCPT TO:%s\r\n" % rcpt)
            code, text = c.reply()
            assert code in (550, 501), (rcpt, code, text)
        c.send("RCPT TO:<@relay.example:ok@Example.Test>\r\n")
        assert c.reply()[0] == 250
        c.close()


def test_pipelining_in_one_packet_and_dot_stuffing():
    with Sink() as sink, Digued(PIPELINE + domain_cfg(sink.port)) as d:
        c = Raw(d.port)
        c.reply()
        body = "Subject: p\r\n\r\n.leading dot\r\nline\r\n"
        stuffed = body.replace("\r\n.", "\r\n..")
        c.send("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.test>\r\n"
               "RCPT TO:<nobody@elsewhere.example>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(5)]
        assert codes == [250, 250, 250, 550, 354], codes
        c.send(stuffed + ".\r\nQUIT\r\n")
        code, text = c.reply()
        assert code == 250 and "queued as" in text, text
        assert c.reply()[0] == 221
        assert wait_until(lambda: len(sink.messages()) == 1), d.log()
        assert b"\n.leading dot\nline\n" in sink.messages()[0], sink.messages()[0]


def test_smtp_smuggling_bare_lf_dot_is_content():
    # <LF>.<CRLF> does not end DATA: what follows it is message text, never a second
    # (smuggled) transaction that a CRLF.CRLF-only downstream would not see.
    with Sink() as sink, Digued(PIPELINE + domain_cfg(sink.port)) as d:
        c = Raw(d.port)
        c.reply()
        c.send("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354], codes
        c.send("Subject: outer\r\n\r\nhello\n.\r\nMAIL FROM:<admin@example.test>\r\n"
               "RCPT TO:<u@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
               "QUIT\r\n")
        code, text = c.reply()
        assert code == 250 and "queued as" in text, text
        code, text = c.reply()
        assert code == 221, (code, text)
        assert wait_until(lambda: len(sink.messages()) == 1), d.log()
        m = sink.messages()[0]
        assert b"Subject: outer" in m and b"MAIL FROM:<admin@example.test>" in m, m
        assert b"Subject: smuggled" in m, m
        time.sleep(1)
        assert len(sink.messages()) == 1


def test_limits_and_garbage():
    extra = "max_message_size = 2000\nmax_recipients = 3\nmax_bad_commands = 6\n"
    with Sink() as sink, Digued(PIPELINE + domain_cfg(sink.port), extra_server=extra) as d:
        c = Raw(d.port)
        c.reply()
        c.send("EHLO x\r\n")
        assert "SIZE 2000" in c.reply()[1]
        c.send("MAIL FROM:<a@example.org> SIZE=5000\r\n")
        assert c.reply()[1].startswith("552 5.3.4")
        c.send("MAIL FROM:<a@example.org>\r\n")
        c.reply()
        for i in range(3):
            c.send("RCPT TO:<u%d@example.test>\r\n" % i)
            assert c.reply()[0] == 250
        c.send("RCPT TO:<u9@example.test>\r\n")
        assert c.reply()[1].startswith("452 4.5.3")
        c.send("DATA\r\n")
        assert c.reply()[0] == 354
        c.send("Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 60 + ".\r\n")
        assert c.reply()[1].startswith("552 5.3.4")
        c.send("X" * 10000 + "\r\n")
        assert c.reply()[1].startswith("500 5.5.2")
        c.send(b"NO\x00OP\r\n")
        assert c.reply()[0] == 500
        c.send("\r\r\n")
        assert c.reply()[0] == 500
        c.send("BOGUS\r\n")
        c.reply()
        c.send("BOGUS\r\n")
        code, text = c.reply()
        assert code == 421 and "4.7.0" in text, text
        assert c.closed()
        # The server is still fine.
        send(d.port, message())
        assert wait_until(lambda: len(sink.messages()) == 1)


def test_connection_caps():
    extra = "max_connections_per_ip = 2\n"
    with Sink() as sink, Digued(PIPELINE + domain_cfg(sink.port), extra_server=extra) as d:
        # The harness's readiness probe is a connection too: let the server see it close.
        time.sleep(0.5)
        a, b = Raw(d.port), Raw(d.port)
        assert a.reply()[0] == 220 and b.reply()[0] == 220
        c = Raw(d.port)
        code, text = c.reply()
        assert code == 421 and "4.7.0" in text, text
        a.close()
        time.sleep(0.3)
        e = Raw(d.port)
        assert e.reply()[0] == 220
        for s in (b, c, e):
            s.close()


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=mx.test.invalid", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def test_starttls_and_implicit_tls():
    tmp = tempfile.mkdtemp(prefix="digue-tls-")
    cert, key = make_cert(tmp)
    tls_port = free_port()
    extra = 'listen_tls = ["127.0.0.1:%d"]\n[server.tls]\ncert = "%s"\nkey = "%s"\n' % (
        tls_port, cert, key)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with Sink() as sink, Digued(PIPELINE + domain_cfg(sink.port), tmp=tmp, extra_server=extra) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("tls.example.org")
            assert s.has_extn("starttls")
            s.starttls(context=ctx)
            s.ehlo("tls.example.org")
            assert not s.has_extn("starttls")
            s.sendmail("a@example.org", ["u@example.test"], message(subject="over tls"))
        with smtplib.SMTP_SSL("127.0.0.1", tls_port, timeout=10, context=ctx) as s:
            s.ehlo("implicit.example.org")
            s.sendmail("a@example.org", ["u@example.test"], message(subject="implicit"))
        assert wait_until(lambda: len(sink.messages()) == 2), d.log()
        joined = b"".join(sink.messages()).decode()
        assert "with ESMTPS (TLSv1.3:" in joined or "with ESMTPS (TLSv1.2:" in joined, joined

        # CVE-2011-0411: commands pipelined in clear text after STARTTLS are discarded.
        raw = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(b"EHLO x\r\n")
        for _ in range(100):  # bounded: an EHLO reply has a few lines
            line = f.readline()
            assert line, "connection closed during the EHLO reply"
            if line[3:4] == b" ":
                break
        else:
            raise AssertionError("no last line in the EHLO reply")
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        assert f.readline().startswith(b"220")
        tls = ctx.wrap_socket(raw, server_hostname="mx.test.invalid")
        tls.sendall(b"NOOP\r\n")
        reply = tls.recv(4096)
        assert reply.startswith(b"250 2.0.0 OK"), reply  # not a reply to the injected MAIL
        tls.sendall(b"MAIL FROM:<a@example.org>\r\n")
        assert tls.recv(4096).startswith(b"503"), "EHLO must be required again after STARTTLS"
        tls.close()


def test_relay_ips_and_spam_tag():
    cfg = PIPELINE + domain_cfg(free_port(), 'relay_ips = ["192.0.2.0/24"]', name="closed.test")
    with Sink() as sink, Digued(cfg + domain_cfg(sink.port)) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("x")
            s.mail("a@example.org")
            code, text = s.rcpt("u@closed.test")
            assert code == 550 and b"5.7.1" in text, (code, text)
            code, _ = s.rcpt("u@example.test")
            assert code == 250
        # Null sender: the empty_sender slot (action spam) + spam_mode tag.
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("x")
            s.sendmail("", ["u@example.test"], message(subject="bounce?"))
        assert wait_until(lambda: len(sink.messages()) == 1), d.log()
        m = sink.messages()[0].decode()
        assert "Subject: SPAM: bounce?" in m, m
        assert "X-Spam-Status: Yes" in m and "tests=EMPTY_SENDER" in m
        assert "X-Digue-Filter: empty_sender" in m
        # SIGUSR1 logs each filter's counters: empty_sender ran for both transactions, hit once.
        d.signal(signal.SIGUSR1)
        assert wait_until(lambda: "stats filter=same_sender_rcpt" in d.log(), 10), d.log()
        line = re.findall(r"stats filter=empty_sender .*", d.log())[-1]
        assert "total=2 hit=1 pass=0 error=0 timeout=0" in line, line


def test_downstream_down_then_up_and_restart_resumes():
    port = free_port()
    d = Digued(PIPELINE + domain_cfg(port))
    sink = Sink(port=port)
    try:
        d.start()
        for i in range(5):
            send(d.port, message(subject="queued %d" % i))
        assert wait_until(lambda: "status=deferred" in d.log(), 10), d.log()
        sink.start()
        assert wait_until(lambda: len(sink.messages()) == 5, 20), d.log()
        sink.stop()
        # Accepted while the downstream is down, then a clean restart: resumed from the spool.
        send(d.port, message(subject="across restart"))
        assert d.stop() == 0
        sink.start()
        d.start()
        assert wait_until(lambda: len(sink.messages()) == 6, 20), d.log()
        assert "resuming 1 spooled" in d.log()
    finally:
        d.cleanup()
        sink.cleanup()


def test_kill9_after_250_loses_nothing():
    port = free_port()
    d = Digued(PIPELINE + domain_cfg(port))
    sink = Sink(port=port)
    try:
        d.start()
        ids = []
        for i in range(20):
            with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                s.ehlo("x")
                s.mail("a@example.org")
                s.rcpt("u@example.test")
                code, text = s.data(message(subject="crash %d" % i))
                assert code == 250
                ids.append(text.decode().split()[-1])
        d.kill9()
        sink.start()
        d.start()
        # smtp-sink writes its dump files while it receives: wait for complete content.
        assert wait_until(lambda: all(q.encode() in b"".join(sink.messages()) for q in ids), 30), d.log()
        got = b"".join(sink.messages()).decode()
        for qid in ids:
            assert qid in got, (qid, ids, [l for l in got.splitlines() if "Queue-ID" in l], d.log())
    finally:
        d.cleanup()
        sink.cleanup()


def test_permanent_failure_sends_dsn():
    bounce = Sink().start()
    try:
        with Sink(extra=["-f", "RCPT"]) as sink:
            cfg = PIPELINE + domain_cfg(sink.port)
            d = Digued(cfg, extra_delivery='bounce_relay = "127.0.0.1:%d"' % bounce.port)
            with d:
                send(d.port, message(subject="will bounce"), sender="sender@example.org")
                assert wait_until(lambda: len(bounce.messages()) == 1, 15), d.log()
                dsn = bounce.messages()[0].decode()
                assert "multipart/report" in dsn and "report-type=delivery-status" in dsn
                assert "Final-Recipient: rfc822; user@example.test" in dsn, dsn
                assert "Action: failed" in dsn and "Status: 5." in dsn, dsn
                assert "Subject: will bounce" in dsn
                # Never a DSN to the null sender: wait for the queue's decision on that very
                # message (its log line), then check nothing more reached the bounce relay.
                with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                    s.ehlo("client.example.org")
                    s.mail("")
                    s.rcpt("user@example.test")
                    code, text = s.data(message(subject="null"))
                    assert code == 250, (code, text)
                qid = text.decode().split()[-1]
                decided = "queue=%s 1 recipient(s) failed; no DSN (null sender)" % qid
                assert wait_until(lambda: decided in d.log(), 15), d.log()
                assert len(bounce.messages()) == 1, bounce.messages()
    finally:
        bounce.cleanup()


def test_queue_lifetime_expiry_bounces():
    bounce = Sink().start()
    try:
        dead = free_port()  # nothing listens there: every attempt is a temporary failure
        d = Digued(PIPELINE + domain_cfg(dead), extra_delivery='queue_lifetime = 3\n'
                   'bounce_relay = "127.0.0.1:%d"' % bounce.port)
        with d:
            send(d.port, message(subject="never delivered"))
            assert wait_until(lambda: len(bounces_of(bounce)) == 1, 20), d.log()
            dsn = bounces_of(bounce)[0]
            assert "Action: failed" in dsn and "Status: 4.4.7" in dsn, dsn
            assert "Diagnostic-Code: smtp; 451 4.4.7 delivery time expired" in dsn, dsn
            assert "Subject: never delivered" in dsn
            assert wait_until(lambda: not os.listdir(os.path.join(d.tmp, "spool", "queue")), 10)
    finally:
        bounce.cleanup()


def bounces_of(sink):
    return [m.decode(errors="replace") for m in sink.messages()
            if b"report-type=delivery-status" in m and b"\n--" in m]


def quarantine_cfg(sink_port):
    return PIPELINE + domain_cfg(sink_port).replace('spam_mode = "tag"', 'spam_mode = "quarantine"')


def quarantine_ctl(d):
    """`diguectl quarantine ARGS...` against the running daemon's config."""
    return lambda *a: subprocess.run([DIGUECTL, "--config", d.config_path, "quarantine", *a],
                                     capture_output=True, text=True, timeout=30)


def test_quarantine_list_show_release_delete():
    with Sink() as sink:
        with Digued(quarantine_cfg(sink.port)) as d:
            ctl = quarantine_ctl(d)
            for subject in ("hold me", "drop me"):
                with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                    s.ehlo("x")
                    s.sendmail("", ["u@example.test"], message(subject=subject))
            assert wait_until(lambda: ctl("list").stdout.count("from=<>") == 2, 10), d.log()
            listing = ctl("list", "example.test").stdout
            assert "filter=empty_sender" in listing and 'subject="hold me"' in listing, listing
            ids = {line.split()[0]: line for line in listing.splitlines() if "from=<>" in line}
            hold = [i for i, l in ids.items() if "hold me" in l][0]
            drop = [i for i, l in ids.items() if "drop me" in l][0]
            shown = ctl("show", hold)
            assert shown.returncode == 0 and "Subject: hold me" in shown.stdout
            assert "X-Spam-Status: Yes" in shown.stdout
            assert sink.messages() == []  # quarantined, not delivered
            r = ctl("release", hold)
            assert r.returncode == 0 and "released" in r.stdout, r.stderr
            assert wait_until(lambda: len(sink.messages()) == 1, 15), d.log()
            assert b"Subject: hold me" in sink.messages()[0]
            r = ctl("delete", drop)
            assert r.returncode == 0 and "deleted" in r.stdout
            assert "0 quarantined" in ctl("list").stdout
            assert ctl("show", drop).returncode == 1
            time.sleep(2.5)
            assert len(sink.messages()) == 1


def test_quarantine_subject_with_tab():
    # The Subject is untrusted: TABs in it must not shift the index fields, and `delete`
    # removes the file derived from the key, never a path the entry could be made to name.
    with Sink() as sink:
        with Digued(quarantine_cfg(sink.port)) as d:
            ctl = quarantine_ctl(d)
            decoy = os.path.join(d.tmp, "decoy")
            with open(decoy, "w") as f:
                f.write("not quarantine\n")
            subject = "evil\t0\tx\t%s" % decoy
            with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                s.ehlo("x")
                s.sendmail("", ["u@example.test"], message(subject=subject))
            assert wait_until(lambda: "from=<>" in ctl("list").stdout, 10), d.log()
            listing = ctl("list").stdout
            assert "filter=empty_sender" in listing, listing
            assert 'subject="evil 0 x %s"' % decoy in listing, listing
            qid = [line.split()[0] for line in listing.splitlines() if "from=<>" in line][0]
            shown = ctl("show", qid)
            assert shown.returncode == 0 and "Subject: evil\t0" in shown.stdout, shown.stderr
            qdir = os.path.join(d.tmp, "spool", "quarantine")
            assert len(os.listdir(qdir)) == 1
            r = ctl("delete", qid)
            assert r.returncode == 0 and "deleted" in r.stdout, r.stderr
            assert os.path.exists(decoy), "delete removed a path named by the Subject"
            assert os.listdir(qdir) == [], os.listdir(qdir)
            assert "0 quarantined" in ctl("list").stdout


def test_disk_full_answers_452():
    tmp = tempfile.mkdtemp(prefix="digue-full-")
    spool = os.path.join(tmp, "spool")
    os.makedirs(spool)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", spool],
                       capture_output=True)
    assert r.returncode == 0, "cannot mount a tmpfs for the disk-full test: %r" % r.stderr
    port = free_port()
    try:
        d = Digued(PIPELINE + domain_cfg(port), tmp=tmp)
        with d:
            big = message(body=("y" * 76 + "\r\n") * 1500)  # ~117 KB
            codes = []
            for i in range(4):
                with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                    s.ehlo("x")
                    s.mail("a@example.org")
                    s.rcpt("u@example.test")
                    codes.append(s.data(big)[0])
            assert 452 in codes, codes
            assert codes[0] == 250, codes
            assert "spool: write failed" in d.log()
    finally:
        subprocess.run(["umount", "-l", spool])


def test_reload_on_sighup_and_graceful_stop():
    with Sink() as sink:
        d = Digued(PIPELINE + domain_cfg(sink.port))
        with d:
            c = Raw(d.port)  # a session open across the reload
            c.reply()
            with open(d.config_path, "a") as f:
                f.write(domain_cfg(sink.port, name="new.test"))
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: "config reloaded" in d.log(), 5), d.log()
            send(d.port, message(), rcpts=["u@new.test"])
            c.send("EHLO x\r\n")
            assert c.reply()[0] == 250
            # A bad config is refused and the running one kept.
            with open(d.config_path, "a") as f:
                f.write("\n[bogus]\nkey = 1\n")
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: "reload refused" in d.log(), 5), d.log()
            send(d.port, message())
            assert wait_until(lambda: len(sink.messages()) == 2), d.log()
            c.close()
            assert d.stop() == 0


def test_shipped_configs_are_valid():
    src = os.path.join(os.path.dirname(__file__), "..", "..")
    r = subprocess.run([DIGUED, "--config", "conf/digue.toml", "--check-config"], cwd=src,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(src, "conf", "digue-production.toml")) as f:
        prod = f.read().replace("/etc/digue/rules/", "rules/")
    with tempfile.NamedTemporaryFile("w", suffix=".toml", dir=src, delete=False) as f:
        f.write(prod)
    try:
        r = subprocess.run([DIGUED, "--config", f.name, "--print-pipeline"], cwd=src,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert len(r.stdout.splitlines()) == 22, r.stdout
    finally:
        os.unlink(f.name)


def test_check_config_and_print_pipeline():
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, "good.toml")
        with open(good, "w") as f:
            f.write(PIPELINE + domain_cfg(25))
        r = subprocess.run([DIGUED, "--config", good, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([DIGUED, "--config", good, "--print-pipeline"], capture_output=True, text=True)
        lines = r.stdout.splitlines()
        assert lines[0].split()[1] == "relay_ips" and lines[2].split()[1] == "same_sender_rcpt", r.stdout
        bad = os.path.join(tmp, "bad.toml")
        with open(bad, "w") as f:
            f.write(PIPELINE + domain_cfg(25) + 'spam_mod = "tag"\n')
        r = subprocess.run([DIGUED, "--config", bad, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 1
        assert "spam_mod" in r.stderr and ":14:" in r.stderr, r.stderr
        with open(bad, "w") as f:
            f.write('[pipeline]\norder = ["relay_ips", "no_such_filter"]\n')
        r = subprocess.run([DIGUED, "--config", bad, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 1 and "no_such_filter" in r.stderr and "pipeline.order" in r.stderr


if __name__ == "__main__":
    run_tests(dict(globals()))
