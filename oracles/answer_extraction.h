// Pulls the graded part out of a completion: the final math answer, the chosen multiple-choice
// letter, the program to run. Pure string functions, no regex engine, linear in the text.
//
// extract_math_answer: the content of the last well-formed \boxed{...} or \fbox{...} (braces
//   balanced, nested ok; "\boxed 5" also counts), else the rest of the line after the last "####"
//   (GSM8K), else the rest of the line after the last "answer is" / "answer:" (case-insensitive),
//   else the last number in the text. Empty `text` in the result means nothing was found.
// extract_choice: the letter in the last \boxed{...} that holds a single letter (optionally in
//   parentheses or \text{}), else the letter after the last "answer is" / "answer:" ("(B)", "B",
//   "B." ...; a lower-case letter counts only when parenthesised or followed by punctuation or the
//   end), else a last non-empty line that is just "(B)", "B", "B.", "B)" or "B:" (markdown **
//   around it allowed). Returns the upper-case letter, or 0 when none.
// extract_code: the body of the last fenced block whose info string is python/py/python3, else of
//   the last fenced block of any kind, else the whole text. An unclosed final fence (a truncated
//   completion) runs to the end of the text.
#pragma once

#include <string>

namespace align {

struct ExtractedAnswer {
  enum class Source { kNone, kBoxed, kHashes, kAnswerPhrase, kLastNumber };
  Source source = Source::kNone;
  std::string text;
};

ExtractedAnswer extract_math_answer(const std::string& completion);

// The content of the last well-formed \boxed{...} / \fbox{...}; false when there is none.
bool last_boxed(const std::string& text, std::string* content);

// The last number in `text` ("-1,234.5", "3/4" is two numbers: 3 and 4); "" when none.
std::string last_number(const std::string& text);
// The first number in `text`; "" when none.
std::string first_number(const std::string& text);

char extract_choice(const std::string& completion);

std::string extract_code(const std::string& completion);

}  // namespace align
