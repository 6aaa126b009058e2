// HTML building blocks for `align report`: escaping, number formatting and the page skeleton with
// its inline style sheet. The page is one self-contained file: no scripts, fonts, images or links.
#pragma once

#include <string>
#include <string_view>

namespace align {

// Escapes & < > " ' so that text is safe both as element content and inside attribute values.
std::string html_escape(std::string_view text);

// A number for display: `digits` significant digits ("%.*g"), "–" for NaN.
std::string format_number(double value, int digits = 4);

// A complete HTML document: <head> with the inline CSS and `title`, then `body_html` as is.
std::string html_page(const std::string& title, const std::string& body_html);

}  // namespace align
