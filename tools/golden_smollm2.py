#!/usr/bin/env python3
"""Writes the SmolLM2 golden files under tests/golden/smollm2/ (dev-only; tests never run it).

What transformers computes from the SmolLM2-135M-Instruct Phi-3 folder that
tools/smollm2_folder.sh builds (docs/smollm2.md), a real trained model with a byte-level vocab that
lacks 21 byte symbols and a ChatML template:

  tokenize.json  {"missing_bytes": [...], "cases": [{"name", "text", "ids", "decoded"}]}
                 ids = tokenizers' encode(text, add_special_tokens=False) (special-token text
                 matched), equal to AutoTokenizer's; decoded = tokenizers' decode(ids) (special
                 tokens kept). Texts: ASCII, unicode, digits, whitespace runs, code, emoji,
                 special-token text, and characters whose bytes have no symbol in the vocab.
  logprobs.json  {"sequences": [{"name", "tokens", "logprobs"}]}: fp32, teacher-forced,
                 logprobs[i] = log p(tokens[i] | tokens[:i]) (log-softmax of the fp32 logits),
                 logprobs[0] = null.
  greedy.json    {"max_new_tokens", "eos_token_id", "cases": [{"name", "messages" | "text",
                 "prompt", "tokens", "logprobs", "min_margin"}]}: generate(do_sample=False) in
                 fp32 from the token prompt (3 ChatML prompts from
                 apply_chat_template(messages, add_generation_prompt=True), 3 plain texts); tokens end at the first eos (kept) or after max_new_tokens;
                 logprobs[i] = log-softmax of generate's step-i logits at tokens[i]; min_margin is
                 the smallest gap between the top two logits over the steps (a gap near zero would
                 make greedy equality a coin toss; the script refuses one under 1e-3). The tokens
                 are checked against a naive argmax loop over full forwards.
  chat.json      {"conversations": [{"name", "messages", "add_generation_prompt", "text", "ids"}]}:
                 apply_chat_template(messages, tokenize=True) with the model's own template; the
                 generation prompt is added when the last message is not the assistant's (what
                 align's "messages" inputs do).
  sft.json       {"examples": [{"text", "ids", "nll_sum", "targets"}]}: TRL's language-modelling
                 ids (encode(text) + eos), and transformers' fp32 sum of -log p over every token
                 after the first (targets of them).

Usage: ~/.cache/align/venv/bin/python tools/golden_smollm2.py [--model DIR] [--out DIR]
(--model defaults to $ALIGN_SMOLLM2_DIR, else $ALIGN_CACHE_DIR/models/SmolLM2-135M-Instruct-phi3.)
"""

import argparse
import json
import os
import pathlib
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_NEW_TOKENS = 24
MIN_MARGIN = 1e-3

TOKENIZE_CASES = [
    ("ascii", "Hello world! The quick brown fox jumps over the lazy dog."),
    ("punctuation", "Wait... what?! (yes) [no] {maybe}; e-mail: a.b@c.org #tag 50% off"),
    ("contractions", "I'm sure they'll say it's fine, we've done what you'd expect."),
    ("unicode", "Zürich, naïve café, Ελληνικά, русский язык, 日本語のテキスト, 한국어, عربى"),
    ("digits", "1234567890 3.14159 1,000,000 2026-12-07 0x1F 12+30=42"),
    ("whitespace_runs", "a  b   c\t\td\n\n\ne    \n  f\r\n g   "),
    ("leading_spaces", "    four leading spaces"),
    ("only_spaces", "     "),
    ("newlines", "\n\n\n\n"),
    ("code", "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n\n\nprint(add(12, 30))  # 42\n"),
    ("cpp", "for (int i = 0; i < n; ++i) {\n\tsum += v[i] * 2;\n}"),
    ("emoji", "🙂👍🏽 family 👨\u200d👩\u200d👧\u200d👦 flag 🇫🇷 sparkle ✨"),
    ("special_tokens",
     "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>"),
    ("special_token_text", "<|endoftext|><file_sep>text<repo_name> x <|im_start"),
    ("missing_byte_4", "\x04"),
    ("missing_byte_between_letters", "a\x04b"),
    ("missing_byte_between_punctuation", "!\x04!"),
    ("missing_byte_in_spaces", "  \x04  "),
    ("missing_control_bytes", "x\x06y\x13z\x14w\x16v\x1du and \x00\x01\x7f kept"),
    ("missing_lead_bytes", "plane 4: \U00040000, plane 8: \U00080000."),
    ("mixed", "Résumé: 3× faster 🚀 on ~/data/файл.txt (100% — done)\t✓"),
]

