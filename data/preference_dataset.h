// Sequence-level preference pairs for DPO in the shapes TRL's DPOTrainer accepts, read from a JSONL
// file, Parquet or a hub dataset id (data/dataset_records.h: one JSON object per line or row;
// docs/datasets.md). Unknown keys are ignored:
//
//   {"prompt": "text", "chosen": "text", "rejected": "text"}                      (standard)
//       prompt = encode(prompt); each completion = encode(completion) + [eos] (eos not doubled).
//   {"prompt": [messages], "chosen": [messages], "rejected": [messages], "tools"?} (conversational)
//       the completion's ids are the model's chat template (chat_format.h) of prompt + completion
//       minus the prompt's ids, with the prompt rendered with the generation prompt when that is a
//       prefix (it is when the completion starts with an assistant turn): the boundary comes from
//       the message structure, never from re-tokenizing text, so prompt + completion is exactly
//       what the model would see.
//   {"chosen": "text", "rejected": "text"}  or  {"chosen": [messages], "rejected": [messages]}
//       TRL's implicit prompt (trl.data_utils.maybe_extract_prompt): the prompt is the common
//       beginning of chosen and rejected: for strings up to the first character where they differ,
//       minus a space right before it (the space stays with the completions); for message lists
//       the messages before the first that differs. Then as above. Also when "prompt" is of the
//       other kind than the completions (TRL ignores it then). One difference from TRL: a pair that
//       differs at its first character is an error here, where TRL's index -1 would wrap around.
//   {"prompt_input_ids": [ids], "chosen_input_ids": [ids], "rejected_input_ids": [ids]}
//       pre-tokenized (TRL's tokenized column names), used as given.
//
// Only the message shapes read the chat template; text and id shapes run with any tokenizer.
// Optional per line: "weight" (a number > 0, read when weights come from the data) and
// "ref_chosen_logps", "ref_rejected_logps" (precomputed reference log-probs: the SUM over the
// completion's tokens, as the trainer computes them).
//
// A pair longer than max_seq_len keeps its prompt and cuts each completion to fit (counted); a
// prompt that leaves no room for one completion token is an error naming the line.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/enum_names.h"
#include "data/chat_template.h"
#include "data/token_id.h"
#include "data/tokenizer.h"

namespace align {

// Where per-pair weights come from: none (all 1), the explicit "weight" field, or (token pairs
// only) |p_chosen - p_rejected|.
enum class PairWeight { kNone, kField, kPGap };

template <>
struct EnumNames<PairWeight> {
  static constexpr std::pair<PairWeight, const char*> table[] = {
      {PairWeight::kNone, "none"}, {PairWeight::kField, "field"}, {PairWeight::kPGap, "p_gap"}};
};

struct PreferencePair {
  std::vector<TokenId> prompt;    // [Tp]
  std::vector<TokenId> chosen;    // [Tc] >= 1 token
  std::vector<TokenId> rejected;  // [Tr] >= 1 token
  double weight = 1.0;
  std::optional<double> ref_chosen, ref_rejected;  // precomputed summed reference log-probs
};

struct PreferenceDataOptions {
  int64_t max_seq_len = 2048;  // prompt + completion tokens per sequence
  PairWeight weight = PairWeight::kNone;
  int64_t vocab_size =
      0;  // the model's: an id past it is an error (data/token_range.h); 0: unchecked
};

struct PreferenceDataset {
  std::vector<PreferencePair> pairs;  // in file order
  int64_t truncated = 0;              // pairs with a completion cut to max_seq_len
  int64_t with_reference = 0;         // pairs carrying precomputed reference log-probs
};

// Reads the dataset `source` names (for_each_record; `key` names it in errors). Throws IoError
// when it cannot be read and InputError "file:line: field: ..." for a malformed record, a
// tokenizer without the tokens a shape needs, a dataset where only some records carry reference
// log-probs, or an empty one.
PreferenceDataset load_preference_dataset(const std::string& source, const LazyChatFormat& chat,
                                          const PreferenceDataOptions& opt,
                                          const std::string& key = "data");

// One parsed line (no file context). Sets *truncated when a completion was cut.
PreferencePair preference_pair_from_json(const nlohmann::json& record, const LazyChatFormat& chat,
                                         const PreferenceDataOptions& opt, bool* truncated);

// Reads the optional "weight" and "ref_chosen_logps"/"ref_rejected_logps" fields shared by both
// pair formats into *weight and the two optionals. Throws InputError naming the field.
void read_pair_extras(const nlohmann::json& record, PairWeight weight_source, double* weight,
                      std::optional<double>* ref_chosen, std::optional<double>* ref_rejected);

}  // namespace align
