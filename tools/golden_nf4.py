#!/usr/bin/env python3
"""Writes tests/golden/nf4/bnb_nf4.safetensors (dev-only; tests never run Python).

bitsandbytes' own NF4 quantisation (bitsandbytes.functional.quantize_4bit, quant_type="nf4",
blocksize=64), run on the CPU (bitsandbytes >= 0.45 has a CPU backend), with and without double
quantisation (compress_statistics), and its dequantize_4bit of that state, for seeded weights of
awkward shapes in fp32 and bf16:

  levels, dynamic_map       get_4bit_type("nf4"), create_dynamic_map(signed=True)
  {case}.weight             the input ([out, in], fp32 or bf16)
  {case}.packed             [(n + 1) / 2] uint8 codes (the same with and without double quant)
  {case}.absmax             [blocks] fp32
  {case}.deq                dequantize_4bit, in the weight's dtype
  {case}.dq.absmax          [blocks] uint8 codes of absmax - offset
  {case}.dq.absmax2         [ceil(blocks / 256)] fp32
  {case}.dq.offset          [1] fp32
  {case}.dq.block_absmax    the decoded fp32 absmax (dequantize_blockwise + offset)
  {case}.dq.deq             dequantize_4bit of the double-quantised state

Usage: ~/.cache/align/venv/bin/python tools/golden_nf4.py (tools/make_golden.sh installs the pinned
bitsandbytes).
"""
import pathlib

import bitsandbytes
import bitsandbytes.functional as F
import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/golden/nf4/bnb_nf4.safetensors"

CASES = {
    # name: (shape, dtype, scale)
    "f32_64x640": ((64, 640), torch.float32, 0.02),  # whole blocks, 640 blocks: 3 groups of 256
    "bf16_130x70": ((130, 70), torch.bfloat16, 0.05),  # 9100 elements: a partial last block
    "f32_7x9": ((7, 9), torch.float32, 1.0),  # 63 elements: one partial block, odd count
    "bf16_96x192": ((96, 192), torch.bfloat16, 0.02),  # a qkv-shaped tiny weight
    "f32_zero_block": ((4, 128), torch.float32, 0.5),  # first block all zeros
}


def main():
    torch.manual_seed(0)
    out = {
        "levels": F.get_4bit_type("nf4", device="cpu").float().contiguous(),
        "dynamic_map": F.create_dynamic_map(signed=True).float().contiguous(),
    }
    for name, (shape, dtype, scale) in CASES.items():
        w = (torch.randn(*shape) * scale).to(dtype)
        if name == "f32_zero_block":
            w.view(-1)[:64] = 0
        q, s = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=False)
        out[f"{name}.weight"] = w.contiguous()
        out[f"{name}.packed"] = q.view(-1).contiguous()
        out[f"{name}.absmax"] = s.absmax.float().contiguous()
        out[f"{name}.deq"] = F.dequantize_4bit(q, s).contiguous()
        q2, s2 = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
        assert torch.equal(q2.view(-1), q.view(-1))
        out[f"{name}.dq.absmax"] = s2.absmax.contiguous()
        out[f"{name}.dq.absmax2"] = s2.state2.absmax.float().contiguous()
        out[f"{name}.dq.offset"] = s2.offset.float().view(1).contiguous()
        out[f"{name}.dq.block_absmax"] = (
            F.dequantize_blockwise(s2.absmax, s2.state2) + s2.offset
        ).float().contiguous()
        out[f"{name}.dq.deq"] = F.dequantize_4bit(q2, s2).contiguous()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(OUT), metadata={"bitsandbytes": bitsandbytes.__version__,
                                       "torch": torch.__version__})
    print(f"wrote {OUT} ({len(out)} tensors, bitsandbytes {bitsandbytes.__version__})")


if __name__ == "__main__":
    main()
