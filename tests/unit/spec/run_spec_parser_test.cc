#include "spec/run_spec_parser.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "pendulum/v1/run.pb.h"
#include "spec/yaml_message_reader.h"
#include "spec/yaml_message_writer.h"
#include "tests/unit/spec/spec_test_util.h"

namespace pendulum::spec {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr char kBase[] = R"(
name: base
model: {arch: mlp, hidden: [64, 32]}
data: {dataset: synthetic}
optimizer: {type: sgd, lr: 0.1}
schedule: {epochs: 1, batch_size: 32}
)";

v1::RunSpec MustParse(const std::string& text) {
  absl::StatusOr<v1::RunSpec> spec = ParseRunSpec(text);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : v1::RunSpec();
}

size_t Lines(const absl::Status& s) {
  return std::vector<std::string>(absl::StrSplit(std::string(s.message()), '\n')).size();
}

// A spec touching every kind of field: strings, ints, uint64, doubles, bools,
// repeated scalars, maps, nested messages, a oneof member, proto3 optional set to 0.
v1::RunSpec RichSpec() {
  v1::RunSpec s;
  s.set_name("rich: run #1");
  s.set_description("multi\nline \"quoted\" text");
  (*s.mutable_tags())["team"] = "vision";
  (*s.mutable_tags())["id"] = "0042";
  (*s.mutable_tags())["flag"] = "true";
  s.mutable_model()->set_arch("vit_tiny28");
  s.mutable_model()->mutable_vit()->set_dim(64);
  s.mutable_model()->mutable_vit()->set_mlp_ratio(2.5);
  s.mutable_model()->set_fc_bias(false);
  s.mutable_data()->set_dataset("synthetic");
  s.mutable_data()->mutable_synthetic()->add_shape(1);
  s.mutable_data()->mutable_synthetic()->add_shape(28);
  s.mutable_data()->mutable_synthetic()->add_shape(28);
  s.mutable_data()->mutable_synthetic()->set_noise(0.1);
  auto* ofq = s.mutable_method()->mutable_ofq();
  ofq->set_weight_bits(2);
  ofq->set_act_bits(4);
  ofq->set_qk_reparam(true);
  ofq->mutable_cga()->set_enabled(true);
  ofq->mutable_cga()->set_boundary_range(0.005);
  ofq->mutable_oscillation()->add_thresholds(0.005);
  ofq->mutable_oscillation()->add_thresholds(0.02);
  ofq->mutable_oscillation()->set_start_step(200);
  s.mutable_optimizer()->set_type("adamw");
  s.mutable_optimizer()->set_lr(1e-3);
  s.mutable_optimizer()->set_beta1(0.0);  // optional, present with the default value
  s.mutable_optimizer()->set_eps(1e-12);
  s.mutable_schedule()->set_epochs(4);
  s.mutable_schedule()->set_max_steps(12345678901234ULL);
  s.mutable_schedule()->set_batch_size(128);
  s.mutable_schedule()->set_eval_every_epochs(0);
  s.mutable_resources()->set_gpu_fraction(0.25);
  (*s.mutable_resources()->mutable_node_labels())["gpu/type"] = "h100";
  s.set_seed(9223372036854775807ULL);
  s.set_priority(-5);
  s.mutable_distill()->set_teacher_run(17);
  s.mutable_distill()->set_temperature(1.0 / 3.0);
  return s;
}

TEST(RunSpecParserTest, ParsesYamlIntoFields) {
  v1::RunSpec s = MustParse(kBase);
  EXPECT_EQ(s.name(), "base");
  EXPECT_EQ(s.model().arch(), "mlp");
  ASSERT_EQ(s.model().hidden_size(), 2);
  EXPECT_EQ(s.model().hidden(1), 32u);
  EXPECT_DOUBLE_EQ(s.optimizer().lr(), 0.1);
  EXPECT_EQ(s.schedule().batch_size(), 32u);
  EXPECT_FALSE(s.has_method());
}

