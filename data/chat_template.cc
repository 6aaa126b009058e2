#include "data/chat_template.h"

#include <cctype>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"

namespace align {

namespace fs = std::filesystem;

namespace {

// microsoft/phi-4, tokenizer_config.json "chat_template".
const std::string kPhi4Template =
    "{% for message in messages %}{% if (message['role'] == 'system') %}"
    "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'assistant') %}"
    "{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}";

// microsoft/Phi-4-mini-instruct, tokenizer_config.json "chat_template".
const std::string kPhi3Template =
    "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
    "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + "
    "'<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + "
    "message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}";

// What recognise_chat_template looks at: the template's string literals, whether it emits text
// outside its tags, and whether it names eos_token.
struct TemplateScan {
  std::string literals;  // every string literal in a tag, decoded, each followed by '\0'
  bool raw_text = false;
  bool newline_in_literal = false;
  bool uses_eos = false;
  bool uses_bos = false;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The text between two tags that Jinja (trim_blocks, lstrip_blocks, '-' markers) still emits.
std::string surviving(std::string raw, bool trim_left_all, bool trim_left_newline,
                      bool trim_right_all, bool lstrip_right) {
  if (trim_left_all) {
    size_t b = 0;
    while (b < raw.size() && is_space(raw[b]))
      ++b;
    raw.erase(0, b);
  } else if (trim_left_newline) {
    if (raw.rfind("\r\n", 0) == 0) {
      raw.erase(0, 2);
    } else if (!raw.empty() && raw[0] == '\n') {
      raw.erase(0, 1);
    }
  }
  if (trim_right_all) {
    while (!raw.empty() && is_space(raw.back()))
      raw.pop_back();
  } else if (lstrip_right) {  // spaces and tabs between a line start and a block tag
    size_t e = raw.size();
    while (e > 0 && (raw[e - 1] == ' ' || raw[e - 1] == '\t'))
      --e;
    if (e == 0 || raw[e - 1] == '\n') raw.erase(e);
  }
  return raw;
}

TemplateScan scan_template(const std::string& t) {
  TemplateScan scan;
  size_t i = 0;
  bool prev_trim_all = false, prev_block = false;
  while (true) {
    size_t open = std::string::npos;
    for (size_t p = t.find('{', i); p != std::string::npos && p + 1 < t.size();
         p = t.find('{', p + 1)) {
      if (t[p + 1] == '{' || t[p + 1] == '%' || t[p + 1] == '#') {
        open = p;
        break;
      }
    }
    const bool end = open == std::string::npos;
    const char type = end ? 0 : t[open + 1];  // '{', '%' or '#'
    const bool minus = !end && open + 2 < t.size() && t[open + 2] == '-';
    std::string raw = t.substr(i, end ? std::string::npos : open - i);
    if (end && !raw.empty() && raw.back() == '\n') raw.pop_back();  // keep_trailing_newline off
    if (!surviving(raw, prev_trim_all, prev_block, minus, !end && type != '{').empty()) {
      scan.raw_text = true;
    }
    if (end) break;
    const std::string close = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
    size_t p = open + 2;
    std::string word;
    while (p < t.size() && t.compare(p, 2, close) != 0) {
      const char c = t[p];
      if (type != '#' && (c == '\'' || c == '"')) {
        std::string literal;
        for (++p; p < t.size() && t[p] != c; ++p) {
          if (t[p] == '\\' && p + 1 < t.size()) {
            const char e = t[++p];
            literal += e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
          } else {
            literal += t[p];
          }
        }
        if (literal.find_first_of("\r\n") != std::string::npos) scan.newline_in_literal = true;
        scan.literals += literal;
        scan.literals += '\0';
        ++p;
        continue;
      }
      if (type != '#' && (std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
        word += c;
      } else {
        scan.uses_eos |= word == "eos_token";
        scan.uses_bos |= word == "bos_token";
        word.clear();
      }
      ++p;
    }
    scan.uses_eos |= word == "eos_token";
    scan.uses_bos |= word == "bos_token";
    if (p >= t.size()) {  // an unclosed tag: not a template this can read
      scan.raw_text = true;
      break;
    }
    prev_trim_all = p > 0 && t[p - 1] == '-';
    prev_block = type != '{';
    i = p + 2;
  }
  return scan;
}

bool has(const std::string& literals, const char* token) {
  return literals.find(token) != std::string::npos;
}

std::string quote_start(const std::string& text) {
  std::string out = text.substr(0, 160);
  for (char& c : out)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return "\"" + out + (text.size() > 160 ? "...\"" : "\"");
}

}  // namespace

ChatTemplate read_chat_template(const std::string& dir) {
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) return {read_file(jinja.string()), jinja.string()};
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (!fs::exists(config_path)) return {};
  const nlohmann::json config = read_json_file(config_path.string());
  const std::string where = config_path.string() + ": chat_template";
  if (!config.is_object() || !config.contains("chat_template")) return {};
  const nlohmann::json& value = config.at("chat_template");
  if (value.is_null()) return {};
  if (value.is_string()) return {value.get<std::string>(), where};
  if (value.is_array()) {
    for (const nlohmann::json& entry : value) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry.at("template").is_string()) {
        return {entry.at("template").get<std::string>(), where + " (\"default\")"};
      }
    }
    throw InputError(where + ": a list of templates without a \"default\" one");
  }
  throw InputError(where + ": expected a string or a list of {\"name\", \"template\"}, got " +
                   json_excerpt(value, 80));
}

