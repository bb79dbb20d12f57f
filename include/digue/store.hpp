// Store: the small key-value interface behind every piece of persistent state (lists,
// quarantine index, Bayes tokens, counters, greylist triplets, challenge tokens).
// Implementations: LMDB (embedded default), in-memory (unit tests); Redis later.
// Keys are namespaced by a prefix ("bayes:", "grey:", ...). Values are opaque bytes.
// Expiry: a ttl of zero means "never"; an expired key reads as absent.
// Thread safety: every method may be called from any thread concurrently.
// Failure: methods throw StoreError on an I/O or capacity failure; callers on the data path
// catch it and answer 4xx or count a fail-open, never crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace digue {

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Store {
 public:
  struct Op {
    enum class Kind { Put, Del, Incr } kind;
    std::string key;
    std::string value;           // Put
    int64_t delta = 0;           // Incr
    std::chrono::seconds ttl{0}; // Put, Incr (applied when the key is created or rewritten)
  };

  virtual ~Store() = default;
  virtual std::optional<std::string> get(std::string_view key) = 0;
  virtual void put(std::string_view key, std::string_view value,
                   std::chrono::seconds ttl = std::chrono::seconds{0}) = 0;
  virtual bool del(std::string_view key) = 0;
  // Adds delta to the integer stored at key (absent = 0) and returns the new value.
  virtual int64_t incr(std::string_view key, int64_t delta,
                       std::chrono::seconds ttl = std::chrono::seconds{0}) = 0;
  // Calls fn for each live key starting with prefix, in key order, until fn returns false.
  virtual void scan(std::string_view prefix,
                    const std::function<bool(std::string_view key, std::string_view value)>& fn) = 0;
  // Applies all ops atomically (one transaction in LMDB).
  virtual void apply(const std::vector<Op>& ops) = 0;
  // Reads many keys at once (one read transaction); absent keys give nullopt.
  virtual std::vector<std::optional<std::string>> get_many(const std::vector<std::string>& keys);
};

std::unique_ptr<Store> make_memory_store();
// Opens (creating when needed) an LMDB environment in dir. map_size in bytes.
std::unique_ptr<Store> make_lmdb_store(const std::string& dir, size_t map_size = size_t{1} << 32);

}  // namespace digue
