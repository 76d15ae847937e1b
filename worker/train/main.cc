// pendulum-train: runs one RunSpec (see docs/trainer_protocol.md).
#include "worker/train/core/trainer_main.h"

int main(int argc, char** argv) { return pendulum::train::RunTrainerMain(argc, argv); }
