#pragma once
// RunTrainerMain: the whole pendulum-train command line (docs/trainer_protocol.md):
// parses flags, loads and validates the RunSpec, opens the event stream
// (--events-fd or DIR/events.pb), installs the signal handlers and runs the
// Trainer. Returns the process exit code (0, 1, 2, 3 or 143). main.cc is a
// one-line wrapper so tests can link exactly what the binary runs.

namespace pendulum::train {

int RunTrainerMain(int argc, char** argv);

}  // namespace pendulum::train
