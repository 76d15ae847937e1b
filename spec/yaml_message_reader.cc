#include "spec/yaml_message_reader.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pendulum::spec {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A scalar converted to the field's type, ready to Set or Add.
struct ScalarValue {
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  bool b = false;
  std::string s;
  const EnumValueDescriptor* e = nullptr;
};

std::string Quote(const std::string& text) {
  constexpr size_t kMax = 60;
  std::string shown = text.size() > kMax ? text.substr(0, kMax) + "..." : text;
  return absl::StrCat("'", shown, "'");
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!") return absl::StrCat("the quoted string ", Quote(node.Scalar()));
      return Quote(node.Scalar());
    default:
      return "nothing";
  }
}

bool IsIntegerType(FieldDescriptor::CppType t) {
  return t == FieldDescriptor::CPPTYPE_INT32 || t == FieldDescriptor::CPPTYPE_INT64 ||
         t == FieldDescriptor::CPPTYPE_UINT32 || t == FieldDescriptor::CPPTYPE_UINT64;
}

std::string Expected(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
      return "an integer";
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "a non-negative integer";
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return "a number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_STRING:
      return "a string";
    case FieldDescriptor::CPPTYPE_ENUM: {
      std::vector<std::string> names;
      const auto* en = field->enum_type();
      for (int i = 0; i < en->value_count(); ++i) names.push_back(en->value(i)->name());
      return absl::StrCat("one of ", absl::StrJoin(names, ", "));
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "a mapping";
  }
  return "a value";
}

// Integer text: decimal with optional sign, or an exactly integral number in
// exponent/decimal notation ("1e6"), as people write step counts.
// Returns false if not an integer at all; *negative / magnitude describe it.
bool ParseInteger(const std::string& text, bool* negative, uint64_t* magnitude, bool* too_big) {
  *too_big = false;
  std::string t(absl::StripAsciiWhitespace(text));
  if (t.empty()) return false;
  *negative = t[0] == '-';
  std::string digits = (t[0] == '-' || t[0] == '+') ? t.substr(1) : t;
  if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(digits, &v)) {
      *too_big = true;
      return true;
    }
    *magnitude = v;
    return true;
  }
  double d = 0;
  if (digits.find_first_not_of("0123456789.eE+-") != std::string::npos) return false;
  if (!absl::SimpleAtod(t, &d) || !std::isfinite(d) || std::floor(d) != d) return false;
  *negative = d < 0;
  double mag = std::fabs(d);
  if (mag >= 18446744073709551616.0) {
    *too_big = true;
    return true;
  }
  *magnitude = static_cast<uint64_t>(mag);
  return true;
}

}  // namespace

std::string YamlMessageReader::MapKeyPath(const std::string& path, const std::string& key) {
  bool plain = !key.empty();
  for (char c : key) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) plain = false;
  }
  if (plain) return absl::StrCat(path, ".", key);
  return absl::StrCat(path, "[\"", key, "\"]");
}

std::string YamlMessageReader::FieldNames(const Descriptor* descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor->field_count(); ++i) names.push_back(descriptor->field(i)->name());
  return absl::StrJoin(names, ", ");
}

void YamlMessageReader::AddError(const std::string& line) {
  if (errors_.size() >= options_.max_errors) {
    ++dropped_errors_;
    return;
  }
  errors_.push_back(line);
}

std::string YamlMessageReader::JoinedErrors() const {
  std::string out = absl::StrJoin(errors_, "\n");
  if (dropped_errors_ > 0) absl::StrAppend(&out, "\n... and ", dropped_errors_, " more errors");
  return out;
}

void YamlMessageReader::Error(const YAML::Node& node, const std::string& path,
                              const std::string& what) {
  std::string line = absl::StrCat(path, ": ", what);
  if (options_.with_marks && node.IsDefined() && node.Mark().line >= 0) {
    absl::StrAppend(&line, " (line ", node.Mark().line + 1, ", column ", node.Mark().column + 1, ")");
  }
  AddError(line);
}

bool YamlMessageReader::Enter(const YAML::Node& node, const std::string& path, int depth) {
  if (node_limit_hit_) return false;
  if (++nodes_ > options_.max_nodes) {
    node_limit_hit_ = true;
    Error(node, path, absl::StrCat("document too large: more than ", options_.max_nodes,
                                   " values (are YAML aliases expanding?)"));
    return false;
  }
  if (depth > options_.max_depth) {
    Error(node, path, absl::StrCat("nested deeper than ", options_.max_depth, " levels"));
    return false;
  }
  return true;
}