LOGPROB_TEXTS = [
    ("plain", "The capital of France is Paris. It is known for the Eiffel Tower and fine food."),
    ("code", "def fibonacci(n):\n    if n < 2:\n        return n\n"
             "    return fibonacci(n - 1) + fibonacci(n - 2)\n"),
    ("unicode", "Zürich liegt in der Schweiz. 東京は日本の首都です。🙂"),
]
LOGPROB_CHAT = [
    {"role": "user", "content": "What is 12 + 30?"},
    {"role": "assistant", "content": "12 + 30 = 42."},
]

GREEDY_CHAT = [
    ("chat_capital", [{"role": "user", "content": "What is the capital of France?"}]),
    ("chat_sum", [{"role": "system", "content": "You are a calculator. Answer with a number."},
                  {"role": "user", "content": "What is 12 + 30?"}]),
    ("chat_haiku", [{"role": "user", "content": "Write a haiku about the sea."}]),
]
GREEDY_TEXT = [
    ("text_france", "The capital of France is"),
    ("text_code", "def fibonacci(n):\n"),
    ("text_story", "Once upon a time, in a small village,"),
]

CONVERSATIONS = [
    ("user_only", [{"role": "user", "content": "Hi!"}]),
    ("system_user", [{"role": "system", "content": "You answer in French."},
                     {"role": "user", "content": "How are you?"}]),
    ("multi_turn", [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is 2 + 2?"},
                    {"role": "assistant", "content": "4"},
                    {"role": "user", "content": "And 3 + 3?"}]),
    ("ends_with_assistant", [{"role": "user", "content": "Name a colour."},
                             {"role": "assistant", "content": "Blue."}]),
    ("unicode_and_newlines", [{"role": "user", "content": "Übersetze:\n\n  «bonjour» 🙂"},
                              {"role": "assistant", "content": "Hallo!\nGuten Tag."},
                              {"role": "user", "content": "Danke."}]),
]

SFT_TEXTS = [
    "The quick brown fox jumps over the lazy dog. Then it adds 12 and 30 and gets 42.",
    "def square(x):\n    return x * x\n",
]


def default_model_dir():
    if os.environ.get("ALIGN_SMOLLM2_DIR"):
        return os.environ["ALIGN_SMOLLM2_DIR"]
    cache = os.environ.get("ALIGN_CACHE_DIR", os.path.expanduser("~/.cache/align"))
    return os.path.join(cache, "models", "SmolLM2-135M-Instruct-phi3")


def chat_ids(tok, messages, add_generation_prompt):
    out = tok.apply_chat_template(messages, tokenize=True,
                                  add_generation_prompt=add_generation_prompt)
    ids = out["input_ids"] if hasattr(out, "keys") else out
    return [int(i) for i in ids]


