// Message: the spooled bytes of one message plus the facts derived from them once and shared
// by every filter (parsed MIME tree, decoded text, URLs, attachment hashes).
// The lazily derived parts (facts, memo) are built once even across threads: a filter
// abandoned at its deadline may still be computing on a worker thread while the run goes on.
// Built under a mutex, not std::call_once: a call_once whose function throws (a Bayes
// classification whose store is down) hangs every later caller on some targets (libstdc++
// bug 66146: arm64, ppc64le) and under ThreadSanitizer, where a mutex is simply released.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <typeindex>
#include <utility>

#include "digue/mime.hpp"

namespace digue {

class Message {
 public:
  Message() = default;
  explicit Message(std::string raw)
      : raw_(std::make_shared<const std::string>(std::move(raw))) {}
  explicit Message(std::shared_ptr<const std::string> raw) : raw_(std::move(raw)) {}

  // The message as received (CRLF line ends, dot-unstuffed), without the headers we add.
  const std::string& raw() const { return *raw_; }
  const std::shared_ptr<const std::string>& raw_ptr() const { return raw_; }
  // Parsed facts, computed on first use.
  const mime::Parsed& facts() const {
    // Parsed once; a caller that comes while another thread parses waits for it (a parse
    // is linear in the message size and bounded by the limits).
    if (parsed_done_.load(std::memory_order_acquire)) return *parsed_;
    std::lock_guard lock(parse_mutex_);
    if (!parsed_done_.load(std::memory_order_relaxed)) {
      parsed_ = std::make_unique<mime::Parsed>(mime::parse(*raw_, limits_));
      parsed_done_.store(true, std::memory_order_release);
    }
    return *parsed_;
  }
  bool parsed() const { return parsed_done_.load(); }
  // A value derived from the message once, by the first caller with this type and key, and
  // shared by the later ones: a filter that runs once per recipient domain computes its
  // domain-independent part (a Bayes classification) once per message. The map is locked
  // only to find the key's entry: a computation holds no lock that facts() or another key
  // needs; a second caller of the same key waits for its value. If compute() throws,
  // nothing is kept and the next caller computes again.
  template <class T, class F>
  const T& memo(const std::string& key, F&& compute) const {
    std::shared_ptr<MemoEntry> entry;
    {
      std::lock_guard lock(memo_mutex_);
      auto& slot = memo_[std::make_pair(std::type_index(typeid(T)), key)];
      if (!slot) slot = std::make_shared<MemoEntry>();
      entry = slot;
    }
    if (!entry->ready.load(std::memory_order_acquire)) {
      std::lock_guard lock(entry->mutex);  // a second caller of this key waits here
      if (!entry->ready.load(std::memory_order_relaxed)) {
        entry->value = std::make_shared<const T>(compute());  // a throw keeps nothing
        entry->ready.store(true, std::memory_order_release);
      }
    }
    return *static_cast<const T*>(entry->value.get());
  }
  // The value memo() computed for this type and key, or null when none is ready (never
  // computes: for hooks that reuse a result if a filter made one).
  template <class T>
  const T* find_memo(const std::string& key) const {
    std::shared_ptr<MemoEntry> entry;
    {
      std::lock_guard lock(memo_mutex_);
      auto it = memo_.find(std::make_pair(std::type_index(typeid(T)), key));
      if (it == memo_.end()) return nullptr;
      entry = it->second;
    }
    if (!entry->ready.load(std::memory_order_acquire)) return nullptr;
    return static_cast<const T*>(entry->value.get());
  }
  void set_limits(const mime::Limits& l) { limits_ = l; }
  const mime::Limits& limits() const { return limits_; }

 private:
  std::shared_ptr<const std::string> raw_ = std::make_shared<const std::string>();
  mime::Limits limits_;
  struct MemoEntry {
    std::mutex mutex;  // held while the value is computed
    std::shared_ptr<const void> value;
    std::atomic<bool> ready{false};
  };
  mutable std::mutex parse_mutex_;
  mutable std::atomic<bool> parsed_done_{false};
  mutable std::unique_ptr<mime::Parsed> parsed_;
  mutable std::mutex memo_mutex_;
  mutable std::map<std::pair<std::type_index, std::string>, std::shared_ptr<MemoEntry>> memo_;
};

}  // namespace digue
