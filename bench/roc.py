#!/usr/bin/env python3
"""Accuracy figures from "label score" lines (label: spam|ham) on stdin.
usage: roc.py NAME THRESHOLD   (a message is spam when score >= THRESHOLD)
Prints FP and FN at THRESHOLD, FN at FP = 0 (spam not strictly above the highest ham score),
and (1 - ROC area) in % (ties count half)."""
import bisect
import sys

name, thr = sys.argv[1], float(sys.argv[2])
ham, spam = [], []
for line in sys.stdin:
    f = line.split()
    if len(f) < 2:
        continue
    (spam if f[0] == "spam" else ham).append(float(f[1]))
fp = sum(1 for s in ham if s >= thr)
fn = sum(1 for s in spam if s < thr)
mx = max(ham) if ham else float("-inf")
fn0 = sum(1 for s in spam if s <= mx)
hs = sorted(ham)
wins = 0.0
for s in spam:
    lo, hi = bisect.bisect_left(hs, s), bisect.bisect_right(hs, s)
    wins += lo + 0.5 * (hi - lo)
auc = wins / (len(hs) * len(spam)) if hs and spam else 1.0
print(f"{name:<22} FP {fp:3d}/{len(ham)} ({100*fp/max(1,len(ham)):.2f}%)  "
      f"FN {fn:3d}/{len(spam)} ({100*fn/max(1,len(spam)):.2f}%) at {thr:g}  "
      f"FN@FP=0 {fn0:3d} ({100*fn0/max(1,len(spam)):.2f}%)  1-ROCA {100*(1-auc):.4f}%")
