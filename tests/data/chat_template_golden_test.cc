// Real published chat templates rendered by align (llama.cpp's Jinja engine, data/chat_format.h)
// against transformers' apply_chat_template(..., tokenize=True) and return_assistant_tokens_mask:
// tests/golden/chat_templates/cases.json, written by tools/golden_chat_templates.py for Phi-4,
// Phi-4-mini-instruct, Phi-4-reasoning, SmolLM2-135M-Instruct and every template under llama.cpp's
// models/templates/ (system prompts, multi-turn, tools and tool calls, generation prompts). Ids
// must be equal; where the template has {% generation %} the masks must be equal too; where
// transformers raises, align must raise. A template the engine renders differently is listed in
// kKnownDifferences with the reason, and the test fails if one of them starts to match (so the
// list stays true).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/chat_format.h"
#include "data/jinja_template.h"
#include "tests/test_util.h"

namespace align {
namespace {

// Ordered: tool schemas reach the templates' tojson in the order transformers saw them.
nlohmann::ordered_json read_cases() {
  return nlohmann::ordered_json::parse(
      read_file(testing::golden_path("chat_templates/cases.json")));
}

std::string template_text(const nlohmann::ordered_json& entry) {
  if (entry.contains("template")) return entry["template"].get<std::string>();
  const std::string path =
      std::string(ALIGN_LLAMA_CPP_DIR) + "/models/templates/" + entry["file"].get<std::string>();
  return read_file(path);
}

// Cases where the engine and transformers' Jinja (Python jinja2 in a sandbox) part: the template,
// the conversations whose cases differ, and why. Each is a template bug or a Python-only quirk met
// by these inputs; every other case of these templates must still match.
struct KnownDifference {
  std::set<std::string> conversations;
  std::string reason;
};
const std::map<std::string, KnownDifference> kKnownDifferences = {
    {"CohereForAI-c4ai-command-r-plus-tool_use",
     {{"system_multi_turn", "multi_turn", "one_user", "whitespace"},
      "iterates `tools` when none are given: Python raises on None, the engine iterates nothing"}},
    {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use",
     {{"system_multi_turn", "multi_turn", "one_user", "whitespace"},
      "iterates `tools` when none are given: Python raises on None, the engine iterates nothing"}},
    {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
     {{"system_multi_turn", "multi_turn", "one_user", "whitespace"},
      "iterates `tools` when none are given: Python raises on None, the engine iterates nothing"}},
    {"fireworks-ai-llama-3-firefunction-v2",
     {{"system_multi_turn", "multi_turn", "one_user", "whitespace", "tools", "tool_call"},
      "reads a `functions` variable apply_chat_template never defines: Python raises "
      "UndefinedError, the engine prints undefined as empty"}},
    {"Kimi-K2-Instruct",
     {{"tool_call"}, "calls list.append, which transformers' sandbox refuses; the engine runs it"}},
    {"Kimi-K2-Thinking",
     {{"tool_call"}, "calls list.append, which transformers' sandbox refuses; the engine runs it"}},
    {"llama-cpp-deepseek-r1",
     {{"tools", "tool_call"},
      "passes a generator to tojson, which Python cannot serialise; the engine has no generators"}},
    {"meetkai-functionary-medium-v3.2",
     {{"tool_call"},
      "adds a dict to a string: Python raises TypeError, the engine concatenates its JSON"}},
    {"meetkai-functionary-medium-v3.1",
     {{"tools", "tool_call"},
      "adds tojson's output to a |safe string: jinja2's Markup HTML-escapes it (&#34;), the "
      "engine has no Markup"}},
};

struct Outcome {
  size_t cases = 0, equal = 0, masks = 0;
  std::vector<std::string> problems;
  std::set<std::string> differing;  // conversations with a problem
};

Outcome run_template(const nlohmann::ordered_json& entry,
                     const nlohmann::ordered_json& conversations, const Tokenizer& tok) {
  Outcome out;
  const std::string name = entry["name"].get<std::string>();
  std::optional<ChatFormat> format;
  try {
    format = ChatFormat::make(JinjaTemplate::compile(template_text(entry), name), tok, name,
                              entry["kwargs"]);
  } catch (const InputError& e) {
    out.problems.push_back("cannot compile: " + std::string(e.what()));
    return out;
  }
  for (const nlohmann::ordered_json& c : entry["cases"]) {
    ++out.cases;
    const std::string conv = c["conversation"].get<std::string>();
    const bool gen = c["add_generation_prompt"].get<bool>();
    const std::string label = conv + (gen ? " +gen" : "");
    const size_t problems_before = out.problems.size();
    struct Mark {
      Outcome& o;
      const std::string& conv;
      size_t before;
      ~Mark() {
        if (o.problems.size() > before) o.differing.insert(conv);
      }
    } mark{out, conv, problems_before};
    const nlohmann::ordered_json& spec = conversations.at(conv);
    const std::vector<ChatMessage> messages = parse_chat_messages(spec["messages"]);
    const std::optional<nlohmann::ordered_json> tools = parse_chat_tools(spec);
    if (c.contains("error")) {
      try {
        format->render(messages, gen, tools ? &*tools : nullptr);
        out.problems.push_back(label + ": transformers raised (" + c["error"].get<std::string>() +
                               "), align rendered");
      } catch (const InputError&) {
        ++out.equal;
      }
      continue;
    }
    ChatTokens got;
    try {
      got = format->render(messages, gen, tools ? &*tools : nullptr);
    } catch (const InputError& e) {
      out.problems.push_back(label + ": " + e.what());
      continue;
    }
    const auto want = c["ids"].get<std::vector<TokenId>>();
    if (got.ids != want) {
      size_t at = 0;
      while (at < got.ids.size() && at < want.size() && got.ids[at] == want[at])
        ++at;
      out.problems.push_back(
          label + ": ids differ at " + std::to_string(at) + " (align " +
          std::to_string(got.ids.size()) + " tokens, transformers " + std::to_string(want.size()) +
          "): align \"" +
          tok.decode(std::vector<TokenId>(
              got.ids.begin() + static_cast<int64_t>(at),
              got.ids.begin() + static_cast<int64_t>(std::min(got.ids.size(), at + 8)))) +
          "\" vs \"" +
          tok.decode(std::vector<TokenId>(
              want.begin() + static_cast<int64_t>(at),
              want.begin() + static_cast<int64_t>(std::min(want.size(), at + 8)))) +
          "\"");
      continue;
    }
    if (!c["assistant_masks"].is_null()) {
      const auto mask = c["assistant_masks"].get<std::vector<uint8_t>>();
      if (got.assistant_mask != mask) {
        out.problems.push_back(label + ": assistant masks differ");
        continue;
      }
      ++out.masks;
    }
    ++out.equal;
  }
  return out;
}

TEST(ChatTemplateGolden, PublishedTemplatesMatchTransformers) {
  const nlohmann::ordered_json golden = read_cases();
  const Tokenizer tok = Tokenizer::load(testing::golden_path("chat_templates/tokenizer"));
  size_t templates = 0, matching = 0, matching_but_known = 0, cases = 0, masks = 0;
  std::set<std::string> names;
  for (const nlohmann::ordered_json& entry : golden["templates"]) {
    const std::string name = entry["name"].get<std::string>();
    names.insert(name);
    ++templates;
    const Outcome o = run_template(entry, golden["conversations"], tok);
    cases += o.cases;
    masks += o.masks;
    const auto known = kKnownDifferences.find(name);
    if (o.problems.empty()) {
      ++matching;
      EXPECT_EQ(known, kKnownDifferences.end())
          << name << " now matches transformers: take it off kKnownDifferences";
      continue;
    }
    if (known != kKnownDifferences.end() && o.differing == known->second.conversations) {
      ++matching_but_known;
      continue;
    }
    std::string all;
    for (const std::string& p : o.problems)
      all += "\n  " + p;
    ADD_FAILURE() << name << ": " << o.problems.size() << " of " << o.cases
                  << " cases differ:" << all;
  }
  for (const auto& [name, reason] : kKnownDifferences)
    EXPECT_TRUE(names.count(name)) << name << " is listed but not in the golden file";
  std::cout << matching << " of " << templates
            << " published templates match transformers in every case, " << matching_but_known
            << " in all but their known differences (" << cases << " cases, " << masks
            << " generation masks compared)\n";
  RecordProperty("templates_matching", std::to_string(matching));
}

TEST(ChatTemplateGolden, TemplateFilesAreTheOnesTheGoldensCameFrom) {
  const nlohmann::ordered_json golden = read_cases();
  for (const nlohmann::ordered_json& entry : golden["templates"]) {
    if (!entry.contains("file")) continue;
    const std::string path =
        std::string(ALIGN_LLAMA_CPP_DIR) + "/models/templates/" + entry["file"].get<std::string>();
    EXPECT_TRUE(std::filesystem::exists(path))
        << path << " is missing: scripts/setup.sh unpacks llama.cpp's templates";
  }
}

}  // namespace
}  // namespace align
