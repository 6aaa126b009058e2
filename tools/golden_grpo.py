#!/usr/bin/env python3
"""Writes tests/golden/grpo/phi4_tiny_grpo.json (dev-only; tests never run Python).

TRL's own GRPOTrainer (trl 1.16.0, the pin in tools/make_golden.sh) computes one step of GRPO on
the tiny golden model (tests/golden/model/phi4_tiny; fp32, CPU, eager attention, full fine-tuning)
for fixed prompts, completions and rewards: a subclass replaces only its generation
(_tokenize_prompts and _generate_single_turn return the fixed ids), so TRL's
_generate_and_score_completions computes the advantages (and the reference log-probs, masks,
token counts) and TRL's _compute_loss the loss, kl, entropies and clip ratios; the script reads
their locals when _compute_loss returns (sys.settrace), then backpropagates TRL's loss.

  prompts       3 prompts of seeded random ids (lengths 4, 6, 3), G = 4 completions each, lengths
                1..8, ending in eos (id 2: terminated) or not (truncated; max_completion_length 8)
  rewards       two reward functions, "acc" (0/1, one group all equal: zero std) and "fmt"
                (floats), reward_weights [1.0, 0.5]
  pi_old, ref   TRL's own values at generation, shifted by seeded N(0, 0.3) noise (pi_old: as a
                later iteration of num_iterations 2 sees it, so ratios clip; ref: so kl != 0);
                the noise is the same in every case (drawn once per token)
  cases         every loss_type x scale_rewards x importance_sampling_level with beta 0.04 and
                num_iterations 2; and num_iterations 1 (pi_old = the policy, detached),
                mask_truncated_completions, top_entropy_quantile 0.5, temperature 0.7,
                epsilon_high 0.28 and use_bias_correction_kl false
  per case      advantages [N]; per token [N, Tc]: TRL's mask, per_token_logps, entropies, old and
                ref log-probs, ratio (coef_1), per_token_kl, per_token_loss, low/high clipped;
                metrics (TRL's: reward, reward_std, frac_reward_zero_std, rewards/<name>/mean
                and /std, completions/*, kl, entropy, clip_ratio/*); the loss; per parameter
                gradient: sum of squares and the first 8 values.

Usage: ~/.cache/align/venv/bin/python tools/golden_grpo.py
"""
import json
import pathlib
import sys
import tempfile

import datasets
import torch
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast
from trl import GRPOConfig, GRPOTrainer

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests/golden/model/phi4_tiny"
OUT = ROOT / "tests/golden/grpo/phi4_tiny_grpo.json"
G, MAX_LEN, EOS, PAD = 4, 8, 2, 3

BASE = {"beta": 0.04, "num_iterations": 2, "epsilon": 0.2, "temperature": 1.0}
CASES = [{"name": f"{lt}_{sr}_{lvl}", **BASE, "loss_type": lt, "scale_rewards": sr,
          "importance_sampling_level": lvl}
         for lt in ("grpo", "bnpo", "dr_grpo", "dapo")
         for sr in ("group", "batch", "none")
         for lvl in ("token", "sequence")]
CASES += [
    {"name": "on_policy", **BASE, "num_iterations": 1, "beta": 0.0, "loss_type": "dapo",
     "scale_rewards": "group", "importance_sampling_level": "token"},
    {"name": "mask_truncated", **BASE, "loss_type": "grpo", "scale_rewards": "group",
     "importance_sampling_level": "token", "mask_truncated_completions": True},
    {"name": "top_entropy", **BASE, "loss_type": "dapo", "scale_rewards": "group",
     "importance_sampling_level": "token", "top_entropy_quantile": 0.5},
    {"name": "temperature", **BASE, "temperature": 0.7, "loss_type": "dapo",
     "scale_rewards": "group", "importance_sampling_level": "token"},
    {"name": "clip_higher", **BASE, "epsilon_high": 0.28, "loss_type": "dapo",
     "scale_rewards": "batch", "importance_sampling_level": "token"},
    {"name": "no_kl_correction", **BASE, "use_bias_correction_kl": False, "loss_type": "bnpo",
     "scale_rewards": "group", "importance_sampling_level": "sequence"},
]


def make_data(vocab):
    g = torch.Generator().manual_seed(2468)
    rand = lambda n: torch.randint(4, vocab, (n,), generator=g).tolist()
    prompts = [rand(n) for n in (4, 6, 3)]
    lengths = [1, 5, 8, 3, 8, 2, 6, 8, 4, 7, 8, 1]
    ends = [1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1]  # 1: ends in eos
    completions = []
    for n, e in zip(lengths, ends):
        ids = rand(n)
        if e:
            ids[-1] = EOS
        completions.append(ids)
    acc = [1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0]  # group 1 (rows 4-7): all 0
    fmt = [0.5, 1.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.75, 1.0, 0.5, 0.0]
    return prompts, completions, acc, fmt


def tokenizer(vocab):
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="t2", pad_token="t3",
                                   bos_token="t1", unk_token="t0")


class FixedTrainer(GRPOTrainer):
    """GRPOTrainer whose generation returns the fixed completions, in row order."""

    fixed_prompts = None
    fixed_completions = None

    def _tokenize_prompts(self, prompts):
        return [self.fixed_prompts[int(p[1:])] for p in prompts], None, {}

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                              has_tool_images=False):
        return [list(c) for c in self.fixed_completions], None


