"""`diguectl bayes` end to end on the real LMDB store: learning from a directory, a Maildir
and an mbox, idempotent relearning, classify (plain and JSON lines), dump/restore, unlearn.
Uses a slice of the SpamAssassin corpus train split for learning and its test split for
classification; nothing leaves the machine. Then the edge cases, on small files written into
the temp dir and stores of their own: mbox splitting, a line for every file classified, option
errors, dump write errors, restore from a directory, bounded memory on a large mbox, directory
trees, empty and non-message files, unreadable paths (as nobody when run as root, so that
unreadable really is). Exits 1 on the first failed check.
"""

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DIGUECTL, SHARED  # noqa: E402

CORPUS = os.path.join(SHARED, "corpus")


def bayes(cfg, *args):
    """The finished `diguectl bayes` process, whatever its exit code."""
    return subprocess.run([DIGUECTL, "--config", cfg, "bayes", *args], capture_output=True,
                          text=True, timeout=300)


def run(cfg, *args):
    p = bayes(cfg, *args)
    if p.returncode != 0:
        sys.exit(f"FAIL: bayes {' '.join(args[:2])} -> {p.returncode}: {p.stderr}")
    return p.stdout


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def counts(out):
    """"learned A, already known B, moved C" (the first line) -> (A, B, C)."""
    nums = [int(w.rstrip(",")) for w in out.split("\n")[0].split() if w.rstrip(",").isdigit()]
    return tuple(nums)


def files(split, label, n):
    d = os.path.join(CORPUS, split, label)
    return [os.path.join(d, f) for f in sorted(os.listdir(d))[:n]]


ENVELOPE = b"From alice@example.org Thu Aug 22 12:36:23 2002\n"
MESSAGE = b"From: alice@example.org\nSubject: hi\n\nHello\n\nFrom what I heard, it works.\n"


def write(d, name, data):
    path = os.path.join(d, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def classify_json(cfg, *paths):
    return [json.loads(l) for l in bayes(cfg, "classify", "--json", *paths).stdout.splitlines()]


def peak_rss_mb(cfg, *args):
    """Runs `diguectl bayes` in a child of its own; its exit code, stdout lines and peak RSS."""
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
            "print(p.returncode, len(p.stdout.splitlines()),\n"
            "      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, DIGUECTL, "--config", cfg, "bayes", *args],
                         capture_output=True, text=True, timeout=300).stdout.split()
    return tuple(int(w) for w in out)


