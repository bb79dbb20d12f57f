"""Session resource limits end to end (the real digued, a real smtp-sink downstream,
loopback): commands that advance nothing are capped (max_junk_commands), a session ends at
the first command after max_session_time but never inside DATA, and DATA held in memory by
all sessions is bounded (max_data_memory: 452, then the session goes on)."""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Digued, Raw, Sink, free_port, message, run_tests, wait_until  # noqa: E402


def domain_cfg(sink_port):
    return '[domains."example.test"]\ndownstream = ["127.0.0.1:%d"]\n' % sink_port


def test_junk_commands_are_capped():
    with Sink() as sink:
        with Digued(domain_cfg(sink.port), extra_server="max_junk_commands = 5\n") as d:
            c = Raw(d.port)
            assert c.reply()[0] == 220
            c.send("EHLO client.example.org\r\n")  # 1
            assert c.reply()[0] == 250
            for _ in range(4):  # 2..5
                c.send("NOOP\r\n")
                assert c.reply()[0] == 250
            c.send("NOOP\r\n")
            code, text = c.reply()
            assert code == 421 and "4.7.0" in text, text
            assert c.closed()
            c.close()
            assert wait_until(lambda: "closing: mx.test.invalid too many commands" in d.log()), \
                d.log()


def test_session_time_limit_waits_for_the_end_of_data():
    with Sink() as sink:
        with Digued(domain_cfg(sink.port), extra_server="max_session_time = 1\n") as d:
            c = Raw(d.port)
            assert c.reply()[0] == 220
            c.send("EHLO client.example.org\r\n")
            assert c.reply()[0] == 250
            c.start_data()
            time.sleep(1.5)  # the limit passes while the message is being sent
            c.send(message("late") + "\r\n.\r\n")
            code, text = c.reply()
            assert code == 250, text
            c.send("NOOP\r\n")
            code, text = c.reply()
            assert code == 421 and "4.4.2" in text, text
            assert c.closed()
            c.close()
            assert wait_until(lambda: len(sink.messages()) == 1, 15), d.log()


def greeting_code(port, host):
    c = Raw(port, host=host)
    try:
        return c.reply()[0]
    finally:
        c.close()


def test_ipv6_clients_are_capped_and_released():
    # The per-client cap keys an IPv6 client by its /64 (the unit tests show the grouping;
    # loopback has one IPv6 address): capped, and the slot comes back when it closes.
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        print("SKIP no IPv6")
        return
    v6 = free_port()
    with Sink() as sink:
        with Digued(domain_cfg(sink.port), extra_server="max_connections_per_ip = 1\n",
                    extra_listen=("[::1]:%d" % v6,)) as d:
            a = Raw(v6, host="::1")
            assert a.reply()[0] == 220
            b = Raw(v6, host="::1")
            code, text = b.reply()
            b.close()
            assert code == 421 and "4.7.0" in text, text
            assert greeting_code(d.port, "127.0.0.1") == 220  # IPv4 is another client
            a.send("QUIT\r\n")
            assert a.reply()[0] == 221
            a.close()
            assert wait_until(lambda: greeting_code(v6, "::1") == 220, 15), d.log()


def last_stat(log, key):
    """The value of key= in the last SIGUSR1 stats line, or -1."""
    value = -1
    for line in log.splitlines():
        if " stats " in line:
            for field in line.split():
                if field.startswith(key + "="):
                    value = int(field[len(key) + 1:])
    return value


def test_data_memory_budget_answers_452_then_the_session_goes_on():
    # 1 MB for all sessions together. Session a holds 700 kB of a message it has not ended;
    # session b's 400 kB message does not fit: it is read to its end, discarded, 452. Once a's
    # message is spooled, b's retry in the same session is taken.
    line = "x" * 998 + "\r\n"
    with Sink() as sink:
        with Digued(domain_cfg(sink.port),
                    extra_server="max_data_memory = 1\nmax_message_size = 750000\n") as d:
            a, b = Raw(d.port), Raw(d.port)
            for c in (a, b):
                assert c.reply()[0] == 220
                c.send("EHLO client.example.org\r\n")
                assert c.reply()[0] == 250
            a.start_data()
            a.send(message("big one", body=line * 700))

            def held():
                d.signal(signal.SIGUSR1)
                return last_stat(d.log(), "data_memory") >= 700 * 1000

            assert wait_until(held, 15, step=0.2), d.log()
            b.start_data()
            b.send(message("no room", body=line * 400) + "\r\n.\r\n")
            code, text = b.reply()
            assert code == 452 and "4.3.1" in text, text
            a.send("\r\n.\r\n")
            code, text = a.reply()
            assert code == 250, text
            b.start_data()
            b.send(message("room now", body=line * 400) + "\r\n.\r\n")
            code, text = b.reply()
            assert code == 250, text
            for c in (a, b):
                c.send("QUIT\r\n")
                assert c.reply()[0] == 221
                c.close()

            def counted():
                d.signal(signal.SIGUSR1)
                log = d.log()
                return (last_stat(log, "data_memory_refused") == 1
                        and last_stat(log, "data_memory") == 0)

            assert wait_until(counted, 15, step=0.2), d.log()
            assert wait_until(lambda: len(sink.messages()) == 2, 15), d.log()
            subjects = b"".join(sink.messages())
            assert b"big one" in subjects and b"room now" in subjects
            assert b"no room" not in subjects


if __name__ == "__main__":
    run_tests(dict(globals()))