std::optional<ChatTemplateMatch> recognise_chat_template(const std::string& text) {
  const TemplateScan scan = scan_template(text);
  if (scan.raw_text || scan.newline_in_literal || scan.uses_bos) return std::nullopt;
  const std::string& l = scan.literals;
  if (has(l, "<|im_start|>") && has(l, "<|im_sep|>") && has(l, "<|im_end|>") && !scan.uses_eos) {
    return ChatTemplateMatch{ChatFormatKind::kPhi4, false};
  }
  if (has(l, "<|end|>") && has(l, "<|assistant|>") && !has(l, "<|im_start|>")) {
    return ChatTemplateMatch{ChatFormatKind::kPhi3, scan.uses_eos};
  }
  return std::nullopt;
}

const std::string& published_chat_template(ChatFormatKind kind) {
  if (kind == ChatFormatKind::kAuto) throw Error("published_chat_template: kAuto");
  return kind == ChatFormatKind::kPhi3 ? kPhi3Template : kPhi4Template;
}

ChatFormat select_chat_format(const std::string& dir, const Tokenizer& tok, ChatFormatKind choice,
                              const std::string& choice_key) {
  const ChatTemplate found = read_chat_template(dir);
  const std::optional<ChatTemplateMatch> match =
      found.text.empty() ? std::nullopt : recognise_chat_template(found.text);
  if (choice != ChatFormatKind::kAuto) {
    // The model's own variant when it is the forced format, else the published one.
    const bool eos = match && match->kind == choice ? match->eos_at_end : true;
    return ChatFormat::make(choice, tok, choice_key + " " + enum_name(choice), eos);
  }
  if (found.text.empty()) {
    return ChatFormat::make(ChatFormatKind::kPhi4, tok,
                            "align's default (" + dir + " has no chat template)");
  }
  if (!match) {
    throw InputError(found.where +
                     ": the chat template is neither Phi-4's nor Phi-3's "
                     "(Phi-4-mini); it starts " +
                     quote_start(found.text) + ". Set " + choice_key +
                     " (or --chat-format) to phi4 or phi3 to train and sample in that format "
                     "(docs/chat_formats.md)");
  }
  return ChatFormat::make(match->kind, tok, "the chat template in " + found.where,
                          match->eos_at_end);
}

void write_chat_template(const std::string& dir, const ChatFormat& format) {
  const ChatTemplate current = read_chat_template(dir);
  if (!current.text.empty()) {
    const auto match = recognise_chat_template(current.text);
    if (match && match->kind == format.kind() &&
        (format.kind() == ChatFormatKind::kPhi4 || match->eos_at_end == format.eos_at_end())) {
      return;
    }
  }
  const std::string& text = published_chat_template(format.kind());
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  const bool has_jinja = fs::exists(jinja), has_config = fs::exists(config_path);
  if (has_jinja || !has_config) write_file_atomic(jinja.string(), text);
  if (has_config) {
    nlohmann::json config = read_json_file(config_path.string());
    if (config.is_object() && (config.contains("chat_template") || !has_jinja)) {
      config["chat_template"] = text;
      write_file_atomic(config_path.string(), config.dump(2) + "\n");
    }
  }
}

}  // namespace align
