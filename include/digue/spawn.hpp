// Completion handlers for the coroutines the daemon spawns (asio::co_spawn).
#pragma once

#include <spdlog/spdlog.h>

#include <exception>

namespace digue {

// Instead of asio::detached, which drops an escaping exception without a word: the exception
// is logged as "<what> failed: ...", never rethrown into the io_context.
inline auto log_escaped(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{} failed: {}", what, ex.what());
    } catch (...) {
      spdlog::error("{} failed: unknown exception", what);
    }
  };
}

// For one-shot runs (diguectl): the exception is rethrown out of io_context::run() to the
// caller, which reports it and exits non-zero, instead of printing a default result.
inline auto rethrow_escaped() {
  return [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
}

}  // namespace digue
