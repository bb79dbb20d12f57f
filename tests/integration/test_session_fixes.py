"""Session robustness end to end (the real digued, a real smtp-sink downstream, loopback):
the deadline of a read never cuts short the filtering and commit of what it brought (no
queued message left without its 250), a bare CR never reaches the downstream, and a second
digued on the same spool refuses to start."""

import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import DIGUED, Digued, Raw, Sink, message, run_tests, wait_until  # noqa: E402


class SilentDns:
    """A UDP port that takes DNS queries and never answers: every lookup times out."""

    def __enter__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.s.getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.s.close()


def domain_cfg(sink_port):
    return '[domains."example.test"]\ndownstream = ["127.0.0.1:%d"]\nspam_mode = "tag"\n' % (
        sink_port)


def slow_filter_session(filter_name, zones=""):
    """One message through digued whose every read has a 1 s deadline while the filter
    filter_name waits 1.5 s for DNS (timeouts, on_error continue). The watchdog used to fire
    during it: after the spool commit the message was queued but the client saw the
    connection drop (no 250) and would send it again."""
    with Sink() as sink, SilentDns() as dns:
        body = ('[dns]\nservers = ["%s"]\ntimeout_ms = 1500\ntries = 1\n'
                '[pipeline]\norder = ["%s"]\n[filters.%s]\naction = "score"\n%s\n'
                % (dns.address, filter_name, filter_name, zones)) + domain_cfg(sink.port)
        with Digued(body, extra_server="command_timeout = 1\ndata_timeout = 1\n") as d:
            c = Raw(d.port)
            assert c.reply()[0] == 220
            c.send("EHLO client.example.org\r\n")
            assert c.reply()[0] == 250
            c.start_data()
            c.send(message("deadline", body="see http://www.example.com/x\r\n") + "\r\n.\r\n")
            code, text = c.reply()
            assert code == 250, text
            c.send("QUIT\r\n")
            assert c.reply()[0] == 221
            c.close()
            assert wait_until(lambda: len(sink.messages()) == 1, 15), d.log()
            time.sleep(1)
            assert len(sink.messages()) == 1
            assert "filter=%s status=error" % filter_name in d.log(), d.log()  # it did wait


def test_slow_rcpt_phase_filter_gets_its_reply():
    slow_filter_session("rdns")  # connect phase, run at RCPT


def test_slow_data_phase_filter_after_the_last_read_gets_its_reply():
    slow_filter_session("surbl", 'zones = ["multi.surbl.test"]')


def test_bare_cr_never_reaches_the_downstream():
    with Sink() as sink:
        with Digued(domain_cfg(sink.port)) as d:
            c = Raw(d.port)
            c.reply()
            c.send("EHLO client.example.org\r\nMAIL FROM:<sender@example.org>\r\n"
                   "RCPT TO:<user@example.test>\r\nDATA\r\n")
            for _ in range(4):
                c.reply()
            # Smuggling: a receiver taking the bare CR for a line end would end the data
            # at "x<CR>.<CRLF>" and run the forged transaction after it.
            c.send(message("smuggle", body="x\r.\r\nMAIL FROM:<evil@example.org>\r\n"
                           "RCPT TO:<victim@example.test>\r\nDATA\r\nforged\r\n")
                   + "\r\n.\r\nQUIT\r\n")
            code, text = c.reply()
            assert code == 250, text
            c.close()
            assert wait_until(lambda: len(sink.messages()) == 1, 15), d.log()
            time.sleep(1)
            got = sink.messages()
            assert len(got) == 1
            text = got[0].replace(b"\r\n", b"\n")  # however the sink stores line ends
            assert b"x .\nMAIL FROM:<evil@example.org>" in text, got[0]
            assert b"\r" not in text, got[0]


def test_postmaster_duplicates_and_utf8_recipients():
    # Two domains: "zeta.test" comes first in the file, "alpha.test" first in sort order.
    with Sink() as sink:
        body = ('[domains."zeta.test"]\ndownstream = ["127.0.0.1:%d"]\n'
                '[domains."b\u00fccher.test"]\ndownstream = ["127.0.0.1:%d"]\n'
                '[domains."alpha.test"]\ndownstream = ["127.0.0.1:%d"]\n'
                % (sink.port, sink.port, sink.port))
        with Digued(body) as d:
            c = Raw(d.port)
            c.reply()
            c.send("EHLO client.example.org\r\n")
            c.reply()
            c.send("MAIL FROM:<sender@example.org> SMTPUTF8\r\n")
            assert c.reply()[0] == 250
            for rcpt, want in (("<Postmaster>", 250), ("<postmaster@zeta.test>", 250),
                               ("<jos\u00e9@b\u00fccher.test>", 250),
                               ("<u@xn--bcher-kva.test>", 250), ("<u@other.test>", 550)):
                c.send(("RCPT TO:%s\r\n" % rcpt).encode())
                code, text = c.reply()
                assert code == want, (rcpt, text)
            c.send("DATA\r\n")
            assert c.reply()[0] == 354
            c.send(message("postmaster") + "\r\n.\r\n")
            code, text = c.reply()
            assert code == 250, text
            c.close()
            assert wait_until(lambda: "outcome=queued" in d.log(), 10), d.log()
            line = [l for l in d.log().splitlines() if "outcome=queued" in l][0]
            # The bare postmaster went to the first domain of the file, once.
            assert "to=postmaster@zeta.test,jos" in line, line
            assert line.count("postmaster@") == 1, line


def test_second_daemon_on_the_same_spool_refuses_to_start():
    with Sink() as sink:
        with Digued(domain_cfg(sink.port)) as d:
            second = subprocess.run([DIGUED, "--config", d.config_path], capture_output=True,
                                    text=True, timeout=20)
            assert second.returncode != 0
            assert os.path.join(d.tmp, "spool") in second.stderr, second.stderr
            assert "in use" in second.stderr, second.stderr
            # The first one is unharmed.
            c = Raw(d.port)
            assert c.reply()[0] == 220
            c.close()


if __name__ == "__main__":
    run_tests(dict(globals()))
