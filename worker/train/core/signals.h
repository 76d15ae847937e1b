#pragma once
// Trainer signal handling (docs/trainer_protocol.md): SIGUSR1 asks for a
// checkpoint at the next step boundary, SIGTERM for a checkpoint and a clean
// stop (exit 143). The handlers only set flags (async-signal-safe); the loop
// polls them between steps. SIGPIPE is ignored so a vanished daemon pipe shows
// up as a write error instead of killing the trainer. Process-wide.

namespace pendulum::train {

void InstallTrainerSignalHandlers();
// True once per SIGUSR1 received (clears the request).
bool TakeCheckpointRequest();
// True after SIGTERM (stays set).
bool TerminationRequested();

}  // namespace pendulum::train
