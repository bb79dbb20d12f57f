// LMDB Store: one environment in `dir`, one named database "kv".
// Value layout: 8 bytes little-endian expiry (ms since the Unix epoch, 0 = never) + payload,
// so an expired key reads as absent without a second lookup. Expired keys met by a read are
// queued and deleted by the next write transaction (lazy purge); purge_expired() and a
// background thread reclaim the rest.
// MDB_NOTLS: read transactions are not tied to threads, so coroutines that hop threads and
// a pool of reusable read transactions both work. Writers are serialised by LMDB itself
// (across processes, e.g. diguectl beside digued) and by write_mu_ inside the process.
// Durability: see LmdbSync in store.hpp; the default (MDB_NOMETASYNC) costs one fdatasync per
// write transaction and never corrupts the file; batch writes with apply()/update().
// Another process may grow the map (diguectl with a larger map_size): a transaction that
// meets MDB_MAP_RESIZED adopts the new size (a remap, while no transaction of ours is open)
// and is retried once. Reader slots left by killed processes are cleared at open and by the
// maintenance thread.
#include <lmdb.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "digue/store.hpp"

namespace digue {
namespace {

constexpr size_t kHeader = 8;
constexpr size_t kMaxPending = 4096;   // expired keys remembered for the next write
constexpr size_t kPurgeChunk = 10000;  // keys examined per purge transaction

[[noreturn]] void fail(const std::string& what, int rc) {
  throw StoreError("lmdb: " + what + ": " + mdb_strerror(rc));
}
void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) fail(what, rc);
}

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

uint64_t expiry_for(std::chrono::seconds ttl, uint64_t now) {
  return ttl.count() > 0 ? now + static_cast<uint64_t>(ttl.count()) * 1000 : 0;
}

uint64_t read_expiry(const MDB_val& v) {
  if (v.mv_size < kHeader) return 0;  // not written by us: treat as permanent
  uint64_t e = 0;
  const auto* p = static_cast<const unsigned char*>(v.mv_data);
  for (int i = 7; i >= 0; --i) e = (e << 8) | p[i];
  return e;
}

bool live(const MDB_val& v, uint64_t now) {
  uint64_t e = read_expiry(v);
  return e == 0 || now < e;
}

std::string_view payload(const MDB_val& v) {
  if (v.mv_size < kHeader) return {};
  return {static_cast<const char*>(v.mv_data) + kHeader, v.mv_size - kHeader};
}

std::string encode(uint64_t expiry, std::string_view value) {
  std::string out(kHeader + value.size(), '\0');
  for (size_t i = 0; i < kHeader; ++i) out[i] = static_cast<char>((expiry >> (8 * i)) & 0xff);
  std::memcpy(out.data() + kHeader, value.data(), value.size());
  return out;
}

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

