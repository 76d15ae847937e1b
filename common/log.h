#pragma once
// Minimal leveled logging to stderr: PENDULUM_LOG(INFO) << "text";
// One line per message, prefixed with time, level and the source file:line.
// Thread-safe (each message is written with a single write()).

#include <sstream>
#include <string_view>

namespace pendulum::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Default kInfo; PENDULUM_LOG_LEVEL
// (debug|info|warning|error) in the environment overrides it at start-up.
void SetMinLevel(Level level);
Level MinLevel();

class Message {
 public:
  Message(Level level, const char* file, int line);
  ~Message();
  std::ostream& stream() { return stream_; }

 private:
  Level level_;
  std::ostringstream stream_;
};

}  // namespace pendulum::log

#define PENDULUM_LOG_LEVEL_DEBUG ::pendulum::log::Level::kDebug
#define PENDULUM_LOG_LEVEL_INFO ::pendulum::log::Level::kInfo
#define PENDULUM_LOG_LEVEL_WARNING ::pendulum::log::Level::kWarning
#define PENDULUM_LOG_LEVEL_ERROR ::pendulum::log::Level::kError

#define PENDULUM_LOG(level)                                             \
  if (PENDULUM_LOG_LEVEL_##level < ::pendulum::log::MinLevel()) {       \
  } else                                                                \
    ::pendulum::log::Message(PENDULUM_LOG_LEVEL_##level, __FILE__, __LINE__).stream()
