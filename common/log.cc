#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pendulum::log {
namespace {

Level LevelFromEnv() {
  const char* env = std::getenv("PENDULUM_LOG_LEVEL");
  if (env == nullptr) return Level::kInfo;
  std::string v(env);
  if (v == "debug") return Level::kDebug;
  if (v == "warning") return Level::kWarning;
  if (v == "error") return Level::kError;
  return Level::kInfo;
}

std::atomic<int>& MinLevelStorage() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "D";
    case Level::kInfo: return "I";
    case Level::kWarning: return "W";
    case Level::kError: return "E";
  }
  return "?";
}

}  // namespace

void SetMinLevel(Level level) { MinLevelStorage().store(static_cast<int>(level)); }
Level MinLevel() { return static_cast<Level>(MinLevelStorage().load()); }

Message::Message(Level level, const char* file, int line) : level_(level) {
  const char* base = std::strrchr(file, '/');
  stream_ << LevelName(level_) << ' '
          << absl::FormatTime("%Y-%m-%dT%H:%M:%E3S", absl::Now(), absl::UTCTimeZone()) << ' '
          << (base ? base + 1 : file) << ':' << line << "] ";
}

Message::~Message() {
  stream_ << '\n';
  const std::string text = stream_.str();
  // One write() so lines from different threads do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
}

}  // namespace pendulum::log
