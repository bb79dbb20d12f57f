#!/usr/bin/env python3
"""Sender history on top of digue's Bayes evidence (CV on the train split only).

usage: bayes_history.py TRAIN_DIR SCORES...
SCORES: the per-message file of `bayes_bench --train TRAIN_DIR --cv 5 --scores F` (F.0),
lines "label evidence name ...". bayes_bench puts message i (ham then spam, each sorted by
file name) in fold i % 5; this script rebuilds the same folds, counts for each scored message
how often its From address (or From domain) was learnt as spam (s) and as ham (h) in the
other four folds, and prints the figures of evidence + k * (ln(1 + s) - ln(1 + h))."""
import collections
import email
import email.utils
import math
import os
import sys

import roc  # bench/roc.py: the same figures as bayes_accuracy.sh


def sender(path):
    raw = open(path, "rb").read()
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]
    head = email.message_from_bytes(raw.split(b"\n\n", 1)[0] + b"\n\n")
    addr = email.utils.parseaddr(str(head.get("From", "")))[1].lower()
    return addr, addr.rsplit("@", 1)[1] if "@" in addr else ""


def sender_keys(base):
    """The train split's (label, file name) in bayes_bench's order, and each one's From
    (address, domain). Also used by bayes_stack.py (with History)."""
    names = [(lab, f) for lab in ("ham", "spam") for f in sorted(os.listdir(os.path.join(base, lab)))]
    return names, [sender(os.path.join(base, lab, f)) for lab, f in names]


class History:
    """How often each From address (which=0) or domain (which=1) of the train split was learnt
    as spam and as ham, per CV fold (message i is in fold i % 5)."""

    def __init__(self, names, keys, which=0):
        self.counts = collections.Counter()  # (fold, key, label) -> messages
        for i, (lab, _) in enumerate(names):
            if keys[i][which]:
                self.counts[(i % 5, keys[i][which], lab)] += 1

    def shift(self, key, fold=None):
        """ln(1 + s) - ln(1 + h) of key over the folds other than fold (None: all of them)."""
        if not key:
            return 0.0
        s = sum(self.counts[(f, key, "spam")] for f in range(5) if f != fold)
        h = sum(self.counts[(f, key, "ham")] for f in range(5) if f != fold)
        return math.log1p(s) - math.log1p(h)


def figures(scored, pivot=1.5):
    r = roc.figures([e for spam, e in scored if not spam], [e for spam, e in scored if spam], pivot)
    return (f"FP {r['fp']:2d}  FN {r['fn']:3d} at 7.5  FN@FP=0 {r['fn0']:3d}  FN@FP=3 {r['fn3']:3d}"
            f"  1-ROCA {r['roca']:.4f}%")


def main():
    base, score_files = sys.argv[1], sys.argv[2:]
    names, keys = sender_keys(base)
    index = {f: i for i, (_, f) in enumerate(names)}
    for fn in score_files:
        rows = [(l.split()[0] == "spam", float(l.split()[1]), l.split()[2]) for l in open(fn)]
        print(f"{fn} digue's evidence            {figures([(s, e) for s, e, _ in rows])}")
        for which, what in ((0, "address"), (1, "domain")):
            hist = History(names, keys, which)
            for k in (0.5, 1.0, 2.0):
                shifted = []
                for spam, e, name in rows:
                    i = index[name]
                    shifted.append((spam, e + k * hist.shift(keys[i][which], i % 5)))
                print(f"{fn} + {k:.1f} x From {what:<8} {figures(shifted)}")


if __name__ == "__main__":
    main()
