// Server: the SMTP listeners and sessions. One io_context per thread (threads = cores by
// default); each thread has its own acceptor on every listen address (SO_REUSEPORT lets the
// kernel spread connections) and its own Services (resolver). A session is one coroutine;
// it keeps the pipeline and TLS certificate it started with, so a reload never disturbs it.
// Limits: global and per-client connection caps (421 4.7.0; IPv4 per address, IPv6 per /64),
// a timeout on every read (RFC 5321 4.5.3.2), max bad and junk commands, a session time
// limit (421 between commands), a process-wide budget for DATA held in memory (452 4.3.1 to
// a message that does not fit). Stop: listeners close, sessions get the grace period to
// finish, then are cut; nothing acknowledged is lost (it is in the spool).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "digue/config.hpp"
#include "digue/pipeline.hpp"

namespace digue {

class Spool;
class Queue;
class Store;
struct VerifyStats;

struct ServerStats {
  std::atomic<uint64_t> connections{0}, refused_connections{0}, messages{0}, accepted{0},
      rejected{0}, tempfailed{0}, spool_errors{0},
      data_memory_refused{0};  // messages read and discarded for max_data_memory: 452
  std::atomic<int64_t> active{0};
};

class Server {
 public:
  Server(std::shared_ptr<const Config> config, std::shared_ptr<const Pipeline> pipeline,
         Spool& spool, Queue& queue, Store* store);
  ~Server();

  // Binds every listener (throws std::runtime_error naming the address on failure).
  void bind();
  // Runs the threads; returns after stop() once sessions are done (or the grace expired).
  void run();
  // Thread-safe. Stop accepting; sessions get the grace period.
  void stop();
  // Thread-safe. New sessions use the new config/pipeline and the [server.tls] certificate
  // and key read again from their files (listen addresses are not changed). Throws
  // ConfigError, changing nothing, when the certificate or key cannot be loaded.
  void reload(std::shared_ptr<const Config> config, std::shared_ptr<const Pipeline> pipeline);

  // Loads [server.tls] the way start and reload do (throws ConfigError naming
  // server.tls.cert when the files cannot be loaded or do not match); for --check-config.
  static void check_tls(const ServerConfig& config);

  const ServerStats& stats() const { return stats_; }
  // Bytes of DATA all sessions hold in memory now (counted against max_data_memory).
  size_t data_memory() const;
  const VerifyStats& verify_stats() const;  // recipient verification (rcpt_verify.hpp)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ServerStats stats_;
};

}  // namespace digue
