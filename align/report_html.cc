#include "align/report_html.h"

#include <cmath>
#include <cstdio>

namespace align {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_number(double value, int digits) {
  if (std::isnan(value)) return "\u2013";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
  return buffer;
}

namespace {

constexpr const char* kStyle = R"css(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1120px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: #666; }
.missing { color: #888; font-style: italic; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.up, .better { color: #17803d; } .down, .worse { color: #b42318; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { border: 1px solid #e4e4e4; background: #fff; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #444; }
.completion { border: 1px solid #e4e4e4; padding: 8px 10px; margin: 10px 0; }
.completion .meta { color: #555; margin-bottom: 6px; }
.completion .prompt { font: 13px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; color: #333;
  white-space: pre-wrap; border-left: 3px solid #ccc; padding-left: 8px; margin-bottom: 6px; }
.tokens { font: 14px/2 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap;
          word-break: break-word; }
.tok { border-radius: 2px; }
.tok.pivot { outline: 2px solid #111; font-weight: bold; }
.legend { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 24px; margin: 6px 0;
          color: #555; }
.legend .group { display: inline-flex; align-items: center; gap: 6px; white-space: nowrap; }
.scale { width: 240px; height: 14px; border: 1px solid #ccc;
         background: linear-gradient(to right, hsl(0,75%,68%), hsl(30,75%,68%), hsl(60,75%,68%),
                                          hsl(90,75%,68%), hsl(120,75%,68%)); }
.key { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; }
table.details td { text-align: left; max-width: 420px; word-break: break-word; }
details { margin: 6px 0; } summary { cursor: pointer; color: #333; }
pre.config { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: #f8f8f8;
             border: 1px solid #e4e4e4; padding: 8px; overflow-x: auto; max-height: 480px; }
p.kept { font-weight: bold; }
.item { border: 1px solid #e4e4e4; padding: 8px 10px; margin: 10px 0; }
.item > .meta, .side > .meta { color: #555; margin-bottom: 6px; }
.item .prompt { font: 13px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; color: #333;
  white-space: pre-wrap; border-left: 3px solid #ccc; padding-left: 8px; margin-bottom: 6px; }
.sides { display: flex; gap: 12px; } .side { flex: 1; min-width: 0; }
.gen { border-left: 3px solid #ccc; padding: 2px 8px; margin: 6px 0; }
.gen.ok { border-left-color: #17803d; } .gen.fail { border-left-color: #b42318; }
.gen .meta { color: #666; font-size: 12px; }
.gen .text { font: 13px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap;
             word-break: break-word; }
.swatch { display: inline-block; padding: 0 6px; font: 12px ui-monospace, monospace; }
)css";

}  // namespace

std::string html_page(const std::string& title, const std::string& body_html) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
  out += html_escape(title);
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n";
  out += body_html;
  out += "</body>\n</html>\n";
  return out;
}

}  // namespace align
