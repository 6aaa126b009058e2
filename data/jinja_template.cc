#include "data/jinja_template.h"

#include <jinja/lexer.h>
#include <jinja/parser.h>
#include <jinja/runtime.h>
#include <jinja/value.h>

#include <algorithm>
#include <cstdint>
#include <regex>

#include "common/error.h"

namespace align {

namespace {

// What a {% generation %} / {% endgeneration %} tag becomes before the engine sees the template:
// a block that prints a marker, so the tag's whitespace control ('-', trim_blocks,
// lstrip_blocks) stays the same. The markers are control characters no template literal holds;
// render() takes them out of the text and records where they were.
constexpr char kGenerationBegin[] = "\x1d";
constexpr char kGenerationEnd[] = "\x1e";

struct Rewritten {
  std::string source;
  bool has_generation = false;
};

Rewritten rewrite_generation_tags(const std::string& source) {
  static const std::regex tag(R"(\{%(-?)\s*(generation|endgeneration)\s*(-?)%\})");
  Rewritten out;
  std::sregex_iterator it(source.begin(), source.end(), tag), end;
  size_t copied = 0;
  for (; it != end; ++it) {
    const std::smatch& m = *it;
    out.source.append(source, copied, static_cast<size_t>(m.position(0)) - copied);
    const char* marker = m[2] == "generation" ? kGenerationBegin : kGenerationEnd;
    out.source +=
        "{%" + m[1].str() + " if true %}{{ '" + marker + "' }}{% endif " + m[3].str() + "%}";
    copied = static_cast<size_t>(m.position(0) + m.length(0));
    out.has_generation = true;
  }
  out.source.append(source, copied, std::string::npos);
  return out;
}

// The lexer reads the template with \r\n and \r turned into \n; its positions count in that text.
std::string normalised(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

size_t line_of(const std::string& text, size_t pos) {
  return 1 + static_cast<size_t>(
                 std::count(text.begin(), text.begin() + std::min(pos, text.size()), '\n'));
}

// The engine's parse errors read "lexer: MESSAGE\n...EXCERPT...\n   ^" (the excerpt is up to 40
// bytes either side of the error, newlines shown as U+21B5). Finds the excerpt in the source to
// name the line; "" when it cannot be placed.
std::string parse_error_line(const std::string& what, const std::string& source) {
  const size_t first = what.find('\n');
  if (first == std::string::npos) return "";
  const size_t second = what.find('\n', first + 1);
  if (second == std::string::npos) return "";
  std::string excerpt = what.substr(first + 1, second - first - 1);
  const std::string caret_line = what.substr(second + 1);
  const size_t caret = caret_line.find('^');
  if (excerpt.size() < 6 || excerpt.compare(0, 3, "...") != 0 || caret == std::string::npos ||
      caret < 3) {
    return "";
  }
  excerpt = excerpt.substr(3, excerpt.size() - 6);
  // The caret counts bytes of the excerpt as printed, before "↵" replaced each newline.
  std::string raw;
  size_t caret_at = std::string::npos;
  const std::string arrow = "\xE2\x86\xB5";
  for (size_t i = 0, printed = 3; i <= excerpt.size(); ++printed) {
    if (printed == caret) caret_at = raw.size();
    if (i == excerpt.size()) break;
    if (excerpt.compare(i, arrow.size(), arrow) == 0) {
      raw += '\n';
      i += arrow.size();
      printed += arrow.size() - 1;
    } else {
      raw += excerpt[i++];
    }
  }
  if (caret_at == std::string::npos) return "";
  const std::string text = normalised(source);
  std::vector<size_t> lines;
  for (size_t at = text.find(raw); at != std::string::npos; at = text.find(raw, at + 1)) {
    lines.push_back(line_of(text, at + caret_at));
  }
  if (lines.empty()) return "";
  std::string out = "line " + std::to_string(lines[0]);
  if (lines.size() > 1) out += " (the same text is also at line " + std::to_string(lines[1]) + ")";
  return out;
}

// Some of the parser's errors carry no position: the line of the first token after which the
// parser fails with the same error (parsing ever longer prefixes of the token list).
std::string failing_token_line(const jinja::lexer_result& all, const std::string& what) {
  jinja::lexer_result prefix;
  prefix.source = all.source;
  for (const jinja::token& token : all.tokens) {
    prefix.tokens.push_back(token);
    try {
      jinja::parse_from_tokens(prefix);
    } catch (const std::exception& e) {
      if (e.what() == what) return "line " + std::to_string(line_of(all.source, token.pos));
    }
  }
  return "";
}

// The engine's run-time errors name "line L, column C" of the statement that failed, and end with
// "Error: MESSAGE"; raise_exception's message is MESSAGE.
std::string runtime_error_text(const std::string& what) {
  static const std::regex at(R"(at line (\d+), column \d+)");
  std::smatch m;
  std::string line;
  if (std::regex_search(what, m, at)) line = "line " + m[1].str() + ": ";
  std::string message = what;
  const size_t error = what.rfind("Error: ");
  if (error != std::string::npos) message = what.substr(error + 7);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  return line + message;
}

bool is_input_key(const std::string& key) {
  return key == "content" || key == "reasoning_content" || key == "text";
}

// JSON to the engine's values. `input`: strings below this point hold user text.
jinja::value to_value(const nlohmann::ordered_json& j, bool input, bool in_messages) {
  if (j.is_null()) return jinja::mk_val<jinja::value_none>();
  if (j.is_boolean()) return jinja::mk_val<jinja::value_bool>(j.get<bool>());
  if (j.is_number_integer() || j.is_number_unsigned()) {
    return jinja::mk_val<jinja::value_int>(j.get<int64_t>());
  }
  if (j.is_number_float()) return jinja::mk_val<jinja::value_float>(j.get<double>());
  if (j.is_string()) {
    auto s = jinja::mk_val<jinja::value_string>(j.get<std::string>());
    if (input) s->mark_input();
    return s;
  }
  if (j.is_array()) {
    auto a = jinja::mk_val<jinja::value_array>();
    for (const auto& item : j)
      a->push_back(to_value(item, input, in_messages));
    return a;
  }
  auto o = jinja::mk_val<jinja::value_object>();
  for (auto it = j.begin(); it != j.end(); ++it) {
    o->insert(it.key(),
              to_value(it.value(), input || (in_messages && is_input_key(it.key())), in_messages));
  }
  return o;
}

}  // namespace

struct JinjaTemplate::Compiled {
  std::string source;  // as read
  std::string where;
  std::string rewritten;  // what the engine parsed ({% generation %} replaced)
  bool has_generation = false;
  jinja::program program;
};

JinjaTemplate JinjaTemplate::compile(const std::string& source, const std::string& where) {
  auto c = std::make_shared<Compiled>();
  c->source = source;
  c->where = where;
  Rewritten r = rewrite_generation_tags(source);
  c->rewritten = std::move(r.source);
  c->has_generation = r.has_generation;
  jinja::lexer_result tokens;
  try {
    jinja::lexer lexer;
    tokens = lexer.tokenize(c->rewritten);
    c->program = jinja::parse_from_tokens(tokens);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    std::string line = parse_error_line(what, c->rewritten);
    if (line.empty() && !tokens.tokens.empty()) line = failing_token_line(tokens, what);
    const std::string message = what.substr(0, what.find('\n'));
    throw InputError(where + ": " + (line.empty() ? "" : line + ": ") +
                     "the chat template cannot be parsed by llama.cpp's Jinja engine (" + message +
                     ")");
  }
  return JinjaTemplate(std::move(c));
}

RenderedTemplate JinjaTemplate::render(const nlohmann::ordered_json& variables) const {
  const Compiled& c = *compiled_;
  if (!variables.is_object()) throw Error("JinjaTemplate::render: variables must be an object");
  jinja::context ctx(c.rewritten);
  for (auto it = variables.begin(); it != variables.end(); ++it) {
    ctx.set_val(it.key(), to_value(it.value(), false, it.key() == "messages"));
  }
  jinja::value_string parts;
  try {
    jinja::runtime runtime(ctx);
    parts = jinja::runtime::gather_string_parts(runtime.execute(c.program));
  } catch (const std::exception& e) {
    throw InputError(c.where + ": " + runtime_error_text(e.what()));
  }
  RenderedTemplate out;
  std::vector<size_t> open;
  for (const jinja::string_part& part : parts->val_str.parts) {
    if (part.is_input) {
      const size_t begin = out.text.size();
      out.text += part.val;
      if (!out.input.empty() && out.input.back().end == begin) {
        out.input.back().end = out.text.size();
      } else if (begin < out.text.size()) {
        out.input.push_back({begin, out.text.size()});
      }
      continue;
    }
    for (char ch : part.val) {
      if (c.has_generation && ch == kGenerationBegin[0]) {
        open.push_back(out.text.size());
      } else if (c.has_generation && ch == kGenerationEnd[0]) {
        if (open.empty()) {
          throw InputError(c.where + ": {% endgeneration %} without a {% generation %} before it");
        }
        out.generation.push_back({open.back(), out.text.size()});
        open.pop_back();
      } else {
        out.text += ch;
      }
    }
  }
  if (!open.empty()) throw InputError(c.where + ": {% generation %} without {% endgeneration %}");
  std::sort(out.generation.begin(), out.generation.end(),
            [](const TextSpan& a, const TextSpan& b) { return a.begin < b.begin; });
  return out;
}

bool JinjaTemplate::has_generation_blocks() const {
  return compiled_->has_generation;
}
const std::string& JinjaTemplate::source() const {
  return compiled_->source;
}
const std::string& JinjaTemplate::where() const {
  return compiled_->where;
}

}  // namespace align
