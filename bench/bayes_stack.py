#!/usr/bin/env python3
"""Stacking: does a second-level model over digue's per-message figures rank better than
E + 0.5·z?  CV on the train split only.

usage: bayes_stack.py TRAIN_DIR FEAT...
       bayes_stack.py --holdout TEST_DIR HOLDOUT_FEAT TRAIN_DIR FEAT  (bayes_bench --holdout)
FEAT: the F.0.feat file of `bayes_bench --train TRAIN_DIR --cv 5 --scores F [--lsh ...]
[--cgram ...]`: "label evidence E z Eh nh Eb nb ntokens name knn_s knn_h lsh_s lsh_h sig_s
sig_h cgram". Each message's figures come from the fold that did not learn it (message i is in
fold i % 5). The second-level model is trained on four folds' figures and scores the fifth,
so every figure printed is out of fold twice over. Meta-learners: L2 logistic regression
(Newton; "lr" free, "off" on top of E + 0.5·z kept as it is) and, with GBT=1, small
gradient-boosted trees (depth 2), all in numpy (Debian's python3-numpy: run it with
/usr/bin/python3). bench/README.md, "Eighth session", has the figures."""
import math
import os
import sys

import numpy as np

import roc
from bayes_history import History, sender_keys  # From addresses, their learnt counts

HOLDOUT = None  # --holdout TEST_DIR HOLDOUT_FEAT CV_FEAT: fit on CV_FEAT, score HOLDOUT_FEAT once
if len(sys.argv) > 1 and sys.argv[1] == "--holdout":
    HOLDOUT = (sys.argv[2], sys.argv[3])
    sys.argv = [sys.argv[0]] + sys.argv[4:]
base, feat_files = sys.argv[1], sys.argv[2:]
names, keys = sender_keys(base)
index = {f: i for i, (_, f) in enumerate(names)}
FOLDS = 5
SENDER_CAP = 3  # Params::sender_cap
HISTORY = History(names, keys)


def load(fn, test_dir=None):
    rows = []
    for line in open(fn):
        f = line.split()
        rows.append({"spam": f[0] == "spam", "ev": float(f[1]), "E": float(f[2]), "z": float(f[3]),
                     "Eh": float(f[4]) / max(1, int(f[5])), "Eb": float(f[6]) / max(1, int(f[7])),
                     "nb": math.log1p(int(f[7])), "ntok": math.log1p(int(f[8])), "name": f[9],
                     "ks": float(f[10]), "kh": float(f[11]), "ls": float(f[12]), "lh": float(f[13]),
                     "ss": float(f[14]), "sh": float(f[15]), "cg": float(f[16])})
        if len(f) > 18:  # the product's From history: its "fa:" token's learnt spam / ham
            # As the product: each count capped at Params::sender_cap (3).
            rows[-1]["fh"] = (math.log1p(min(int(f[17]), SENDER_CAP))
                              - math.log1p(min(int(f[18]), SENDER_CAP)))
            if len(f) > 20:  # the product's nearest learnt spam / ham (Params::near_window)
                rows[-1].update({"ns": float(f[19]), "nh": float(f[20])})
            rows[-1]["fs"] = math.log1p(int(f[17]))  # its two sides apart
            rows[-1]["fhm"] = math.log1p(int(f[18]))
    # The From address's learnt spam / ham: in the other folds for a train message, in the
    # whole train split for a held-out one.
    test_from = {}
    if test_dir is not None:
        tnames, tkeys = sender_keys(test_dir)
        test_from = {f: k[0] for (_, f), k in zip(tnames, tkeys)}
    for r in rows:
        if test_dir is None:
            i = index[r["name"]]
            r["hist"] = HISTORY.shift(keys[i][0], i % FOLDS)
        else:
            r["hist"] = HISTORY.shift(test_from[r["name"]])
    return rows


def logistic(X, y, lam=1.0, iters=30, offset=None):
    """L2 logistic regression by Newton steps; `offset` (per-row, fixed coefficient 1) keeps
    a given score and learns only what the columns add to it."""
    off = np.zeros(len(X)) if offset is None else offset
    Xb = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(Xb.shape[1])
    reg = lam * np.eye(Xb.shape[1])
    reg[-1, -1] = 0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(Xb @ w + off)))
        g = Xb.T @ (p - y) + reg @ w
        H = (Xb * (p * (1 - p))[:, None]).T @ Xb + reg
        w -= np.linalg.solve(H, g)
    return lambda Z, o=None: np.hstack([Z, np.ones((len(Z), 1))]) @ w + (0 if o is None else o)