TEST(RunSpecParserTest, JsonAndYamlGiveTheSameMessage) {
  const std::string json = R"({"name": "base", "model": {"arch": "mlp", "hidden": [64, 32]},
    "data": {"dataset": "synthetic"}, "optimizer": {"type": "sgd", "lr": 0.1},
    "schedule": {"epochs": 1, "batch_size": 32}})";
  EXPECT_TRUE(MessageDifferencer::Equals(MustParse(json), MustParse(kBase)));
}

TEST(RunSpecParserTest, RichSpecRoundTripsThroughYaml) {
  const v1::RunSpec original = RichSpec();
  const std::string yaml = RunSpecToYaml(original);
  v1::RunSpec back = MustParse(yaml);
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(original, back)) << diff << "\n" << yaml;
  EXPECT_TRUE(back.optimizer().has_beta1()) << "optional presence lost";
  EXPECT_TRUE(back.schedule().has_eval_every_epochs());
  EXPECT_FALSE(back.optimizer().has_beta2());
  EXPECT_EQ(RunSpecToYaml(back), yaml) << "rendering is not deterministic";
}

TEST(RunSpecParserTest, EmptyOneofMemberRoundTrips) {
  v1::RunSpec s = MustParse(std::string(kBase) + "method: {plain: {}}\n");
  EXPECT_TRUE(s.method().has_plain());
  v1::RunSpec s2 = MustParse(std::string(kBase) + "method:\n  plain:\n");
  EXPECT_TRUE(s2.method().has_plain()) << "`plain:` with nothing below selects plain";
  EXPECT_TRUE(MustParse(RunSpecToYaml(s)).method().has_plain()) << RunSpecToYaml(s);
}

TEST(RunSpecParserTest, FormatDoubleIsShortestExact) {
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(1e-5), "1e-05");
  EXPECT_EQ(FormatDouble(2), "2.0");
  for (double v : {1.0 / 3.0, 6.02214076e23, -2.5e-300, 0.3}) {
    EXPECT_EQ(std::stod(FormatDouble(v)), v);
  }
}

TEST(RunSpecParserTest, AcceptsIntegersInExponentNotation) {
  v1::RunSpec s = MustParse(std::string(kBase) + "checkpoint_every_steps: 1e4\n");
  EXPECT_EQ(s.checkpoint_every_steps(), 10000u);
}

TEST(RunSpecParserTest, NullLeavesScalarUnset) {
  v1::RunSpec s = MustParse(std::string(kBase) + "description:\nseed: null\n");
  EXPECT_EQ(s.description(), "");
  EXPECT_EQ(s.seed(), 0u);
}

TEST(RunSpecParserTest, AnchorsAndAliasesWork) {
  v1::RunSpec s = MustParse(std::string(kBase) + "tags: &t {a: b}\nresources: {node_labels: *t}\n");
  EXPECT_EQ(s.resources().node_labels().at("a"), "b");
}

// ---- errors: each names the path and is INVALID_ARGUMENT ----

struct BadCase {
  const char* label;
  std::string text;
  const char* expect;  // must appear in the message
};

class RunSpecParseErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(RunSpecParseErrorTest, RejectedWithPath) {
  const BadCase& c = GetParam();
  absl::StatusOr<v1::RunSpec> s = ParseRunSpec(c.text);
  ASSERT_FALSE(s.ok()) << c.label;
  EXPECT_STATUS(s, kInvalidArgument, c.expect);
}

std::string With(const std::string& extra) { return std::string(kBase) + extra; }

