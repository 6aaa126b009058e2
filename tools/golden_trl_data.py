#!/usr/bin/env python3
"""Writes tests/golden/trl_data/ (dev-only; tests never run Python): data files in the forms TRL
accepts that align reads too, and what TRL itself makes of them.

  sft_text.jsonl            {"text": ...} lines (TRL's "language modeling" form)
  dpo_implicit_text.jsonl   {"chosen": str, "rejected": str}: the prompt is implicit
  dpo_implicit_chat.jsonl   {"chosen": [messages], "rejected": [messages]}: likewise
  trl_tokenized.json        per file, the tokenized train_dataset of a real trl.SFTTrainer /
                            trl.DPOTrainer built on the golden tokenizer and a random model of
                            the tiny golden shape with that tokenizer's vocabulary:
                            SFT input_ids; DPO prompt_ids, chosen_ids, rejected_ids, and the
                            prompt text trl.data_utils.extract_prompt found.

The text of a {"text"} line ending in whitespace differs in one place: TRL appends the eos token
as text, and the tokenizer's lstrip on <|im_end|> swallows the whitespace before it; align appends
the eos id and keeps the text as written (the test checks exactly that difference).

The trainers are constructed (which loads, validates and tokenizes the data) and run one
optimizer step each, so the files are ones TRL accepts end to end.

Usage: ~/.cache/align/venv/bin/python tools/golden_trl_data.py
"""
import json
import pathlib
import tempfile

import torch
from datasets import load_dataset
from transformers import AutoConfig, AutoModelForCausalLM, TokenizersBackend
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer
from trl.data_utils import extract_prompt

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_CONFIG = ROOT / "tests/golden/model/phi4_tiny"
TOKENIZER = ROOT / "tests/golden/tokenizer/main"
OUT = ROOT / "tests/golden/trl_data"

SFT_TEXT = [
    {"text": "The quick brown fox jumps over the lazy dog."},
    {"text": "def add(a, b):\n    return a + b"},
    {"text": "Ends with a newline\n"},
    {"text": "Already ends with the end token.<|im_end|>"},
    {"text": "Numbers: 12345 and 3.14159, symbols #@!"},
]

DPO_TEXT = [
    {"chosen": "What is 2+2? The answer is 4.", "rejected": "What is 2+2? The answer is 5."},
    {"chosen": "Name a colour: blue", "rejected": "Name a colour: seven"},
    {"chosen": "Translate 'chat': cat", "rejected": "Translate 'chat': dog, obviously"},
]


def turn(role, content):
    return {"role": role, "content": content}


DPO_CHAT = [
    {
        "chosen": [turn("user", "What is 2+2?"), turn("assistant", "4")],
        "rejected": [turn("user", "What is 2+2?"), turn("assistant", "5")],
    },
    {
        "chosen": [turn("system", "Be brief."), turn("user", "Capital of France?"),
                   turn("assistant", "Paris.")],
        "rejected": [turn("system", "Be brief."), turn("user", "Capital of France?"),
                     turn("assistant", "It is Lyon, I think.")],
    },
    {
        "chosen": [turn("user", "Hi"), turn("assistant", "Hello!"), turn("user", "Count to 3"),
                   turn("assistant", "1, 2, 3")],
        "rejected": [turn("user", "Hi"), turn("assistant", "Hello!"), turn("user", "Count to 3"),
                     turn("assistant", "no")],
    },
]


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def common_args(tmp):
    return dict(output_dir=f"{tmp}/out", max_steps=1, per_device_train_batch_size=2, report_to=[],
                save_strategy="no", logging_strategy="no", use_cpu=True, dataset_num_proc=None,
                learning_rate=1e-4)


def sft(model, tok, path, tmp):
    data = load_dataset("json", data_files=str(path), split="train")
    args = SFTConfig(**common_args(tmp), max_length=None, packing=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    out = {"input_ids": [list(r["input_ids"]) for r in trainer.train_dataset]}
    trainer.train()
    return out


def dpo(model, tok, path, tmp):
    data = load_dataset("json", data_files=str(path), split="train")
    args = DPOConfig(**common_args(tmp), max_length=None)
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    ds = trainer.train_dataset
    out = {k: [list(r[k]) for r in ds] for k in ("prompt_ids", "chosen_ids", "rejected_ids")}
    out["prompt"] = [extract_prompt(r)["prompt"] for r in data]
    trainer.train()
    return out


def random_model(vocab_size, folder):
    """Saved to `folder` and loaded from there: DPOTrainer loads its reference model from the
    policy's name_or_path."""
    config = AutoConfig.from_pretrained(MODEL_CONFIG, vocab_size=vocab_size)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    files = {"sft_text.jsonl": SFT_TEXT, "dpo_implicit_text.jsonl": DPO_TEXT,
             "dpo_implicit_chat.jsonl": DPO_CHAT}
    for name, rows in files.items():
        write_jsonl(OUT / name, rows)
    # tokenizer.json as written (as align and tokenizers read it): AutoTokenizer would build the
    # GPT2Tokenizer named in tokenizer_config.json, whose transformers 5.23 version swaps the file's
    # cl100k pre-tokenizer for GPT-2's (see tools/golden_tokenizer.py).
    tok = TokenizersBackend.from_pretrained(TOKENIZER)
    golden = {}
    with tempfile.TemporaryDirectory() as tmp:
        golden["sft_text.jsonl"] = sft(random_model(len(tok), f"{tmp}/model"), tok, OUT / "sft_text.jsonl", tmp)
        for name in ("dpo_implicit_text.jsonl", "dpo_implicit_chat.jsonl"):
            golden[name] = dpo(random_model(len(tok), f"{tmp}/model"), tok, OUT / name, tmp)
    import trl
    import transformers
    golden["versions"] = {"trl": trl.__version__, "transformers": transformers.__version__}
    (OUT / "trl_tokenized.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
