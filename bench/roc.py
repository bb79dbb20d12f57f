#!/usr/bin/env python3
"""Accuracy figures from "label score" lines (label: spam|ham) on stdin.
usage: roc.py NAME THRESHOLD   (a message is spam when score >= THRESHOLD)
Prints FP and FN at THRESHOLD, FN at FP = 0 (spam not strictly above the highest ham score),
and (1 - ROC area) in % (ties count half). figures() is also imported by bayes_history.py."""
import bisect
import sys


def figures(ham, spam, thr):
    """fp, fn at thr; fn0 / fn3: spam at or below the highest / 4th-highest ham; 1 - ROCA in %."""
    hs = sorted(ham)
    wins = 0.0
    for s in spam:
        lo, hi = bisect.bisect_left(hs, s), bisect.bisect_right(hs, s)
        wins += lo + 0.5 * (hi - lo)
    auc = wins / (len(hs) * len(spam)) if hs and spam else 1.0
    top = hs[-1] if hs else float("-inf")
    fourth = hs[-4] if len(hs) >= 4 else float("-inf")
    return {"fp": sum(1 for s in ham if s >= thr), "fn": sum(1 for s in spam if s < thr),
            "fn0": sum(1 for s in spam if s <= top), "fn3": sum(1 for s in spam if s <= fourth),
            "roca": 100 * (1 - auc)}


def main():
    name, thr = sys.argv[1], float(sys.argv[2])
    ham, spam = [], []
    for line in sys.stdin:
        f = line.split()
        if len(f) < 2:
            continue
        (spam if f[0] == "spam" else ham).append(float(f[1]))
    r = figures(ham, spam, thr)
    print(f"{name:<22} FP {r['fp']:3d}/{len(ham)} ({100*r['fp']/max(1,len(ham)):.2f}%)  "
          f"FN {r['fn']:3d}/{len(spam)} ({100*r['fn']/max(1,len(spam)):.2f}%) at {thr:g}  "
          f"FN@FP=0 {r['fn0']:3d} ({100*r['fn0']/max(1,len(spam)):.2f}%)  1-ROCA {r['roca']:.4f}%")


if __name__ == "__main__":
    main()
