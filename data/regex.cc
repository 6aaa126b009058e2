#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/regex.h"

#include <pcre2.h>

#include "common/error.h"
#include "data/onig_compat.h"

namespace align {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread match data, match context and a JIT stack large enough for long runs of one class.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;

  MatchScratch() {
    data = pcre2_match_data_create(4, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) throw Error("out of memory creating PCRE2 match data");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

Regex::Regex(const std::string& pattern, Syntax syntax, const std::string& where)
    : pattern_(pattern) {
  uint32_t options = PCRE2_UTF;
  std::string compiled = pattern;
  if (syntax == Syntax::kLiteral) {
    options |= PCRE2_LITERAL;
  } else {
    options |= PCRE2_UCP;
    compiled = rewrite_for_oniguruma(pattern);
  }
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                                   options, &error, &offset, nullptr);
  if (!code) {
    // Report against the pattern as written: compile it unchanged for the offset and message.
    if (compiled != pattern) {
      pcre2_code* plain = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                                        pattern.size(), options, &error, &offset, nullptr);
      pcre2_code_free(plain);
    }
    throw InputError(where + ": cannot compile regex at offset " + std::to_string(offset) + ": " +
                     pcre2_message(error) + " (pattern: " + pattern + ")");
  }
  code_.reset(code, pcre2_code_free);
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

bool Regex::find(std::string_view text, size_t start, size_t* begin, size_t* end) const {
  MatchScratch& s = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc;
  if (jit_) {
    rc = pcre2_jit_match(code_.get(), subject, text.size(), start, 0, s.data, s.context);
  } else {
    rc = pcre2_match(code_.get(), subject, text.size(), start, PCRE2_NO_UTF_CHECK, s.data,
                     s.context);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    throw Error("regex match failed (" + pcre2_message(rc) + ") on a text of " +
                std::to_string(text.size()) + " bytes; pattern: " + pattern_);
  }
  // rc == 0 only means the ovector had no room for every group; the whole match is there.
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(s.data);
  *begin = ovector[0];
  *end = ovector[1];
  return true;
}

}  // namespace align
