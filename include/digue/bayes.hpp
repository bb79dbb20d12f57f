// Bayesian classifier (FEATURES item 23): learns spam/ham from the platform's mail and scores
// new mail on a 0..15 scale.
// Tokenizer: selected headers (Subject, From name and domain, To/Cc addresses and count,
// Received-from hosts and protocols, Content-Type, X-Mailer, Message-ID domain, header names
// and order), fingerprints of the sending software (Message-ID, Date and MIME boundary shapes),
// decoded body text (UTF-8 aware, case-folded, CJK, Thai, Lao, Khmer and Myanmar as
// character bigrams, long tokens and numbers bucketed), MIME structure, URL registered
// domains, attachment names and types;
// optionally HTML tag tokens, word bigrams (OSB) and every header's words (off: see
// bench/README.md). Trace headers added by filters (ours or others': X-Spam-*, X-Digue-*,
// Received-SPF, Authentication-Results, ...) are never learnt: they would teach the model to
// copy an earlier verdict.
// Model: in a Store. "bayes:t:<16 hex of the token hash>" -> 16 bytes (u32 LE spam count, ham
// count, last day learnt, float token weight), "bayes:meta" -> "<spam msgs> <ham msgs>",
// "bayes:seen:<identity>" -> 'S'|'H' + day + the token hashes learnt (identity: see
// message_identity; markers of earlier versions are keyed by the digest of the token set and
// are found too), so learning a message twice counts once, relearning it as the other class
// moves it (subtracting what was learnt), and the weights can be retrained;
// "bayes:weights" -> "<bias> <messages>"; "bayes:g:<identity>" -> the message's byte 4-grams
// (byte_grams, delta-coded), "bayes:gram-model" -> the gram model's weight table,
// "bayes:near" -> the nearest-message window (which messages) and "bayes:gram-meta" -> their summary (see
// Params::gram_*, near_*), "bayes:version" -> the model's version (a nonce and a counter,
// rewritten with every change of token records: what keeps each process's token cache
// right, src/bayes_cache.hpp). Each learn batch is one Store::update.
// Scoring: Robinson's f(w) = (s*x + n*p(w)) / (s + n) with p(w) from class-normalised counts,
// the max_clues tokens farthest from 0.5 (|f-0.5| >= min_dev), combined as the mean clue
// log-odds E = mean(log10(f / (1 - f))) (bench/README.md says why not Fisher/Robinson
// chi-square or Robinson's geometric means, which earlier rounds used). Token weights
// (train_weights, on by default once trained): a logistic model whose features are the
// tokens' log-count ratios, trained by SGD on the kept token lists; z is its logit. The gram
// model (also trained by train_weights): a logistic model over the message's byte 4-grams, g
// its logit. With weights, the evidence is the combiner's log-odds (Params::Combiner: E, z,
// the header and body clues' means, the body clue and token counts, the From address's
// learnt history, and g when the model has a gram model and the message's bytes are given);
// with `combine` off, E + weight_mix * z. Score: a calibrated linear map of the evidence,
// score = clamp(7.5 + (evidence - pivot) * per_unit, 0, 15): combined, pivot 2.0 and one
// point per unit (the seven levels 3.0 .. 12.0 are evidence -2.5 .. +6.5); E + weight_mix * z,
// pivot 1.5 and one point per unit; without weights (a model whose weights were never
// trained), pivot 0.3 decades and 4.5 points per decade. Higher = spammier; every pivot sits
// where 5-fold CV on the train split left (almost) no ham above 7.5. Below
// Params::confidence_messages of either class the evidence is scaled by n / that (cold start). No
// evidence is not spam: a message without any clue, or a model with fewer than min_learned
// messages of either class, scores 0 and Result::ready/clues say why. Thread safety:
// Classifier is immutable after construction; every method may run on any thread; the Store
// does the locking. Failure: Store errors propagate as StoreError; malformed input never throws.
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "digue/mime.hpp"
#include "digue/store.hpp"

