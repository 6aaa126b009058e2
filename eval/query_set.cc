#include "eval/query_set.h"

#include <set>

#include "common/error.h"
#include "common/json_parse.h"
#include "common/jsonl.h"
#include "data/chat_format.h"
#include "data/token_range.h"

namespace align {

std::vector<Query> read_queries(const std::string& path, const ChatFormat& chat,
                                const Oracle& oracle, const QuerySetOptions& options) {
  std::vector<Query> queries;
  std::set<std::string> ids;
  for_each_jsonl(path, [&](const nlohmann::json& line, const JsonlLocation& where) {
    if (options.limit > 0 && static_cast<int64_t>(queries.size()) >= options.limit) return;
    if (!line.is_object()) throw InputError("expected a JSON object, found " + json_excerpt(line));
    Query q;
    if (!line.contains("id")) {
      q.id = "line-" + std::to_string(where.line);
    } else if (line.at("id").is_string()) {
      q.id = line.at("id").get<std::string>();
    } else if (line.at("id").is_number_integer()) {
      q.id = std::to_string(line.at("id").get<int64_t>());
    } else {
      throw InputError("id: expected a string or an integer, found " + json_excerpt(line.at("id")));
    }
    if (!ids.insert(q.id).second) throw InputError("id: \"" + q.id + "\" appears twice");

    std::vector<ChatMessage> messages;
    if (line.contains("messages")) {
      messages = parse_chat_messages(line.at("messages"));
      if (messages.empty()) throw InputError("messages: expected at least one message");
    } else if (line.contains("prompt") && line.at("prompt").is_string()) {
      if (!options.system_prompt.empty()) messages.push_back({"system", options.system_prompt});
      messages.push_back({"user", line.at("prompt").get<std::string>()});
    } else {
      throw InputError(
          "expected \"prompt\" (a string) or \"messages\" (a list of {role, content})");
    }
    q.prompt = chat.render(messages, /*add_generation_prompt=*/true).ids;
    if (options.vocab_size > 0) {
      check_token_ids(q.prompt, options.vocab_size,
                      line.contains("messages") ? "messages" : "prompt");
    }
    if (options.max_tokens > 0 &&
        static_cast<int64_t>(q.prompt.size()) + options.max_new_tokens > options.max_tokens) {
      throw InputError("the prompt has " + std::to_string(q.prompt.size()) +
                       " tokens with the chat template; with sampling.max_new_tokens = " +
                       std::to_string(options.max_new_tokens) + " the model can take at most " +
                       std::to_string(options.max_tokens - options.max_new_tokens) + " (" +
                       options.max_tokens_reason + ")");
    }
    q.fields = oracle_fields(line);
    oracle.check_fields(q.fields, "");  // for_each_jsonl names the file and line
    queries.push_back(std::move(q));
  });
  if (queries.empty()) throw InputError(path + ": no queries");
  return queries;
}

std::string completion_text(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  std::vector<TokenId> known;
  known.reserve(ids.size());
  for (TokenId t : ids)
    if (t >= 0 && t < tokenizer.vocab_size()) known.push_back(t);
  return tokenizer.decode(known, /*skip_special=*/true);
}

}  // namespace align
