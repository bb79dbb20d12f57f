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

  // Batched zero-copy read: calls found(i, value) for each live keys[i], in one read
  // transaction; value is only valid during the call. The hot path of Bayes classification.
  // The base version is get_many.
  virtual void visit_many(const std::vector<std::string_view>& keys,
                          const std::function<void(size_t i, std::string_view value)>& found);

  // Read-modify-write: reads keys, calls fn with their values, applies the ops fn returns,
  // all in one write transaction, so concurrent updaters (threads or processes) never lose
  // an update (Bayes token counts, "seen" markers). fn may run more than once on stores that
  // retry on conflict (Redis WATCH); it must not have side effects. The base version is
  // get_many + apply: atomic only with a single writer; LMDB and memory override it.
  using UpdateFn =
      std::function<std::vector<Op>(const std::vector<std::optional<std::string>>& values)>;
  virtual void update(const std::vector<std::string>& keys, const UpdateFn& fn);
  // Removes expired keys now; returns how many. Expired keys already read as absent, this
  // only reclaims space. Stores that expire keys by themselves return 0.
  virtual size_t purge_expired() { return 0; }
  // Makes every committed write durable now (LMDB in a deferred-sync mode); no-op elsewhere.
  virtual void sync() {}
  // How many syncs the store made by itself in the background (LMDB Periodic mode: one per
  // sync_interval with writes since the last); 0 for stores that never do.
  virtual uint64_t background_syncs() const { return 0; }
};

// LMDB durability. LMDB commits are crash-safe against a process crash in every mode (the
// pages are in the OS cache); the modes differ only on an OS crash or power loss.
enum class LmdbSync : uint8_t {
  // MDB_NOMETASYNC: one fdatasync per write transaction; an OS crash may undo the last
  // transaction but never corrupts the database. The default.
  Commit,
  // MDB_NOSYNC + a background mdb_env_sync every sync_interval: no fsync on the write path,
  // for high-rate counters; an OS crash loses up to sync_interval of writes (and, on file
  // systems that reorder writes, may damage the file: keep such data rebuildable).
  Periodic,
  // Full sync of data and meta page on every commit (two fsyncs); for small critical data.
  Full,
};

struct LmdbOptions {
  size_t map_size = size_t{1} << 32;
  LmdbSync sync = LmdbSync::Commit;
  std::chrono::milliseconds sync_interval{1000};     // Periodic only
  std::chrono::seconds purge_interval{600};          // background purge_expired; 0 = never
  unsigned max_readers = 512;                        // concurrent read transactions
};

std::unique_ptr<Store> make_memory_store();
// A dry-run view of base: reads see base with the overlay's own writes on top; writes
// (put, del, incr, apply, update) stay in memory and never reach base. For `diguectl scan`,
// whose filters record (bulk counters, greylist triplets, bans) as they check.
std::unique_ptr<Store> make_overlay_store(Store& base);
// Opens (creating when needed) an LMDB environment in dir. map_size in bytes.
std::unique_ptr<Store> make_lmdb_store(const std::string& dir, size_t map_size = size_t{1} << 32);
std::unique_ptr<Store> make_lmdb_store(const std::string& dir, const LmdbOptions& options);

}  // namespace digue
