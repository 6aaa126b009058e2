// The query set that align eval and align pts sample and grade: one query per record of a JSONL
// file, Parquet or a hub dataset id (data/dataset_records.h; docs/datasets.md), the prompt in
// one of four shapes, plus the oracle's fields ("answer", "tests", "harmful", ...):
//   {"id": "gsm8k-17", "prompt": "..."}       a user turn in the model's chat template, with
//                                              the assistant generation prompt
//   {"id": ..., "messages": [{"role", "content"}, ...], "tools": [...]}   the same for a
//                                              conversation ("tools" optional)
//   {"id": ..., "text": "..."}                 the model's own prompt layout: encoded as is,
//                                              no chat template
//   {"id": ..., "token_ids": [...]}            ids as they are
// "id" is a string or an integer (absent: "line-N" with the JSONL line number, "row-N" with the
// 0-based position in a Parquet dataset); ids must be unique. The chat template
// (data/chat_template.h) is read only when a line has "prompt" or "messages". The oracle sees
// only oracle_fields(line).
#pragma once

#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "oracles/oracle.h"

namespace align {

struct Query {
  std::string id;
  std::vector<TokenId> prompt;  // the query with the chat template applied
  nlohmann::json fields;        // oracle_fields(item): what the oracle may see
};

struct QuerySetOptions {
  std::string system_prompt;  // a system turn before "prompt" (not added to "messages")
  int64_t limit = 0;          // first N lines; 0 = all
  int64_t vocab_size = 0;     // the model's: every query token must be below it
  // A prompt plus max_new_tokens must fit in max_tokens (0: no limit); the reason says why, e.g.
  // "max_position_embeddings 4096".
  int64_t max_new_tokens = 0;
  int64_t max_tokens = 0;
  std::string max_tokens_reason;
};

// Reads the dataset `source` names (`key` names it in errors, e.g. "data.path"). Throws
// InputError naming the file and line or row (bad JSON, no prompt, duplicate id, a field the
// oracle needs is missing, a token outside the model's vocabulary, a prompt too long).
std::vector<Query> read_queries(const std::string& source, const Tokenizer& tokenizer,
                                const LazyChatFormat& chat, const Oracle& oracle,
                                const QuerySetOptions& options,
                                const std::string& key = "data.path");

// Completion text as the oracle sees it: special tokens skipped, and ids beyond the tokenizer
// (a model's padded vocabulary rows can be sampled) dropped, as Hugging Face's decode drops them.
std::string completion_text(const Tokenizer& tokenizer, const std::vector<TokenId>& ids);

}  // namespace align
