#!/usr/bin/env python3
"""Checks GGUF files `align export` wrote, and folders `align import` wrote, with the PyPI gguf
package and transformers (test helper; tests/smollm2/gguf_cli_test.cc runs it with align's venv
python). It prints nothing on success but the report it writes (JSON, for the test to judge):

export  --model DIR --gguf FILE:TYPE [--gguf ...] --texts TEXTS.json --out REPORT.json
  For each FILE (exported from the Hugging Face folder DIR with --type TYPE):
  - gguf's GGUFReader reads it; every tensor is named as gguf's own tensor map names the folder's
    tensor (MODEL_ARCH.PHI3), has the type convert_hf_to_gguf.py would give it (norms F32; Q8_0
    rows that are not whole blocks F16), and holds exactly the bytes gguf.quants.quantize makes of
    the folder's weight: "tensor_mismatches" lists the others;
  - transformers' GGUF loader (from_pretrained(dir, gguf_file=...)) builds the model; its fp32
    logits on the texts' ids are compared with the folder's ("logits_vs_folder") and with the
    folder's model whose weights went through the same encoding with gguf.quants (quantize, then
    dequantize: "logits_vs_format", the format's own rounding);
  - AutoTokenizer from the GGUF encodes every text of TEXTS.json (a golden tokenize.json:
    {"cases": [{"text"}]}) as AutoTokenizer of DIR does, with and without special tokens
    ("tokenizer_mismatches", the first of them in "first_mismatch"); "chat_template_equal".

import  --folder DIR --golden GOLDEN.json --out REPORT.json
  transformers loads DIR (which must be a Phi3ForCausalLM) and computes fp32 log-probs of the
  golden sequences (tools/golden_gguf.py wrote them from transformers' GGUF load of the same file):
  "logprobs_vs_golden" is the largest difference. Its tokenizer encodes the golden texts:
  "tokenizer_mismatches" counts those whose ids differ from the golden ids of the file's named
  pre-tokenizer ("ids_smollm"), "differ_from_transformers_loader" those whose ids differ from
  transformers' GGUF tokenizer (which leaves the digit step out); "chat_template_equal".
"""

import argparse
import copy
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

import gguf