void YamlMessageReader::ReadMessage(const YAML::Node& node, const std::string& path,
                                    Message* message) {
  ReadMessageAt(node, path, message, 0);
}

void YamlMessageReader::ReadField(const YAML::Node& node, const std::string& path,
                                  Message* message, const FieldDescriptor* field) {
  ReadFieldAt(node, path, message, field, 0);
}

void YamlMessageReader::ReadMessageAt(const YAML::Node& node, const std::string& path,
                                      Message* message, int depth) {
  if (!Enter(node, path, depth)) return;
  if (node.IsNull()) return;  // `model:` with nothing below: present, all defaults
  if (!node.IsMap()) {
    Error(node, path, absl::StrCat("expected a mapping of fields, got ", Describe(node)));
    return;
  }
  const Descriptor* descriptor = message->GetDescriptor();
  std::set<std::string> seen;
  // oneof name -> the member set in this mapping, to report two set at once.
  std::map<const google::protobuf::OneofDescriptor*, std::string> oneof_set;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node& key = it->first;
    const YAML::Node& value = it->second;
    if (!key.IsScalar()) {
      Error(key, path, absl::StrCat("field names must be plain words, got ", Describe(key)));
      continue;
    }
    const std::string name = key.Scalar();
    const std::string field_path = absl::StrCat(path, ".", name);
    if (!seen.insert(name).second) {
      Error(key, field_path, "duplicate key (each field may appear once)");
      continue;
    }
    const FieldDescriptor* field = descriptor->FindFieldByName(name);
    if (field == nullptr) {
      Error(key, field_path,
            absl::StrCat("unknown field; allowed fields of ", path, ": ", FieldNames(descriptor)));
      continue;
    }
    if (const auto* oneof = field->real_containing_oneof()) {
      auto [pos, inserted] = oneof_set.emplace(oneof, name);
      if (!inserted) {
        std::vector<std::string> members;
        for (int i = 0; i < oneof->field_count(); ++i) members.push_back(oneof->field(i)->name());
        Error(key, field_path,
              absl::StrCat("only one of ", absl::StrJoin(members, ", "), " may be set in ", path,
                           ", but both ", pos->second, " and ", name, " are"));
        continue;
      }
    }
    ReadFieldAt(value, field_path, message, field, depth + 1);
  }
}

void YamlMessageReader::ReadFieldAt(const YAML::Node& node, const std::string& path,
                                    Message* message, const FieldDescriptor* field, int depth) {
  const Reflection* reflection = message->GetReflection();
  if (field->is_map()) {
    if (!Enter(node, path, depth)) return;
    reflection->ClearField(message, field);
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      Error(node, path, absl::StrCat("expected a mapping of key: value, got ", Describe(node)));
      return;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second) {
        Error(it->first, MapKeyPath(path, it->first.Scalar()), "duplicate key");
        continue;
      }
      ReadMapEntry(it->first, it->second, path, message, field, depth + 1);
    }
    return;
  }
  if (field->is_repeated()) {
    if (!Enter(node, path, depth)) return;
    reflection->ClearField(message, field);
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      Error(node, path, absl::StrCat("expected a list (e.g. [a, b]) of ", Expected(field),
                                     ", got ", Describe(node)));
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      AddRepeated(node[i], absl::StrCat(path, "[", i, "]"), message, field, depth + 1);
    }
    return;
  }
  ReadSingular(node, path, message, field, depth);
}