def stumps(X, y, rounds=150, rate=0.1, depth=2, min_leaf=20, init=None):
    """Gradient-boosted trees for the log loss (Newton leaf values), thresholds on quantiles."""
    n, d = X.shape
    cuts = [np.unique(np.quantile(X[:, j], np.linspace(0.02, 0.98, 33))) for j in range(d)]
    F = np.zeros(n) if init is None else init.copy()
    trees = []

    def grow(idx, g, h, level):
        leaf = -g[idx].sum() / (h[idx].sum() + 1.0)
        if level == depth or len(idx) < 2 * min_leaf:
            return ("leaf", leaf)
        best = None
        G, Hs = g[idx].sum(), h[idx].sum()
        for j in range(d):
            xj = X[idx, j]
            for c in cuts[j]:
                m = xj <= c
                nl = m.sum()
                if nl < min_leaf or len(idx) - nl < min_leaf:
                    continue
                gl, hl = g[idx][m].sum(), h[idx][m].sum()
                gain = gl * gl / (hl + 1) + (G - gl) ** 2 / (Hs - hl + 1) - G * G / (Hs + 1)
                if best is None or gain > best[0]:
                    best = (gain, j, c, m)
        if best is None:
            return ("leaf", leaf)
        _, j, c, m = best
        return ("split", j, c, grow(idx[m], g, h, level + 1), grow(idx[~m], g, h, level + 1))

    def apply(t, Z):
        if t[0] == "leaf":
            return np.full(len(Z), t[1])
        _, j, c, a, b = t
        out = np.empty(len(Z))
        m = Z[:, j] <= c
        out[m] = apply(a, Z[m])
        out[~m] = apply(b, Z[~m])
        return out

    for _ in range(rounds):
        p = 1 / (1 + np.exp(-F))
        g, h = p - y, p * (1 - p)
        t = grow(np.arange(n), g, h, 0)
        trees.append(t)
        F += rate * apply(t, X)
    return lambda Z, base=None: (np.zeros(len(Z)) if base is None else base) + rate * sum(
        apply(t, Z) for t in trees)


def figures(spam, score):
    """FN at FP <= 0, 1, 2, 3 (spam at or below the 1st..4th highest ham) and 1 - ROCA."""
    ham = sorted((s for s, l in zip(score, spam) if not l), reverse=True)
    sp = [s for s, l in zip(score, spam) if l]
    r = roc.figures(ham, sp, float("inf"))
    fn = " ".join(f"{sum(1 for x in sp if x <= ham[k]):3d}" for k in range(4))
    return f"FN at FP<=0,1,2,3: {fn}  1-ROCA {r['roca']:.4f}%"


ALL = ["E", "z", "Eh", "Eb", "nb", "ntok", "ks", "kh", "ss", "sh", "hist", "cg"]
BASE = ["E", "z", "Eh", "Eb", "nb", "ntok"]
# What the product combines (Params::Combiner, in its order): base and the From address's
# history from its "fa:" token (the same figure as "hist", from the model).
PRODUCT = BASE + ["fh"]
# Params::combiner_full: the product's set, the gram model's logit (cg: the product's when the
# bench runs without --cgram) and the nearest learnt spam / ham.
FULL = PRODUCT + ["cg", "ns", "nh"]
SETS = {"E, z": ["E", "z"], "all": ALL,
        "base": BASE,
        "E, z, hist": ["E", "z", "hist"],
        "base, hist": BASE + ["hist"],
        "product (base, fa)": PRODUCT,
        "base, knn, fa": BASE + ["ks", "kh", "fh"],
        "base, lsh, fa": BASE + ["ls", "lh", "fh"],
        "base, fa spam side": BASE + ["fs"],
        "base, fa ham side": BASE + ["fhm"],
        "base, fa both sides": BASE + ["fs", "fhm"],
        "product, cg": PRODUCT + ["cg"],
        "product, near": PRODUCT + ["ns", "nh"],
        "full (product, cg, near)": FULL,
        "product, knn, cg": PRODUCT + ["ks", "kh", "cg"],
        "product, sample knn, cg": PRODUCT + ["ss", "sh", "cg"],  # --knn-sample N: ss, sh
        "base, knn": BASE + ["ks", "kh"],
        "base, sig": BASE + ["ss", "sh"],
        "base, lsh": BASE + ["ls", "lh"],
        "base, knn, hist": BASE + ["ks", "kh", "hist"],
        "base, sig, hist": BASE + ["ss", "sh", "hist"],
        "base, lsh, hist": BASE + ["ls", "lh", "hist"],
        "base, lsh, hist, cg": BASE + ["ls", "lh", "hist", "cg"],
        "base, sig, hist, cg": BASE + ["ss", "sh", "hist", "cg"],
        "Eh, Eb, nb, ntok": ["Eh", "Eb", "nb", "ntok"],
        "Eh, Eb, nb, ntok, lsh": ["Eh", "Eb", "nb", "ntok", "ls", "lh"],
        "Eh, Eb, nb, ntok, lsh, hist": ["Eh", "Eb", "nb", "ntok", "ls", "lh", "hist"],
        "lsh, hist": ["ls", "lh", "hist"],
        "Eh, lsh, hist": ["Eh", "ls", "lh", "hist"],
        }