namespace digue::bayes {

// Score levels offered to domains, most aggressive first; kDefaultLevel is the default.
inline constexpr std::array<double, 7> kLevels{3.0, 4.5, 6.0, 7.5, 9.0, 10.5, 12.0};
inline constexpr double kDefaultThreshold = 7.5;
inline constexpr double kMaxScore = 15.0;

struct TokenizerOptions {
  bool header_tokens = true;
  bool body_tokens = true;
  // Defaults chosen by 5-fold cross-validation on the train split (bench/README.md).
  bool html_tokens = false;  // tag/attribute tokens: correlated, they hurt (CV)
  bool all_headers = false;  // also the words of every other (non-trace) header: no gain
  // Orthogonal sparse bigrams over body words: better ROC area in CV but no better at the
  // default threshold, for 3x the tokens, 10x the model and 5x slower classification.
  bool osb = false;
  bool url_paths = false;     // words of URL paths ("up:"), beside the hosts
  bool shape_tokens = false;  // capitalisation and punctuation features of the body
  bool received_fix = true;
  // Fingerprints of the sending software: Message-ID, Date and MIME boundary shapes, header
  // order, Received "with" protocols and hop count.
  bool fingerprints = true;
  // Whether the From domain shows in the Received hosts and the Message-ID.
  bool consistency = false;
  // The To/Cc addresses (domain, and address).
  bool recipient_tokens = true;   // Received: only dotted quads are IPs (not "8.12.5" versions)
  size_t osb_window = 2;               // pair each word with the next osb_window words
  size_t max_tokens = 3000;            // distinct tokens kept per message
  size_t max_body_bytes = 256u << 10;  // body text tokenized (the start is what matters)
  // Byte 4-grams (byte_grams) of the raw message's first gram_bytes bytes, for the gram model
  // (0: none).
  size_t gram_bytes = 30000;
};

// Distinct tokens of a message, in first-seen order.
std::vector<std::string> tokenize(const mime::Parsed& msg, const TokenizerOptions& opt = {});

// Byte 4-grams of a raw message: every run of kGramBytes bytes among its first max_bytes
// bytes, CRs dropped and the header fields tokenize never learns left out (X-Spam-*,
// X-Digue-*, Authentication-Results, Return-Path, ...; Received lines stay, as in tokenize:
// a copy delivered through more hops has a few grams more), hashed to kGramBits bits; each
// once, in the order first seen. What the gram model (Params: gram_*) learns and scores: it
// sees what words do not (encodings, markup, spelling, header layout). None for max_bytes 0.
inline constexpr size_t kGramBytes = 4;
inline constexpr int kGramBits = 22;
std::vector<uint32_t> byte_grams(std::string_view raw, size_t max_bytes = 30000);

// Whether a token of tokenize() came from the headers (rather than the body text, its URLs,
// the MIME structure or the attachments).
bool header_token(std::string_view token);

// The From address's token ("fa:" + the lower-cased address); its learnt counts are the
// sender's history.
inline constexpr std::string_view kSenderPrefix = "fa:";

// Lower-cases UTF-8 text (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic); other code points
// and invalid bytes are kept as they are.
std::string fold_case(std::string_view utf8);

uint64_t token_hash(std::string_view token);

// A message's identity for the seen markers (32 hex digits): a digest of what stays the same
// from SMTP time to the recipient's mailbox — Message-ID, Date and From as sent, the decoded
// text and HTML, the attachments' contents — and not of what changes on the way (Received
// lines and other headers added downstream, digue's own trace headers, a tagged Subject).
// Line ends, refolding and trailing blank lines do not count. The same mail learnt at SMTP
// time (autolearn) and later from a Maildir or mbox is one message; learning it again as the
// other class moves it. (A server downstream that adds a missing Message-ID or Date makes
// its copy another message.)
std::string message_identity(const mime::Parsed& msg);

enum class Class : uint8_t { Spam, Ham };

struct Params {
  // Defaults chosen by 5-fold cross-validation on the train split (bench/README.md).
  double robinson_s = 0.2;    // strength of the prior x for rare tokens
  double robinson_x = 0.5;    // prior probability of an unknown token
  double min_dev = 0.4;       // tokens with |f(w) - 0.5| below this are ignored
  size_t max_clues = 150;     // strongest tokens combined
  uint32_t min_learned = 20;  // below this many spam or ham messages the model is not ready
  // Below this many messages of either class the evidence is scaled by n / this (0: never):
  // a young model is sure of too much (bench/README.md, "Cold start": 50 + 50 messages gave
  // 1.8 % FP at 7.5 unscaled, 0.3 % scaled).
  uint32_t confidence_messages = 100;
  // Score mapping: score = 7.5 + (evidence_decades - pivot_decades) * score_per_decade,
  // clamped to 0..15 (see Result::evidence_decades). Chosen by cross-validation on the train
  // split (bench/README.md): the default threshold sits where no ham was seen.
  // The evidence is the mean clue log-odds; pivot 0.3 leaves 3 of 3,309 ham
  // above 7.5 in CV. score_per_decade 4.5: the seven levels 3.0 .. 12.0 are evidence
  // pivot - 1 .. pivot + 1 in steps of 1/3.
  double pivot_decades = 0.3;
  double score_per_decade = 4.5;
  // Token weights (train_weights): a logistic model over the tokens' Bayes log-count ratios
  // r(w) = ln((spam(w) + a) / (S + 2a)) - ln((ham(w) + a) / (H + 2a)), one weight per token,
  // trained by weight_passes of stochastic gradient descent over the learnt messages. It
  // learns how far to trust each token given the others (correlated tokens, newsletters that
  // share spam words); the evidence becomes E + weight_mix * z, z the model's logit.
  bool weights = true;        // use trained weights when the model has them
  double weight_alpha = 1.0;  // a
  double weight_eta = 10.0;   // learning rate
  int weight_passes = 5;
  // Trained on at most this many messages, the most recently learnt (memory: ~1 KB each).
  size_t weight_max_messages = 200000;
  double weight_mix = 0.5;
  // The shuffle's seed. CV figures move with it (bench/README.md, "Seed noise").
  uint64_t weight_seed = 0x9e3779b97f4a7c15ull;
  // The score mapping when weights are used (same form as above, on E + weight_mix * z).
  // Chosen by 5-fold CV on the train split: the highest ham there had evidence 1.18, so the
  // default threshold 7.5 sits at 1.5; one score point per unit puts the seven levels
  // 3.0 .. 12.0 at evidence -3 .. +6 (CV medians: ham -8.9, spam +6.8).
  double weighted_pivot = 1.5;
  double weighted_score_per_unit = 1.0;
  // The combiner (stacking; bench/README.md, "Ninth session"): when the model has trained
  // weights and `combine` is on, the evidence is the log-odds of a logistic model over the
  // message's figures, in natural-log units:
  //   bias + bayes * E + logit * z + header * Eh + body * Eb + body_clues * ln(1 + body clues)
  //   + tokens * ln(1 + tokens) + sender * hist
  // with Eh / Eb the mean log-odds of the header / body clues (decades), hist = ln(1 + spam)
  // - ln(1 + ham) of the From address's learnt counts (its "fa:" token), each capped at
  // sender_cap. Used from confidence_messages of each class on: a younger model keeps
  // E + weight_mix * z (with the combiner, 50 + 50 messages put 0.6 % of ham above 7.5
  // instead of 0.15 %). The coefficients
  // were fitted on out-of-fold figures of 5-fold CV on the train split (four weight seeds;
  // they are stable) and are fixed here, as weight_mix and the pivots were. A model learnt
  // before the "fa:" token existed has no sender history until its senders are learnt again.
  struct Combiner {
    double bias = 0, bayes = 0, logit = 0, header = 0, body = 0, body_clues = 0, tokens = 0,
           sender = 0, grams = 0, near_spam = 0, near_ham = 0;
  };
  bool combine = true;
  Combiner combiner{-1.19, 0.749, 0.241, 1.400, 0.750, -0.612, 0.692, 1.877, 0.0, 0.0, 0.0};
  // The combiner when the model also has a trained gram model (below) of at least
  // confidence_messages of each class, the message's bytes are given and its nearest learnt
  // messages were measured (a non-empty window; otherwise `combiner`): the same figures
  // plus grams * g, g the gram model's logit, and near_spam * the similarity of the nearest
  // learnt spam + near_ham * that of the nearest learnt ham (near_window). Fitted as
  // `combiner` (the mean of the fits on four weight seeds' out-of-fold figures, which agree
  // within ~0.1 but for the bias, -3.9 .. -5.3); nested CV (refit on four folds, scoring the
  // fifth): FN at FP <= 2 29/16/33/23 of 1,501 against `combiner`'s 34/35/30/39, 1 - ROCA
  // 0.0058-0.0076 % against 0.0091-0.0106 % (bench/README.md, "Tenth session").
  Combiner combiner_full{-4.451, 0.400, 0.147, 1.321,  0.387, -0.614,
                         1.010,  1.612, 0.0744, 7.382, -1.892};
  // The gram model: a logistic model over a message's byte 4-grams (byte_grams), one weight
  // per hashed 4-gram (a table of 2^kGramBits floats, 16 MB, one Store record; in memory
  // 16-bit steps of the largest, 8 MB, loaded once per training per process), trained by
  // train_weights with gram_passes of stochastic gradient descent (step gram_eta, the logit
  // scaled by 1 / sqrt(grams)) on the gram lists of the newest gram_max_messages learnt
  // messages. Chosen by 5-fold CV on the train split (bench/README.md, "Tenth session").
  double gram_eta = 64.0;
  int gram_passes = 10;
  size_t gram_max_messages = 20000;
  // Nearest learnt messages (combiner_full's near_spam / near_ham): the token-set similarity
  // (Jaccard) of the most similar learnt spam and ham among the newest near_window of each
  // class, named by train_weights in one record (~34 bytes a message) and read, with their
  // token lists, once per training per process (cached with the gram table); the near_exact
  // best sketch estimates of each class measured exactly on those lists. A window does as
  // well as every learnt message (bench/README.md).
  size_t near_window = 1000;
  size_t near_exact = 4;
  // The From history counts each class up to this many messages: hist is at most ln(1 + cap)
  // either way, so a forged frequent correspondent gains at most sender * ln 4 = 2.6 (CV:
  // capped at 3, 1 - ROCA 0.0091-0.0106 % against 0.0096-0.0112 % uncapped, FN at FP <= 2
  // the same within 2).
  uint32_t sender_cap = 3;
  // The score mapping of the combined evidence (same form as above; both combiners). Chosen by
  // 5-fold CV on the train split, four weight seeds, by the rule: the lowest pivot that
  // leaves at most 2 of 3,309 ham above it in every run. `combiner`: 1 ham above 2.0 (a
  // Netscape announcement, at 3.8; the next at 1.75-1.97); `combiner_full`: 2/1/1/1 (the
  // same announcement at 2.6-3.3, a hard_ham newsletter at 1.7-2.1; at 1.75 one run has 3).
  // One point per unit puts the seven levels 3.0 .. 12.0 at evidence -2.5 .. +6.5 (CV
  // medians, `combiner_full`: ham -11.2, spam +10.4; `combiner`: -10.8, +7.7).
  double combined_pivot = 2.0;
  double combined_score_per_unit = 1.0;
  TokenizerOptions tokenizer;
};

struct Clue {
  std::string token;
  double prob = 0.5;  // f(w)
  uint32_t spam = 0, ham = 0;
};

struct Result {
  bool ready = false;        // the model has min_learned messages of each class
  // The evidence; > 0 spammy. With trained weights and at least confidence_messages of each
  // class (and `combine` on): the combiner's log-odds (natural-log units; `combined` says so).
  // Otherwise E, the mean clue log-odds in decades, plus weight_mix * z when the model has
  // trained weights, times the cold-start scale (confidence_messages). The score is a linear
  // map of it (combined_*, weighted_*, or pivot_decades / score_per_decade).
  double evidence_decades = 0.0;
  double bayes_evidence = 0.0;  // E alone
  bool weighted = false;        // token weights were used
  double weight_logit = 0.0;    // z, the weights' logit
  bool combined = false;        // the combiner gave the evidence (Params::combine)
  // The clues' mean log-odds (decades) by where the token came from (header_token): headers
  // (namespaced tokens such as "s:" or "fd:", and the MIME boundary's shape "bs:") and body
  // (words, URLs, HTML, attachments, MIME structure and the top-level Content-Type "ct:").
  double header_evidence = 0.0, body_evidence = 0.0;
  size_t header_clues = 0, body_clues = 0;
  // How often the From address was learnt as spam / ham (its "fa:" token).
  uint32_t sender_spam = 0, sender_ham = 0;
  // The gram model's logit (when the model has one and the message's grams were given; the
  // combiner then is combiner_full, given the nearest figure too), and how many distinct
  // 4-grams the message had.
  bool grams_used = false;
  double gram_logit = 0.0;
  size_t grams = 0;
  // The most similar learnt spam / ham (Jaccard similarity of the token sets, 0..1), with
  // the gram figure; how many learnt messages were measured exactly.
  double near_spam = 0.0, near_ham = 0.0;
  size_t near_measured = 0;
  // clamp(7.5 + per_unit * (evidence_decades - pivot), 0, 15); when the model is not ready
  // or no token is a clue, 0 (no evidence is not spam).
  double score = 0.0;
  size_t tokens = 0;        // distinct tokens in the message
  std::vector<Clue> clues;  // strongest first (largest |f - 0.5|)
  // "tok1:0.99, tok2:0.01, ..." of the first n clues, for logs and symbol evidence.
  std::string evidence(size_t n = 8) const;
};

struct Stats {
  uint64_t spam_messages = 0, ham_messages = 0;
  uint64_t tokens = 0, seen = 0;
  uint64_t kept_messages = 0;     // seen messages whose token list is kept (weight training)
  uint64_t weight_messages = 0;   // messages the current weights were trained on (0: none)
  uint64_t weighted_tokens = 0;   // tokens with a non-zero weight
  uint64_t gram_lists = 0;        // learnt messages whose byte 4-gram list is kept
  uint64_t gram_messages = 0;     // messages the current gram model was trained on (0: none)
};

struct WeightTraining {
  size_t messages = 0;  // messages trained on
  size_t nonzero = 0;   // tokens with a non-zero weight
  size_t gram_messages = 0;  // messages the gram model was trained on (0: none)
};

// How far `expire` bounds the model (diguectl bayes expire, and digued's upkeep when it
// autolearns). At the defaults the model holds ~1.3 GB of LMDB store (bench/
// bayes_bound_bench.cpp: 1,303 MB with the 20,000 gram lists, plus the 16 MB gram table; the
// map is 4 GB by default, shared with lists, quarantine and greylisting); expiring it takes
// ~1.5 s with nothing to drop and ~5 s a tenth over the bounds, with ~100 bytes of memory per
// token.
struct ExpireLimits {
  size_t max_tokens = 2'000'000;  // tokens kept, the most recently learnt
  uint32_t stale_days = 180;      // tokens and token lists not learnt for this long go
  // Token lists kept for weight training, the newest (train_weights never reads more than
  // Params::weight_max_messages of them: keep the two equal).
  size_t max_lists = 200'000;
  // Byte 4-gram lists kept for the gram model, the newest (~5 KB each; train_weights reads
  // Params::gram_max_messages of them: keep the two equal).
  size_t max_gram_lists = 20'000;
  // Seen markers (what makes learning idempotent) kept, the newest, and for at most
  // seen_days: learning a message again after its marker went counts it again, and it can no
  // longer be unlearnt.
  size_t max_seen = 2'000'000;
  uint32_t seen_days = 730;
};

struct ExpireOutcome {
  size_t tokens = 0;   // token records removed
  size_t lists = 0;    // token lists dropped (their seen markers stay)
  size_t gram_lists = 0;  // byte 4-gram lists dropped
  size_t markers = 0;  // seen markers removed
};

enum class RestoreMode : uint8_t { Empty, Merge, Replace };

enum class LearnOutcome : uint8_t { Learned, AlreadyKnown, Moved, Unlearned, NotFound };

struct Autolearn {
  bool enabled = false;    // off by default: autolearning amplifies mistakes
  double spam_at = 13.5;   // learn as spam at or above this Bayes score ...
  double ham_below = 1.5;  // ... and as ham below this one
  // The class to learn for a classified message, or nullopt.
  std::optional<Class> decide(const Result& r) const;
};

class Classifier {
 public:
  explicit Classifier(Store& store, Params params = {}) : store_(store), params_(params) {}

