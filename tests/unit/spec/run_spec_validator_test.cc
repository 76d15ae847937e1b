#include "spec/run_spec_validator.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "spec/run_spec_parser.h"
#include "spec/vit_presets.h"
#include "tests/unit/spec/spec_test_util.h"

namespace pendulum::spec {
namespace {

v1::RunSpec Valid() {
  absl::StatusOr<v1::RunSpec> s = ParseRunSpec(R"(
name: valid
model: {arch: mlp, hidden: [64]}
data: {dataset: synthetic, synthetic: {num_classes: 10}}
optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
schedule: {epochs: 1, batch_size: 32}
)");
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(RunSpecValidatorTest, MinimalSpecIsValid) { EXPECT_TRUE(ValidateRunSpec(Valid()).ok()) << ValidateRunSpec(Valid()); }

TEST(RunSpecValidatorTest, FullMethodSpecsAreValid) {
  for (const char* overlay : {
           "method.ofq={weight_bits: 2, act_bits: 4, weight_quantizer: statsq, cga: {enabled: true, boundary_range: 0.005}}",
           "method.incremental={base_classes: 2, classes_per_stage: 2, memory_size: 200, weight_aligning: {enabled: true, norm: 2}}",
           "method.compander={family: tanh, a: 1.5, learnable: true}",
           "method.tscnc={tsc: true, cnc: true, tsc_weight: 0.1, sparsity: 0.1, adversarial: {enabled: true, epsilon: 0.1, step_size: 0.025, steps: 5}}",
           "method.interaction_basis={num_samples: 10000, integration: gradient}",
           "method.plain={}",
       }) {
    v1::RunSpec s = Valid();
    ASSERT_TRUE(ApplyOverride(overlay, &s).ok()) << overlay;
    EXPECT_TRUE(ValidateRunSpec(s).ok()) << overlay << "\n" << ValidateRunSpec(s);
  }
}

TEST(RunSpecValidatorTest, ViTPresetsAreValidAndResolve) {
  for (const char* arch : {"deit_tiny", "deit_small", "vit_tiny28"}) {
    v1::RunSpec s = Valid();
    s.mutable_model()->clear_hidden();
    s.mutable_model()->set_arch(arch);
    EXPECT_TRUE(ValidateRunSpec(s).ok()) << arch << ": " << ValidateRunSpec(s);
  }
  v1::ModelSpec m;
  m.set_arch("vit_tiny28");
  m.mutable_vit()->set_depth(4);
  v1::ViTSpec r = ResolveViTSpec(m);
  EXPECT_EQ(r.image_size(), 28u);
  EXPECT_EQ(r.patch_size(), 7u);
  EXPECT_EQ(r.dim(), 64u);
  EXPECT_EQ(r.depth(), 4u) << "a set field overrides the preset";
}

// Each case: a mutation of a valid spec, the field path that must be named and
// a fragment of the explanation.
struct BadKind {
  const char* label;
  std::function<void(v1::RunSpec*)> mutate;
  const char* path;
  const char* what;
};

std::vector<BadKind> BadKinds() {
  auto set = [](const char* assignment) {
    return [assignment](v1::RunSpec* s) {
      absl::Status st = ApplyOverride(assignment, s);
      ASSERT_TRUE(st.ok()) << st;
    };
  };
  return {
      {"missing_name", [](v1::RunSpec* s) { s->clear_name(); }, "spec.name:", "required"},
      {"long_name", [](v1::RunSpec* s) { s->set_name(std::string(201, 'x')); }, "spec.name:", "at most 200"},
      {"control_char_name", set("name=\"a\\tb\""), "spec.name:", "printable"},
      {"long_description", [](v1::RunSpec* s) { s->set_description(std::string(4001, 'd')); },
       "spec.description:", "at most 4000"},
      {"bad_tag_key", set("tags={\"Bad Key\": x}"), "spec.tags[\"Bad Key\"]:", "[a-z0-9_.-]"},
      {"missing_model", [](v1::RunSpec* s) { s->clear_model(); }, "spec.model:", "required"},
      {"missing_arch", set("model.arch="), "spec.model.arch:", "required; one of: mlp, cnn_small"},
      {"unknown_arch", set("model.arch=resnet99"), "spec.model.arch:", "got 'resnet99', must be one of: mlp"},
      {"hidden_zero", set("model.hidden=[64, 0]"), "spec.model.hidden[1]:", "got 0, must be in 1..65536"},
      {"dropout_one", set("model.dropout=1"), "spec.model.dropout:", "got 1, must be >= 0 and < 1"},
      {"bad_activation", set("model.activation=tanh"), "spec.model.activation:", "must be one of: relu, gelu"},
      {"wrn_depth", [](v1::RunSpec* s) {
         s->mutable_model()->clear_hidden();
         s->mutable_model()->set_arch("wrn");
         s->mutable_model()->set_wrn_depth(27);
       }, "spec.model.wrn_depth:", "(depth - 4) % 6 == 0"},
      {"vit_dim_heads", [](v1::RunSpec* s) {
         s->mutable_model()->clear_hidden();
         s->mutable_model()->set_arch("vit_tiny28");
         s->mutable_model()->mutable_vit()->set_heads(3);
       }, "spec.model.vit.dim:", "got 64, must be divisible by heads 3"},
      {"vit_image_patch", [](v1::RunSpec* s) {
         s->mutable_model()->clear_hidden();
         s->mutable_model()->set_arch("vit_tiny28");
         s->mutable_model()->mutable_vit()->set_patch_size(5);
       }, "spec.model.vit.image_size:", "divisible by patch_size 5"},
      {"vit_without_shape", [](v1::RunSpec* s) {
         s->mutable_model()->clear_hidden();
         s->mutable_model()->set_arch("vit");
         s->mutable_model()->mutable_vit()->set_dim(64);
       }, "spec.model.vit.image_size:", "required for arch vit"},
      {"vit_on_mlp", set("model.vit={dim: 64}"), "spec.model.vit:", "only used by ViT archs"},
      {"missing_data", [](v1::RunSpec* s) { s->clear_data(); }, "spec.data:", "required"},
      {"unknown_dataset", set("data.dataset=mnist"), "spec.data.dataset:",
       "got 'mnist', must be one of: fashion_mnist, cifar10, cifar100, imagenet_folder, synthetic"},
      {"imagenet_without_path", [](v1::RunSpec* s) {
         s->mutable_data()->clear_synthetic();
         s->mutable_data()->set_dataset("imagenet_folder");
       }, "spec.data.path:", "required for dataset imagenet_folder"},
      {"synthetic_classes", set("data.synthetic.num_classes=1"), "spec.data.synthetic.num_classes:", "2..1000"},
      {"synthetic_shape", set("data.synthetic.shape=[1, 2, 3, 4, 5]"), "spec.data.synthetic.shape:", "at most 4"},
      {"loader_threads", set("data.loader_threads=65"), "spec.data.loader_threads:", "got 65, must be in 0..64"},
      {"missing_optimizer", [](v1::RunSpec* s) { s->clear_optimizer(); }, "spec.optimizer:", "required"},
      {"unknown_optimizer", set("optimizer.type=rmsprop"), "spec.optimizer.type:",
       "got 'rmsprop', must be one of: sgd, adam, adamw, adamp, sgdp"},
      {"negative_lr", set("optimizer.lr=-0.1"), "spec.optimizer.lr:", "got -0.1, must be > 0"},
      {"zero_lr", set("optimizer.lr=0"), "spec.optimizer.lr:", "required, must be > 0"},
      {"huge_lr", set("optimizer.lr=11"), "spec.optimizer.lr:", "got 11, must be > 0 and <= 10"},
      {"weight_decay", set("optimizer.weight_decay=2"), "spec.optimizer.weight_decay:", "must be >= 0 and <= 1"},
      {"momentum_one", set("optimizer.momentum=1"), "spec.optimizer.momentum:", "must be >= 0 and < 1"},
      {"beta_on_sgd", set("optimizer.beta1=0.9"), "spec.optimizer.beta1:", "only for adam/adamw/adamp"},
      {"beta2_range", [](v1::RunSpec* s) {
         s->mutable_optimizer()->set_type("adam");
         s->mutable_optimizer()->clear_momentum();
         s->mutable_optimizer()->set_beta2(1.0);
       }, "spec.optimizer.beta2:", "got 1, must be >= 0 and < 1"},
      {"delta_range", [](v1::RunSpec* s) {
         s->mutable_optimizer()->set_type("sgdp");
         s->mutable_optimizer()->set_delta(1.5);
       }, "spec.optimizer.delta:", "must be > 0 and < 1"},
      {"nesterov_without_momentum", set("optimizer={type: sgd, lr: 0.1, nesterov: true}"),
       "spec.optimizer.nesterov:", "needs optimizer.momentum > 0"},
      {"missing_schedule", [](v1::RunSpec* s) { s->clear_schedule(); }, "spec.schedule:", "required"},
      {"no_epochs_no_steps", set("schedule.epochs=0"), "spec.schedule.epochs:", "at least one must be > 0"},
      {"batch_size_zero", set("schedule.batch_size=0"), "spec.schedule.batch_size:", "required, must be in 1..65536"},
      {"batch_size_big", set("schedule.batch_size=65537"), "spec.schedule.batch_size:", "got 65537, must be in 1..65536"},
      {"max_steps_big", set("schedule.max_steps=2000000000"), "spec.schedule.max_steps:", "0..1000000000"},
      {"lr_schedule", set("schedule.lr_schedule=linear"), "spec.schedule.lr_schedule:",
       "must be one of: constant, cosine, step"},
      {"step_without_milestones", set("schedule.lr_schedule=step"), "spec.schedule.milestones:",
       "required for lr_schedule step"},
      {"milestones_decreasing", set("schedule={epochs: 9, batch_size: 8, lr_schedule: step, gamma: 0.1, milestones: [5, 3]}"),
       "spec.schedule.milestones[1]:", "strictly increasing"},
      {"min_lr_above_lr", set("schedule.min_lr=0.5"), "spec.schedule.min_lr:", "must be <= optimizer.lr 0.1"},
      {"weight_bits", set("method.ofq={weight_bits: 5}"), "spec.method.ofq.weight_bits:",
       "got 5, must be one of 2, 3, 4, 8"},
      {"weight_bits_missing", set("method.ofq={act_bits: 4}"), "spec.method.ofq.weight_bits:", "required"},
      {"act_bits", set("method.ofq={weight_bits: 2, act_bits: 6}"), "spec.method.ofq.act_bits:",
       "must be one of 0 (full precision), 2, 3, 4, 8"},
      {"quantizer", set("method.ofq={weight_bits: 2, weight_quantizer: pact}"), "spec.method.ofq.weight_quantizer:",
       "must be one of: statsq, lsq"},
      {"qkr_on_mlp", set("method.ofq={weight_bits: 2, qk_reparam: true}"), "spec.method.ofq.qk_reparam:",
       "only for ViT archs"},
      {"cga_br", set("method.ofq={weight_bits: 2, cga: {enabled: true, boundary_range: 0.5}}"),
       "spec.method.ofq.cga.boundary_range:", "got 0.5, must be > 0 and < 0.5"},
      {"osc_threshold", set("method.ofq={weight_bits: 2, oscillation: {thresholds: [0.005, 1.2]}}"),
       "spec.method.ofq.oscillation.thresholds[1]:", "must be > 0 and < 1"},
      {"incremental_base_too_big", set("method.incremental={base_classes: 11, classes_per_stage: 1}"),
       "spec.method.incremental.base_classes:", "got 11, must be in 1..10"},
      {"incremental_missing", set("method.incremental={}"), "spec.method.incremental.base_classes:", "required, 1..10"},
      {"wa_norm", set("method.incremental={base_classes: 2, classes_per_stage: 2, weight_aligning: {norm: 3}}"),
       "spec.method.incremental.weight_aligning.norm:", "must be 1 or 2"},
      {"compander_family", set("method.compander={family: sigmoid}"), "spec.method.compander.family:",
       "must be one of: tanh, mu_law, power"},
      {"tscnc_sparsity", set("method.tscnc={tsc: true, sparsity: 0}"), "spec.method.tscnc.sparsity:",
       "got 0, must be > 0 and <= 1"},
      {"ib_integration_not_implemented", set("method.interaction_basis={num_samples: 10, integration: trapezoid}"),
       "spec.method.interaction_basis.integration:", "got 'trapezoid', must be one of: gradient"},
      {"adversarial_steps", set("method.tscnc={sparsity: 0.1, adversarial: {enabled: true, steps: 1001}}"),
       "spec.method.tscnc.adversarial.steps:", "0..1000"},
      {"ib_samples", set("method.interaction_basis={integration: gradient}"),
       "spec.method.interaction_basis.num_samples:", "required"},
      // Rules copied from the trainer's own checks (worker/train/...), so that a
      // bad spec is refused at submit rather than when pendulum-train starts.
      {"compander_a_std_multiplier", set("method.compander={a_std_multiplier: 0}"),
       "spec.method.compander.a_std_multiplier:", "got 0, must be > 0"},
      {"compander_beta_zero", set("method.compander={family: mu_law, beta: 0}"), "spec.method.compander.beta:",
       "got 0, must be > 0"},
      {"compander_power_beta_one", set("method.compander={family: power, beta: 1}"), "spec.method.compander.beta:",
       "got 1, must be > 0 and < 1 (the power family's exponent p)"},
      {"compander_power_eps", set("method.compander={family: power, power_eps: 0}"),
       "spec.method.compander.power_eps:", "got 0, must be > 0"},
      {"tscnc_tsc_a", set("method.tscnc={sparsity: 0.1, tsc_a: 0}"), "spec.method.tscnc.tsc_a:", "got 0, must be > 0"},
      {"tscnc_droprate_init_one", set("method.tscnc={sparsity: 0.1, droprate_init: 1}"),
       "spec.method.tscnc.droprate_init:", "got 1, must be > 0 and < 1"},
      {"tscnc_droprate_init_zero", set("method.tscnc={sparsity: 0.1, droprate_init: 0}"),
       "spec.method.tscnc.droprate_init:", "got 0, must be > 0 and < 1"},
      {"tscnc_pole_limit", set("method.tscnc={sparsity: 0.1, pole_limit: 1}"), "spec.method.tscnc.pole_limit:",
       "got 1, must be > 0 and < 1"},
      {"tscnc_tsc_form", set("method.tscnc={tsc: true, sparsity: 0.1, tsc_form: tl1}"),
       "spec.method.tscnc.tsc_form:", "got 'tl1', must be one of: code, tl1_abs, none"},
      {"tscnc_cn_form", set("method.tscnc={sparsity: 0.1, cn_form: logdet}"), "spec.method.tscnc.cn_form:",
       "got 'logdet', must be one of: slogdet, logcond"},
      {"tscnc_lambda0", set("method.tscnc={sparsity: 0.1, lambda0: -0.001}"), "spec.method.tscnc.lambda0:",
       "got -0.001, must be >= 0"},
      {"tscnc_prior_weight_decay", set("method.tscnc={sparsity: 0.1, prior_weight_decay: -1}"),
       "spec.method.tscnc.prior_weight_decay:", "got -1, must be >= 0"},
      {"tscnc_train_size_fraction", set("method.tscnc={sparsity: 0.1, train_size: 0.5}"),
       "spec.method.tscnc.train_size:", "got 0.5, must be >= 1"},
      {"tscnc_start", set("method.tscnc={sparsity: 0.1, adversarial: {enabled: true, start: normal}}"),
       "spec.method.tscnc.adversarial.start:", "got 'normal', must be one of: gaussian, uniform, none"},
      // Adversarial training off: the trainer still parses loss and start, and
      // the robust evaluation still attacks at epsilon.
      {"tscnc_start_when_not_enabled", set("method.tscnc={sparsity: 0.1, adversarial: {start: normal}}"),
       "spec.method.tscnc.adversarial.start:", "got 'normal'"},
      {"tscnc_loss_when_not_enabled", set("method.tscnc={sparsity: 0.1, adversarial: {loss: ce}}"),
       "spec.method.tscnc.adversarial.loss:", "got 'ce', must be one of: trades, pgd_ce"},
      {"tscnc_epsilon_when_not_enabled", set("method.tscnc={sparsity: 0.1, adversarial: {epsilon: -0.1}}"),
       "spec.method.tscnc.adversarial.epsilon:", "got -0.1, must be >= 0"},
      {"ib_split", set("method.interaction_basis={num_samples: 10, split: test}"),
       "spec.method.interaction_basis.split:", "got 'test', must be one of: train, eval"},
      {"ib_edge_eps", set("method.interaction_basis={num_samples: 10, edge_eps: 0}"),
       "spec.method.interaction_basis.edge_eps:", "got 0, must be > 0"},
      {"ib_edge_eps_relative", set("method.interaction_basis={num_samples: 10, edge_eps_relative: 1}"),
       "spec.method.interaction_basis.edge_eps_relative:", "got 1, must be > 0 and < 1"},
      {"ib_resolution", set("method.interaction_basis={num_samples: 10, resolution: -1}"),
       "spec.method.interaction_basis.resolution:", "got -1, must be > 0"},
      {"ib_arch", [](v1::RunSpec* s) {
         ASSERT_TRUE(ApplyOverride("model.arch=cnn_small", s).ok());
         ASSERT_TRUE(ApplyOverride("method.interaction_basis={num_samples: 10}", s).ok());
       }, "spec.model.arch:", "got 'cnn_small', method interaction_basis supports mlp and block_mlp"},
      {"ib_activation", [](v1::RunSpec* s) {
         ASSERT_TRUE(ApplyOverride("model.activation=gelu", s).ok());
         ASSERT_TRUE(ApplyOverride("method.interaction_basis={num_samples: 10}", s).ok());
       }, "spec.model.activation:", "got 'gelu', method interaction_basis needs relu"},
      {"incremental_class_order_seed",
       set("method.incremental={base_classes: 2, classes_per_stage: 2, class_order_seed: 4294967296}"),
       "spec.method.incremental.class_order_seed:", "got 4294967296, must be in 0..4294967295 (< 2^32)"},
      {"nesterov_on_adam", set("optimizer={type: adam, lr: 0.001, nesterov: true}"), "spec.optimizer.nesterov:",
       "only for sgd/sgdp/adamp, optimizer.type is 'adam'"},
      {"eps_on_sgd", set("optimizer={type: sgd, lr: 0.1, eps: 1e-8}"), "spec.optimizer.eps:",
       "only for adam/adamw/adamp/sgdp, optimizer.type is 'sgd'"},
      {"eps_on_sgdp_range", set("optimizer={type: sgdp, lr: 0.1, eps: 0}"), "spec.optimizer.eps:",
       "got 0, must be > 0"},
      {"wd_ratio_on_adamw", set("optimizer={type: adamw, lr: 0.001, wd_ratio: 0.1}"), "spec.optimizer.wd_ratio:",
       "only for adamp/sgdp"},
      {"momentum_on_adamp", set("optimizer={type: adamp, lr: 0.001, momentum: 0.9}"), "spec.optimizer.momentum:",
       "only for sgd/sgdp"},
      {"sgdp_nesterov_without_momentum", set("optimizer={type: sgdp, lr: 0.1, nesterov: true}"),
       "spec.optimizer.nesterov:", "needs optimizer.momentum > 0"},
      {"gpus", set("resources.gpus=17"), "spec.resources.gpus:", "got 17, must be in 0..16"},
      {"gpu_fraction_with_gpus", set("resources={gpus: 2, gpu_fraction: 0.5}"), "spec.resources.gpu_fraction:",
       "cannot be combined with resources.gpus 2"},
      {"cpus", set("resources.cpus=300"), "spec.resources.cpus:", "0..256"},
      {"seed_too_big", set("seed=18446744073709551615"), "spec.seed:", "must be in 0..9223372036854775807"},
      {"checkpoint_every", set("checkpoint_every_steps=10000001"), "spec.checkpoint_every_steps:", "0..10000000"},
      {"priority", set("priority=101"), "spec.priority:", "got 101, must be in -100..100"},
      {"metrics_every_zero", set("logging.metrics_every_steps=0"), "spec.logging.metrics_every_steps:", "1..1000000"},
      {"init_both", set("init={from_run: 3, checkpoint_path: /x.ckpt}"), "spec.init.checkpoint_path:",
       "only one of init.from_run and init.checkpoint_path"},
      {"negative_teacher", set("distill.teacher_run=-2"), "spec.distill.teacher_run:", "got -2"},
      {"label_smoothing", set("loss.label_smoothing=1"), "spec.loss.label_smoothing:", "must be >= 0 and < 1"},
  };
}

TEST(RunSpecValidatorTest, EveryKindOfBadSpecNamesItsField) {
  const std::vector<BadKind> kinds = BadKinds();
  EXPECT_GE(kinds.size(), 25u);
  for (const BadKind& k : kinds) {
    SCOPED_TRACE(k.label);
    v1::RunSpec s = Valid();
    k.mutate(&s);
    absl::Status st = ValidateRunSpec(s);
    ASSERT_FALSE(st.ok()) << k.label << " was accepted";
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    bool found = false;
    for (const std::string& line : std::vector<std::string>(absl::StrSplit(std::string(st.message()), '\n'))) {
      if (line.rfind(k.path, 0) == 0 && line.find(k.what) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << "no line starting with \"" << k.path << "\" containing \"" << k.what
                       << "\" in:\n" << st.message();
  }
}

// Values at the edge of (or only just inside) the trainer's ranges are
// accepted: the validator must not refuse what pendulum-train would run.
TEST(RunSpecValidatorTest, TrainerRangeBoundariesAreAccepted) {
  for (const char* overlay : {
           "method.compander={family: mulaw}",  // the trainer's alias of mu_law
           "method.compander={family: mu_law, beta: 1000, a: 1e-9}",
           "method.compander={family: tanh, beta: 1, a_std_multiplier: 1e-9}",
           "method.compander={family: power, beta: 0.999, power_eps: 1e-12}",
           "method.compander={family: power, beta: 1e-9}",
           "method.tscnc={tsc: true, sparsity: 1, tsc_a: 1e-9, droprate_init: 0.999, pole_limit: 0.999, "
           "tsc_form: tl1_abs, cn_form: logcond, lambda0: 0, prior_weight_decay: 0, train_size: 1}",
           "method.tscnc={tsc: true, sparsity: 0.1, tsc_form: none, cn_form: slogdet, droprate_init: 0.001, "
           "pole_limit: 0.001, train_size: 0}",
           "method.tscnc={tsc: true, sparsity: 0.1, tsc_form: code}",
           "method.tscnc={sparsity: 0.1, adversarial: {epsilon: 0, start: none, loss: pgd_ce}}",
           "method.tscnc={sparsity: 0.1, adversarial: {enabled: true, epsilon: 0.03, start: uniform}}",
           "method.tscnc={sparsity: 0.1, adversarial: {start: gaussian, loss: trades}}",
           "method.interaction_basis={num_samples: 10, split: eval, edge_eps: 1e-300, edge_eps_relative: 0.999, "
           "resolution: 1e-9}",
           "method.interaction_basis={num_samples: 10, split: train, edge_eps_relative: 1e-9}",
           "method.incremental={base_classes: 2, classes_per_stage: 2, class_order_seed: 4294967295}",
           "method.incremental={base_classes: 2, classes_per_stage: 2, class_order_seed: 0}",
           // 10 classes as 2 + 3 + 3 + 2: the last stage takes the rest (PyCIL).
           "method.incremental={base_classes: 2, classes_per_stage: 3}",
           "optimizer={type: adamp, lr: 0.001, nesterov: true, eps: 1e-8, beta1: 0.9, delta: 0.1, wd_ratio: 0.1}",
           "optimizer={type: sgdp, lr: 0.1, momentum: 0.9, nesterov: true, eps: 1e-8, delta: 0.1, wd_ratio: 0}",
           "optimizer={type: adamw, lr: 0.001, eps: 1e-12}",
       }) {
    v1::RunSpec s = Valid();
    ASSERT_TRUE(ApplyOverride(overlay, &s).ok()) << overlay;
    EXPECT_TRUE(ValidateRunSpec(s).ok()) << overlay << "\n" << ValidateRunSpec(s);
  }
  v1::RunSpec s = Valid();
  ASSERT_TRUE(ApplyOverride("model.arch=block_mlp", &s).ok());
  ASSERT_TRUE(ApplyOverride("method.interaction_basis={num_samples: 10}", &s).ok());
  EXPECT_TRUE(ValidateRunSpec(s).ok()) << ValidateRunSpec(s);
}

TEST(RunSpecValidatorTest, ReportsAllErrorsAtOnce) {
  v1::RunSpec s = Valid();
  ASSERT_TRUE(ApplyOverride("optimizer.lr=-0.1", &s).ok());
  ASSERT_TRUE(ApplyOverride("schedule.batch_size=0", &s).ok());
  ASSERT_TRUE(ApplyOverride("model.arch=nope", &s).ok());
  s.clear_name();
  absl::Status st = ValidateRunSpec(s);
  std::vector<std::string> lines = absl::StrSplit(std::string(st.message()), '\n');
  EXPECT_EQ(lines.size(), 4u) << st;
  EXPECT_STATUS(st, kInvalidArgument, "spec.optimizer.lr: got -0.1, must be > 0");
  EXPECT_STATUS(st, kInvalidArgument, "spec.schedule.batch_size");
  EXPECT_STATUS(st, kInvalidArgument, "spec.model.arch");
  EXPECT_STATUS(st, kInvalidArgument, "spec.name");
}

TEST(RunSpecValidatorTest, EmptySpecListsEveryRequiredField) {
  absl::Status st = ValidateRunSpec(v1::RunSpec());
  for (const char* path : {"spec.name", "spec.model", "spec.data", "spec.optimizer", "spec.schedule"}) {
    EXPECT_STATUS(st, kInvalidArgument, path);
  }
}

TEST(RunSpecValidatorTest, IncrementalEpochsPerStageReplacesEpochs) {
  v1::RunSpec s = Valid();
  ASSERT_TRUE(ApplyOverride("schedule.epochs=0", &s).ok());
  ASSERT_TRUE(ApplyOverride("method.incremental={base_classes: 2, classes_per_stage: 2, epochs_per_stage: 3}", &s).ok());
  EXPECT_TRUE(ValidateRunSpec(s).ok()) << ValidateRunSpec(s);
}

}  // namespace
}  // namespace pendulum::spec
