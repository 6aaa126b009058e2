#include "align/report_tokens.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "align/report_html.h"
#include "common/error.h"

namespace align {

ShownCompletion parse_shown_completion(const nlohmann::json& record) {
  ShownCompletion c;
  const auto& id = record.at("query_id");
  c.query_id = id.is_string() ? id.get<std::string>() : id.dump();
  c.completion_index = record.at("completion_index").get<int64_t>();
  c.token_texts = record.at("token_texts").get<std::vector<std::string>>();
  c.success = record.value("success", false);
  for (const auto& e : record.at("estimates")) {
    PrefixEstimate pe;
    pe.prefix_length = e.at("prefix_length").get<int64_t>();
    pe.p = e.at("p").get<double>();
    pe.n = e.value("n", int64_t{0});
    c.estimates.push_back(pe);
  }
  c.pivot_positions = record.value("pivot_positions", std::vector<int64_t>{});
  if (record.contains("token_ids") && record["token_ids"].size() != c.token_texts.size())
    throw InputError("token_ids has " + std::to_string(record["token_ids"].size()) +
                     " entries but token_texts has " + std::to_string(c.token_texts.size()));
  return c;
}

std::vector<PrefixProbability> prefix_probabilities(int64_t num_tokens,
                                                    const std::vector<PrefixEstimate>& estimates) {
  std::vector<PrefixProbability> out(static_cast<size_t>(num_tokens + 1));
  for (auto& p : out)
    p.p = std::numeric_limits<double>::quiet_NaN();
  for (const auto& e : estimates)
    if (e.prefix_length >= 0 && e.prefix_length <= num_tokens)
      out[static_cast<size_t>(e.prefix_length)] = {e.p, e.n, true};
  for (size_t k = 1; k < out.size(); ++k)
    if (!out[k].measured) out[k] = {out[k - 1].p, out[k - 1].n, false};
  return out;
}

std::string probability_color(double p, bool measured) {
  if (std::isnan(p)) return "#e6e6e6";
  const double hue = 120.0 * std::clamp(p, 0.0, 1.0);
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "hsl(%.0f,75%%,%d%%)", hue, measured ? 68 : 87);
  return buffer;
}

std::string token_legend_html() {
  std::string out = "<div class=\"legend\"><span class=\"group\">p(success) after the token: 0";
  out += "<span class=\"scale\"></span>1</span>";
  out += "<span class=\"group\"><span class=\"swatch tok pivot\" style=\"background:" +
         probability_color(0.8) +
         "\">pivot</span> pivotal token (hover: p before \u2192 after)</span>";
  out += "<span class=\"group\"><span class=\"swatch tok carried\" style=\"background:" +
         probability_color(0.8, false) +
         "\">pale</span> not measured here: the last estimate carried forward</span></div>\n";
  return out;
}

namespace {

std::string percent(double p) {
  return std::isnan(p) ? "?" : format_number(p, 3);
}

// The visible text of a token: HTML-escaped, newlines as a visible arrow plus a real line break.
std::string visible_token(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n')
      out += "\u21b5\n";
    else if (c == '\r')
      out += "\u240d";
    else
      out += html_escape(std::string_view(&c, 1));
  }
  return out;
}

}  // namespace

std::string token_view_html(const ShownCompletion& c) {
  const auto T = static_cast<int64_t>(c.token_texts.size());
  const std::vector<PrefixProbability> probs = prefix_probabilities(T, c.estimates);
  std::vector<bool> pivot(static_cast<size_t>(T), false);
  for (int64_t pos : c.pivot_positions)
    if (pos >= 0 && pos < T) pivot[static_cast<size_t>(pos)] = true;

  std::string out =
      "<div class=\"completion\" id=\"completion-" + html_escape(c.query_id) + "-" +
      std::to_string(c.completion_index) + "\">\n<div class=\"meta\">query <b>" +
      html_escape(c.query_id) + "</b>, completion " + std::to_string(c.completion_index) +
      " \u2014 " +
      (c.success ? "<span class=\"up\">correct</span>" : "<span class=\"down\">wrong</span>") +
      ", " + std::to_string(T) + " tokens, " + std::to_string(c.pivot_positions.size()) +
      " pivotal, p(success | prompt) = " + percent(probs[0].p) + "</div>\n";
  if (!c.prompt.empty()) out += "<div class=\"prompt\">" + html_escape(c.prompt) + "</div>\n";
  out += "<div class=\"tokens\">";
  for (int64_t k = 0; k < T; ++k) {
    const PrefixProbability& before = probs[static_cast<size_t>(k)];
    const PrefixProbability& after = probs[static_cast<size_t>(k + 1)];
    std::string cls = "tok";
    if (!after.measured) cls += " carried";
    if (pivot[static_cast<size_t>(k)]) cls += " pivot";
    std::string title = "p = " + percent(after.p);
    if (after.measured)
      title += after.n > 0 ? " (n = " + std::to_string(after.n) + ")" : " (exact)";
    else
      title += " (carried)";
    if (pivot[static_cast<size_t>(k)])
      title = "pivot: p " + percent(before.p) + " \u2192 " + percent(after.p);
    out += "<span class=\"" + cls +
           "\" style=\"background:" + probability_color(after.p, after.measured) + "\" title=\"" +
           html_escape(title) + "\">" + visible_token(c.token_texts[k]) + "</span>";
  }
  out += "</div>\n</div>\n";
  return out;
}

}  // namespace align
