#pragma once
// Reads IDX files (the MNIST / Fashion-MNIST format: magic 0x0000TTDD with
// type TT = 0x08 unsigned byte and DD dimensions, big-endian sizes, then the
// data), gzipped or not (zlib detects which). Only unsigned-byte data is
// supported, which is all (Fashion-)MNIST uses. Errors name the path:
// NOT_FOUND for a missing file, DATA_LOSS for a corrupt/truncated one. Pure.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pendulum::train {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path);

// Reads a whole file through zlib (transparently uncompressed if not gzip).
absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path);

}  // namespace pendulum::train
