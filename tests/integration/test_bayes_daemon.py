"""Bayes in the real digued (client on 127.0.0.1, delivery to a real smtp-sink): its score and
strongest tokens in the X-Digue-Bayes trace header; autolearn:
a confident spam or ham is learnt after the 250 when every recipient domain's verdict agrees,
not when one domain classes it spam and another takes it; and the copy smtp-sink received
(digue's trace headers on top) is the message learnt at SMTP time: `diguectl bayes learn`
of it as the other class moves it. Corpus messages only ever go to our own daemon and sink
on loopback."""

import glob
import json
import os
import re
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import DIGUECTL, SHARED, Digued, Sink, run_tests, wait_until  # noqa: E402

CORPUS = os.path.join(SHARED, "corpus")


def bayes(cfg, *args):
    p = subprocess.run([DIGUECTL, "--config", cfg, "bayes", *args], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, (args[:2], p.stderr)
    return p.stdout


def stats(cfg):
    out = bayes(cfg, "stats")
    return {k: int(v) for k, v in re.findall(r"^(spam|ham) messages: (\d+)$", out, re.M)}


def as_sent(path):
    """A corpus file as a client sends it: no mbox envelope line, CRLF line ends."""
    data = open(path, "rb").read()
    if data.startswith(b"From "):
        data = data[data.index(b"\n") + 1:]
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def confident(cfg, label, want):
    """Test-split messages of label whose Bayes score satisfies want(score), in name order."""
    files = sorted(glob.glob(os.path.join(CORPUS, "test", label, "*")))[:80]
    lines = bayes(cfg, "classify", "--json", *files).splitlines()
    return [l["file"] for l in map(json.loads, lines) if "score" in l and want(l["score"])]


def test_autolearn_follows_every_domain_and_the_delivered_copy_moves():
    with Sink() as sink:
        d = Digued(
            '[pipeline]\norder = ["bayes"]\n'
            '[filters.bayes]\naction = "spam"\nautolearn = true\n'
            '[domains."a.test"]\ndownstream = ["127.0.0.1:%d"]\nspam_mode = "tag"\n'
            # b.test accepts what a.test classes spam (a lenient level).
            '[domains."b.test"]\ndownstream = ["127.0.0.1:%d"]\nspam_mode = "tag"\n'
            'required = 15.0\n' % (sink.port, sink.port))
        try:
            autolearn_then_move(d, sink)
        finally:
            d.cleanup()  # stops digued, removes its directory (config, spool, store)


def autolearn_then_move(d, sink):
    cfg = d.config_path
    spam = sorted(glob.glob(os.path.join(CORPUS, "train", "spam", "*")))[:250]
    ham = sorted(glob.glob(os.path.join(CORPUS, "train", "ham", "*")))[:500]
    bayes(cfg, "learn", "--spam", *spam)
    bayes(cfg, "learn", "--ham", *ham)
    base = stats(cfg)
    spammy = confident(cfg, "spam", lambda s: 13.5 <= s < 15.0)
    hammy = confident(cfg, "ham", lambda s: s < 1.5)
    assert len(spammy) >= 2 and hammy, (spammy, hammy)
    d.start()
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.example.org")
        # Spam to both domains: a.test classes it spam, b.test takes it: not learnt.
        s.sendmail("bob@example.org", ["u@a.test", "u@b.test"], as_sent(spammy[0]))
        # Spam to a.test only, ham to a.test: both learnt.
        s.sendmail("bob@example.org", ["u@a.test"], as_sent(spammy[1]))
        s.sendmail("bob@example.org", ["u@a.test"], as_sent(hammy[0]))
    want = {"spam": base["spam"] + 1, "ham": base["ham"] + 1}
    assert wait_until(lambda: stats(cfg) == want, timeout=20), (stats(cfg), want, d.log()[-3000:])
    assert wait_until(lambda: len(sink.messages()) >= 4, timeout=20), d.log()[-3000:]
    assert d.stop() == 0, d.log()[-3000:]
    # Nothing more was learnt later (the two-domain message stays out).
    assert stats(cfg) == want, stats(cfg)
    # The copy smtp-sink got for the learnt spam (to a.test alone): digue's Received line and
    # X-Spam-* headers on top.
    subject = re.search(rb"^Subject:(.*)$", as_sent(spammy[1]), re.M | re.I).group(1).strip()
    ours = [m for m in sink.messages()
            if b"X-Digue-Envelope-To: <u@a.test>\n" in m.replace(b"\r\n", b"\n") and
            b"(digue)" in m and subject in m]
    assert ours, [m[:400] for m in sink.messages()]
    # The Bayes score and strongest tokens are in the trace header.
    head = ours[-1].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", head)  # the header is folded where it is long
    assert re.search(rb"^X-Digue-Bayes: score=1[0-9]\.\d+ required=7\.5 .*sender=\d+/\d+ grams=[-+]\d+\.\d+ .*tokens:",
                     unfolded, re.M), head
    copy = os.path.join(d.tmp, "delivered.eml")
    with open(copy, "wb") as f:
        f.write(ours[-1])
    out = bayes(cfg, "learn", "--ham", copy)
    assert out.startswith("learned 0, already known 0, moved 1"), out
    assert stats(cfg) == {"spam": base["spam"], "ham": base["ham"] + 2}, stats(cfg)


if __name__ == "__main__":
    run_tests(globals())
