"""The store- and list-based connect/rcpt filters in the real digued (client on 127.0.0.1),
delivering to a real smtp-sink: greylisting answers 451 then lets the retry through,
never_spam_ips whitelists and always_spam_ips tags, the honeypot refuses traps and bans
the IP in bulk, ip_complaints follows its file across a SIGHUP reload."""

import os
import signal
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Digued, Sink, message, run_tests, wait_until  # noqa: E402


def domain(name, sink_port, extra=""):
    return '[domains."%s"]\ndownstream = ["127.0.0.1:%d"]\nspam_mode = "tag"\n%s\n' % (
        name, sink_port, extra)


def rcpt(port, to="u@example.test"):
    """(code, text) of RCPT TO:<to> after MAIL FROM:<bob@example.org> in a new session."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example.org")
        s.mail("bob@example.org")
        return s.rcpt(to)


def test_greylist_tempfails_then_passes_the_retry():
    cfg = ('[pipeline]\norder = ["greylist"]\n'
           '[filters.greylist]\naction = "tempfail"\ndelay = 1\nauto_whitelist_days = 0\n')
    with Sink() as sink, Digued(cfg + domain("example.test", sink.port,
                                             "greylisting = true")) as d:
        code, text = rcpt(d.port, "a@example.test")
        assert code == 451 and b"4.7.1" in text, (code, text)
        time.sleep(1.2)
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("client.example.org")
            s.mail("bob@example.org")
            code, _ = s.rcpt("a@example.test")
            assert code == 250, code
            # A new triplet in the same transaction is greylisted on its own...
            code, _ = s.rcpt("new@example.test")
            assert code == 451, code
            # ...and does not hold back the recipient that passed.
            code, text = s.data(message(subject="greylisted once").encode())
            assert code == 250, (code, text, d.log()[-2000:])
        assert wait_until(lambda: b"hello" in b"".join(sink.messages())), d.log()
        m = sink.messages()[0].decode()
        # Only the recipient that passed (not the greylisted one) is in the message.
        assert "X-Digue-Envelope-To: <a@example.test>\n" in m.replace("\r\n", "\n"), m
        assert "tests=GREYLIST_PASSED" in m, m


def test_ip_lists_whitelist_and_blacklist():
    cfg = ('[pipeline]\norder = ["never_spam_ips", "always_spam_ips"]\n'
           '[filters.always_spam_ips]\naction = "spam"\n')
    with Sink() as sink, Digued(
            cfg + domain("white.test", sink.port, 'never_spam_ips = ["127.0.0.0/8"]\n'
                         'always_spam_ips = ["127.0.0.1"]') +
            domain("black.test", sink.port, 'always_spam_ips = ["127.0.0.0/8"]')) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("client.example.org")
            s.sendmail("bob@example.org", ["u@white.test"], message(subject="white"))
            s.sendmail("bob@example.org", ["u@black.test"], message(subject="black"))
        # smtp-sink writes its dump file progressively: wait for both complete messages.
        assert wait_until(lambda: sum(b"hello" in m for m in sink.messages()) == 2), d.log()
        by_subject = {}
        for raw in sink.messages():
            m = raw.decode()
            by_subject["white" if "Subject: white" in m else "black"] = m
        w, b = by_subject["white"], by_subject["black"]
        assert "X-Digue-Whitelist: Whitelisted IP 127.0.0.1 (127.0.0.0/8)" in w, w
        assert "Subject: SPAM: black" in b, b
        assert "X-Digue-Filter: always_spam_ips" in b, b


def test_honeypot_refuses_traps_then_bans_the_ip():
    cfg = ('[pipeline]\norder = ["honeypot"]\n'
           '[filters.honeypot]\naction = "reject"\n'
           'traps = ["trap1@example.test", "trap2@example.test"]\nbulk_threshold = 2\n')
    with Sink() as sink, Digued(cfg + domain("example.test", sink.port)) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("client.example.org")
            s.mail("bob@example.org")
            code, _ = s.rcpt("u@example.test")
            assert code == 250, code
            code, text = s.rcpt("Trap1@example.test")
            assert code == 550 and b"spam trap" in text, (code, text)
            s.rset()
            s.mail("bob@example.org")
            code, _ = s.rcpt("trap2@example.test")
            assert code == 550, code
        code, text = rcpt(d.port)
        assert code == 550 and b"spam traps" in text, (code, text)
        assert "filter=honeypot" in d.log(), d.log()


def test_ip_complaints_follows_its_file_on_sighup():
    with Sink() as sink:
        d = Digued("")
        try:
            listfile = os.path.join(d.tmp, "complaints.txt")
            with open(listfile, "w") as f:
                f.write("# nothing listed yet\n192.0.2.0/24\n")
            cfg = ('[pipeline]\norder = ["ip_complaints"]\n'
                   '[filters.ip_complaints]\naction = "reject"\nfile = "%s"\n' % listfile)
            with open(d.config_path, "a") as f:
                f.write(cfg + domain("example.test", sink.port))
            d.start()

            def rcpt_code():
                return rcpt(d.port)[0]

            assert rcpt_code() == 250
            with open(listfile, "a") as f:
                f.write("127.0.0.1   # complaint ticket 7\n")
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: rcpt_code() == 550, timeout=10), d.log()
            # A broken list is refused at reload; the running one stays.
            with open(listfile, "a") as f:
                f.write("not-an-ip\n")
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: "complaints.txt:4" in d.log(), timeout=10), d.log()
            assert rcpt_code() == 550
        finally:
            d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
