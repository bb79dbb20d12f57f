// Small text helpers shared by the tools: JSON string escaping, whole-file reads, and turning
// a message file (mbox "From " line, LF line ends) into the bytes DATA would have given us.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace digue::text {

std::string json_escape(std::string_view s);  // without the surrounding quotes
std::optional<std::string> read_file(const std::string& path);
// Drops a leading mbox "From " envelope line and turns bare LF line ends into CRLF.
std::string as_received(std::string_view file);

}  // namespace digue::text
