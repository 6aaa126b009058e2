// Which chat template align renders with (data/chat_template.h), as config files and flags spell
// it: model.chat_format and --chat-format. kAuto: the model's own template; kPhi4 / kPhi3: the
// published template of microsoft/phi-4 / microsoft/Phi-4-mini-instruct.
#pragma once

#include <utility>

#include "common/enum_names.h"

namespace align {

enum class ChatFormatKind { kAuto, kPhi4, kPhi3 };

template <>
struct EnumNames<ChatFormatKind> {
  static constexpr std::pair<ChatFormatKind, const char*> table[] = {
      {ChatFormatKind::kAuto, "auto"},
      {ChatFormatKind::kPhi4, "phi4"},
      {ChatFormatKind::kPhi3, "phi3"}};
};

}  // namespace align