namespace {

// Converts a scalar node for `field`; on failure returns the error text.
bool ConvertScalar(const YAML::Node& node, const FieldDescriptor* field, ScalarValue* out,
                   std::string* error) {
  const auto type = field->cpp_type();
  if (!node.IsScalar()) {
    *error = absl::StrCat("expected ", Expected(field), ", got ", Describe(node));
    return false;
  }
  const std::string& text = node.Scalar();
  const bool quoted = node.Tag() == "!";
  if (type == FieldDescriptor::CPPTYPE_STRING) {
    out->s = text;
    return true;
  }
  if (quoted && type != FieldDescriptor::CPPTYPE_ENUM) {
    *error = absl::StrCat("expected ", Expected(field), ", got ", Describe(node),
                          " (remove the quotes)");
    return false;
  }
  if (IsIntegerType(type)) {
    bool negative = false, too_big = false;
    uint64_t magnitude = 0;
    if (!ParseInteger(text, &negative, &magnitude, &too_big)) {
      *error = absl::StrCat("expected ", Expected(field), ", got ", Describe(node));
      return false;
    }
    uint64_t max_pos = 0;
    uint64_t max_neg = 0;  // magnitude of the most negative value
    const char* type_name = "";
    switch (type) {
      case FieldDescriptor::CPPTYPE_INT32:
        max_pos = std::numeric_limits<int32_t>::max();
        max_neg = uint64_t{1} << 31;
        type_name = "int32 (-2147483648..2147483647)";
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        max_pos = std::numeric_limits<int64_t>::max();
        max_neg = uint64_t{1} << 63;
        type_name = "int64";
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        max_pos = std::numeric_limits<uint32_t>::max();
        type_name = "uint32 (0..4294967295)";
        break;
      default:
        max_pos = std::numeric_limits<uint64_t>::max();
        type_name = "uint64 (0..18446744073709551615)";
        break;
    }
    const bool fits = !too_big && (negative ? (magnitude == 0 || magnitude <= max_neg)
                                            : magnitude <= max_pos);
    if (!fits) {
      if (negative && max_neg == 0) {
        *error = absl::StrCat("expected ", Expected(field), ", got ", Quote(text));
      } else {
        *error = absl::StrCat("got ", Quote(text), ", out of range for ", type_name);
      }
      return false;
    }
    if (negative) {
      out->i = magnitude == (uint64_t{1} << 63) ? std::numeric_limits<int64_t>::min()
                                                 : -static_cast<int64_t>(magnitude);
    } else {
      out->i = static_cast<int64_t>(magnitude);
      out->u = magnitude;
    }
    return true;
  }
  if (type == FieldDescriptor::CPPTYPE_DOUBLE || type == FieldDescriptor::CPPTYPE_FLOAT) {
    double d = 0;
    std::string t(absl::StripAsciiWhitespace(text));
    bool looks_numeric = !t.empty() && t.find_first_not_of("0123456789.eE+-") == std::string::npos;
    if (!looks_numeric || !absl::SimpleAtod(t, &d)) {
      *error = absl::StrCat("expected a number, got ", Describe(node));
      return false;
    }
    if (!std::isfinite(d) ||
        (type == FieldDescriptor::CPPTYPE_FLOAT && std::fabs(d) > std::numeric_limits<float>::max())) {
      *error = absl::StrCat("got ", Quote(text), ", out of range for a ",
                            type == FieldDescriptor::CPPTYPE_FLOAT ? "float" : "double");
      return false;
    }
    out->d = d;
    return true;
  }
  if (type == FieldDescriptor::CPPTYPE_BOOL) {
    std::string lower = absl::AsciiStrToLower(text);
    if (lower == "true") {
      out->b = true;
      return true;
    }
    if (lower == "false") {
      out->b = false;
      return true;
    }
    *error = absl::StrCat("expected true or false, got ", Describe(node));
    return false;
  }
  if (type == FieldDescriptor::CPPTYPE_ENUM) {
    const auto* en = field->enum_type();
    const EnumValueDescriptor* value = en->FindValueByName(text);
    int number = 0;
    if (value == nullptr && absl::SimpleAtoi(text, &number)) value = en->FindValueByNumber(number);
    if (value == nullptr) {
      *error = absl::StrCat("expected ", Expected(field), ", got ", Quote(text));
      return false;
    }
    out->e = value;
    return true;
  }
  *error = absl::StrCat("expected ", Expected(field), ", got ", Describe(node));
  return false;
}

void SetScalar(Message* m, const FieldDescriptor* f, const ScalarValue& v) {
  const Reflection* r = m->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(m, f, static_cast<int32_t>(v.i)); break;
    case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(m, f, v.i); break;
    case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(m, f, static_cast<uint32_t>(v.u)); break;
    case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(m, f, v.u); break;
    case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(m, f, v.d); break;
    case FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(m, f, static_cast<float>(v.d)); break;
    case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(m, f, v.b); break;
    case FieldDescriptor::CPPTYPE_STRING: r->SetString(m, f, v.s); break;
    case FieldDescriptor::CPPTYPE_ENUM: r->SetEnum(m, f, v.e); break;
    case FieldDescriptor::CPPTYPE_MESSAGE: break;
  }
}