def capture_locals(fn, *args):
    """Runs fn(*args) and returns (its result, the locals of _compute_loss at its return)."""
    seen = {}
    code = GRPOTrainer._compute_loss.__code__

    def tracer(frame, event, arg):
        if frame.f_code is not code:
            return None

        def local(frame, event, arg):
            if event == "return":
                seen.update(frame.f_locals)
            return local
        return local

    sys.settrace(tracer)
    try:
        result = fn(*args)
    finally:
        sys.settrace(None)
    return result, seen


def rows(t):
    """A [B, T] (or [B, 1]) tensor as nested lists of floats."""
    return t.detach().float().tolist()


def main():
    torch.manual_seed(0)
    vocab = 320
    prompts, completions, acc, fmt = make_data(vocab)
    tok = tokenizer(vocab)
    FixedTrainer.fixed_prompts = prompts
    FixedTrainer.fixed_completions = completions

    def acc_reward(completions, **kwargs):
        return [float(a) for a in acc]

    def fmt_reward(completions, **kwargs):
        return [float(f) for f in fmt]

    acc_reward.__name__ = "acc"
    fmt_reward.__name__ = "fmt"
    dataset = datasets.Dataset.from_dict({"prompt": [f"p{i}" for i in range(len(prompts))]})
    noise = torch.Generator().manual_seed(97)
    old_noise = torch.randn(len(completions), MAX_LEN, generator=noise) * 0.3
    ref_noise = torch.randn(len(completions), MAX_LEN, generator=noise) * 0.3

    results = []
    with tempfile.TemporaryDirectory() as out_dir:
        for case in CASES:
            args = GRPOConfig(
                output_dir=out_dir, report_to=[], use_cpu=True, bf16=False, seed=0,
                per_device_train_batch_size=len(completions), gradient_accumulation_steps=1,
                num_generations=G, max_completion_length=MAX_LEN,
                model_init_kwargs={"dtype": torch.float32, "attn_implementation": "eager"},
                beta=case["beta"], num_iterations=case["num_iterations"],
                epsilon=case["epsilon"], epsilon_high=case.get("epsilon_high"),
                loss_type=case["loss_type"], scale_rewards=case["scale_rewards"],
                importance_sampling_level=case["importance_sampling_level"],
                mask_truncated_completions=case.get("mask_truncated_completions", False),
                top_entropy_quantile=case.get("top_entropy_quantile", 1.0),
                temperature=case["temperature"],
                use_bias_correction_kl=case.get("use_bias_correction_kl", True),
                reward_weights=[1.0, 0.5])
            trainer = FixedTrainer(model=str(MODEL), reward_funcs=[acc_reward, fmt_reward],
                                   args=args, train_dataset=dataset, processing_class=tok)
            trainer.current_gradient_accumulation_steps = 1
            model = trainer.model
            model.train()
            batch = [{"prompt": f"p{i // G}"} for i in range(len(completions))]
            inputs = trainer._generate_and_score_completions(batch)
            mask = inputs["completion_mask"].float()
            width = mask.size(1)
            # The policy's own log-probs at this temperature, for the noisy pi_old and ref.
            with torch.no_grad():
                own, _, _ = trainer._get_per_token_logps_and_entropies(
                    model, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1),
                    torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1), width)
            if case["num_iterations"] > 1:
                inputs["old_per_token_logps"] = (own + old_noise[:, :width]) * mask
            if case["beta"] != 0:
                inputs["ref_per_token_logps"] = (own + ref_noise[:, :width]) * mask
            metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
            trainer._metrics["train"].clear()
            loss, seen = capture_locals(trainer._compute_loss, model, inputs)
            model.zero_grad()
            loss.backward()
            grads = {}
            for n, p in model.named_parameters():
                gr = p.grad.detach().flatten()
                grads[n] = {"sum_sq": (gr * gr).sum().item(), "first": gr[:8].tolist()}
            metrics.update({k: v[-1] for k, v in trainer._metrics["train"].items()})
            per_token_loss = seen["per_token_loss"].expand_as(seen["mask"])
            r = {**case,
                 "advantages": inputs["advantages"].tolist(),
                 "mask": rows(seen["mask"]),
                 "logps": rows(seen["per_token_logps"]),
                 "entropies": rows(seen["entropies"]),
                 "old_logps": rows(inputs["old_per_token_logps"])
                 if "old_per_token_logps" in inputs else None,
                 "ref_logps": rows(inputs["ref_per_token_logps"])
                 if "ref_per_token_logps" in inputs else None,
                 "ratio": rows(seen["coef_1"]),
                 "kl": rows(seen["per_token_kl"]) if case["beta"] != 0 else None,
                 "per_token_loss": rows(per_token_loss),
                 "low_clipped": rows(seen["is_low_clipped"]),
                 "high_clipped": rows(seen["is_high_clipped"]),
                 "metrics": metrics, "loss": loss.item(), "grads": grads}
            results.append(r)
            print(f"{case['name']}: loss {loss.item():.6f}, clip region "
                  f"{metrics.get('clip_ratio/region_mean', 0):.3f}")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"model": "phi4_tiny", "num_generations": G,
                               "max_completion_length": MAX_LEN, "eos": EOS, "pad": PAD,
                               "prompts": prompts, "completions": completions,
                               "rewards": {"acc": acc, "fmt": fmt},
                               "reward_weights": [1.0, 0.5], "cases": results}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
