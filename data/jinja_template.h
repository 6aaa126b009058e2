// A chat template compiled and run by llama.cpp's Jinja engine (common/jinja, MIT; the sources of
// the pinned PyPI package llama-cpp-python, unpacked by scripts/setup.sh: docs/chat_formats.md says
// why this engine), as transformers runs a template in apply_chat_template:
//   - trim_blocks and lstrip_blocks on, a single trailing newline of the template dropped;
//   - transformers' {% generation %} ... {% endgeneration %} extension: the text rendered inside
//     is reported as a generation span (the assistant mask of TRL's assistant_only_loss);
//   - raise_exception(msg) and strftime_now(fmt) exist; tojson keeps key order.
// Strings at the paths that hold what a user wrote (a message's "content" and
// "reasoning_content", and the "text" of content parts) are marked as input: the rendered text
// says which bytes came from them, so the tokenizer can keep special-token text in them plain.
// Roles, tool names and the template's own literals are not input.
//
// This is the only file that includes the engine's headers.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/text_span.h"

namespace align {

struct RenderedTemplate {
  std::string text;
  std::vector<TextSpan> input;       // bytes from message content, in order, not overlapping
  std::vector<TextSpan> generation;  // {% generation %} spans, in order
};

class JinjaTemplate {
 public:
  // Parses `source`. `where` names it in messages ("DIR/chat_template.jinja"). Throws InputError
  // "WHERE: line N: the chat template cannot be parsed (...)" for a template the engine cannot
  // read.
  static JinjaTemplate compile(const std::string& source, const std::string& where);

  // Runs the template with `variables` (a JSON object: messages, tools, add_generation_prompt,
  // bos_token, ...; key order is kept). Throws InputError "WHERE: line N: ..." when the template
  // raises (raise_exception) or fails.
  RenderedTemplate render(const nlohmann::ordered_json& variables) const;

  // True when the template marks its assistant text with {% generation %}.
  bool has_generation_blocks() const;
  const std::string& source() const;
  const std::string& where() const;

 private:
  struct Compiled;
  explicit JinjaTemplate(std::shared_ptr<const Compiled> compiled)
      : compiled_(std::move(compiled)) {}
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace align
