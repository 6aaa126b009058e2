// SFT examples in the shapes TRL's SFTTrainer accepts, as token ids plus a loss mask, read from a
// JSONL file, Parquet or a hub dataset id (data/dataset_records.h: each line or row is one JSON
// object; docs/datasets.md). Each record has exactly one of these shapes (other keys are ignored):
//
//   {"messages": [{"role", "content"}, ...], "tools": [...]}      ("tools" optional, as TRL's)
//       the model's chat template (chat_format.h, no generation prompt); targets: the assistant
//       mask, each assistant turn's content and its end-of-turn token (<|im_end|>, <|end|>), or
//       the template's {% generation %} spans.
//   {"prompt": "text", "completion": "text"}                              (TRL "standard")
//       ids = encode(prompt) + encode(completion) + [eos] (encode as HF does, special-token text
//       matched; eos is not appended twice when the completion already ends with it, as TRL);
//       targets: the completion and the eos (TRL's completion_only_loss).
//   {"prompt": [messages...], "completion": [messages...], "tools"?}   (TRL "conversational")
//       the chat template of prompt + completion; targets: the completion's assistant turns.
// Only the message shapes read the chat template (a LazyChatFormat chooses it when first needed):
// text shapes run with any tokenizer, whatever template the model has.
//   {"text": "text"}                                            (TRL "language modeling")
//       ids = encode(text) + [eos] (not doubled); targets: every token after the first.
//
// With assistant_only_loss = false every token but the first is a target, whatever the shape.
// Index 0 is never a target (nothing predicts it). An example with no target left is malformed.
// Examples longer than max_seq_len are cut to their first max_seq_len tokens (TRL's truncation).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/tokenizer.h"

namespace align {

struct SftExample {
  std::vector<TokenId> ids;        // [n] the whole sequence
  std::vector<uint8_t> loss_mask;  // [n] 1 where ids[i] is a training target (predicted from
                                   //     ids[<i]); loss_mask[0] is always 0
};

struct SftDataOptions {
  bool assistant_only_loss = true;  // false: every token after the first is a target
  bool skip_bad_lines = false;      // false: the first malformed record throws InputError
                                    // "file:line: field: ..." ("file: row N, column c: ..." in
                                    // Parquet); true: skipped and counted
  int64_t max_seq_len = 2048;       // longer examples are truncated (counted); must be >= 2
  int64_t vocab_size = 0;           // the model's: an example with an id past it is a bad line
                                    // (check_token_ids, data/token_range.h); 0: unchecked
};

// How many skip reasons SftDataset::skip_messages keeps.
constexpr size_t kMaxSkipMessages = 10;

struct SftDataset {
  std::vector<SftExample> examples;        // in dataset order
  int64_t skipped = 0;                     // malformed records skipped (skip_bad_lines)
  int64_t truncated = 0;                   // kept examples cut to max_seq_len
  int64_t target_tokens = 0;               // sum of loss_mask over examples
  std::vector<std::string> skip_messages;  // first kMaxSkipMessages "file:line: reason"
};

// Reads the dataset `source` names (for_each_record; `key` names it in errors, e.g.
// "data.train"). Throws IoError when it cannot be read; InputError "file:line: field: expected
// ..., got ..." for a malformed record (unless skip_bad_lines), for a tokenizer that lacks a token
// the shape needs (eos, chat control tokens; never skipped), and when no example is left.
SftDataset load_sft_dataset(const std::string& source, const LazyChatFormat& chat,
                            const SftDataOptions& opt, const std::string& key = "data");

// One parsed JSON record as an example (the per-line step of load_sft_dataset, without file
// context). Sets *truncated when the sequence was cut. Throws InputError naming the field.
SftExample sft_example_from_json(const nlohmann::json& record, const LazyChatFormat& chat,
                                 const SftDataOptions& opt, bool* truncated);

}  // namespace align
