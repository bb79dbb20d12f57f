// Reading mail files offline (diguectl bayes): splitting an mbox into its messages as it is
// read, and telling a mail message from any other file. Pure: no I/O, never throws on bad
// input. An mbox is a file whose first line is an envelope line "From SENDER DATE" (SENDER an
// address, MAILER-DAEMON, "<>" or nothing; DATE asctime-style, "Thu Aug 22 12:36:23 2002",
// with an optional time zone before or after the year and an optional UUCP "remote from
// HOST"); it is split only on such lines, never on a body line that merely starts with
// "From ". Inside an mbox one '>' is removed from lines matching ^>+From (mboxrd), and the
// empty line that ends each message is dropped (the mbox's, not the message's).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace digue::mbox {

// Whether line (its line ending optional) is an mbox envelope line.
bool is_envelope(std::string_view line);

// Splits a file into messages line by line, so a file of any size needs memory for one
// message only. A file that does not begin with an envelope line is one message, unchanged.
class Splitter {
 public:
  // Feeds the next line with its "\n" (the last line of a file may have none). When the line
  // is the envelope of a further message, returns the message it ends.
  std::optional<std::string> feed(std::string_view line);
  // At the end of the file: its last (or only) message; nullopt for an empty file.
  std::optional<std::string> finish();

 private:
  std::string take();  // the message so far, without the mbox separator line
  enum class Mode { Start, Plain, Mbox };
  Mode mode_ = Mode::Start;
  std::string cur_;
};

// The messages of a whole file (Splitter over its lines).
std::vector<std::string> split(std::string_view data);

// Whether raw looks like a mail message: its header block (up to the first empty line) holds
// at least one "Name: value" field and no NUL byte. Empty input is not a message.
bool looks_like_message(std::string_view raw);

}  // namespace digue::mbox
