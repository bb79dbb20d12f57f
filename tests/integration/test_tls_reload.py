"""SIGHUP reloads the TLS certificate (the real digued on loopback, real openssl-made
certificates): new STARTTLS sessions see the renewed files, a certificate that cannot be
loaded refuses the reload and keeps the running one, and a reload can turn STARTTLS on."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import DIGUED, Digued, run_tests, wait_until  # noqa: E402

DOMAIN = '[domains."example.test"]\ndownstream = ["maildir"]\n'


def make_cert(tmp, name):
    cert, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=%s" % name, "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return cert, key, der


def install(cert, key, tmp):
    """Copies a certificate and its key over the paths the config names."""
    shutil.copyfile(cert, os.path.join(tmp, "live.crt"))
    shutil.copyfile(key, os.path.join(tmp, "live.key"))


def tls_extra(tmp):
    return '[server.tls]\ncert = "%s/live.crt"\nkey = "%s/live.key"\n' % (tmp, tmp)


def ehlo(f, raw):
    raw.sendall(b"EHLO client.example.org\r\n")
    lines = []
    for _ in range(100):  # bounded: an EHLO reply has a few lines
        line = f.readline()
        assert line, "connection closed during the EHLO reply"
        lines.append(line)
        if line[3:4] == b" ":
            return b"".join(lines)
    raise AssertionError("no last line in the EHLO reply")


def offers_starttls(port):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220")
        return b"STARTTLS" in ehlo(f, raw)
    finally:
        raw.close()


def starttls_cert(port):
    """The DER certificate a new STARTTLS session on port is shown."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220")
        assert b"STARTTLS" in ehlo(f, raw)
        raw.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220")
        tls = ctx.wrap_socket(raw, server_hostname="mx.test.invalid")
        der = tls.getpeercert(binary_form=True)
        tls.sendall(b"QUIT\r\n")
        tls.close()
        return der
    finally:
        raw.close()


def reloads(d, what):
    return d.log().count(what)


def test_sighup_reloads_the_certificate():
    tmp = tempfile.mkdtemp(prefix="digue-tlsreload-")
    certs = tempfile.mkdtemp(prefix="digue-certs-")
    try:
        a_cert, a_key, a_der = make_cert(certs, "a.test")
        b_cert, b_key, b_der = make_cert(certs, "b.test")
        install(a_cert, a_key, tmp)
        with Digued(tls_extra(tmp) + DOMAIN, tmp=tmp) as d:
            assert starttls_cert(d.port) == a_der
            # Renewed files at the same path.
            install(b_cert, b_key, tmp)
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: reloads(d, "config reloaded") == 1, 15), d.log()
            assert starttls_cert(d.port) == b_der
            # A key that does not match refuses the reload; the running certificate stays.
            shutil.copyfile(a_key, os.path.join(tmp, "live.key"))
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: reloads(d, "reload refused") == 1, 15), d.log()
            assert "server.tls.cert" in d.log(), d.log()
            assert starttls_cert(d.port) == b_der
            # Garbage for a certificate: refused too.
            with open(os.path.join(tmp, "live.crt"), "w") as f:
                f.write("not a certificate\n")
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: reloads(d, "reload refused") == 2, 15), d.log()
            assert starttls_cert(d.port) == b_der
            # --check-config, run before a SIGHUP, says so too.
            r = subprocess.run([DIGUED, "--config", d.config_path, "--check-config"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 1 and "server.tls.cert" in r.stderr, r
            install(b_cert, b_key, tmp)
            r = subprocess.run([DIGUED, "--config", d.config_path, "--check-config"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def test_sighup_turns_starttls_on():
    tmp = tempfile.mkdtemp(prefix="digue-tlsreload-")
    certs = tempfile.mkdtemp(prefix="digue-certs-")
    try:
        cert, key, der = make_cert(certs, "a.test")
        install(cert, key, tmp)
        with Digued(DOMAIN, tmp=tmp) as d:
            assert not offers_starttls(d.port)
            with open(d.config_path, "a") as f:
                f.write(tls_extra(tmp))
            d.signal(signal.SIGHUP)
            assert wait_until(lambda: reloads(d, "config reloaded") == 1, 15), d.log()
            assert starttls_cert(d.port) == der
    finally:
        shutil.rmtree(certs, ignore_errors=True)


if __name__ == "__main__":
    run_tests(dict(globals()))
