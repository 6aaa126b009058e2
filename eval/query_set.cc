#include "eval/query_set.h"

#include <set>

#include "common/error.h"
#include "common/json_parse.h"
#include "data/dataset_records.h"
#include "data/token_range.h"

namespace align {

namespace {

// The prompt of a query line (see query_set.h), and whether the chat template wrote it.
std::vector<TokenId> query_prompt(const nlohmann::json& line, const Tokenizer& tokenizer,
                                  const LazyChatFormat& chat, const QuerySetOptions& options) {
  const char* const shapes[] = {"prompt", "messages", "text", "token_ids"};
  int found = 0;
  for (const char* key : shapes)
    found += line.contains(key) ? 1 : 0;
  if (found != 1) {
    throw InputError(
        std::string(found == 0 ? "no prompt: expected" : "several prompts: expected one of") +
        " \"prompt\" (a string), \"messages\" (a list of {role, content}), \"text\" "
        "(a string, encoded without the chat template) or \"token_ids\"");
  }
  if (line.contains("token_ids")) {
    const nlohmann::json& ids = line.at("token_ids");
    if (!ids.is_array() || ids.empty()) {
      throw InputError("token_ids: expected a non-empty list of token ids, found " +
                       json_excerpt(ids, 80));
    }
    std::vector<TokenId> out;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_number_integer() || ids[i].get<int64_t>() < 0) {
        throw InputError("token_ids[" + std::to_string(i) + "]: expected a token id, found " +
                         json_excerpt(ids[i], 40));
      }
      out.push_back(static_cast<TokenId>(ids[i].get<int64_t>()));
    }
    return out;
  }
  if (line.contains("text")) {
    if (!line.at("text").is_string()) {
      throw InputError("text: expected a string, found " + json_excerpt(line.at("text"), 80));
    }
    return tokenizer.encode(line.at("text").get<std::string>());
  }
  std::vector<ChatMessage> messages;
  if (line.contains("messages")) {
    messages = parse_chat_messages(line.at("messages"));
    if (messages.empty()) throw InputError("messages: expected at least one message");
  } else {
    if (!line.at("prompt").is_string()) {
      throw InputError("prompt: expected a string, found " + json_excerpt(line.at("prompt"), 80));
    }
    if (!options.system_prompt.empty()) messages.push_back({"system", options.system_prompt, {}});
    messages.push_back({"user", line.at("prompt").get<std::string>(), {}});
  }
  const std::optional<nlohmann::ordered_json> tools = parse_chat_tools(line);
  return chat.get().render(messages, /*add_generation_prompt=*/true, tools ? &*tools : nullptr).ids;
}

}  // namespace

std::vector<Query> read_queries(const std::string& path, const Tokenizer& tokenizer,
                                const LazyChatFormat& chat, const Oracle& oracle,
                                const QuerySetOptions& options, const std::string& key) {
  std::vector<Query> queries;
  std::set<std::string> ids;
  RecordReadOptions read;
  read.limit = options.limit;
  for_each_record(
      path, key,
      [&](const nlohmann::json& line, const RecordLocation& where) {
        if (!line.is_object())
          throw InputError("expected a JSON object, found " + json_excerpt(line));
        Query q;
        if (!line.contains("id")) {
          q.id = where.line > 0 ? "line-" + std::to_string(where.line)
                                : "row-" + std::to_string(where.index);
        } else if (line.at("id").is_string()) {
          q.id = line.at("id").get<std::string>();
        } else if (line.at("id").is_number_integer()) {
          q.id = std::to_string(line.at("id").get<int64_t>());
        } else {
          throw InputError("id: expected a string or an integer, found " +
                           json_excerpt(line.at("id")));
        }
        if (!ids.insert(q.id).second) throw InputError("id: \"" + q.id + "\" appears twice");

        q.prompt = query_prompt(line, tokenizer, chat, options);
        if (options.vocab_size > 0) {
          const char* const shapes[] = {"messages", "prompt", "text", "token_ids"};
          const char* shape = "prompt";
          for (const char* name : shapes)
            if (line.contains(name)) shape = name;
          check_token_ids(q.prompt, options.vocab_size, shape);
        }
        if (options.max_tokens > 0 &&
            static_cast<int64_t>(q.prompt.size()) + options.max_new_tokens > options.max_tokens) {
          throw InputError("the prompt has " + std::to_string(q.prompt.size()) +
                           " tokens; with sampling.max_new_tokens = " +
                           std::to_string(options.max_new_tokens) + " the model can take at most " +
                           std::to_string(options.max_tokens - options.max_new_tokens) + " (" +
                           options.max_tokens_reason + ")");
        }
        q.fields = oracle_fields(line);
        oracle.check_fields(q.fields, "");  // for_each_record names the file and line or row
        queries.push_back(std::move(q));
      },
      read);
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
