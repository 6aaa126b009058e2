// Each subcommand registers its flags and its action on the top-level CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace align {

void add_init_command(CLI::App& app);      // align init: a random model directory in HF layout
void add_tokenize_command(CLI::App& app);  // align tokenize: text or messages -> token ids
void add_logprobs_command(CLI::App& app);  // align logprobs: teacher-forced per-token log-probs
void add_sft_command(CLI::App& app);       // align sft: supervised fine-tuning
void add_generate_command(CLI::App& app);  // align generate: batched sampling with the engine
void add_pts_command(CLI::App& app);       // align pts: Pivotal Token Search
void add_dpo_command(CLI::App& app);       // align dpo: preference optimization (DPO)
void add_grpo_command(CLI::App& app);      // align grpo: RL from oracle rewards (GRPO)
void add_eval_command(CLI::App& app);      // align eval: pass@k of a model on a task set
void add_pipeline_command(CLI::App& app);  // align pipeline: SFT -> eval -> PTS -> DPO -> eval
void add_report_command(CLI::App& app);    // align report: one HTML page for a run directory
void add_gguf_commands(CLI::App& app);     // align export --gguf, align import --gguf

}  // namespace align