INSTANTIATE_TEST_SUITE_P(
    Kinds, RunSpecParseErrorTest,
    ::testing::Values(
        BadCase{"unknown_top", With("learning_rate: 0.1\n"),
                "spec.learning_rate: unknown field; allowed fields of spec: name, description"},
        BadCase{"unknown_nested", "name: x\noptimizer: {type: sgd, lrr: 0.1}\n",
                "spec.optimizer.lrr: unknown field; allowed fields of spec.optimizer: type, lr,"},
        BadCase{"wrong_type_uint", "name: x\nschedule: {batch_size: abc}\n",
                "spec.schedule.batch_size: expected a non-negative integer, got 'abc' (line 2"},
        BadCase{"negative_uint", "schedule: {epochs: -3}\n",
                "spec.schedule.epochs: expected a non-negative integer, got '-3'"},
        BadCase{"uint32_overflow", "schedule: {batch_size: 5000000000}\n",
                "spec.schedule.batch_size: got '5000000000', out of range for uint32"},
        BadCase{"int32_overflow", "priority: 3000000000\n",
                "spec.priority: got '3000000000', out of range for int32"},
        BadCase{"uint64_overflow", "seed: 99999999999999999999999\n",
                "spec.seed: got '99999999999999999999999', out of range for uint64"},
        BadCase{"fraction_for_int", "schedule: {epochs: 1.5}\n",
                "spec.schedule.epochs: expected a non-negative integer, got '1.5'"},
        BadCase{"word_for_double", "optimizer: {lr: fast}\n",
                "spec.optimizer.lr: expected a number, got 'fast'"},
        BadCase{"quoted_number", "optimizer: {lr: \"0.1\"}\n",
                "spec.optimizer.lr: expected a number, got the quoted string '0.1'"},
        BadCase{"nan", "optimizer: {lr: .nan}\n", "spec.optimizer.lr: expected a number"},
        BadCase{"double_overflow", "optimizer: {lr: 1e999}\n",
                "spec.optimizer.lr: got '1e999', out of range for a double"},
        BadCase{"bad_bool", "optimizer: {nesterov: maybe}\n",
                "spec.optimizer.nesterov: expected true or false, got 'maybe'"},
        BadCase{"list_for_scalar", "name: [a, b]\n", "spec.name: expected a string, got a list"},
        BadCase{"map_for_list", "model: {hidden: {a: 1}}\n",
                "spec.model.hidden: expected a list (e.g. [a, b]) of a non-negative integer, got a mapping"},
        BadCase{"scalar_for_list", "model: {hidden: 256}\n", "spec.model.hidden: expected a list"},
        BadCase{"bad_list_element", "model: {hidden: [1, x, 3]}\n",
                "spec.model.hidden[1]: expected a non-negative integer, got 'x'"},
        BadCase{"scalar_for_message", "model: mlp\n",
                "spec.model: expected a mapping of fields, got 'mlp'"},
        BadCase{"list_for_map", "tags: [a, b]\n", "spec.tags: expected a mapping of key: value"},
        BadCase{"map_value_type", "tags: {team: [1]}\n", "spec.tags.team: expected a string, got a list"},
        BadCase{"two_oneof_members", "method: {ofq: {weight_bits: 2}, incremental: {}}\n",
                "spec.method.incremental: only one of plain, ofq, incremental, compander, tscnc, "
                "interaction_basis may be set in spec.method, but both ofq and incremental are"},
        BadCase{"duplicate_key", "name: a\nname: b\n", "spec.name: duplicate key (each field may appear once) (line 2"},
        BadCase{"duplicate_map_key", "tags: {a: x, a: y}\n", "spec.tags.a: duplicate key"},
        BadCase{"malformed_yaml", "name: x\nmodel: {arch: mlp\ndata: 1\n", "spec: malformed YAML/JSON:"},
        BadCase{"malformed_json", "{\"name\": \"x\", \"model\": }}", "spec: malformed YAML/JSON:"},
        BadCase{"top_level_list", "- name: x\n", "spec: expected a mapping of fields at the top level, got a list"},
        BadCase{"top_level_scalar", "just text", "got a single value"},
        BadCase{"empty", "", "got an empty document"},
        BadCase{"two_documents", "name: a\n---\nname: b\n", "spec: expected one YAML document, got 2"},
        BadCase{"non_scalar_key", "? [a, b]\n: 1\n", "spec: field names must be plain words"},
        BadCase{"deep_nesting", std::string(5000, '[') + std::string(5000, ']'), "spec:"},
        BadCase{"huge", "name: x\ndescription: \"" + std::string(kMaxSpecBytes, 'a') + "\"\n",
                "spec: spec text is 1048"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.label; });

TEST(RunSpecParserTest, MalformedYamlReportsLineAndColumn) {
  absl::StatusOr<v1::RunSpec> s = ParseRunSpec("name: x\nmodel: {arch: mlp\ndata: 1\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("(line "), std::string::npos) << s.status();
  EXPECT_NE(std::string(s.status().message()).find("column "), std::string::npos) << s.status();
}

TEST(RunSpecParserTest, ReportsEveryErrorOnePerLine) {
  absl::StatusOr<v1::RunSpec> s = ParseRunSpec(
      "name: x\nbogus: 1\nschedule: {batch_size: abc, epochs: -1}\noptimizer: {lr: fast}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Lines(s.status()), 4u) << s.status();
  for (const char* path : {"spec.bogus", "spec.schedule.batch_size", "spec.schedule.epochs", "spec.optimizer.lr"}) {
    EXPECT_STATUS(s, kInvalidArgument, path);
  }
}

TEST(RunSpecParserTest, ErrorCountIsCapped) {
  std::string text;
  for (int i = 0; i < 300; ++i) absl::StrAppend(&text, "bogus", i, ": 1\n");
  absl::StatusOr<v1::RunSpec> s = ParseRunSpec(text);
  ASSERT_FALSE(s.ok());
  EXPECT_STATUS(s, kInvalidArgument, "... and 200 more errors");
}

// The reader is descriptor-driven: any message works, enums included.
TEST(YamlMessageReaderTest, ReadsEnumsAndNestedMessagesOfAnyType) {
  YamlMessageReader reader;
  v1::Run run;
  reader.ReadMessage(YAML::Load("id: 7\nstate: RUNNING\nspec: {name: n, seed: 3}\n"
                                "progress: {step: 10, last_loss: 0.5}\n"),
                     "run", &run);
  ASSERT_TRUE(reader.ok()) << reader.JoinedErrors();
  EXPECT_EQ(run.state(), v1::RUNNING);
  EXPECT_EQ(run.spec().seed(), 3u);
  EXPECT_EQ(run.progress().step(), 10);

  YamlMessageReader by_number;
  v1::Run run2;
  by_number.ReadMessage(YAML::Load("state: 5"), "run", &run2);
  ASSERT_TRUE(by_number.ok());
  EXPECT_EQ(run2.state(), v1::SUCCEEDED);

  YamlMessageReader bad;
  v1::Run run3;
  bad.ReadMessage(YAML::Load("state: SLEEPING"), "run", &run3);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.JoinedErrors().find("run.state: expected one of RUN_STATE_UNSPECIFIED, QUEUED"),
            std::string::npos)
      << bad.JoinedErrors();
}

// ---- overrides ----

TEST(ApplyOverrideTest, SetsNestedScalar) {
  v1::RunSpec s = MustParse(kBase);
  ASSERT_TRUE(ApplyOverride("optimizer.lr=0.01", &s).ok());
  EXPECT_DOUBLE_EQ(s.optimizer().lr(), 0.01);
  ASSERT_TRUE(ApplyOverride("seed=42", &s).ok());
  EXPECT_EQ(s.seed(), 42u);
  ASSERT_TRUE(ApplyOverride("name=has=equals", &s).ok());
  EXPECT_EQ(s.name(), "has=equals");
}

TEST(ApplyOverrideTest, ReplacesRepeatedWithFlowList) {
  v1::RunSpec s = MustParse(kBase);
  ASSERT_TRUE(ApplyOverride("model.hidden=[256, 256, 128]", &s).ok());
  ASSERT_EQ(s.model().hidden_size(), 3);
  EXPECT_EQ(s.model().hidden(2), 128u);
  ASSERT_TRUE(ApplyOverride("model.hidden=[]", &s).ok());
  EXPECT_EQ(s.model().hidden_size(), 0);
}

TEST(ApplyOverrideTest, SetsMapEntryAndWholeMap) {
  v1::RunSpec s = MustParse(With("tags: {a: '1', b: '2'}\n"));
  ASSERT_TRUE(ApplyOverride("tags.a=changed", &s).ok());
  ASSERT_TRUE(ApplyOverride("tags.c=new", &s).ok());
  EXPECT_EQ(s.tags().size(), 3u);
  EXPECT_EQ(s.tags().at("a"), "changed");
  EXPECT_EQ(s.tags().at("c"), "new");
  ASSERT_TRUE(ApplyOverride("resources.node_labels={gpu_type: h100}", &s).ok());
  EXPECT_EQ(s.resources().node_labels().at("gpu_type"), "h100");
  ASSERT_TRUE(ApplyOverride("tags={only: one}", &s).ok());
  EXPECT_EQ(s.tags().size(), 1u);
}

TEST(ApplyOverrideTest, CreatesNestedMessagesAndSwitchesOneof) {
  v1::RunSpec s = MustParse(With("method: {plain: {}}\n"));
  ASSERT_TRUE(ApplyOverride("method.ofq.weight_bits=3", &s).ok());
  EXPECT_TRUE(s.method().has_ofq());
  EXPECT_EQ(s.method().ofq().weight_bits(), 3u);
  ASSERT_TRUE(ApplyOverride("method.ofq.cga={enabled: true, boundary_range: 0.01}", &s).ok());
  EXPECT_TRUE(s.method().ofq().cga().enabled());
  EXPECT_TRUE(s.method().ofq().cga().has_boundary_range());
  EXPECT_EQ(s.method().ofq().weight_bits(), 3u) << "sibling fields must survive";
}

TEST(ApplyOverrideTest, EmptyValueClears) {
  v1::RunSpec s = MustParse(With("description: hello\n"));
  ASSERT_TRUE(ApplyOverride("description=", &s).ok());
  EXPECT_EQ(s.description(), "");
}

TEST(ApplyOverrideTest, ErrorsNamePathAndLeaveSpecUnchanged) {
  const v1::RunSpec before = MustParse(kBase);
  struct Bad {
    const char* assignment;
    const char* expect;
  };
  for (const Bad& b : {
           Bad{"optimizer.lrr=0.1", "spec.optimizer.lrr: unknown field; allowed fields of spec.optimizer"},
           Bad{"optimizer.lr=fast", "spec.optimizer.lr: expected a number, got 'fast' (in override 'optimizer.lr=fast')"},
           Bad{"schedule.batch_size=-1", "spec.schedule.batch_size: expected a non-negative integer"},
           Bad{"model.hidden=[1, x]", "spec.model.hidden[1]: expected a non-negative integer"},
           Bad{"model.arch.x=1", "spec.model.arch: has no sub-fields"},
           Bad{"model.vit.bogus=1", "spec.model.vit.bogus: unknown field"},
           Bad{"tags.a.b=1", "spec.tags: set one entry as tags.KEY=VALUE"},
           Bad{"nothing", "spec: override must look like path=value"},
           Bad{"=3", "spec: override must look like path=value"},
           Bad{"optimizer.lr=[1", "spec.optimizer.lr: malformed YAML/JSON"},
       }) {
    v1::RunSpec s = before;
    absl::Status st = ApplyOverride(b.assignment, &s);
    EXPECT_STATUS(st, kInvalidArgument, b.expect);
    EXPECT_TRUE(MessageDifferencer::Equals(s, before)) << b.assignment << " changed the spec";
  }
}

TEST(LoadRunSpecTest, ParsesOverridesThenValidates) {
  absl::StatusOr<v1::RunSpec> s = LoadRunSpec(kBase, {"optimizer.lr=0.5", "seed=3"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->optimizer().lr(), 0.5);
  EXPECT_STATUS(LoadRunSpec(kBase, {"optimizer.lr=-1"}), kInvalidArgument,
                "spec.optimizer.lr: got -1, must be > 0");
  absl::StatusOr<v1::RunSpec> two = LoadRunSpec(kBase, {"optimizer.x=1", "seed=abc"});
  EXPECT_STATUS(two, kInvalidArgument, "spec.optimizer.x");
  EXPECT_STATUS(two, kInvalidArgument, "spec.seed");
}

}  // namespace
}  // namespace pendulum::spec