def unprivileged():
    """A command prefix that drops root's right to read anything: [] when not root, None when
    root cannot drop it."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    nobody = pwd.getpwnam("nobody")
    return [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
            "--clear-groups"] if setpriv else None


def loading_errors(tmp):
    """Trees, empty and non-message files, unreadable directories and files."""
    d = os.path.join(tmp, "load")
    cfg = write(d, "digue.toml", f'[store]\ndir = "{d}/store"\n'.encode())
    msg = b"From: a@example.org\nSubject: %s\n\nHello %s\n"
    # A tree: year subdirectories, a Maildir with a Maildir++ folder (not read: learning a
    # Maildir as ham must not learn its Junk folder; a warning names it); dot-files, tmp/ and
    # the Maildir's own files are not messages.
    for path in ("tree/2023/01/a.eml", "tree/2024/b.eml", "tree/Maildir/cur/c",
                 "tree/Maildir/new/d", "tree/Maildir/.Sent/cur/e", "tree/Maildir/tmp/no",
                 "tree/.git/no", "tree/.hidden", "tree/2024/.no"):
        name = os.path.basename(path).encode()
        write(d, path, msg % (name, name))
    write(d, "tree/Maildir/dovecot-uidlist", b"3 V1 N2\n")
    tree = os.path.join(d, "tree")
    got = [os.path.relpath(l["file"], tree) for l in classify_json(cfg, tree)]
    check(got == ["2023/01/a.eml", "2024/b.eml", "Maildir/cur/c", "Maildir/new/d"],
          "a directory tree is walked in name order: " + str(got))
    p = bayes(cfg, "classify", tree)
    check(p.returncode == 0 and "Maildir/.Sent: Maildir++ folder not read" in p.stderr,
          "a Maildir++ folder is named, not read: " + p.stderr.strip())
    got = [os.path.relpath(l["file"], tree) for l in
           classify_json(cfg, os.path.join(tree, "Maildir", ".Sent"))]
    check(got == ["Maildir/.Sent/cur/e"], "a Maildir++ folder given by path is read")
    # Only a cur/ (or new/) beside other files is not a Maildir: everything is read.
    for path in ("arch/new/1", "arch/2023/2", "arch/loose.eml"):
        write(d, path, msg % (b"x", b"x"))
    got = [os.path.relpath(l["file"], d) for l in classify_json(cfg, os.path.join(d, "arch"))]
    check(got == ["arch/2023/2", "arch/loose.eml", "arch/new/1"],
          "a directory with only new/ is walked whole: " + str(got))
    # Empty and non-message files are skipped with a warning naming them; so is a directory
    # without messages. None is an error.
    empty, binary = write(d, "empty.eml", b""), write(d, "binary.eml", b"\x7fELF\x02\x01\0\0" * 64)
    text = write(d, "notes.txt", b"just some notes\nno header at all\n\nSubject: late\n")
    nothing = os.path.join(d, "nothing")
    os.makedirs(nothing)
    good = write(d, "good.eml", msg % (b"good", b"good"))
    p = bayes(cfg, "learn", "--ham", empty, binary, text, nothing, good)
    check(p.returncode == 0 and counts(p.stdout) == (1, 0, 0),
          "only the message is learnt: " + p.stdout.split("\n")[0])
    for path, why in ((empty, "empty file"), (binary, "not a mail message"),
                      (text, "not a mail message"), (nothing, "no message files")):
        check(f"{path}: {why}" in p.stderr, f"warning: {os.path.basename(path)}: {why}")

    prefix = unprivileged()
    if prefix is None:
        print("skipped: unreadable paths (root, and no setpriv to drop its rights)")
        return
    md, locked = os.path.join(d, "md"), os.path.join(d, "locked")
    write(d, "md/cur/1", msg % (b"1", b"1"))
    write(d, "md/new/2", msg % (b"2", b"2"))
    inside = write(d, "locked/f.eml", msg % (b"f", b"f"))
    if prefix:  # nobody must reach the files and own the store
        nobody = pwd.getpwnam("nobody")
        for root, dirs, names in os.walk(d):
            for n in [root] + [os.path.join(root, x) for x in dirs + names]:
                os.chown(n, nobody.pw_uid, nobody.pw_gid)
        os.chmod(tmp, 0o755)
    os.chmod(os.path.join(md, "cur"), 0)
    os.chmod(locked, 0)
    try:
        p = subprocess.run(prefix + [DIGUECTL, "--config", cfg, "bayes", "learn", "--ham", md,
                                     locked, inside], capture_output=True, text=True, timeout=60)
    finally:
        os.chmod(os.path.join(md, "cur"), 0o755)
        os.chmod(locked, 0o755)
    check(p.returncode == 1 and counts(p.stdout) == (1, 0, 0),
          f"unreadable paths fail the command, the rest is learnt (exit {p.returncode}): "
          + p.stdout.split("\n")[0])
    for path in (os.path.join(md, "cur"), locked, inside):
        check(f"cannot read {path}: Permission denied" in p.stderr,
              f"cannot read {os.path.relpath(path, d)}: Permission denied")


def edge_cases(tmp):
    d = os.path.join(tmp, "edge")
    cfg = write(d, "digue.toml", f'[store]\ndir = "{d}/store"\n'.encode())

    # mbox: split only on envelope lines, never on a body paragraph starting with "From ".
    one = write(d, "one.eml", ENVELOPE + MESSAGE)
    check([l["file"] for l in classify_json(cfg, one)] == [one],
          "a body line 'From what I heard' does not start a message")
    two = write(d, "two.mbox", ENVELOPE + MESSAGE + b"\n" + ENVELOPE + MESSAGE)
    check([l["file"] for l in classify_json(cfg, two)] == [two + "#1", two + "#2"],
          "an mbox of two messages gives two")

    # classify answers every argument, in order: "error" (JSON: the reason) for a file it
    # cannot read or that is not a message, and exits 1.
    missing, empty = os.path.join(d, "missing.eml"), write(d, "empty.eml", b"")
    p = bayes(cfg, "classify", one, missing, empty, one)
    check(p.returncode == 1 and p.stdout.split() == ["0.000", "error", "error", "0.000"],
          "classify prints 'error' for a missing or empty file: " + " ".join(p.stdout.split()))
    check(f"cannot read {missing}: No such file or directory" in p.stderr
          and f"cannot classify {empty}: empty file" in p.stderr,
          "classify says why on stderr, naming the file")
    p = bayes(cfg, "classify", "--json", missing, one)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    check(p.returncode == 1 and lines[0] == {"file": missing, "error": "No such file or directory"}
          and lines[1]["file"] == one, "classify --json gives the error for its file")

    # A large mbox is read as it is split and handled a batch at a time: memory stays well
    # under the file's size (it was twice the size when the whole file was read first).
    big = os.path.join(d, "big.mbox")
    body = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\n" * 13000
    with open(big, "wb") as f:
        for i in range(150):
            f.write(ENVELOPE + b"From: a@example.org\nSubject: big %d\n\n" % i + body + b"\n")
    size_mb = os.path.getsize(big) >> 20
    for cmd in (("classify", big), ("learn", "--spam", big)):
        rc, lines, rss = peak_rss_mb(cfg, *cmd)
        check(rc == 0 and rss < size_mb // 2,
              f"{cmd[0]} a {size_mb} MB mbox in {rss} MB of memory (exit {rc}, {lines} lines)")
    os.remove(big)

    # Option errors name the option; a usage error exits 2 before reading anything.
    p = bayes(cfg, "classify", "--threshold", "abc", one)
    check(p.returncode == 1 and "--threshold: not a number: abc" in p.stderr,
          "classify refuses a bad --threshold by name: " + p.stderr.strip())
    for args, why in ((("classify", one, "--threshold"), "--threshold needs a value"),
                      (("learn", "--spam", "--ham", one), "give one of --spam or --ham"),
                      (("learn", "--spma", one), "unknown option: --spma"),
                      (("classify", "--jsn", one), "unknown option: --jsn")):
        p = bayes(cfg, *args)
        check(p.returncode == 2 and why in p.stderr and "usage:" in p.stderr and not p.stdout,
              f"{args[0]}: usage error: {why}")

    # A dump that cannot be written fails (a full disk), to a file or to standard output.
    p = bayes(cfg, "dump", "/dev/full")
    check(p.returncode == 1 and "cannot write /dev/full: No space left on device" in p.stderr,
          "dump to a full file fails: " + p.stderr.strip())
    with open("/dev/full", "w") as full:
        p = subprocess.run([DIGUECTL, "--config", cfg, "bayes", "dump"], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    check(p.returncode == 1 and "standard output: No space left on device" in p.stderr,
          "dump to a full standard output fails: " + p.stderr.strip())
    some = sorted(glob.glob(os.path.join(CORPUS, "test", "ham", "*")))[:3]
    with open("/dev/full", "w") as full:
        p = subprocess.run([DIGUECTL, "--config", cfg, "bayes", "classify", *some], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    check(p.returncode == 1 and "cannot write the scores" in p.stderr,
          "classify to a full standard output fails: " + p.stderr.strip())
    p = bayes(cfg, "restore", d)
    check(p.returncode == 1 and "is a directory" in p.stderr,
          "restore from a directory says so: " + p.stderr.strip())


def main():
    tmp = tempfile.mkdtemp(prefix="digue-bayes-it-")
    try:
        cfg = os.path.join(tmp, "digue.toml")
        with open(cfg, "w") as f:
            f.write(f'[store]\ndir = "{tmp}/store"\n')
        spam, ham = files("train", "spam", 300), files("train", "ham", 300)
        # Spam: half as plain files, half as one mbox (the corpus files start with "From ").
        mbox = os.path.join(tmp, "spam.mbox")
        with open(mbox, "wb") as out:
            for p in spam[150:]:
                data = open(p, "rb").read()
                if not data.startswith(b"From "):  # some corpus files lack the envelope line
                    out.write(b"From spammer@example.invalid Thu Aug 22 12:00:00 2002\n")
                out.write(data if data.endswith(b"\n") else data + b"\n")
                out.write(b"\n")
        out1 = run(cfg, "learn", "--spam", *spam[:150])
        # A few corpus messages are near-duplicates (same tokens): they count once.
        l1 = counts(out1)
        check(l1[0] + l1[1] == 150 and l1[0] >= 140, "learn spam files: " + out1.strip())
        out2 = run(cfg, "learn", "--spam", mbox)
        l2 = counts(out2)
        check(l2[0] + l2[1] == 150 and l2[0] >= 140, "learn an mbox of 150 spam: " + out2.strip())
        # Ham: as a Maildir.
        md = os.path.join(tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        for i, p in enumerate(ham):
            shutil.copy(p, os.path.join(md, "cur" if i % 2 else "new", f"{i}.eml"))
        out3 = run(cfg, "learn", "--ham", md)
        l3 = counts(out3)
        check(l3[0] + l3[1] == 300 and l3[0] >= 290, "learn a Maildir of ham: " + out3.strip())
        # Learning retrains the token weights on every learnt message.
        learnt = l1[0] + l2[0] + l3[0]
        check(f"weights: trained on {learnt} messages" in out3, "weights retrained after learning")
        st = run(cfg, "stats")
        check(f"weights trained on: {learnt} messages" in st and f"kept token lists: {learnt}" in st,
              "stats show the weights")
        # ... and the gram model on every learnt message's byte 4-grams.
        check(f"gram model: trained on {learnt} messages" in out3, "gram model trained: " + out3)
        check(f"kept gram lists: {learnt}\n" in st and f"gram model trained on: {learnt} messages" in st,
              "stats show the gram model: " + st)
        again = run(cfg, "learn", "--ham", md)
        check(counts(again) == (0, 300, 0), "relearning is idempotent: " + again.strip())

        tests = files("test", "spam", 40) + files("test", "ham", 60)
        plain = run(cfg, "classify", *tests).split()
        check(len(plain) == len(tests), "classify prints one line per file")
        scores = [float(s) for s in plain]
        check(all(0.0 <= s <= 15.0 for s in scores), "scores are within 0..15")
        lines = [json.loads(l) for l in run(cfg, "classify", "--json", *tests).splitlines()]
        check([l["file"] for l in lines] == tests, "JSON lines name the files in order")
        check(all(isinstance(l["spam"], bool) and l["spam"] == (l["score"] >= 7.5) for l in lines),
              "JSON spam flag follows the default threshold 7.5")
        # A model of 290+ of each class with weights is scored by the combiner: its evidence
        # maps to the score as documented (7.5 at 2.0, one point per unit, clamped to 0..15).
        check(all(l["combined"] and
                  abs(l["score"] - min(15.0, max(0.0, 7.5 + l["evidence"] - 2.0))) < 0.002
                  for l in lines),
              "JSON: combined evidence and its score scale")
        check(all(isinstance(l["gram_logit"], float) for l in lines),
              "JSON: the gram model's figure of each file")
        # `diguectl scan` with bayes in the pipeline shows its score and strongest tokens.
        scan_cfg = os.path.join(tmp, "scan.toml")
        with open(scan_cfg, "w") as f:
            f.write(f'[store]\ndir = "{tmp}/store"\n[pipeline]\norder = ["bayes"]\n')
        p = subprocess.run([DIGUECTL, "--config", scan_cfg, "scan", tests[0], "--json"],
                           capture_output=True, text=True, timeout=60)
        syms = json.loads(p.stdout.splitlines()[-1])["symbols"] if p.returncode == 0 else []
        bayes_syms = [x for x in syms if x["name"].startswith("BAYES_")]
        check(len(bayes_syms) == 1 and "score=" in bayes_syms[0].get("evidence", "") and
              "tokens: " in bayes_syms[0].get("evidence", ""),
              "diguectl scan shows the Bayes score and tokens: " + str(bayes_syms)[:200])
        # --from "" is the null reverse-path (it read the first byte of an empty string).
        p = subprocess.run([DIGUECTL, "--config", scan_cfg, "scan", tests[0], "--json",
                            "--from", ""], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0 and json.loads(p.stdout.splitlines()[-1])["decision"],
              "diguectl scan --from '' scans as from <>: " + p.stderr[-200:])
        spam_hits = sum(l["spam"] for l in lines[:40])
        ham_hits = sum(l["spam"] for l in lines[40:])
        check(spam_hits >= 30 and ham_hits <= 3,
              f"300+300 messages separate the classes ({spam_hits}/40 spam, {ham_hits}/60 ham)")

        dump = os.path.join(tmp, "model.txt")
        run(cfg, "dump", dump)
        cfg2 = os.path.join(tmp, "restored.toml")
        with open(cfg2, "w") as f:
            f.write(f'[store]\ndir = "{tmp}/store2"\n')
        run(cfg2, "restore", dump)
        check(run(cfg2, "stats") .split("\n")[:3] == run(cfg, "stats").split("\n")[:3],
              "restore gives the same totals")
        check(run(cfg2, "classify", *tests).split() == plain, "restored model scores the same")
        check(run(cfg2, "train").startswith(f"weights: trained on {learnt} messages"),
              "bayes train retrains the restored model")
        check(run(cfg2, "classify", *tests).split() == plain, "retraining is deterministic")

        # Restoring again would count every message twice: refused unless --replace; a dump
        # cut short is refused and changes nothing; standard input works (copied first).
        p = bayes(cfg2, "restore", dump)
        check(p.returncode == 1 and "not empty" in p.stderr, "restore over a model is refused")
        p = bayes(cfg2, "restore", "--merge", dump)
        check(p.returncode == 1 and "already in the model" in p.stderr,
              "restore --merge of the same dump is refused: " + p.stderr.strip())
        cut = os.path.join(tmp, "cut.txt")
        with open(dump, "rb") as f_in, open(cut, "wb") as f_out:
            data = f_in.read()
            f_out.write(data[: data.rfind(b"\nt ") + 1])
        p = bayes(cfg2, "restore", "--replace", cut)
        check(p.returncode == 1 and "cut short" in p.stderr, "a cut dump is refused: " +
              p.stderr.strip())
        check(run(cfg2, "stats").split("\n")[:3] == run(cfg, "stats").split("\n")[:3],
              "a refused restore leaves the model as it was")
        with open(dump, "rb") as f_in:
            p = subprocess.run([DIGUECTL, "--config", cfg2, "bayes", "restore", "--replace"],
                               stdin=f_in, capture_output=True, text=True, timeout=300)
        check(p.returncode == 0 and p.stdout.startswith("restored "),
              "restore --replace from standard input: " + (p.stdout + p.stderr).strip())
        check(run(cfg2, "classify", *tests).split() == plain, "the replaced model scores the same")

        # The copy of a learnt message in a mailbox (trace headers added on delivery) is the
        # same message: learning it as the other class moves it.
        delivered = os.path.join(tmp, "delivered.eml")
        with open(ham[0], "rb") as f_in, open(delivered, "wb") as f_out:
            body = f_in.read()
            if body.startswith(b"From "):
                body = body[body.index(b"\n") + 1:]
            f_out.write(b"Received: from mx.example.test by box.example.test with LMTP;"
                        b" Mon, 1 Jan 2024 10:00:00 +0000\n"
                        b"Received: from relay.example (relay.example [192.0.2.7]) by"
                        b" mx.example.test (digue) with ESMTP id 1A; Mon, 1 Jan 2024 10:00:00"
                        b" +0000\nX-Spam-Status: No, score=0.0\n" + body)
        moved = run(cfg2, "learn", "--spam", delivered)
        check(counts(moved) == (0, 0, 1), "a delivered copy learnt as spam moves: " + moved.strip())
        # So does a copy in an mbox (envelope line, >From quoting, the empty line after it).
        as_mbox = os.path.join(tmp, "copy.mbox")
        with open(delivered, "rb") as f_in, open(as_mbox, "wb") as f_out:
            f_out.write(b"From someone@example.org Thu Aug 22 12:00:00 2002\n")
            for line in f_in.read().splitlines(keepends=True):
                f_out.write(b">" + line if line.lstrip(b">").startswith(b"From ") else line)
            f_out.write(b"\n")
        moved = run(cfg2, "learn", "--ham", as_mbox)
        check(counts(moved) == (0, 0, 1), "its mbox copy learnt as ham moves it back: " +
              moved.strip())

        # Bounding the model: nothing to do at the defaults; then caps on tokens, token lists
        # and seen markers, each reflected in stats; a bad value is refused by name.
        check(run(cfg2, "expire").strip() == "expired 0 tokens, 0 token lists, 0 seen markers, 0 gram lists",
              "expire at the defaults changes nothing")
        out = run(cfg2, "expire", "--max-tokens", "500", "--max-seen", "100000")
        check(out.startswith("expired ") and "\ntokens: 500\n" in run(cfg2, "stats"),
              "expire --max-tokens 500: " + out.strip())
        p = subprocess.run([DIGUECTL, "--config", cfg2, "bayes", "expire", "--max-tokens", "lots"],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and "--max-tokens: not a positive integer: lots" in p.stderr,
              "expire refuses a bad value by name: " + p.stderr.strip())

        out4 = run(cfg, "unlearn", os.path.join(md, "new"), os.path.join(md, "cur"))
        check(counts(out4)[0] == l3[0], "unlearn: " + out4.strip())
        check("ham messages: 0" in run(cfg, "stats"), "stats after unlearning")

        edge_cases(tmp)
        loading_errors(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("all bayes CLI checks passed")


if __name__ == "__main__":
    main()
