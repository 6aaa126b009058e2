// The one name llama.cpp's common/json.cpp takes from ggml: GGML_ASSERT, which aborts with the
// failed condition as ggml's does. Only the Jinja engine's sources (data/CMakeLists.txt) see it.
#pragma once

#include <cstdio>
#include <cstdlib>

#define GGML_ASSERT(x)                                                                 \
  do {                                                                                 \
    if (!(x)) {                                                                        \
      std::fprintf(stderr, "%s:%d: GGML_ASSERT(%s) failed\n", __FILE__, __LINE__, #x); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)
