// Equality of math answers: numeric when both sides read as numbers, else string equality after a
// symbolic clean-up. No computer algebra: "2x+2" and "2(x+1)" differ.
//
// Symbolic clean-up (normalize_math_text), in order:
//   \left and \right dropped (\leftarrow kept); \! \, \; \: "\ " and \displaystyle dropped;
//   \dfrac and \tfrac become \frac; \text{...} \textbf{...} \mathrm{...} \mbox{...} unwrapped to
//   their content; all whitespace removed; outer $...$, \(...\), \[...\] removed; trailing
//   periods removed; a one-character (or one-command) argument of \frac, \sqrt, ^ and _ gets
//   braces, so \sqrt2 == \sqrt{2}, \frac12 == \frac{1}{2}, x^2 == x^{2}. Then compared
//   case-sensitively.
// Numbers (parse_math_number), applied after the clean-up above except that \text{...} groups
//   are dropped (units: "5\text{ cm}" reads 5) unless nothing else is left:
//   $ \$ % \% ^\circ ^{\circ} and the degree sign dropped; {,} read as ','; a leading "x=" (one
//   letter then '=') dropped; one pair of outer parentheses dropped; a leading '+' dropped; '-'
//   negates; comma thousands separators accepted only in valid groups (1,234,567; "1,2" is not a
//   number); leading zeros and a trailing '.' fine. Forms: decimal ("12", "0.50", ".5", "1e-3"),
//   a/b, \frac{a}{b} with a, b decimals (signs allowed), b != 0.
//   Two numbers are equal when both are integers written without '.', '/' or exponent and are
//   equal exactly, or else within a relative tolerance of 1e-9. 50% == 50, not 0.5.
#pragma once

#include <string>

namespace align {

struct MathNumber {
  long double value = 0;
  bool integer = false;  // written as a plain integer (exact comparison)
};

std::string normalize_math_text(const std::string& answer);

// False when `answer` is not a number in one of the forms above.
bool parse_math_number(const std::string& answer, MathNumber* number);

bool math_numbers_equal(const MathNumber& a, const MathNumber& b);

// Numeric equality when both parse as numbers, else equal symbolic clean-ups.
bool math_answers_equal(const std::string& candidate, const std::string& reference);

}  // namespace align
