#pragma once
// The ViT shape presets behind model.arch deit_tiny, deit_small and vit_tiny28,
// in one place for the validator and the trainer: ResolveViTSpec() returns the
// preset with every non-zero field of model.vit laid over it. For arch "vit"
// there is no preset (only mlp_ratio defaults to 4). Pure, thread-safe.

#include <string_view>

#include "pendulum/v1/run_spec.pb.h"

namespace pendulum::spec {

// True for the ViT family: vit, deit_tiny, deit_small, vit_tiny28.
bool IsViTArch(std::string_view arch);

// Effective ViT shape; fields still 0 afterwards are unknown (e.g. in_channels
// of arch vit, which then comes from the dataset).
v1::ViTSpec ResolveViTSpec(const v1::ModelSpec& model);

}  // namespace pendulum::spec
