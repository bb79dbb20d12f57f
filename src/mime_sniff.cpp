// Attachment type from magic bytes, and SHA-256. The declared Content-Type and file name are
// chosen by the sender; filters that judge risk (executables, macros, archives) need what
// the bytes really are.
#include <openssl/evp.h>

#include <cstring>

#include "src/mime_internal.hpp"

namespace digue::mime::detail {
namespace {

bool at(std::string_view d, size_t off, std::string_view magic) {
  return d.size() >= off + magic.size() && d.compare(off, magic.size(), magic) == 0;
}

// Zip-based formats announce themselves in the first entries' names.
std::string_view sniff_zip(std::string_view d) {
  std::string_view head = d.substr(0, 8192);
  auto has = [&](std::string_view s) { return head.find(s) != std::string_view::npos; };
  if (at(d, 30, "mimetype") && has("application/vnd.oasis.opendocument"))
    return "application/vnd.oasis.opendocument";
  if (has("word/")) return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
  if (has("xl/")) return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  if (has("ppt/"))
    return "application/vnd.openxmlformats-officedocument.presentationml.presentation";
  if (has("[Content_Types].xml")) return "application/vnd.openxmlformats-officedocument";
  if (has("META-INF/MANIFEST.MF")) return "application/java-archive";
  if (has("AndroidManifest.xml")) return "application/vnd.android.package-archive";
  return "application/zip";
}

}  // namespace

std::string_view sniff(std::string_view d) {
  if (d.size() < 2) return "";
  if (at(d, 0, "MZ")) return "application/x-dosexec";
  if (at(d, 0, "\x7f" "ELF")) return "application/x-executable";
  if (at(d, 0, "\xca\xfe\xba\xbe") || at(d, 0, "\xcf\xfa\xed\xfe") || at(d, 0, "\xce\xfa\xed\xfe"))
    return "application/x-mach-binary";
  if (at(d, 0, "PK\x03\x04") || at(d, 0, "PK\x05\x06")) return sniff_zip(d);
  if (at(d, 0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")) return "application/x-ole-storage";
  if (at(d, 0, "%PDF-")) return "application/pdf";
  if (d.substr(0, 1024).find("%PDF-") != std::string_view::npos)
    return "application/pdf";  // readers accept leading junk
  if (at(d, 0, "\x89PNG\r\n\x1a\n")) return "image/png";
  if (at(d, 0, "\xff\xd8\xff")) return "image/jpeg";
  if (at(d, 0, "GIF87a") || at(d, 0, "GIF89a")) return "image/gif";
  if (at(d, 0, "RIFF") && at(d, 8, "WEBP")) return "image/webp";
  if (at(d, 0, "II*\0") || at(d, 0, std::string_view("MM\0*", 4))) return "image/tiff";
  if (at(d, 0, "BM") && d.size() > 26 && d[15] == 0 && d[16] == 0 &&
      (d[14] == 12 || d[14] == 40 || d[14] == 56 || d[14] == 108 || d[14] == 124))
    return "image/bmp";  // "BM" alone is too weak: the DIB header size must be a known one
  if (at(d, 0, std::string_view("\0\0\1\0", 4)) && d.size() > 6 && d[4] != 0) return "image/x-icon";
  if (at(d, 0, "Rar!\x1a\x07")) return "application/vnd.rar";
  if (at(d, 0, "7z\xbc\xaf\x27\x1c")) return "application/x-7z-compressed";
  if (at(d, 0, "\x1f\x8b")) return "application/gzip";
  if (at(d, 0, "BZh")) return "application/x-bzip2";
  if (at(d, 0, "\xfd" "7zXZ")) return "application/x-xz";
  if (at(d, 0, "MSCF")) return "application/vnd.ms-cab-compressed";
  if (at(d, 257, "ustar")) return "application/x-tar";
  if (at(d, 0x8001, "CD001")) return "application/x-iso9660-image";
  if (at(d, 0, "{\\rtf")) return "application/rtf";
  if (at(d, 0, "ITSF")) return "application/vnd.ms-htmlhelp";
  if (at(d, 0, "L\0\0\0\x01\x14\x02\0")) return "application/x-ms-shortcut";
  if (at(d, 0, "#!")) return "text/x-script";
  std::string_view head = d.substr(0, 512);
  size_t p = 0;
  while (p < head.size() && is_space(head[p])) ++p;
  head = head.substr(p);
  if (istarts_with(head, "<!doctype html") || istarts_with(head, "<html") ||
      istarts_with(head, "<head") || istarts_with(head, "<script"))
    return "text/html";
  if (istarts_with(head, "<svg") || (istarts_with(head, "<?xml") &&
                                     head.find("<svg") != std::string_view::npos))
    return "image/svg+xml";
  // Nothing known: text or opaque bytes, by the share of control bytes in the first 512.
  size_t ctl = 0, total = std::min<size_t>(d.size(), 512);
  for (size_t i = 0; i < total; ++i) {
    auto c = static_cast<unsigned char>(d[i]);
    if (c == 0) return "application/octet-stream";
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f') ++ctl;
  }
  return ctl * 10 > total ? "application/octet-stream" : "text/plain";
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_sha256() is a static method table: no per-call provider fetch.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

}  // namespace digue::mime::detail
