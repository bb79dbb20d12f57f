#!/usr/bin/env bash
# Bayes accuracy on the SpamAssassin corpus: digue, bogofilter and (optional) SpamAssassin's
# Bayes, each trained on corpus/train only and tested once on corpus/test. Everything runs
# offline in temp dirs; no message leaves the machine (SpamAssassin runs with -L, local only).
#   bench/bayes_accuracy.sh [BUILD_DIR] [--sa]
# BUILD_DIR must hold diguectl and bayes_bench (cmake -DDIGUE_BENCH=ON). CORPUS defaults to
# the shared data next to the checkout (<repo>/../shared/data/corpus).
# pipefail: a failing diguectl or bogofilter in front of a sed must stop the run, not leave
# partial scores for roc.py.
set -euo pipefail
BUILD=${1:-build}
SA=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS=${CORPUS:-$HERE/../../shared/data/corpus}
TMP=$(mktemp -d /tmp/digue-bayes-acc-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "== digue (bayes_bench: learn train, classify test)"
"$BUILD/bayes_bench" --train "$CORPUS/train" --test "$CORPUS/test" --dir "$TMP/digue" \
  --scores "$TMP/digue.scores"
"$HERE/roc.py" digue 7.5 < "$TMP/digue.scores"

echo "== digue via diguectl (the CLI path)"
mkdir -p "$TMP/ctl"
cat > "$TMP/ctl/digue.toml" <<TOML
[store]
dir = "$TMP/ctl/store"
TOML
start=$(date +%s.%N)
"$BUILD/diguectl" --config "$TMP/ctl/digue.toml" bayes learn --spam "$CORPUS/train/spam"
"$BUILD/diguectl" --config "$TMP/ctl/digue.toml" bayes learn --ham "$CORPUS/train/ham"
end=$(date +%s.%N)
echo "diguectl learn: $(echo "$end - $start" | bc) s"
for label in spam ham; do
  "$BUILD/diguectl" --config "$TMP/ctl/digue.toml" bayes classify "$CORPUS/test/$label" \
    | sed "s/^/$label /"
done > "$TMP/ctl.scores"
"$HERE/roc.py" diguectl 7.5 < "$TMP/ctl.scores"
"$BUILD/diguectl" --config "$TMP/ctl/digue.toml" bayes stats

echo "== bogofilter $(bogofilter --version | awk 'NR == 1 {print $3}')"
mkdir -p "$TMP/bogo"
start=$(date +%s.%N)
# -b reads file names from stdin (-B with a directory expects a Maildir).
find "$CORPUS/train/spam" -type f | bogofilter -d "$TMP/bogo" -s -b
find "$CORPUS/train/ham" -type f | bogofilter -d "$TMP/bogo" -n -b
end=$(date +%s.%N)
echo "bogofilter learn: $(echo "$end - $start" | bc) s"
start=$(date +%s.%N)
for label in spam ham; do
  # -v prints spamicity with 6 decimals (-T rounds it); spam_cutoff 0.99 is the default.
  # -e: exit 0 for any classification (else the last message's ham/unsure code would fail
  # the pipeline under pipefail); 3 still means an error.
  find "$CORPUS/test/$label" -type f | bogofilter -d "$TMP/bogo" -e -v -b \
    | sed -n "s/.*spamicity=\([0-9.]*\).*/$label \1/p"
done > "$TMP/bogo.scores"
end=$(date +%s.%N)
echo "bogofilter classify: $(echo "$end - $start" | bc) s for $(wc -l < "$TMP/bogo.scores") msgs"
"$HERE/roc.py" bogofilter 0.99 < "$TMP/bogo.scores"
"$HERE/roc.py" "bogofilter@0.5" 0.5 < "$TMP/bogo.scores"
du -sb "$TMP/bogo" | awk '{print "bogofilter model bytes:", $1}'

if [ "$SA" = "--sa" ]; then
  echo "== SpamAssassin $(spamassassin --version | awk 'NR == 1 {print $3}') Bayes only (bench/sa_bayes.pl)"
  start=$(date +%s.%N)
  find "$CORPUS/train/spam" -type f | sort | xargs perl "$HERE/sa_bayes.pl" "$TMP/sa" learn spam
  find "$CORPUS/train/ham" -type f | sort | xargs perl "$HERE/sa_bayes.pl" "$TMP/sa" learn ham
  end=$(date +%s.%N)
  echo "sa-learn (API): $(echo "$end - $start" | bc) s"
  start=$(date +%s.%N)
  # SpamAssassin's own warnings go to a file; sa_bayes.pl's count of messages without a
  # Bayes score (left out of sa.scores) is shown.
  for label in spam ham; do
    find "$CORPUS/test/$label" -type f | sort | xargs perl "$HERE/sa_bayes.pl" "$TMP/sa" classify $label
  done 2> "$TMP/sa.stderr" > "$TMP/sa.scores"
  grep '^sa_bayes:' "$TMP/sa.stderr" >&2 || true
  end=$(date +%s.%N)
  echo "sa classify: $(echo "$end - $start" | bc) s"
  # BAYES_99 starts at 0.99: SpamAssassin's own "surely spam" cut.
  "$HERE/roc.py" sa-bayes 0.99 < "$TMP/sa.scores"
  "$HERE/roc.py" "sa-bayes@0.5" 0.5 < "$TMP/sa.scores"
  du -sb "$TMP/sa" | awk '{print "sa model bytes:", $1}'
fi