  // raw: the message as received, for the gram model (empty: no gram figure).
  Result classify(const mime::Parsed& msg, std::string_view raw = {}) const;
  // grams: byte_grams of the message (empty: no gram figure; the combiner without it).
  Result classify_tokens(const std::vector<std::string>& tokens,
                         const std::vector<uint32_t>& grams = {}) const;

  // Whether the next classification would first read a new gram model into this process's
  // memory (16 MB and the nearest-message window: tens of milliseconds, once per training):
  // a caller on an I/O thread runs that classification on a worker instead. One small read.
  bool gram_model_pending() const;

  // One message to learn or unlearn; its tokens come from tokenize().
  struct Item {
    Item() = default;
    Item(std::vector<std::string> t, Class c, std::string message_id = {})
        : tokens(std::move(t)), cls(c), id(std::move(message_id)) {}
    std::vector<std::string> tokens;
    Class cls = Class::Spam;
    // The message's identity (message_identity): what makes learning idempotent. Empty: the
    // digest of the token set (callers that only have tokens; a copy of the message that
    // gained headers on the way, e.g. a delivered one, then counts as another message).
    std::string id;
    // Its byte_grams, kept for the gram model (empty: none kept).
    std::vector<uint32_t> grams;
  };
  // Learns every item in one Store transaction. Returns one outcome per item.
  std::vector<LearnOutcome> learn(const std::vector<Item>& items) const;
  // raw: the message as received, for its byte 4-grams (empty: none kept).
  LearnOutcome learn(const mime::Parsed& msg, Class cls, std::string_view raw = {}) const;
  // Forgets items learnt earlier (cls is ignored: the seen marker says which class).
  std::vector<LearnOutcome> unlearn(const std::vector<Item>& items) const;

