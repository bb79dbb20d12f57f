// Queue: delivery of accepted messages. Runs on its own io_context thread; sessions hand
// over records with submit() after the 250 (the message is already durable in the spool).
// For each recipient group (domain x action) it builds the message to send (trace headers
// for that domain, spoofed verdict headers removed, Subject tag for "tag", Junk folder for
// "junk") and delivers to the domain's downstream targets in order (primary, secondary...).
// Temporary failures are retried with exponential backoff (retry_min doubling to
// retry_max) until queue_lifetime, then bounced; permanent failures are bounced at once.
// Bounces (RFC 3464 DSNs) go to the envelope sender, never to the null sender and never for
// spam. "quarantine" moves the message to spool/quarantine/ and indexes it in the Store;
// when that keeps failing (disk full, index errors) for quarantine_fallback_after since the
// message was accepted, the recipients are delivered as "tag" instead (counted, warned).
// A record is removed from the spool only when every recipient is delivered, bounced or
// quarantined; a crash before that re-delivers on start (at worst twice, never lost).
// The queue holds each record id once, from submit(), recovery or pickup until the record
// leaves the spool: a second submit() of an id it holds is a logged, counted no-op.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "digue/config.hpp"
#include "digue/spool.hpp"

namespace digue {

class Store;
namespace delivery {
class Deliverer;
}

struct QueueStats {
  std::atomic<uint64_t> submitted{0}, delivered{0}, deferred{0}, bounced{0}, quarantined{0},
      dsn_sent{0}, in_flight{0};
  // Recipient groups delivered tagged because quarantining them kept failing.
  std::atomic<uint64_t> quarantine_fallbacks{0};
  // submit() or pickup of a record id the queue already holds, refused (not delivered twice).
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> bytes_in_flight{0};       // the in-flight deliveries' message bytes, x3
  std::atomic<uint64_t> peak_bytes_in_flight{0};  // the highest bytes_in_flight seen
};

class Queue {
 public:
  Queue(std::shared_ptr<const Config> config, Spool& spool, Store* store);
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // Starts the delivery thread and resumes every spooled record.
  void start();
  // Stops delivering; what is not delivered stays in the spool.
  void stop();
  void reload(std::shared_ptr<const Config> config);
  // Thread-safe: hand over a durable record. A record whose id the queue already holds
  // (waiting, in flight or deferred, e.g. resumed by start()) is refused: logged, counted in
  // duplicates, never delivered or bounced twice.
  void submit(SpoolRecord record, std::shared_ptr<const std::string> raw);

  const QueueStats& stats() const { return stats_; }
  size_t active() const { return stats_.in_flight.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  QueueStats stats_;
};

}  // namespace digue
