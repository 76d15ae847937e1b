#include "worker/train/data/idx_reader.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace pendulum::train {

absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("data file not found: ", path));
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open data file ", path, ": ", std::strerror(errno)));
  }
  gzbuffer(f, 1 << 20);
  std::string out;
  char buf[1 << 16];
  while (true) {
    int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      return absl::DataLossError(absl::StrCat("corrupt data file ", path, ": ", msg));
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  // A truncated gzip stream reads as a short file without an error from
  // gzread; gzclose_r reports it (Z_BUF_ERROR).
  int rc = gzclose(f);
  if (rc != Z_OK) {
    return absl::DataLossError(absl::StrCat("corrupt or truncated gzip file ", path, " (zlib error ", rc, ")"));
  }
  return out;
}

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path) {
  auto raw = ReadMaybeGzipFile(path);
  if (!raw.ok()) return raw.status();
  const std::string& s = *raw;
  auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat("corrupt IDX file ", path, ": ", why));
  };
  if (s.size() < 4) return corrupt("shorter than the 4-byte header");
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  if (p[0] != 0 || p[1] != 0) return corrupt("bad magic (first two bytes must be 0)");
  if (p[2] != 0x08) return corrupt(absl::StrCat("data type 0x", absl::Hex(int(p[2])), " is not unsigned byte (0x08)"));
  const int ndims = p[3];
  if (ndims < 1 || ndims > 4) return corrupt(absl::StrCat("unsupported number of dimensions ", ndims));
  if (s.size() < 4 + 4u * ndims) return corrupt("truncated header");
  IdxArray a;
  uint64_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* d = p + 4 + 4 * i;
    uint64_t v = (uint64_t(d[0]) << 24) | (uint64_t(d[1]) << 16) | (uint64_t(d[2]) << 8) | d[3];
    a.dims.push_back(int64_t(v));
    total *= v;
    if (total > (uint64_t(1) << 36)) return corrupt("dimensions too large");
  }
  const size_t header = 4 + 4 * ndims;
  if (s.size() - header != total) {
    return corrupt(absl::StrCat("expected ", total, " data bytes for dims, found ", s.size() - header));
  }
  a.data.assign(p + header, p + s.size());
  return a;
}

}  // namespace pendulum::train
