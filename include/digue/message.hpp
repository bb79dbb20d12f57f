// Message: the spooled bytes of one message plus the facts derived from them once and shared
// by every filter (parsed MIME tree, decoded text, URLs, attachment hashes).
// The lazily derived parts (facts, memo) are built under a lock: a filter abandoned at its
// deadline may still be computing on a worker thread while the run goes on.
#pragma once

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
    std::lock_guard lock(mutex_);
    if (!parsed_) parsed_ = std::make_unique<mime::Parsed>(mime::parse(*raw_, limits_));
    return *parsed_;
  }
  bool parsed() const {
    std::lock_guard lock(mutex_);
    return parsed_ != nullptr;
  }
  // A value derived from the message once, by the first caller with this type and key, and
  // shared by the later ones: a filter that runs once per recipient domain computes its
  // domain-independent part (a Bayes classification) once per message.
  template <class T, class F>
  const T& memo(const std::string& key, F&& compute) const {
    std::lock_guard lock(mutex_);  // held while computing: a second caller waits for the value
    auto k = std::make_pair(std::type_index(typeid(T)), key);
    auto it = memo_.find(k);
    if (it == memo_.end()) it = memo_.emplace(k, std::make_shared<const T>(compute())).first;
    return *static_cast<const T*>(it->second.get());
  }
  void set_limits(const mime::Limits& l) { limits_ = l; }
  const mime::Limits& limits() const { return limits_; }

 private:
  std::shared_ptr<const std::string> raw_ = std::make_shared<const std::string>();
  mime::Limits limits_;
  mutable std::recursive_mutex mutex_;  // recursive: compute() may call facts()
  mutable std::unique_ptr<mime::Parsed> parsed_;
  mutable std::map<std::pair<std::type_index, std::string>, std::shared_ptr<const void>> memo_;
};

}  // namespace digue