def holdout(test_dir, held_fn, cv_fn):
    """Fits each pre-registered set on every CV figure and scores the held-out messages once.
    Thresholds come from the CV scores only: just above the highest CV ham (CV FP = 0) and
    just above the third-highest (CV FP <= 2)."""
    rows, held = load(cv_fn), load(held_fn, test_dir)
    spam = np.array([r["spam"] for r in rows], dtype=float)
    hspam = [r["spam"] for r in held]
    fold = np.array([index[r["name"]] % FOLDS for r in rows])

    def report(name, cv_out, h_out):
        hams = sorted((o for o, l in zip(cv_out, spam) if not l), reverse=True)
        at = []
        for k in (0, 2):
            t = hams[k] + 1e-9
            fp = sum(1 for o, l in zip(h_out, hspam) if not l and o >= t)
            fn = sum(1 for o, l in zip(h_out, hspam) if l and o < t)
            at.append(f"FP {fp} FN {fn:3d}")
        print(f"{name:<28} held out: at CV FP=0: {at[0]}; at CV FP<=2: {at[1]};  "
              f"{figures(hspam, h_out)}")

    ev = np.array([r["ev"] for r in rows])
    report("digue's evidence", ev, [r["ev"] for r in held])
    for name in ("all", "base, lsh, hist, cg", "base, lsh, hist"):
        cols = SETS[name]
        X = np.array([[r[c] for c in cols] for r in rows])
        H = np.array([[r[c] for c in cols] for r in held])
        cv_out = np.zeros(len(rows))  # the CV scores, as in the table, for the thresholds
        for f in range(FOLDS):
            tr, te = fold != f, fold == f
            mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-9
            cv_out[te] = logistic((X[tr] - mu) / sd, spam[tr])((X[te] - mu) / sd)
        mu, sd = X.mean(0), X.std(0) + 1e-9
        h_out = logistic((X - mu) / sd, spam)((H - mu) / sd)
        report("lr " + name, cv_out, h_out)


def coefficients(files, cols):
    """A set fitted on every CV figure of the given runs pooled, in raw units (what
    Params::Combiner takes: bias, then the set's order; E and z in the .feat's units)."""
    rows = [r for fn in files for r in load(fn)]
    spam = np.array([r["spam"] for r in rows], dtype=float)
    X = np.array([[r[c] for c in cols] for r in rows])
    mu, sd = X.mean(0), X.std(0) + 1e-9
    f = logistic((X - mu) / sd, spam)
    bias = f((-mu / sd)[None, :])[0]  # the raw point 0
    w = f((np.eye(len(cols)) - mu) / sd) - bias  # one raw unit of each column
    print("bias %.4f" % bias, " ".join(f"{c} {x:.4f}" for c, x in zip(cols, w)))


if os.environ.get("COEF"):  # COEF=1: Params::combiner; COEF=full: Params::combiner_full
    coefficients(feat_files, FULL if os.environ["COEF"] == "full" else PRODUCT)
    sys.exit(0)

if HOLDOUT:
    holdout(HOLDOUT[0], HOLDOUT[1], feat_files[0])
    sys.exit(0)

for fn in feat_files:
    rows = load(fn)
    spam = np.array([r["spam"] for r in rows], dtype=float)
    fold = np.array([index[r["name"]] % FOLDS for r in rows])
    print(f"{fn}: digue's evidence      {figures(spam, [r['ev'] for r in rows])}")
    for name, cols in SETS.items():
        X = np.array([[r[c] for c in cols] for r in rows])
        kinds = ["lr", "off"] + (["gbt"] if os.environ.get("GBT") else [])
        ev = np.array([r["E"] + 0.5 * r["z"] for r in rows]) * math.log(10)
        for kind in kinds:
            out = np.zeros(len(rows))
            for f in range(FOLDS):
                tr, te = fold != f, fold == f
                mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-9
                if kind == "lr":
                    model = logistic((X[tr] - mu) / sd, spam[tr])
                    out[te] = model((X[te] - mu) / sd)
                elif kind == "off":  # E + 0.5 z kept as it is, the rest learnt on top
                    model = logistic((X[tr] - mu) / sd, spam[tr], offset=ev[tr])
                    out[te] = model((X[te] - mu) / sd, ev[te])
                else:
                    model = stumps(X[tr], spam[tr])
                    out[te] = model(X[te])
            print(f"{fn}: {kind:3s} {name:<24} {figures(spam, out)}")
        sys.stdout.flush()
