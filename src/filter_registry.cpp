// The explicit filter list. One line per filter; the name is the config's name.
#include "digue/filter_registry.hpp"

#include "filters/bayes.hpp"
#include "filters/checksum.hpp"
#include "filters/empty_email.hpp"
#include "filters/empty_sender.hpp"
#include "filters/greylist.hpp"
#include "filters/helo.hpp"
#include "filters/honeypot.hpp"
#include "filters/invalid_mx.hpp"
#include "filters/ip_blacklist_cache.hpp"
#include "filters/ip_complaints.hpp"
#include "filters/ip_lists.hpp"
#include "filters/keywords.hpp"
#include "filters/malformed_headers.hpp"
#include "filters/rbl.hpp"
#include "filters/rdns.hpp"
#include "filters/relay_ips.hpp"
#include "filters/same_sender_rcpt.hpp"
#include "filters/scripts.hpp"
#include "filters/sender_complaints.hpp"
#include "filters/spf.hpp"
#include "filters/surbl.hpp"

namespace digue {
namespace {

constexpr FilterInfo kFilters[] = {
    {"relay_ips", &filters::make_relay_ips},
    {"empty_sender", &filters::make_empty_sender},
    {"same_sender_rcpt", &filters::make_same_sender_rcpt},
    {"keywords", &filters::make_keywords},
    {"checksum", &filters::make_checksum},
    {"surbl", &filters::make_surbl},
    {"empty_email", &filters::make_empty_email},
    {"scripts", &filters::make_scripts},
    {"malformed_headers", &filters::make_malformed_headers},
    {"sender_complaints", &filters::make_sender_complaints},
    {"bayes", &filters::make_bayes},
    {"spf", &filters::make_spf},
    {"rdns", &filters::make_rdns},
    {"helo", &filters::make_helo},
    {"invalid_mx", &filters::make_invalid_mx},
    {"rbl", &filters::make_rbl},
    {"never_spam_ips", &filters::make_never_spam_ips},
    {"always_spam_ips", &filters::make_always_spam_ips},
    {"ip_blacklist_cache", &filters::make_ip_blacklist_cache},
    {"ip_complaints", &filters::make_ip_complaints},
    {"honeypot", &filters::make_honeypot},
    {"greylist", &filters::make_greylist},
};

}  // namespace

std::span<const FilterInfo> filter_registry() { return kFilters; }

const FilterInfo* find_filter(std::string_view name) {
  for (const auto& f : kFilters)
    if (f.name == name) return &f;
  return nullptr;
}

}  // namespace digue
