#include "spec/vit_presets.h"

namespace pendulum::spec {
namespace {

v1::ViTSpec Preset(uint32_t image, uint32_t patch, uint32_t channels, uint32_t depth,
                   uint32_t dim, uint32_t heads) {
  v1::ViTSpec v;
  v.set_image_size(image);
  v.set_patch_size(patch);
  v.set_in_channels(channels);
  v.set_depth(depth);
  v.set_dim(dim);
  v.set_heads(heads);
  v.set_mlp_ratio(4.0);
  return v;
}

}  // namespace

bool IsViTArch(std::string_view arch) {
  return arch == "vit" || arch == "deit_tiny" || arch == "deit_small" || arch == "vit_tiny28";
}

v1::ViTSpec ResolveViTSpec(const v1::ModelSpec& model) {
  v1::ViTSpec base;
  if (model.arch() == "deit_tiny") {
    base = Preset(224, 16, 3, 12, 192, 3);  // DeiT-T (Touvron et al. 2021)
  } else if (model.arch() == "deit_small") {
    base = Preset(224, 16, 3, 12, 384, 6);  // DeiT-S
  } else if (model.arch() == "vit_tiny28") {
    // methods.md §7.1: 28x28 input, 7x7 patches -> 16 tokens, dim 64, 4 heads, 2 blocks.
    base = Preset(28, 7, 1, 2, 64, 4);
  } else {
    base.set_mlp_ratio(4.0);
  }
  const v1::ViTSpec& o = model.vit();
  if (o.image_size() != 0) base.set_image_size(o.image_size());
  if (o.patch_size() != 0) base.set_patch_size(o.patch_size());
  if (o.in_channels() != 0) base.set_in_channels(o.in_channels());
  if (o.depth() != 0) base.set_depth(o.depth());
  if (o.dim() != 0) base.set_dim(o.dim());
  if (o.heads() != 0) base.set_heads(o.heads());
  if (o.mlp_ratio() != 0) base.set_mlp_ratio(o.mlp_ratio());
  if (o.distill_token()) base.set_distill_token(true);
  return base;
}

}  // namespace pendulum::spec
