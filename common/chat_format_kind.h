// The chat formats align renders (data/chat_format.h), as config files and flags spell them:
// model.chat_format and --chat-format. kAuto: the format the model's own chat template is.
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
