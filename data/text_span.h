// A run of bytes [begin, end) of a text: where a rendered chat template's user text or
// {% generation %} block sits, or where a token ends up.
#pragma once

#include <cstddef>

namespace align {

struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
};

}  // namespace align
