// Error messages that list names by kind, as the checkpoint, adapter and optimizer-state loaders
// report mismatches:
//   path: checkpoint does not match the model config
//     2 missing tensors:
//       model.norm.weight
//       ...
#pragma once

#include <string>
#include <vector>

namespace align {

// Appends "\n  N <what>:" and one indented line per name; nothing when `names` is empty.
inline void append_name_list(std::string& message, const char* what,
                             const std::vector<std::string>& names) {
  if (names.empty()) return;
  message += "\n  " + std::to_string(names.size()) + " " + what + ":";
  for (const auto& n : names)
    message += "\n    " + n;
}

}  // namespace align
