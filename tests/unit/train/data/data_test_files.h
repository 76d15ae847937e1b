#pragma once
// Writers for small dataset files in the real on-disk formats (IDX raw/gzip,
// CIFAR binary), shared by the data tests. Header-only, test-only.

#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace pendulum::train::testing {

inline std::string IdxBytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::string s = {0, 0, 0x08, char(dims.size())};
  for (uint32_t d : dims) {
    s.push_back(char(d >> 24));
    s.push_back(char(d >> 16));
    s.push_back(char(d >> 8));
    s.push_back(char(d));
  }
  s.append(data.begin(), data.end());
  return s;
}

inline void WriteRaw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

inline void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
}

// n images of h x w with pixel (i, r, c) = (i * 7 + r * w + c) % 256, labels i % 10.
inline void WriteFashionMnist(const std::string& dir, int n_train, int n_eval, int h, int w, bool gz) {
  auto write = [&](const std::string& name, int n) {
    std::vector<uint8_t> px(size_t(n) * h * w), lab(n);
    for (int i = 0; i < n; ++i) {
      lab[i] = uint8_t(i % 10);
      for (int j = 0; j < h * w; ++j) px[size_t(i) * h * w + j] = uint8_t((i * 7 + j) % 256);
    }
    const std::string img = IdxBytes({uint32_t(n), uint32_t(h), uint32_t(w)}, px);
    const std::string lbl = IdxBytes({uint32_t(n)}, lab);
    const std::string images = dir + "/" + name + "-images-idx3-ubyte";
    const std::string labels = dir + "/" + name + "-labels-idx1-ubyte";
    if (gz) {
      WriteGzip(images + ".gz", img);
      WriteGzip(labels + ".gz", lbl);
    } else {
      WriteRaw(images, img);
      WriteRaw(labels, lbl);
    }
  };
  write("train", n_train);
  write("t10k", n_eval);
}

// CIFAR record bytes: label byte(s) then 3072 pixels = (label * 3 + k) % 256.
inline std::string CifarRecords(int n, int label_bytes, int num_classes) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    const int label = i % num_classes;
    if (label_bytes == 2) s.push_back(char(label / 5));  // coarse label
    s.push_back(char(label));
    for (int k = 0; k < 3072; ++k) s.push_back(char((label * 3 + k) % 256));
  }
  return s;
}

}  // namespace pendulum::train::testing
