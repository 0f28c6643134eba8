#!/usr/bin/env python3
"""Writes a bench Llama checkpoint (scripts/make_bench_model.py: config.json, model.safetensors,
tokenizer.json) as an f32 GGUF file that llama.cpp loads, for speed comparisons on the same weights;
llama-quantize makes the other formats from it (scripts/bench/llama-cpp.sh).

llama.cpp's own convert_hf_to_gguf.py refuses these checkpoints: it identifies a BPE tokenizer by a
hash of how it splits a test string, and a tokenizer trained for the bench is in none of its tables.
Speed does not depend on the tokenizer, so this writer declares the `default` pre-tokenizer.

    python scripts/bench/hf_to_gguf.py bench-models/llama-135m-deep-f32 out.gguf
"""
import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file


def permute(w, heads):
    """Hugging Face's rotate-half query/key rows → llama.cpp's interleaved pairs (as convert_hf_to_gguf)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    source, target = Path(sys.argv[1]), sys.argv[2]
    config = json.loads((source / "config.json").read_text())
    tensors = load_file(source / "model.safetensors")
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    hidden = config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // heads

    writer = gguf.GGUFWriter(target, "llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    rope = config.get("rope_parameters") or {}
    writer.add_rope_freq_base(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    tokenizer = json.loads((source / "tokenizer.json").read_text())
    vocabulary = tokenizer["model"]["vocab"]
    for added in tokenizer.get("added_tokens", []):
        vocabulary[added["content"]] = added["id"]
    special = {added["id"] for added in tokenizer.get("added_tokens", []) if added.get("special")}
    tokens = sorted(vocabulary, key=vocabulary.get)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if vocabulary[t] in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(config["bos_token_id"])
    eos = config["eos_token_id"]
    writer.add_eos_token_id(eos[0] if isinstance(eos, list) else eos)

    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    writer.add_tensor("token_embd.weight", tensors["model.embed_tokens.weight"].astype(np.float32))
    writer.add_tensor("output_norm.weight", tensors["model.norm.weight"].astype(np.float32))
    if "lm_head.weight" in tensors and not config.get("tie_word_embeddings"):
        writer.add_tensor("output.weight", tensors["lm_head.weight"].astype(np.float32))
    for layer in range(config["num_hidden_layers"]):
        for hf, name in names.items():
            w = tensors[f"model.layers.{layer}.{hf}.weight"].astype(np.float32)
            if hf == "self_attn.q_proj":
                w = permute(w, heads)
            elif hf == "self_attn.k_proj":
                w = permute(w, kv_heads)
            writer.add_tensor(f"blk.{layer}.{name}.weight", w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"{target}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