void AddScalar(Message* m, const FieldDescriptor* f, const ScalarValue& v) {
  const Reflection* r = m->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: r->AddInt32(m, f, static_cast<int32_t>(v.i)); break;
    case FieldDescriptor::CPPTYPE_INT64: r->AddInt64(m, f, v.i); break;
    case FieldDescriptor::CPPTYPE_UINT32: r->AddUInt32(m, f, static_cast<uint32_t>(v.u)); break;
    case FieldDescriptor::CPPTYPE_UINT64: r->AddUInt64(m, f, v.u); break;
    case FieldDescriptor::CPPTYPE_DOUBLE: r->AddDouble(m, f, v.d); break;
    case FieldDescriptor::CPPTYPE_FLOAT: r->AddFloat(m, f, static_cast<float>(v.d)); break;
    case FieldDescriptor::CPPTYPE_BOOL: r->AddBool(m, f, v.b); break;
    case FieldDescriptor::CPPTYPE_STRING: r->AddString(m, f, v.s); break;
    case FieldDescriptor::CPPTYPE_ENUM: r->AddEnum(m, f, v.e); break;
    case FieldDescriptor::CPPTYPE_MESSAGE: break;
  }
}

}  // namespace

void YamlMessageReader::ReadSingular(const YAML::Node& node, const std::string& path,
                                     Message* message, const FieldDescriptor* field, int depth) {
  const Reflection* reflection = message->GetReflection();
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    // Replace, do not merge: an override "model.vit={dim: 64}" means exactly that.
    reflection->ClearField(message, field);
    ReadMessageAt(node, path, reflection->MutableMessage(message, field), depth);
    return;
  }
  if (!Enter(node, path, depth)) return;
  if (node.IsNull()) {
    reflection->ClearField(message, field);  // `lr:` or `lr: null` = leave unset
    return;
  }
  ScalarValue value;
  std::string error;
  if (!ConvertScalar(node, field, &value, &error)) {
    Error(node, path, error);
    return;
  }
  SetScalar(message, field, value);
}

void YamlMessageReader::AddRepeated(const YAML::Node& node, const std::string& path,
                                    Message* message, const FieldDescriptor* field, int depth) {
  const Reflection* reflection = message->GetReflection();
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    ReadMessageAt(node, path, reflection->AddMessage(message, field), depth);
    return;
  }
  if (!Enter(node, path, depth)) return;
  ScalarValue value;
  std::string error;
  if (!ConvertScalar(node, field, &value, &error)) {
    Error(node, path, error);
    return;
  }
  AddScalar(message, field, value);
}

void YamlMessageReader::ReadMapEntry(const YAML::Node& key, const YAML::Node& value,
                                     const std::string& path, Message* message,
                                     const FieldDescriptor* field, int depth) {
  const Descriptor* entry_type = field->message_type();
  const FieldDescriptor* key_field = entry_type->map_key();
  const FieldDescriptor* value_field = entry_type->map_value();
  if (!key.IsScalar()) {
    Error(key, path, absl::StrCat("map keys must be scalars, got ", Describe(key)));
    return;
  }
  const std::string entry_path = MapKeyPath(path, key.Scalar());
  ScalarValue key_value;
  std::string error;
  if (!ConvertScalar(key, key_field, &key_value, &error)) {
    Error(key, entry_path, absl::StrCat("bad key: ", error));
    return;
  }
  Message* entry = message->GetReflection()->AddMessage(message, field);
  SetScalar(entry, key_field, key_value);
  if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    ReadMessageAt(value, entry_path, entry->GetReflection()->MutableMessage(entry, value_field),
                  depth);
    return;
  }
  if (!Enter(value, entry_path, depth)) return;
  if (value.IsNull() && value_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) return;
  ScalarValue v;
  if (!ConvertScalar(value, value_field, &v, &error)) {
    Error(value, entry_path, error);
    return;
  }
  SetScalar(entry, value_field, v);
}

}  // namespace pendulum::spec
