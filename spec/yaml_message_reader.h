#pragma once
// Fills any protobuf message from a parsed YAML node, driven only by the
// message's descriptor: scalars, enums (by name or number), nested messages,
// repeated fields (YAML lists), maps (YAML mappings), oneofs and proto3
// `optional`. Fields added to the protos later are handled with no change here.
// Collects every problem as one line "PATH: what is wrong" instead of stopping
// at the first. One reader per parse; not thread-safe (cheap to construct).

#include <cstddef>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "yaml-cpp/yaml.h"

namespace pendulum::spec {

class YamlMessageReader {
 public:
  struct Options {
    // Nesting depth of messages/lists/maps below the top-level message.
    int max_depth = 32;
    // Total YAML nodes visited; guards against alias ("billion laughs") blowups.
    size_t max_nodes = 200000;
    // Errors kept; one more line says how many were dropped.
    size_t max_errors = 100;
    // Append "(line L, column C)" to errors (off for override values).
    bool with_marks = true;
  };

  YamlMessageReader() = default;
  explicit YamlMessageReader(Options options) : options_(options) {}

  // Reads a YAML mapping into `message` (merging into what is there).
  void ReadMessage(const YAML::Node& node, const std::string& path,
                   google::protobuf::Message* message);

  // Replaces `field` of `message` with the value in `node` (null clears it;
  // setting a oneof member clears the other members).
  void ReadField(const YAML::Node& node, const std::string& path,
                 google::protobuf::Message* message,
                 const google::protobuf::FieldDescriptor* field);

  // Adds an error line from outside (e.g. a path problem found by the caller).
  void AddError(const std::string& line);

  const std::vector<std::string>& errors() const { return errors_; }
  bool ok() const { return errors_.empty(); }
  // All errors, one per line (empty when ok()).
  std::string JoinedErrors() const;

  // "spec.tags.foo", or spec.tags["a b"] when the key is not a plain word.
  static std::string MapKeyPath(const std::string& path, const std::string& key);
  // Comma-separated field names of `descriptor`, for "allowed: ..." messages.
  static std::string FieldNames(const google::protobuf::Descriptor* descriptor);

 private:
  void Error(const YAML::Node& node, const std::string& path, const std::string& what);
  bool Enter(const YAML::Node& node, const std::string& path, int depth);
  void ReadMessageAt(const YAML::Node& node, const std::string& path,
                     google::protobuf::Message* message, int depth);
  void ReadFieldAt(const YAML::Node& node, const std::string& path,
                   google::protobuf::Message* message,
                   const google::protobuf::FieldDescriptor* field, int depth);
  void ReadSingular(const YAML::Node& node, const std::string& path,
                    google::protobuf::Message* message,
                    const google::protobuf::FieldDescriptor* field, int depth);
  void AddRepeated(const YAML::Node& node, const std::string& path,
                   google::protobuf::Message* message,
                   const google::protobuf::FieldDescriptor* field, int depth);
  void ReadMapEntry(const YAML::Node& key, const YAML::Node& value,
                    const std::string& path, google::protobuf::Message* message,
                    const google::protobuf::FieldDescriptor* field, int depth);

  Options options_;
  std::vector<std::string> errors_;
  size_t dropped_errors_ = 0;
  size_t nodes_ = 0;
  bool node_limit_hit_ = false;
};

}  // namespace pendulum::spec
