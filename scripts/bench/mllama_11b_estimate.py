"""What Llama 3.2 Vision 11B (the published LLaVA-CoT model's architecture) would need and reach on
this machine, from measured figures: the weight bytes a decode step reads in each format, and the
tok/s that stagebeam's decode reached per byte on the 135M-parameter bench model in the same format
(`scripts/bench/llama-cpp.sh`, "stagebeam decode reads … GB/s"), applied to the 11B model's bytes.

    python3 scripts/bench/mllama_11b_estimate.py --read-gbps bf16=18.7 q8_0=17.4 q4_K=12.2

An estimate, not a measurement: it assumes the 11B decoder reads its weights at the rate the small
model's decoder did (per-layer overhead is smaller on wide layers, so if anything it is low). The
architecture is the published config.json of meta-llama/Llama-3.2-11B-Vision (text: 40 layers of
which 8 cross-attention, hidden 4096, intermediate 14336, 32 heads / 8 KV heads of 128, vocabulary
128256 + 8, untied output; vision: 32 + 8 layers of width 1280, intermediate 5120, patch 14, 4 tiles).
"""
from __future__ import annotations

import argparse

# Bits per weight of each format's blocks (ggml layouts); q4_K_M mixes q4_K with q6_K for the
# output and for attn_v / ffn_down in half of the layers.
BITS = {"bf16": 16.0, "f16": 16.0, "q8_0": 8.5, "q4_0": 4.5, "q4_K": 4.5, "q6_K": 6.5625}

HIDDEN, INTER, LAYERS, CROSS, VOCAB = 4096, 14336, 40, 8, 128256 + 8
HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128
VISION_PARAMS = 0.88e9  # vision encoder (32 + 8 layers, width 1280) and projector 7680 → 4096


def text_params():
    q = o = HIDDEN * HEADS * HEAD_DIM
    kv = 2 * HIDDEN * KV_HEADS * HEAD_DIM
    mlp = 3 * HIDDEN * INTER
    layer = q + o + kv + mlp
    embed = VOCAB * HIDDEN
    return {"layers": LAYERS * layer, "cross_kv": CROSS * kv, "embed": embed, "output": embed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--read-gbps", nargs="+", required=True, help="FORMAT=GB/s that stagebeam's decode read")
    parser.add_argument("--kv-tokens", type=int, default=4096)
    args = parser.parse_args()
    p = text_params()
    # A decode step reads every decoder matrix but the cross-attention key/value projections
    # (applied once per image) and one row of the input embedding.
    per_token = p["layers"] - p["cross_kv"] + p["output"]
    kv_bytes = args.kv_tokens * (LAYERS - CROSS) * 2 * KV_HEADS * HEAD_DIM * 4  # f32 cache
    print(f"text decoder {sum(p.values()) / 1e9:.2f} B parameters, {per_token / 1e9:.2f} B read per decoded token; "
          f"vision {VISION_PARAMS / 1e9:.2f} B (kept in bf16); KV cache {kv_bytes / 1e9:.2f} GB for {args.kv_tokens} tokens")
    print(f"{'format':<8} {'weights GB':>10} {'read/token GB':>14} {'decode GB/s':>12} {'tok/s':>6} {'memory GB':>10}")
    for item in args.read_gbps:
        name, rate = item.split("=")
        bits = BITS[name]
        weights = (sum(p.values()) * bits / 8 + VISION_PARAMS * 2) / 1e9
        read = per_token * bits / 8 / 1e9
        print(f"{name:<8} {weights:>10.1f} {read:>14.2f} {float(rate):>12.1f} {float(rate) / read:>6.2f} {weights + kv_bytes / 1e9:>10.1f}")


if __name__ == "__main__":
    main()