def load_folder_weights(model_dir):
    """The folder's tensors (fp32) by Hugging Face name."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = (sorted(set(json.load(open(index))["weight_map"].values()))
             if os.path.exists(index) else ["model.safetensors"])
    weights = {}
    for name in files:
        weights.update(load_file(os.path.join(model_dir, name)))
    return {k: v.float() for k, v in weights.items()}


def expected_type(name, shape, requested):
    if len(shape) <= 1 or name.endswith("_norm.weight"):
        return gguf.GGMLQuantizationType.F32
    if requested == gguf.GGMLQuantizationType.Q8_0 and shape[-1] % 32 != 0:
        return gguf.GGMLQuantizationType.F16
    return requested


def logits_of(model, rows):
    with torch.no_grad():
        return [model(torch.tensor([ids])).logits[0].float() for ids in rows]


def max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def check_export(args):
    folder_model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    folder_tok = AutoTokenizer.from_pretrained(args.model)
    texts = [c["text"] for c in json.load(open(args.texts))["cases"]]
    rows = [ids for ids in (folder_tok(t, add_special_tokens=False).input_ids for t in texts) if ids]
    rows = rows[:6]
    folder_logits = logits_of(folder_model, rows)
    weights = load_folder_weights(args.model)
    layers = folder_model.config.num_hidden_layers
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.PHI3, layers)
    report = {"files": []}
    for spec in args.gguf:
        path, requested_name = spec.rsplit(":", 1)
        requested = gguf.GGMLQuantizationType[requested_name.upper()]
        reader = gguf.GGUFReader(path)
        entry = {"file": path, "type": requested_name, "tensor_mismatches": []}
        by_name = {t.name: t for t in reader.tensors}
        format_state = {}
        for hf_name, w in weights.items():
            base, suffix = hf_name.rsplit(".", 1)
            gguf_name = name_map.get_name(base) + "." + suffix
            t = by_name.pop(gguf_name, None)
            if t is None:
                entry["tensor_mismatches"].append(f"{gguf_name} ({hf_name}) missing")
                continue
            want = expected_type(gguf_name, list(w.shape), requested)
            if t.tensor_type != want:
                entry["tensor_mismatches"].append(f"{gguf_name}: type {t.tensor_type.name}, "
                                                  f"expected {want.name}")
                continue
            data = gguf.quants.quantize(w.numpy(), want)
            if data.tobytes() != np.asarray(t.data).tobytes():
                entry["tensor_mismatches"].append(f"{gguf_name}: bytes differ from "
                                                  f"gguf.quants.quantize({want.name})")
            format_state[hf_name] = torch.from_numpy(
                np.array(gguf.quants.dequantize(data, want), dtype=np.float32)).reshape(w.shape)
        entry["tensor_mismatches"] += [f"{n}: unexpected" for n in by_name]
        entry["tensors_checked"] = len(weights)
        entry["metadata"] = {k: (f.contents() if not k.startswith("tokenizer.ggml.") or k in (
            "tokenizer.ggml.model", "tokenizer.ggml.pre") else len(f.data))
            for k, f in reader.fields.items() if not k.startswith("GGUF.")}

        directory, file_name = os.path.split(os.path.abspath(path))
        gguf_model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=file_name,
                                                          dtype=torch.float32).eval()
        entry["transformers_class"] = type(gguf_model).__name__
        gguf_logits = logits_of(gguf_model, rows)
        format_model = copy.deepcopy(folder_model)
        format_model.load_state_dict(format_state, strict=False)
        entry["logits_vs_folder"] = max_diff(gguf_logits, folder_logits)
        entry["logits_vs_format"] = max_diff(gguf_logits, logits_of(format_model, rows))
        entry["logits_rows"] = len(rows)

        gguf_tok = AutoTokenizer.from_pretrained(directory, gguf_file=file_name)
        mismatches = 0
        for text in texts:
            for special in (True, False):
                want = folder_tok(text, add_special_tokens=special).input_ids
                got = gguf_tok(text, add_special_tokens=special).input_ids
                if want != got:
                    mismatches += 1
                    entry.setdefault("first_mismatch", {"text": text, "special": special,
                                                        "folder": want, "gguf": got})
        entry["tokenizer_mismatches"] = mismatches
        entry["tokenizer_checks"] = 2 * len(texts)
        entry["chat_template_equal"] = gguf_tok.chat_template == folder_tok.chat_template
        report["files"].append(entry)
        del gguf_model, format_model
    return report


def check_import(args):
    golden = json.load(open(args.golden))
    model = AutoModelForCausalLM.from_pretrained(args.folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(args.folder)
    worst = 0.0
    with torch.no_grad():
        for seq in golden["sequences"]:
            ids = seq["tokens"]
            logits = model(torch.tensor([ids])).logits[0].float()
            lp = torch.log_softmax(logits, dim=-1)
            for i in range(1, len(ids)):
                worst = max(worst, abs(lp[i - 1, ids[i]].item() - seq["logprobs"][i]))
    ids = [tok(c["text"], add_special_tokens=False).input_ids for c in golden["tokenize"]]
    mismatches = [c["text"] for c, got in zip(golden["tokenize"], ids) if got != c["ids_smollm"]]
    loader = [c["text"] for c, got in zip(golden["tokenize"], ids) if got != c["ids"]]
    return {"transformers_class": type(model).__name__, "logprobs_vs_golden": worst,
            "sequences": len(golden["sequences"]), "tokenizer_mismatches": len(mismatches),
            "first_mismatch": mismatches[:1], "tokenizer_checks": len(golden["tokenize"]),
            "differ_from_transformers_loader": len(loader),
            "chat_template_equal": tok.chat_template == golden["chat_template"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("export")
    e.add_argument("--model", required=True)
    e.add_argument("--gguf", action="append", required=True, help="FILE:TYPE")
    e.add_argument("--texts", required=True)
    e.add_argument("--out", required=True)
    i = sub.add_parser("import")
    i.add_argument("--folder", required=True)
    i.add_argument("--golden", required=True)
    i.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    report = check_export(args) if args.mode == "export" else check_import(args)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())
