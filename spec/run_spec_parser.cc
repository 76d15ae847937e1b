#include "spec/run_spec_parser.h"

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "spec/run_spec_validator.h"
#include "spec/yaml_message_reader.h"
#include "spec/yaml_message_writer.h"
#include "yaml-cpp/yaml.h"

namespace pendulum::spec {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr char kRoot[] = "spec";

std::string MarkText(const YAML::Mark& mark) {
  if (mark.line < 0) return "";
  return absl::StrCat(" (line ", mark.line + 1, ", column ", mark.column + 1, ")");
}

// Loads exactly one YAML document; errors become `*error`.
bool LoadOne(std::string_view text, YAML::Node* node, std::string* error) {
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(text));
    if (docs.size() > 1) {
      *error = absl::StrCat("expected one YAML document, got ", docs.size());
      return false;
    }
    *node = docs.empty() ? YAML::Node() : docs.front();
    return true;
  } catch (const YAML::Exception& e) {
    *error = absl::StrCat("malformed YAML/JSON: ", e.msg, MarkText(e.mark));
    return false;
  } catch (const std::exception& e) {
    *error = absl::StrCat("malformed YAML/JSON: ", e.what());
    return false;
  }
}

// Removes every entry of map field `field` in `m` whose key equals new_entry's.
void EraseMapKey(Message* m, const FieldDescriptor* field, const Message& new_entry) {
  const auto* r = m->GetReflection();
  const FieldDescriptor* value_field = field->message_type()->map_value();
  auto key_only = [&](const Message& entry) {
    std::unique_ptr<Message> copy(entry.New());
    copy->CopyFrom(entry);
    copy->GetReflection()->ClearField(copy.get(), value_field);
    return copy->SerializeAsString();
  };
  const std::string new_key = key_only(new_entry);
  for (int i = r->FieldSize(*m, field) - 1; i >= 0; --i) {
    if (key_only(r->GetRepeatedMessage(*m, field, i)) == new_key) {
      r->SwapElements(m, field, i, r->FieldSize(*m, field) - 1);
      r->RemoveLast(m, field);
    }
  }
}

}  // namespace

absl::StatusOr<v1::RunSpec> ParseRunSpec(std::string_view text) {
  if (text.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat(kRoot, ": spec text is ", text.size(),
                                                   " bytes; the limit is ", kMaxSpecBytes));
  }
  YAML::Node root;
  std::string error;
  if (!LoadOne(text, &root, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(kRoot, ": ", error));
  }
  v1::RunSpec spec;
  if (!root.IsMap()) {
    const char* got = root.IsSequence() ? "a list"
                      : root.IsScalar() ? "a single value"
                                        : "an empty document";
    return absl::InvalidArgumentError(absl::StrCat(
        kRoot, ": expected a mapping of fields at the top level, got ", got,
        "; allowed fields: ", YamlMessageReader::FieldNames(v1::RunSpec::descriptor())));
  }
  YamlMessageReader reader;
  reader.ReadMessage(root, kRoot, &spec);
  if (!reader.ok()) return absl::InvalidArgumentError(reader.JoinedErrors());
  return spec;
}

absl::Status ApplyOverride(std::string_view assignment, v1::RunSpec* spec) {
  const std::string context = absl::StrCat(" (in override '", std::string(assignment), "')");
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        kRoot, ": override must look like path=value, e.g. optimizer.lr=0.01", context));
  }
  const std::string path_text(assignment.substr(0, eq));
  const std::string value_text(assignment.substr(eq + 1));
  std::vector<std::string> segments = absl::StrSplit(path_text, '.');

  YamlMessageReader::Options options;
  options.with_marks = false;
  YamlMessageReader reader(options);
  YAML::Node value;
  std::string error;

  // Work on a copy so a failed override leaves *spec untouched (navigating
  // creates intermediate messages).
  v1::RunSpec scratch_spec = *spec;
  Message* message = &scratch_spec;
  std::string path = kRoot;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& segment = segments[i];
    const FieldDescriptor* field = message->GetDescriptor()->FindFieldByName(segment);
    const std::string field_path = absl::StrCat(path, ".", segment);
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          field_path, ": unknown field; allowed fields of ", path, ": ",
          YamlMessageReader::FieldNames(message->GetDescriptor()), context));
    }
    path = field_path;
    const bool last = i + 1 == segments.size();
    if (last) {
      if (!LoadOne(value_text, &value, &error)) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": ", error, context));
      }
      reader.ReadField(value, path, message, field);
      if (!reader.ok()) break;
      *spec = std::move(scratch_spec);
      return absl::OkStatus();
    }
    if (field->is_map()) {
      if (i + 2 != segments.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": set one entry as ", path.substr(sizeof(kRoot)), ".KEY=VALUE or the whole map as ",
            path.substr(sizeof(kRoot)), "={k: v}", context));
      }
      const std::string& key = segments[i + 1];
      if (!LoadOne(value_text, &value, &error)) {
        return absl::InvalidArgumentError(
            absl::StrCat(YamlMessageReader::MapKeyPath(path, key), ": ", error, context));
      }
      YAML::Node entry(YAML::NodeType::Map);
      entry[key] = value;
      std::unique_ptr<Message> scratch(message->New());
      reader.ReadField(entry, path, scratch.get(), field);
      if (!reader.ok()) break;
      const auto* r = scratch->GetReflection();
      if (r->FieldSize(*scratch, field) != 1) break;
      const Message& new_entry = r->GetRepeatedMessage(*scratch, field, 0);
      EraseMapKey(message, field, new_entry);
      message->GetReflection()->AddMessage(message, field)->CopyFrom(new_entry);
      *spec = std::move(scratch_spec);
      return absl::OkStatus();
    }
    if (field->is_repeated() || field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": has no sub-fields; set it whole, e.g. ", path.substr(sizeof(kRoot)),
          field->is_repeated() ? "=[a,b]" : "=VALUE", context));
    }
    message = message->GetReflection()->MutableMessage(message, field);
  }
  std::string lines;
  for (absl::string_view line : absl::StrSplit(reader.JoinedErrors(), '\n')) {
    if (!lines.empty()) lines += "\n";
    absl::StrAppend(&lines, line, context);
  }
  if (lines.empty()) lines = absl::StrCat(path, ": could not apply", context);
  return absl::InvalidArgumentError(lines);
}

absl::StatusOr<v1::RunSpec> LoadRunSpec(std::string_view text,
                                        const std::vector<std::string>& overrides) {
  absl::StatusOr<v1::RunSpec> parsed = ParseRunSpec(text);
  if (!parsed.ok()) return parsed.status();
  v1::RunSpec spec = *std::move(parsed);
  std::vector<std::string> errors;
  for (const std::string& assignment : overrides) {
    absl::Status s = ApplyOverride(assignment, &spec);
    if (!s.ok()) errors.emplace_back(s.message());
  }
  // Validation of a half-applied spec would only add noise: stop here.
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  absl::Status valid = ValidateRunSpec(spec);
  if (!valid.ok()) return valid;
  return spec;
}

std::string RunSpecToYaml(const v1::RunSpec& spec) { return MessageToYaml(spec); }

}  // namespace pendulum::spec
