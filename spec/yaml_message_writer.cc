#include "spec/yaml_message_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace pendulum::spec {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Strings YAML would read as something else (null, bool, number) or that
// would be lost are double-quoted.
bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* kSpecial[] = {"~", "null", "Null", "NULL", "true", "True", "TRUE",
                                   "false", "False", "FALSE", "yes", "no", "on", "off",
                                   "y", "n", "Yes", "No", "On", "Off"};
  for (const char* word : kSpecial) {
    if (s == word) return true;
  }
  double d;
  return absl::SimpleAtod(s, &d);
}

void EmitString(const std::string& s, YAML::Emitter* out) {
  if (NeedsQuotes(s)) *out << YAML::DoubleQuoted;
  *out << s;
}

void EmitMessage(const Message& message, YAML::Emitter* out);

void EmitScalar(const Message& m, const FieldDescriptor* f, int index, YAML::Emitter* out) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      *out << (rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      *out << (rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      *out << (rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      *out << (rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      *out << FormatDouble(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      *out << FormatDouble(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      *out << ((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      EmitString(rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      *out << (rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name();
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      EmitMessage(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), out);
      break;
  }
}

void EmitMap(const Message& m, const FieldDescriptor* f, YAML::Emitter* out) {
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* key_field = f->message_type()->map_key();
  const FieldDescriptor* value_field = f->message_type()->map_value();
  std::vector<const Message*> entries;
  for (int i = 0; i < r->FieldSize(m, f); ++i) entries.push_back(&r->GetRepeatedMessage(m, f, i));
  auto key_text = [&](const Message* e) {
    const Reflection* er = e->GetReflection();
    switch (key_field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: return er->GetString(*e, key_field);
      case FieldDescriptor::CPPTYPE_INT32: return absl::StrCat(er->GetInt32(*e, key_field));
      case FieldDescriptor::CPPTYPE_INT64: return absl::StrCat(er->GetInt64(*e, key_field));
      case FieldDescriptor::CPPTYPE_UINT32: return absl::StrCat(er->GetUInt32(*e, key_field));
      case FieldDescriptor::CPPTYPE_UINT64: return absl::StrCat(er->GetUInt64(*e, key_field));
      case FieldDescriptor::CPPTYPE_BOOL: return std::string(er->GetBool(*e, key_field) ? "true" : "false");
      default: return std::string();
    }
  };
  std::sort(entries.begin(), entries.end(),
            [&](const Message* a, const Message* b) { return key_text(a) < key_text(b); });
  *out << YAML::BeginMap;
  for (const Message* e : entries) {
    *out << YAML::Key;
    if (key_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      EmitString(key_text(e), out);
    } else {
      *out << key_text(e);
    }
    *out << YAML::Value;
    EmitScalar(*e, value_field, -1, out);
  }
  *out << YAML::EndMap;
}

void EmitMessage(const Message& message, YAML::Emitter* out) {
  const Reflection* r = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(message, &fields);
  *out << YAML::BeginMap;
  for (const FieldDescriptor* f : fields) {
    *out << YAML::Key << f->name() << YAML::Value;
    if (f->is_map()) {
      EmitMap(message, f, out);
    } else if (f->is_repeated()) {
      const bool scalars = f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
      if (scalars) *out << YAML::Flow;
      *out << YAML::BeginSeq;
      for (int i = 0; i < r->FieldSize(message, f); ++i) EmitScalar(message, f, i, out);
      *out << YAML::EndSeq;
    } else {
      EmitScalar(message, f, -1, out);
    }
  }
  *out << YAML::EndMap;
}

}  // namespace

std::string FormatDouble(double value) {
  char buf[64];
  if (std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f.0", value);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  std::string text(buf);
  // Keep it a YAML float ("1" would still read back fine into a double field,
  // but "1.0" tells the reader it is a real number).
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::string MessageToYaml(const Message& message) {
  YAML::Emitter out;
  EmitMessage(message, &out);
  std::string text = out.c_str();
  if (text == "{}") return "{}\n";
  return text + "\n";
}

}  // namespace pendulum::spec
