#include "worker/daemon/file_tail.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pendulum::daemon {

std::string SanitizeUtf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len = 0;
    unsigned int min = 0, cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    }
    bool valid = len > 0 && i + len <= n;
    for (size_t k = 1; valid && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) valid = false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (valid && len > 1 && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) valid = false;
    if (!valid) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(text, i, len);
    i += len;
  }
  return out;
}

std::string ReadFileTail(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return "";
  }
  const size_t size = static_cast<size_t>(st.st_size);
  const size_t start = size > max_bytes ? size - max_bytes : 0;
  std::string data(size - start, '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(fd, &data[got], data.size() - got, static_cast<off_t>(start + got));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  if (start > 0) {
    // Cut the partial first line so the tail starts where a line does.
    const size_t nl = data.find('\n');
    if (nl != std::string::npos && nl + 1 < data.size()) data.erase(0, nl + 1);
  }
  return SanitizeUtf8(data);
}

}  // namespace pendulum::daemon
