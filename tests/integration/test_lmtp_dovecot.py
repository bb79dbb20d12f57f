"""digued delivering to a real Dovecot LMTP server (STARTTLS), with spam_mode = "junk":
clean mail lands in INBOX, spam in the recipient's Junk folder (RCPT TO:<user+Junk@...>,
Dovecot's lmtp_save_to_detail_mailbox), an unknown user bounces (DSN to the sender)."""

import glob
import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Digued, Sink, free_port, message, run_tests, wait_port, wait_until


class Dovecot:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="digue-dovecot-")
        os.chmod(self.dir, 0o755)  # Dovecot's auth process runs as the dovecot user
        self.port = free_port()
        for sub in ("mail", "run", "state"):
            os.makedirs(os.path.join(self.dir, sub))
        os.chmod(os.path.join(self.dir, "mail"), 0o777)
        pw = pwd.getpwnam("nobody")
        with open(os.path.join(self.dir, "users"), "w") as f:
            for u in ("alice", "bob"):
                f.write("%s:{PLAIN}x:%d:%d::%s/mail/%s::\n" % (u, pw.pw_uid, pw.pw_gid, self.dir, u))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", self.dir + "/key.pem",
                        "-out", self.dir + "/cert.pem"], check=True, capture_output=True)
        d = self.dir
        conf = """protocols = lmtp
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = digue-it-{p}
log_path = {d}/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:{d}/mail/%n
auth_username_format = %Ln
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
lda_mailbox_autocreate = yes
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_min_protocol = TLSv1.2
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {p}
  }}
}}
""".format(d=d, p=self.port)
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(conf)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", self.dir + "/dovecot.conf"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port, 10):
            self.stop()
            raise RuntimeError("dovecot did not start: " + self.log())
        return self

    def mails(self, user, folder=""):
        return glob.glob(os.path.join(self.dir, "mail", user, folder, "new", "*"))

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_lmtp_inbox_junk_and_bounce():
    with Dovecot() as dc, Sink() as bounces:
        cfg = ('[pipeline]\norder = ["empty_sender"]\n[filters.empty_sender]\naction = "spam"\n'
               '[domains."example.test"]\ndownstream = ["lmtp:127.0.0.1:%d"]\n'
               'spam_mode = "junk"\n' % dc.port)
        d = Digued(cfg, extra_delivery='bounce_relay = "127.0.0.1:%d"\n'
                   'lmtp_folder_delimiter = "+"' % bounces.port)
        with d:
            with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                s.ehlo("client.example.org")
                s.sendmail("sender@example.org", ["alice@example.test"], message(subject="clean"))
                s.sendmail("", ["bob@example.test"], message(subject="junk me"))
                s.sendmail("sender@example.org", ["carol@example.test"], message(subject="nobody"))
            assert wait_until(lambda: len(dc.mails("alice")) == 1, 15), d.log() + dc.log()
            assert wait_until(lambda: len(dc.mails("bob", ".Junk")) == 1, 15), d.log() + dc.log()
            assert dc.mails("bob") == []
            with open(dc.mails("alice")[0]) as f:
                body = f.read()
            assert "X-Spam-Status: No" in body and "Subject: clean" in body
            with open(dc.mails("bob", ".Junk")[0]) as f:
                junk = f.read()
            assert "X-Spam-Status: Yes" in junk and "X-Spam-Flag: YES" in junk
            assert "relay=lmtp:127.0.0.1:%d" % dc.port in d.log()
            # carol is unknown to Dovecot: 550 at LMTP RCPT -> DSN to the sender.
            assert wait_until(lambda: len(bounces.messages()) == 1, 15), d.log()
            assert b"carol@example.test" in bounces.messages()[0]


if __name__ == "__main__":
    run_tests(dict(globals()))
