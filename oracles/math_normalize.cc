#include "oracles/math_normalize.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace align {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

void erase_all(std::string& s, const std::string& what) {
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p))
    s.erase(p, what.size());
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

// Drops `command` where it is not the prefix of a longer command name (\left vs \leftarrow).
void erase_command(std::string& s, const std::string& command) {
  size_t p = s.find(command);
  while (p != std::string::npos) {
    const size_t end = p + command.size();
    if (end < s.size() && is_alpha(s[end])) {
      p = s.find(command, end);
    } else {
      s.erase(p, command.size());
      p = s.find(command, p);
    }
  }
}

// End (one past the closing brace) of the group opening at s[open], or npos.
size_t group_end(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string::npos;
}

// \text{...}-like groups: unwrapped to their content, or dropped when `drop`.
std::string text_groups(std::string s, bool drop) {
  for (const char* name : {"\\text{", "\\textbf{", "\\mathrm{", "\\mbox{"}) {
    const size_t length = std::strlen(name);
    for (size_t p = s.find(name); p != std::string::npos; p = s.find(name, p)) {
      const size_t end = group_end(s, p + length - 1);
      if (end == std::string::npos) break;
      const std::string content = s.substr(p + length, end - 1 - p - length);
      s.replace(p, end - p, drop ? "" : content);
    }
  }
  return s;
}

// Braces a one-character or one-command argument at s[i]; returns the index after the argument.
size_t brace_argument(std::string& s, size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '{') {
    const size_t end = group_end(s, i);
    return end == std::string::npos ? s.size() : end;
  }
  size_t end = i + 1;
  if (s[i] == '\\') {
    while (end < s.size() && is_alpha(s[end]))
      ++end;
  }
  s.insert(end, "}");
  s.insert(i, "{");
  return end + 2;
}

void brace_arguments(std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '^' || s[i] == '_') {
      brace_argument(s, i + 1);
    } else if (s.compare(i, 5, "\\frac") == 0 && (i + 5 >= s.size() || !is_alpha(s[i + 5]))) {
      brace_argument(s, brace_argument(s, i + 5));
    } else if (s.compare(i, 5, "\\sqrt") == 0 && (i + 5 >= s.size() || !is_alpha(s[i + 5]))) {
      size_t arg = i + 5;
      if (arg < s.size() && s[arg] == '[') {
        const size_t close = s.find(']', arg);
        arg = close == std::string::npos ? s.size() : close + 1;
      }
      brace_argument(s, arg);
    }
  }
}

void strip_outer(std::string& s) {
  bool changed = true;
  while (changed && !s.empty()) {
    changed = false;
    if (s.size() >= 2 && s.front() == '$' && s.back() == '$') {
      s = s.substr(1, s.size() - 2);
      changed = true;
    }
    for (const char* pair : {"\\(\\)", "\\[\\]"}) {
      const std::string open(pair, 2), close(pair + 2, 2);
      if (s.size() >= 4 && s.compare(0, 2, open) == 0 && s.compare(s.size() - 2, 2, close) == 0) {
        s = s.substr(2, s.size() - 4);
        changed = true;
      }
    }
    while (!s.empty() && s.back() == '.') {
      s.pop_back();
      changed = true;
    }
  }
}

std::string clean(std::string s, bool drop_text) {
  erase_command(s, "\\left");
  erase_command(s, "\\right");
  erase_command(s, "\\displaystyle");
  for (const char* space : {"\\!", "\\,", "\\;", "\\:", "\\ "})
    erase_all(s, space);
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  s = text_groups(s, drop_text);
  std::string kept;
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c))) kept += c;
  }
  strip_outer(kept);
  brace_arguments(kept);
  return kept;
}

// A plain decimal: digits with an optional '.', optional exponent; valid comma groups allowed.
bool parse_decimal(std::string s, MathNumber* number) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  if (s.find(',') != std::string::npos) {
    const size_t dot = s.find('.') == std::string::npos ? s.size() : s.find('.');
    const size_t first = s.find(',');
    if (first == 0 || first > 3) return false;
    for (size_t p = first; p < dot; p += 4) {
      if (s[p] != ',' || p + 4 > dot) return false;
      for (size_t k = 1; k <= 3; ++k) {
        if (!is_digit(s[p + k])) return false;
      }
    }
    erase_all(s, ",");
  }
  while (!s.empty() && s.back() == '.')
    s.pop_back();
  if (s.empty() || s[0] == '-' || s[0] == '+' || !(is_digit(s[0]) || s[0] == '.')) return false;
  long double value = 0;
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (error != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) return false;
  number->value = negative ? -value : value;
  number->integer = s.find_first_not_of("0123456789") == std::string::npos;
  return true;
}

bool parse_fraction(const std::string& numerator, const std::string& denominator,
                    MathNumber* number) {
  MathNumber a, b;
  if (!parse_decimal(numerator, &a) || !parse_decimal(denominator, &b) || b.value == 0)
    return false;
  number->value = a.value / b.value;
  number->integer = false;
  return true;
}

bool parse_clean(std::string s, MathNumber* number) {
  if (s.size() >= 2 && is_alpha(s[0]) && s[1] == '=') s.erase(0, 2);
  if (s.size() >= 2 && s.front() == '(' && s.back() == ')') s = s.substr(1, s.size() - 2);
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  if (!s.empty() && s[0] == '-' && s.compare(1, 5, "\\frac") == 0) {
    if (!parse_clean(s.substr(1), number)) return false;
    number->value = -number->value;
    return true;
  }
  if (s.compare(0, 6, "\\frac{") == 0) {
    const size_t mid = group_end(s, 5);
    if (mid == std::string::npos || mid >= s.size() || s[mid] != '{') return false;
    const size_t end = group_end(s, mid);
    if (end != s.size()) return false;
    return parse_fraction(s.substr(6, mid - 7), s.substr(mid + 1, end - mid - 2), number);
  }
  const size_t slash = s.find('/');
  if (slash != std::string::npos) {
    return parse_fraction(s.substr(0, slash), s.substr(slash + 1), number);
  }
  return parse_decimal(s, number);
}

}  // namespace

std::string normalize_math_text(const std::string& answer) {
  return clean(answer, false);
}

bool parse_math_number(const std::string& answer, MathNumber* number) {
  std::string s = clean(answer, true);
  if (s.empty()) s = clean(answer, false);
  for (const char* unit : {"^{\\circ}", "^\\circ", "\\$", "$", "\\%", "%", "\xC2\xB0"})
    erase_all(s, unit);
  replace_all(s, "{,}", ",");
  return !s.empty() && parse_clean(s, number);
}

bool math_numbers_equal(const MathNumber& a, const MathNumber& b) {
  if (a.integer && b.integer) return a.value == b.value;
  if (a.value == b.value) return true;
  const long double scale = std::max(std::fabs(a.value), std::fabs(b.value));
  return std::fabs(a.value - b.value) <= 1e-9L * scale;
}

bool math_answers_equal(const std::string& candidate, const std::string& reference) {
  MathNumber a, b;
  if (parse_math_number(candidate, &a) && parse_math_number(reference, &b))
    return math_numbers_equal(a, b);
  const std::string normalized = normalize_math_text(candidate);
  return !normalized.empty() && normalized == normalize_math_text(reference);
}

}  // namespace align