  // Trains the token weights (Params: weight_*) on every seen message whose token list is kept,
  // with the current counts, and stores them beside the counts in Store updates of 20,000
  // tokens each (a classification running meanwhile may mix old and new weights for a moment;
  // the bias is written last). Memory while training: ~150 bytes per model token and ~1 KB
  // per message trained on. Then the gram model (Params: gram_*) on the newest
  // gram_max_messages gram lists, written in one update (its 16 MB table and summary); memory
  // 16 MB and ~10 KB per message trained on; ~0.5 s for 5,000 messages.
  // Deterministic for a given model. learn/unlearn/restore do not call it: the CLI does, after
  // a batch (diguectl bayes learn|unlearn|restore|train). Below min_learned messages of either
  // class it clears the weights.
  WeightTraining train_weights() const;

  Stats stats() const;
  // Text dump: "digue-bayes 4", "meta <spam> <ham>", "weights <bias> <messages>",
  // "t <hash hex> <spam> <ham> <day> [<weight>]",
  // "seen <digest> <S|H> [<day> [<hash hex>,...]]" (the day learnt and the token list kept for
  // weight training; a marker whose list was dropped has only its day), "g <digest> <hex>"
  // (a message's byte 4-gram list as stored: sorted, LEB128 deltas; the gram model itself is
  // not dumped: train_weights rebuilds it from these), and last
  // "end <records>" (so a cut dump is refused); portable between machines and stores. Taken
  // in one read transaction: consistent while learning goes on. The caller checks the stream.
  void dump(std::ostream& out) const;
  // Reads a dump into the model (records returned). The whole dump is checked first — every
  // line, and for versions 3 and 4 the end record's count — and nothing is written when any of
  // it is wrong (std::runtime_error naming the line); the stream must be seekable (a file).
  // Versions 1, 2 (no end record, no weights or token lists in version 1) and 3 (no gram
  // lists) are read too.
  //   Empty (default): the model must hold nothing (restoring over a model, or twice, would
  //   count its messages twice).
  //   Merge: summed into the model; refused when a message of the dump is already in it.
  //   Replace: the model's records are deleted first (dump the model before, to keep it).
  // Written in transactions of 20,000 records, the message counts and the weights last: an
  // interrupted restore (a full disk, a kill) leaves a model that is not ready, never one
  // with wrong counts; run it again with Replace (an interrupted Merge is refused when run
  // again, its markers being written: restore the earlier dump with Replace, then merge).
  size_t restore(std::istream& in, RestoreMode mode = RestoreMode::Empty) const;
  // Bounds the model (ExpireLimits): drops tokens not learnt for stale_days, then the least
  // recently learnt (fewest counts first among equals) until at most max_tokens remain;
  // forgets the token lists of messages learnt more than stale_days ago or beyond the newest
  // max_lists (their seen marker stays, so learning them again still counts once); removes
  // seen markers older than seen_days or beyond the newest max_seen. Markers written by
  // versions that kept no day are dated today on their first expire. Ages are in whole days:
  // the newest day that does not fit a cap entirely goes entirely.
  ExpireOutcome expire(const ExpireLimits& limits, uint32_t today = 0) const;

  const Params& params() const { return params_; }

  static uint32_t today();

 private:
  Store& store_;
  Params params_;
};

// The Store keys, exposed for tests and tools.
std::string token_key(uint64_t hash);
inline constexpr std::string_view kTokenPrefix = "bayes:t:";
inline constexpr std::string_view kMetaKey = "bayes:meta";
inline constexpr std::string_view kSeenPrefix = "bayes:seen:";
inline constexpr std::string_view kWeightsKey = "bayes:weights";
inline constexpr std::string_view kGramPrefix = "bayes:g:";          // + identity: a gram list
inline constexpr std::string_view kGramMetaKey = "bayes:gram-meta";  // the gram model's summary
inline constexpr std::string_view kGramModelKey = "bayes:gram-model";  // its weight table
inline constexpr std::string_view kNearKey = "bayes:near";  // the nearest-message window

}  // namespace digue::bayes