class LmdbStore final : public Store {
 public:
  LmdbStore(const std::string& dir, const LmdbOptions& opt) : opt_(opt) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw StoreError("lmdb: cannot create " + dir + ": " + ec.message());
    check(mdb_env_create(&env_), "env_create");
    try {
      check(mdb_env_set_mapsize(env_, opt.map_size), "set_mapsize");
      check(mdb_env_set_maxdbs(env_, 4), "set_maxdbs");
      check(mdb_env_set_maxreaders(env_, opt.max_readers), "set_maxreaders");
      unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
      if (opt.sync == LmdbSync::Commit) flags |= MDB_NOMETASYNC;
      if (opt.sync == LmdbSync::Periodic) flags |= MDB_NOSYNC;
      int rc = mdb_env_open(env_, dir.c_str(), flags, 0640);
      if (rc != MDB_SUCCESS) fail("open " + dir, rc);
      int dead = 0;
      mdb_reader_check(env_, &dead);  // slots of killed processes would pin old pages
      max_key_ = static_cast<size_t>(mdb_env_get_maxkeysize(env_));
      MDB_txn* txn = nullptr;
      check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
      rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &dbi_);
      if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        fail("dbi_open kv", rc);
      }
      check(mdb_txn_commit(txn), "commit");
    } catch (...) {
      mdb_env_close(env_);
      throw;
    }
    bool need_sync_thread = opt.sync == LmdbSync::Periodic && opt.sync_interval.count() > 0;
    if (need_sync_thread || opt.purge_interval.count() > 0)
      maintenance_ = std::thread([this] { maintain(); });
  }

  ~LmdbStore() override {
    {
      std::lock_guard lock(stop_mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    if (maintenance_.joinable()) maintenance_.join();
    for (auto* t : read_pool_) mdb_txn_abort(t);
    if (opt_.sync == LmdbSync::Periodic) mdb_env_sync(env_, 1);
    mdb_env_close(env_);
  }

  std::optional<std::string> get(std::string_view key) override {
    check_key(key);
    ReadTxn r(*this);
    MDB_val k = as_val(key), v;
    int rc = mdb_get(r.txn, dbi_, &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check(rc, "get");
    if (!live(v, now_ms())) {
      note_expired(key);
      return std::nullopt;
    }
    return std::string(payload(v));
  }

  std::vector<std::optional<std::string>> get_many(const std::vector<std::string>& keys) override {
    std::vector<std::optional<std::string>> out;
    out.reserve(keys.size());
    ReadTxn r(*this);
    uint64_t now = now_ms();
    for (const auto& key : keys) {
      check_key(key);
      MDB_val k = as_val(key), v;
      int rc = mdb_get(r.txn, dbi_, &k, &v);
      if (rc == MDB_NOTFOUND) {
        out.emplace_back();
        continue;
      }
      check(rc, "get");
      if (!live(v, now)) {
        note_expired(key);
        out.emplace_back();
        continue;
      }
      out.emplace_back(std::string(payload(v)));
    }
    return out;
  }

  void visit_many(const std::vector<std::string_view>& keys,
                  const std::function<void(size_t, std::string_view)>& found) override {
    ReadTxn r(*this);
    uint64_t now = now_ms();
    for (size_t i = 0; i < keys.size(); ++i) {
      check_key(keys[i]);
      MDB_val k = as_val(keys[i]), v;
      int rc = mdb_get(r.txn, dbi_, &k, &v);
      if (rc == MDB_NOTFOUND) continue;
      check(rc, "get");
      if (!live(v, now)) {
        note_expired(keys[i]);
        continue;
      }
      found(i, payload(v));
    }
  }

  void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
    write([&](MDB_txn* t, uint64_t now) { do_put(t, key, value, ttl, now); });
  }

  bool del(std::string_view key) override {
    bool found = false;
    write([&](MDB_txn* t, uint64_t now) { found = do_del(t, key, now); });
    return found;
  }

  int64_t incr(std::string_view key, int64_t delta, std::chrono::seconds ttl) override {
    int64_t n = 0;
    write([&](MDB_txn* t, uint64_t now) { n = do_incr(t, key, delta, ttl, now); });
    return n;
  }

  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn) override {
    ReadTxn r(*this);
    MDB_cursor* cur = nullptr;
    check(mdb_cursor_open(r.txn, dbi_, &cur), "cursor_open");
    struct CursorGuard {
      MDB_cursor* c;
      ~CursorGuard() { mdb_cursor_close(c); }
    } guard{cur};
    uint64_t now = now_ms();
    MDB_val k = as_val(prefix), v;
    // An empty prefix cannot be a SET_RANGE key in LMDB: start from the first key instead.
    int rc = prefix.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST)
                            : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
      std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
      if (key.substr(0, prefix.size()) != prefix) break;
      if (live(v, now)) {
        // Views point into the map; valid until the read transaction ends after the loop.
        if (!fn(key, payload(v))) return;
      } else {
        note_expired(key);
      }
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) fail("cursor_get", rc);
  }

  void apply(const std::vector<Op>& ops) override {
    write([&](MDB_txn* t, uint64_t now) { apply_ops(t, ops, now); });
  }

  void update(const std::vector<std::string>& keys, const UpdateFn& fn) override {
    write([&](MDB_txn* t, uint64_t now) {
      std::vector<std::optional<std::string>> values;
      values.reserve(keys.size());
      for (const auto& key : keys) {
        check_key(key);
        MDB_val k = as_val(key), v;
        int rc = mdb_get(t, dbi_, &k, &v);
        if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && !live(v, now))) {
          values.emplace_back();
          continue;
        }
        check(rc, "get");
        values.emplace_back(std::string(payload(v)));
      }
      apply_ops(t, fn(values), now);
    });
  }

  size_t purge_expired() override {
    size_t removed = 0;
    std::string resume;  // first key of the next chunk
    for (bool more = true; more;) {
      more = false;
      write([&](MDB_txn* t, uint64_t now) {
        MDB_cursor* cur = nullptr;
        check(mdb_cursor_open(t, dbi_, &cur), "cursor_open");
        struct CursorGuard {
          MDB_cursor* c;
          ~CursorGuard() { mdb_cursor_close(c); }
        } guard{cur};
        MDB_val k = as_val(resume), v;
        int rc = resume.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST)
                                : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        size_t examined = 0;
        while (rc == MDB_SUCCESS) {
          if (++examined > kPurgeChunk) {
            // Commit this chunk so writers are not held back by a long walk.
            resume.assign(static_cast<const char*>(k.mv_data), k.mv_size);
            more = true;
            return;
          }
          if (!live(v, now)) {
            check(mdb_cursor_del(cur, 0), "cursor_del");
            ++removed;
            // After a delete LMDB flags the cursor (C_DEL) so that MDB_NEXT yields the item
            // that took the deleted one's place, not the one after it.
          }
          rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) fail("cursor_get", rc);
      });
    }
    return removed;
  }

  void sync() override { check(mdb_env_sync(env_, 1), "env_sync"); }
  uint64_t background_syncs() const override { return background_syncs_.load(); }

 private:
  // A read transaction borrowed from a pool: with MDB_NOTLS a reset transaction keeps its
  // reader slot, and renewing it is much cheaper than a fresh begin (classification does one
  // get_many per message).
  struct ReadTxn {
    explicit ReadTxn(LmdbStore& s) : store(s) {
      {
        std::lock_guard lock(s.pool_mu_);
        if (!s.read_pool_.empty()) {
          txn = s.read_pool_.back();
          s.read_pool_.pop_back();
        }
      }
      check(s.start_txn(&txn, MDB_RDONLY), "txn_begin(read)");
    }
    ~ReadTxn() {
      mdb_txn_reset(txn);
      --store.open_txns_;
      std::lock_guard lock(store.pool_mu_);
      if (store.read_pool_.size() < 64)
        store.read_pool_.push_back(txn);
      else
        mdb_txn_abort(txn);
    }
    LmdbStore& store;
    MDB_txn* txn = nullptr;
  };

  // Begins a transaction (or renews *txn, a reset read transaction from the pool), counted in
  // open_txns_ until the caller ends it and decrements. On MDB_MAP_RESIZED the new map size
  // is adopted and the begin retried once.
  int start_txn(MDB_txn** txn, unsigned flags) {
    for (int attempt = 0;; ++attempt) {
      int rc;
      {
        std::shared_lock lock(remap_mu_);
        ++open_txns_;
        if (*txn) {
          rc = mdb_txn_renew(*txn);
          if (rc != MDB_SUCCESS) {
            mdb_txn_abort(*txn);
            *txn = nullptr;
          }
        } else {
          rc = mdb_txn_begin(env_, nullptr, flags, txn);
          if (rc != MDB_SUCCESS) *txn = nullptr;
        }
        if (rc != MDB_SUCCESS) --open_txns_;
      }
      if (rc != MDB_MAP_RESIZED || attempt > 0 || !adopt_map_size()) return rc;
    }
  }

  // mdb_env_set_mapsize(0) remaps: no transaction of this process may be open meanwhile. New
  // ones wait on remap_mu_. The wait for open ones is bounded: one may be the caller's own
  // (a lookup nested in a scan); that caller then gets the error, the next call retries.
  bool adopt_map_size() {
    std::unique_lock lock(remap_mu_);
    for (int waited_ms = 0; open_txns_.load() > 0; ++waited_ms) {
      if (waited_ms >= 200) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return mdb_env_set_mapsize(env_, 0) == MDB_SUCCESS;
  }

  template <class Fn>
  void write(Fn&& fn) {
    std::lock_guard lock(write_mu_);
    MDB_txn* t = nullptr;
    check(start_txn(&t, 0), "txn_begin(write)");
    struct Counted {
      std::atomic<int>& n;
      ~Counted() { --n; }
    } counted{open_txns_};
    try {
      uint64_t now = now_ms();
      drain_expired(t, now);
      fn(t, now);
    } catch (...) {
      mdb_txn_abort(t);
      throw;
    }
    check(mdb_txn_commit(t), "commit");
    dirty_.store(true, std::memory_order_relaxed);
  }

  void check_key(std::string_view key) const {
    if (key.empty() || key.size() > max_key_)
      throw StoreError("lmdb: key size " + std::to_string(key.size()) + " out of range (1.." +
                       std::to_string(max_key_) + ")");
  }

  void do_put(MDB_txn* t, std::string_view key, std::string_view value, std::chrono::seconds ttl,
              uint64_t now) {
    check_key(key);
    std::string buf = encode(expiry_for(ttl, now), value);
    MDB_val k = as_val(key), v = as_val(buf);
    check(mdb_put(t, dbi_, &k, &v, 0), "put");
  }

  bool do_del(MDB_txn* t, std::string_view key, uint64_t now) {
    check_key(key);
    MDB_val k = as_val(key), v;
    int rc = mdb_get(t, dbi_, &k, &v);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "get");
    bool was_live = live(v, now);
    check(mdb_del(t, dbi_, &k, nullptr), "del");
    return was_live;
  }

  int64_t do_incr(MDB_txn* t, std::string_view key, int64_t delta, std::chrono::seconds ttl,
                  uint64_t now) {
    check_key(key);
    MDB_val k = as_val(key), v;
    int rc = mdb_get(t, dbi_, &k, &v);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) fail("get", rc);
    int64_t n = delta;
    uint64_t expiry = expiry_for(ttl, now);
    if (rc == MDB_SUCCESS && live(v, now)) {
      // A live counter keeps its expiry (Redis INCRBY semantics).
      expiry = read_expiry(v);
      auto text = payload(v);
      int64_t old = 0;
      if (!text.empty()) {
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), old);
        if (ec != std::errc{} || p != text.data() + text.size())
          throw StoreError("lmdb: value at '" + std::string(key) + "' is not an integer");
      }
      n = old + delta;
    }
    std::string buf = encode(expiry, std::to_string(n));
    MDB_val nv = as_val(buf);
    check(mdb_put(t, dbi_, &k, &nv, 0), "put");
    return n;
  }

  void apply_ops(MDB_txn* t, const std::vector<Op>& ops, uint64_t now) {
    for (const auto& op : ops) {
      switch (op.kind) {
        case Op::Kind::Put:
          do_put(t, op.key, op.value, op.ttl, now);
          break;
        case Op::Kind::Del:
          do_del(t, op.key, now);
          break;
        case Op::Kind::Incr:
          do_incr(t, op.key, op.delta, op.ttl, now);
          break;
      }
    }
  }

  void note_expired(std::string_view key) {
    std::lock_guard lock(pending_mu_);
    if (pending_.size() < kMaxPending) pending_.emplace_back(key);
  }

  void drain_expired(MDB_txn* t, uint64_t now) {
    std::vector<std::string> keys;
    {
      std::lock_guard lock(pending_mu_);
      keys.swap(pending_);
    }
    for (const auto& key : keys) {
      MDB_val k = as_val(key), v;
      // Re-check: the key may have been rewritten since the read saw it expired.
      if (mdb_get(t, dbi_, &k, &v) == MDB_SUCCESS && !live(v, now)) mdb_del(t, dbi_, &k, nullptr);
    }
  }

  void maintain() {
    using namespace std::chrono;
    auto next_purge = steady_clock::now() + opt_.purge_interval;
    milliseconds tick = opt_.sync == LmdbSync::Periodic && opt_.sync_interval.count() > 0
                            ? opt_.sync_interval
                            : duration_cast<milliseconds>(opt_.purge_interval);
    std::unique_lock lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, tick, [this] { return stop_; })) {
      lock.unlock();
      try {
        if (opt_.sync == LmdbSync::Periodic && dirty_.exchange(false)) {
          sync();
          ++background_syncs_;
        }
        if (opt_.purge_interval.count() > 0 && steady_clock::now() >= next_purge) {
          int dead = 0;
          mdb_reader_check(env_, &dead);
          purge_expired();
          next_purge = steady_clock::now() + opt_.purge_interval;
        }
      } catch (const StoreError&) {
        // Maintenance is best effort; the next tick retries and writes report their own errors.
      }
      lock.lock();
    }
  }

  LmdbOptions opt_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  size_t max_key_ = 511;
  std::mutex write_mu_;
  std::shared_mutex remap_mu_;      // shared: starting a transaction; unique: a remap
  std::atomic<int> open_txns_{0};   // this process's open transactions
  std::mutex pool_mu_;
  std::vector<MDB_txn*> read_pool_;
  std::mutex pending_mu_;
  std::vector<std::string> pending_;
  std::atomic<bool> dirty_{false};
  std::atomic<uint64_t> background_syncs_{0};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread maintenance_;
};

}  // namespace

std::unique_ptr<Store> make_lmdb_store(const std::string& dir, size_t map_size) {
  LmdbOptions opt;
  opt.map_size = map_size;
  return make_lmdb_store(dir, opt);
}

std::unique_ptr<Store> make_lmdb_store(const std::string& dir, const LmdbOptions& options) {
  return std::make_unique<LmdbStore>(dir, options);
}

}  // namespace digue
