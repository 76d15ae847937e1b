#pragma once
// Renders any protobuf message as block YAML via reflection: only fields that
// are set (proto3 non-default scalars, present messages/optionals), in field
// number order, map entries sorted by key, doubles in their shortest form that
// reads back exactly. YamlMessageReader reads the output back to an equal
// message. Pure function, thread-safe.

#include <string>

#include "google/protobuf/message.h"

namespace pendulum::spec {

std::string MessageToYaml(const google::protobuf::Message& message);

// Shortest decimal text that parses back to exactly `value` ("0.1", "1e-05").
std::string FormatDouble(double value);

}  // namespace pendulum::spec
