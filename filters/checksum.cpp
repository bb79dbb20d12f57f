#include "filters/checksum.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "digue/message.hpp"
#include "digue/options.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"

namespace digue::filters {
namespace {

constexpr int64_t kSlices = 6;  // sliding-window granularity: window / 6

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string hex(const unsigned char* d, unsigned n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = kHex[d[i] >> 4];
    s[2 * i + 1] = kHex[d[i] & 15];
  }
  return s;
}

// Feeds s with runs of whitespace collapsed to one space and leading/trailing space dropped:
// reflowed or re-encoded copies of one text hash the same.
void update_collapsed(EVP_MD_CTX* ctx, std::string_view s) {
  char buf[4096];
  size_t n = 0;
  bool space = false, started = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
      space = started;
      continue;
    }
    if (space) {
      buf[n++] = ' ';
      space = false;
    }
    buf[n++] = c;
    started = true;
    if (n >= sizeof buf - 2) {
      EVP_DigestUpdate(ctx, buf, n);
      n = 0;
    }
  }
  if (n) EVP_DigestUpdate(ctx, buf, n);
}

class Checksum final : public Filter {
 public:
  Checksum(int64_t threshold, int64_t window, double score)
      : threshold_(threshold), window_(window), score_(score) {}

  std::string_view name() const override { return "checksum"; }
  Phase phase() const override { return Phase::Data; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.message) co_return FilterResult::error("checksum: no message");
    if (!ctx.services.store) co_return FilterResult::error("checksum: no store configured");
    const std::string digest = message_checksum(ctx.message->facts());
    const int64_t now = ctx.envelope.received_at ? ctx.envelope.received_at
                                                 : static_cast<int64_t>(std::time(nullptr));
    const int64_t slice_len = std::max<int64_t>(1, window_ / kSlices);
    const int64_t slice = now / slice_len;
    const std::string prefix = "cksum:" + digest + ":";
    const std::string slice_key = prefix + "t:" + std::to_string(slice);

    std::vector<std::string> keys;
    for (const auto& r : ctx.envelope.rcpts) {
      std::string addr = text::lower(r.local + "@" + r.domain);
      keys.push_back(prefix + "r:" + short_hash(addr));
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    int64_t total = 0;
    try {
      const std::chrono::seconds window{window_};
      ctx.services.store->update(keys, [&](const std::vector<std::optional<std::string>>& vals) {
        std::vector<Store::Op> ops;
        int64_t fresh = 0;
        for (size_t i = 0; i < keys.size(); ++i) {
          if (vals[i]) continue;  // this recipient already counted within the window
          ops.push_back({Store::Op::Kind::Put, keys[i], std::to_string(now), 0, window});
          ++fresh;
        }
        if (fresh)
          ops.push_back({Store::Op::Kind::Incr, slice_key, {}, fresh,
                         window + std::chrono::seconds{slice_len}});
        return ops;
      });
      // The slices overlapping the window, the current one included.
      std::vector<std::string> slice_keys;
      for (int64_t s = slice - (window_ + slice_len - 1) / slice_len + 1; s <= slice; ++s)
        slice_keys.push_back(prefix + "t:" + std::to_string(s));
      for (const auto& v : ctx.services.store->get_many(slice_keys)) {
        if (!v) continue;
        try {
          total += std::stoll(*v);
        } catch (const std::exception&) {
          // A foreign value under our prefix: not ours to interpret.
        }
      }
    } catch (const StoreError& e) {
      co_return FilterResult::error(std::string("checksum store: ") + e.what());
    }
    if (total < threshold_) co_return FilterResult::none();
    co_return FilterResult::hit("CHECKSUM_BULK", score_,
                                "digest=" + digest + " recipients=" + std::to_string(total) +
                                    " window=" + std::to_string(window_) + "s",
                                "bulk: same message to many recipients");
  }

 private:
  static std::string short_hash(const std::string& s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(s.data(), s.size(), md, &n, EVP_sha1(), nullptr);
    return hex(md, 8);  // 64 bits: collisions among one digest's recipients are negligible
  }

  int64_t threshold_, window_;
  double score_;
};

}  // namespace

std::string message_checksum(const mime::Parsed& facts) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx.get(), EVP_sha1(), nullptr);
  const mime::Header* from = facts.header("from");
  EVP_DigestUpdate(ctx.get(), "from\0", 5);
  if (from) update_collapsed(ctx.get(), from->value);
  EVP_DigestUpdate(ctx.get(), "\0subject\0", 9);
  update_collapsed(ctx.get(), facts.subject);
  EVP_DigestUpdate(ctx.get(), "\0text\0", 6);
  update_collapsed(ctx.get(), facts.text);
  for (const auto& a : facts.attachments) {
    EVP_DigestUpdate(ctx.get(), "\0att\0", 5);
    EVP_DigestUpdate(ctx.get(), a.sha256.data(), a.sha256.size());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  return hex(md, n);
}

FilterPtr make_checksum(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.checksum");
  int64_t threshold = r.integer("threshold", 20, 2, 1000000);
  int64_t window = r.integer("window", 600, 6, 7 * 86400);
  double score = r.number("score", 5.0, -100, 100);
  r.finish();
  return std::make_shared<Checksum>(threshold, window, score);
}

}  // namespace digue::filters
