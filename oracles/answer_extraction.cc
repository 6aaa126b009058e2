#include "oracles/answer_extraction.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace align {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}
bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b]))
    ++b;
  while (e > b && is_space(s[e - 1]))
    --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Content of the brace group opening at text[open] ('{'), or false when it never closes.
bool brace_group(const std::string& text, size_t open, std::string* content) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) {
      *content = text.substr(open + 1, i - open - 1);
      return true;
    }
  }
  return false;
}

// The argument of the command whose name ends just before `pos`: "{...}" or " token".
bool command_argument(const std::string& text, size_t pos, std::string* content) {
  if (pos < text.size() && is_alpha(text[pos])) return false;  // \boxedx is another command
  size_t i = pos;
  while (i < text.size() && is_space(text[i]))
    ++i;
  if (i < text.size() && text[i] == '{') return brace_group(text, i, content);
  if (i == pos) return false;
  size_t end = i;
  while (end < text.size() && !is_space(text[end]) && text[end] != '$')
    ++end;
  *content = text.substr(i, end - i);
  return end > i;
}

// The rest of the line after `pos`, or the next non-empty line when that is blank.
std::string rest_of_line(const std::string& text, size_t pos) {
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = trim(text.substr(pos, eol - pos));
    if (!line.empty()) return line;
    pos = eol + 1;
  }
  return "";
}

// Every position just after an "answer is" / "answer:" phrase, in order.
std::vector<size_t> answer_phrase_ends(const std::string& text) {
  const std::string low = lower(text);
  std::vector<size_t> ends;
  for (size_t p = low.find("answer"); p != std::string::npos; p = low.find("answer", p + 1)) {
    size_t i = p + 6;
    while (i < low.size() && (low[i] == '*' || low[i] == ' '))
      ++i;
    if (low.compare(i, 2, "is") == 0 && (i + 2 == low.size() || !is_alpha(low[i + 2]))) {
      i += 2;
      while (i < low.size() && (low[i] == ' ' || low[i] == '*'))
        ++i;
      if (i < low.size() && low[i] == ':') ++i;
      ends.push_back(i);
    } else if (i < low.size() && low[i] == ':') {
      ends.push_back(i + 1);
    }
  }
  return ends;
}

// All numbers in `text`: optional '-', digits with optional 3-digit comma groups, optional
// decimals; ".5" counts.
std::vector<std::string> numbers(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    const bool starts =
        is_digit(text[i]) || (text[i] == '.' && i + 1 < text.size() && is_digit(text[i + 1]));
    if (!starts) {
      ++i;
      continue;
    }
    size_t b = i;
    const bool negative =
        b > 0 && text[b - 1] == '-' && (b < 2 || !std::isalnum((unsigned char)text[b - 2]));
    while (i < text.size() && is_digit(text[i]))
      ++i;
    while (i > b && i + 3 < text.size() && text[i] == ',' && is_digit(text[i + 1]) &&
           is_digit(text[i + 2]) && is_digit(text[i + 3]) &&
           (i + 4 == text.size() || !is_digit(text[i + 4])))
      i += 4;
    if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
      ++i;
      while (i < text.size() && is_digit(text[i]))
        ++i;
    }
    std::string number = text.substr(b, i - b);
    out.push_back(negative ? "-" + number : number);
  }
  return out;
}

// "B", "(B)", "B)", "B." ... at text[i]; the upper-case letter or 0. Lower case only when
// parenthesised or followed by punctuation or the end.
char letter_at(const std::string& text, size_t i) {
  const bool paren = i < text.size() && text[i] == '(';
  if (paren) ++i;
  if (i >= text.size() || !is_alpha(text[i])) return 0;
  const char letter = text[i];
  const char next = i + 1 < text.size() ? text[i + 1] : '\n';
  if (std::isalnum(static_cast<unsigned char>(next))) return 0;
  const bool upper = letter >= 'A' && letter <= 'Z';
  const bool marked = paren || next == '.' || next == ')' || next == ':' || next == '\n' ||
                      next == '*' || next == '$' || next == '}';
  if (!upper && !marked) return 0;
  return static_cast<char>(std::toupper(static_cast<unsigned char>(letter)));
}

