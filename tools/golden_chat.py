#!/usr/bin/env python3
"""Writes the Phi-3 / Phi-4-mini chat-format golden files (dev-only, deterministic).

The tokenizer is tools/golden_tokenizer.py's small byte-level BPE with Phi-4's special tokens,
plus Phi-4-mini-instruct's chat tokens (<|assistant|>, <|end|>, <|user|>, <|system|>, <|tool|>,
<|/tool|>, ... in Phi-4-mini's order, after Phi-4's), and Phi-4-mini-instruct's chat_template. It
has <|im_start|> as well, as a Phi-4-derived tokenizer would: the format must come from the
template, not from which tokens exist. Every expected id sequence comes from transformers'
apply_chat_template, never from the C++ code under test.

Outputs (under tests/golden/tokenizer/):
  phi3/            tokenizer.json, tokenizer_config.json (chat_template: Phi-4-mini-instruct's)
  chat_phi3.json   [{messages, add_generation_prompt, rendered, ids}]
  chat_templates.json  [{name, template, kind, cases: [{messages, add_generation_prompt, ids}]}]:
                   layout variants of both templates (and templates of other formats, kind null),
                   each rendered by transformers with its tokenizer, for the recogniser

Usage: ~/.cache/align/venv/bin/python tools/golden_chat.py [--out tests/golden/tokenizer]
       (run after tools/golden_tokenizer.py, which clears the folder; tools/make_golden.sh does)
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_tokenizer as gt  # noqa: E402
from tokenizers import AddedToken  # noqa: E402

# microsoft/Phi-4-mini-instruct tokenizer_config.json "chat_template".
PHI4_MINI_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
    "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + "
    "'<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + "
    "message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"
)

# Phi-4-mini-instruct's added tokens after <|endofprompt|> (ids 200019.. there), in order.
PHI4_MINI_TOKENS = ["<|assistant|>", "<|end|>", "<|user|>", "<|system|>", "<|tool|>", "<|/tool|>",
                    "<|tool_call|>", "<|/tool_call|>", "<|tool_response|>", "<|tag|>"]

TOOLS = json.dumps([{"name": "get_weather", "description": "Weather in a city.",
                     "parameters": {"city": {"type": "str"}}}])

PHI3_CONVERSATIONS = gt.CONVERSATIONS + [
    [{"role": "system", "content": "You can call tools.", "tools": TOOLS},
     {"role": "user", "content": "Weather in Paris?"},
     {"role": "assistant", "content": "[{\"name\": \"get_weather\", \"arguments\": "
                                      "{\"city\": \"Paris\"}}]"}],
    [{"role": "system", "content": "No tools today.", "tools": None},
     {"role": "user", "content": "hi"}],
    # No lstrip/rstrip on these tokens: transformers keeps whitespace too.
    [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "\nhello\n"}],
]

# Layout variants: the same formats written differently; and other formats, which must not be
# recognised.
PHI4_MULTILINE = """{%- for message in messages -%}
    {%- if message['role'] == 'system' -%}
        {{- '<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>' -}}
    {%- elif message['role'] == 'user' -%}
        {{- '<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>' -}}
    {%- elif message['role'] == 'assistant' -%}
        {{- '<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant<|im_sep|>' -}}
{%- endif -%}
"""

PHI3_BLOCKS = """{% for message in messages %}
{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}
{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' -}}
{% else %}
{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' -}}
{% endif %}
{% endfor %}
{% if add_generation_prompt %}
{{ '<|assistant|>' -}}
{% else %}
{{ eos_token -}}
{% endif %}
"""

# Phi-4-mini's template as some GGUF conversions carry it: no eos at the end.
PHI3_NO_EOS = PHI4_MINI_CHAT_TEMPLATE.replace("{% else %}{{ eos_token }}{% endif %}",
                                              "{% endif %}")

# Phi-3-mini-4k-instruct's layout: a newline after each tag (another format).
PHI3_MINI_NEWLINES = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)

# ChatML with newlines (Qwen-style).
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# A Phi-4 layout whose untrimmed newlines are output.
PHI4_UNTRIMMED = (PHI4_MULTILINE.replace("{%-", "{%").replace("-%}", "%}").replace("{{-", "{{")
                  .replace("-}}", "}}"))


def build_tokenizer():
    tok, base = gt.train_main()
    tok.add_special_tokens([AddedToken(s, lstrip=False, rstrip=False, normalized=False,
                                       special=True) for s in PHI4_MINI_TOKENS])
    return tok, base


def write_phi3(tok, out):
    d = os.path.join(out, "phi3")
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    added = {}
    for tid, t in sorted(tok.get_added_tokens_decoder().items()):
        added[str(tid)] = {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                           "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special}
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": "<|endoftext|>",
        "chat_template": PHI4_MINI_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "extra_special_tokens": {},
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>",
    }
    gt.save_json(os.path.join(d, "tokenizer_config.json"), config)
    return d


def ids_of(hf, messages, gen, template=None):
    r = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen,
                               chat_template=template)
    if hasattr(r, "keys"):
        r = r["input_ids"]
    return list(r)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                      "golden", "tokenizer"))
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    import transformers

    tok, _ = build_tokenizer()
    phi3_dir = write_phi3(tok, out)
    hf = transformers.TokenizersBackend.from_pretrained(phi3_dir)
    for text in ["hello world", "<|user|>x<|end|>", gt.ENGLISH]:
        assert hf.encode(text, add_special_tokens=False) == \
            tok.encode(text, add_special_tokens=False).ids, text
    cases = []
    for messages in PHI3_CONVERSATIONS:
        for gen in (False, True):
            rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            cases.append({"messages": messages, "add_generation_prompt": gen,
                          "rendered": rendered, "ids": ids_of(hf, messages, gen)})
    gt.save_json(os.path.join(out, "chat_phi3.json"), cases)

    # Template variants, rendered by transformers with the tokenizer of their format.
    main_hf = transformers.TokenizersBackend.from_pretrained(os.path.join(out, "main"))
    variants = [("phi4_published", gt.PHI4_CHAT_TEMPLATE, "phi4", main_hf),
                ("phi4_multiline", PHI4_MULTILINE, "phi4", main_hf),
                ("phi3_published", PHI4_MINI_CHAT_TEMPLATE, "phi3", hf),
                ("phi3_blocks", PHI3_BLOCKS, "phi3", hf),
                ("phi3_no_eos", PHI3_NO_EOS, "phi3", hf),
                ("phi3_mini_newlines", PHI3_MINI_NEWLINES, None, hf),
                ("chatml", CHATML, None, main_hf),
                ("phi4_untrimmed", PHI4_UNTRIMMED, None, main_hf)]
    samples = [gt.CONVERSATIONS[0], gt.CONVERSATIONS[3]]
    entries = []
    for name, template, kind, h in variants:
        entry = {"name": name, "template": template, "kind": kind, "cases": []}
        for messages in samples:
            for gen in (False, True):
                entry["cases"].append({"messages": messages, "add_generation_prompt": gen,
                                       "ids": ids_of(h, messages, gen, template)})
        entries.append(entry)
    by_name = {e["name"]: e for e in entries}
    # The layout variants render exactly as the published templates do.
    for a, b in [("phi4_multiline", "phi4_published"), ("phi3_blocks", "phi3_published")]:
        assert by_name[a]["cases"] == by_name[b]["cases"], (a, b)
    # The untrimmed one emits newlines (Phi-4's lstrip/rstrip tokens then swallow them in the ids,
    # but the text differs), so it is not read as Phi-4's.
    assert (main_hf.apply_chat_template(samples[0], tokenize=False, chat_template=PHI4_UNTRIMMED)
            != main_hf.apply_chat_template(samples[0], tokenize=False,
                                           chat_template=gt.PHI4_CHAT_TEMPLATE))
    gt.save_json(os.path.join(out, "chat_templates.json"), entries)
    print(f"wrote {phi3_dir}, chat_phi3.json ({len(cases)} cases), chat_templates.json",
          file=sys.stderr)


if __name__ == "__main__":
    main()