def teacher_forced(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return [None] + [lp[i - 1, ids[i]].item() for i in range(1, len(ids))]


def tokenize_golden(tok):
    backend = tok.backend_tokenizer
    vocab = backend.get_vocab(with_added_tokens=False)
    missing = [b for b, ch in sorted(bytes_to_unicode().items()) if ch not in vocab]
    cases = []
    for name, text in TOKENIZE_CASES:
        ids = backend.encode(text, add_special_tokens=False).ids
        assert ids == tok(text, add_special_tokens=False).input_ids, name
        cases.append({"name": name, "text": text, "ids": ids,
                      "decoded": backend.decode(ids, skip_special_tokens=False)})
    return {"missing_bytes": missing, "cases": cases}


def logprobs_golden(model, tok):
    seqs = [(name, tok(text).input_ids) for name, text in LOGPROB_TEXTS]
    seqs.append(("chat", chat_ids(tok, LOGPROB_CHAT, False)))
    return {"sequences": [{"name": name, "tokens": ids, "logprobs": teacher_forced(model, ids)}
                          for name, ids in seqs]}


def greedy_one(model, prompt, eos):
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                             output_logits=True, return_dict_in_generate=True, pad_token_id=eos)
    tokens = out.sequences[0, len(prompt):].tolist()
    if eos in tokens:
        tokens = tokens[:tokens.index(eos) + 1]
    logprobs, margin = [], float("inf")
    for step, token in enumerate(tokens):
        logits = out.logits[step][0].float()
        top = torch.topk(logits, 2).values
        margin = min(margin, (top[0] - top[1]).item())
        logprobs.append(torch.log_softmax(logits, -1)[token].item())
    # A naive loop: argmax of a full forward over the whole sequence at every step.
    seq = list(prompt)
    for _ in tokens:
        with torch.no_grad():
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    if seq[len(prompt):] != tokens:
        sys.exit(f"golden_smollm2: generate() and the argmax loop disagree on {prompt}")
    if margin < MIN_MARGIN:
        sys.exit(f"golden_smollm2: a greedy step has a top-2 gap of {margin:g}; pick another prompt")
    return tokens, logprobs, margin


def greedy_golden(model, tok):
    eos = model.generation_config.eos_token_id
    prompts = [(name, {"messages": m}, chat_ids(tok, m, True)) for name, m in GREEDY_CHAT]
    prompts += [(name, {"text": text}, tok(text).input_ids) for name, text in GREEDY_TEXT]
    cases = []
    for name, source, prompt in prompts:
        tokens, logprobs, margin = greedy_one(model, prompt, eos)
        print(f"  greedy {name}: {tok.decode(tokens)!r} (min top-2 gap {margin:.3f})")
        cases.append({"name": name, **source, "prompt": prompt, "tokens": tokens,
                      "logprobs": logprobs, "min_margin": margin})
    return {"max_new_tokens": MAX_NEW_TOKENS, "eos_token_id": eos, "cases": cases}


def chat_golden(tok):
    convs = []
    for name, messages in CONVERSATIONS:
        gen = messages[-1]["role"] != "assistant"
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        ids = chat_ids(tok, messages, gen)
        assert ids == tok(text, add_special_tokens=False).input_ids, name
        convs.append({"name": name, "messages": messages, "add_generation_prompt": gen,
                      "text": text, "ids": ids})
    return {"conversations": convs}


def sft_golden(model, tok):
    examples = []
    for text in SFT_TEXTS:
        ids = tok(text).input_ids + [tok.eos_token_id]
        lp = teacher_forced(model, ids)[1:]
        examples.append({"text": text, "ids": ids, "nll_sum": -sum(lp), "targets": len(lp)})
    return {"examples": examples}


def write(path, data):
    path.write_text(json.dumps(data, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=default_model_dir())
    p.add_argument("--out", default=str(ROOT / "tests/golden/smollm2"))
    a = p.parse_args()
    if not os.path.isdir(a.model):
        sys.exit(f"golden_smollm2: no folder {a.model}; run tools/smollm2_folder.sh")
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    transformers.utils.logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "tokenize.json", tokenize_golden(tok))
    write(out / "chat.json", chat_golden(tok))
    write(out / "logprobs.json", logprobs_golden(model, tok))
    write(out / "greedy.json", greedy_golden(model, tok))
    write(out / "sft.json", sft_golden(model, tok))


if __name__ == "__main__":
    main()