// "B", "(B)", "\text{B}", "B." as the whole of `s`.
char lone_letter(std::string s) {
  for (const char* wrapper : {"\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{"}) {
    size_t p;
    while ((p = s.find(wrapper)) != std::string::npos)
      s.erase(p, std::string(wrapper).size());
  }
  std::string kept;
  for (char c : s) {
    if (!is_space(c) && c != '{' && c != '}' && c != '*' && c != '(' && c != ')') kept += c;
  }
  while (!kept.empty() && (kept.back() == '.' || kept.back() == ':'))
    kept.pop_back();
  if (kept.size() != 1 || !is_alpha(kept[0])) return 0;
  return static_cast<char>(std::toupper(static_cast<unsigned char>(kept[0])));
}

}  // namespace

bool last_boxed(const std::string& text, std::string* content) {
  std::vector<std::pair<size_t, size_t>> starts;  // (position, length of the command name)
  for (const std::string name : {"\\boxed", "\\fbox"}) {
    for (size_t p = text.find(name); p != std::string::npos; p = text.find(name, p + 1))
      starts.emplace_back(p, name.size());
  }
  std::sort(starts.rbegin(), starts.rend());
  for (const auto& [pos, length] : starts) {
    if (command_argument(text, pos + length, content)) return true;
  }
  return false;
}

std::string last_number(const std::string& text) {
  const std::vector<std::string> all = numbers(text);
  return all.empty() ? "" : all.back();
}

std::string first_number(const std::string& text) {
  const std::vector<std::string> all = numbers(text);
  return all.empty() ? "" : all.front();
}

ExtractedAnswer extract_math_answer(const std::string& completion) {
  using Source = ExtractedAnswer::Source;
  std::string boxed;
  if (last_boxed(completion, &boxed)) return {Source::kBoxed, trim(boxed)};
  const size_t hashes = completion.rfind("####");
  if (hashes != std::string::npos) {
    std::string rest = rest_of_line(completion, hashes + 4);
    if (!rest.empty()) return {Source::kHashes, rest};
  }
  const std::vector<size_t> ends = answer_phrase_ends(completion);
  if (!ends.empty()) {
    std::string rest = rest_of_line(completion, ends.back());
    if (!rest.empty()) return {Source::kAnswerPhrase, rest};
  }
  std::string number = last_number(completion);
  if (!number.empty()) return {Source::kLastNumber, number};
  return {};
}

char extract_choice(const std::string& completion) {
  std::string boxed;
  if (last_boxed(completion, &boxed)) {
    if (char letter = lone_letter(boxed)) return letter;
  }
  const std::vector<size_t> ends = answer_phrase_ends(completion);
  for (auto it = ends.rbegin(); it != ends.rend(); ++it) {
    size_t i = *it;
    while (i < completion.size() && (is_space(completion[i]) || completion[i] == '*' ||
                                     completion[i] == '$' || completion[i] == '{'))
      ++i;
    if (completion.compare(i, 7, "option ") == 0) i += 7;
    if (char letter = letter_at(completion, i)) return letter;
  }
  const std::string text = trim(completion);
  const size_t line_start = text.rfind('\n');
  return lone_letter(text.substr(line_start == std::string::npos ? 0 : line_start + 1));
}

std::string extract_code(const std::string& completion) {
  struct Block {
    std::string info, body;
  };
  std::vector<Block> blocks;
  bool inside = false;
  size_t pos = 0;
  while (pos <= completion.size()) {
    size_t eol = completion.find('\n', pos);
    if (eol == std::string::npos) eol = completion.size();
    const std::string line = completion.substr(pos, eol - pos);
    const std::string stripped = trim(line);
    if (stripped.rfind("```", 0) == 0) {
      if (!inside) {
        blocks.push_back({lower(trim(stripped.substr(3))), ""});
        inside = true;
      } else if (stripped.find_first_not_of('`') == std::string::npos) {
        inside = false;
      } else {
        blocks.back().body += line + "\n";
      }
    } else if (inside) {
      blocks.back().body += line + "\n";
    }
    pos = eol + 1;
  }
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    if (it->info == "python" || it->info == "py" || it->info == "python3") return it->body;
  }
  return blocks.empty() ? completion : blocks.back().body;
}

}  // namespace align
