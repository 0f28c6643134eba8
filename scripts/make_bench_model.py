#!/usr/bin/env python3
"""A random ~155M-parameter Llama for benchmarks (not tests): hidden 1024, 8 layers, 16 heads,
4 KV heads, intermediate 2816, vocab 32000, the shape of the llama.cpp figures in
docs/performance.md.

    .venv/bin/python scripts/make_bench_model.py bench-models/llama-150m-f32
    .venv/bin/python scripts/make_bench_model.py bench-models/llama-150m-f16 --dtype f16

Writes a Hugging Face model directory: config.json, model.safetensors, generation_config.json,
tokenizer.json (a byte-level BPE with the Llama-3 pre-tokenizer and specials, trained on the
Python standard library's sources, 32000 ids in all) and tokenizer_config.json with the Llama-3
chat template. Seeded, so the same command gives the same weights. bench-models/ is gitignored.
"""
import argparse
import sys
import sysconfig
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))
import make_model_fixtures as fixtures  # noqa: E402  (shares the tokenizer recipe and chat template)

VOCAB = 32000
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def training_texts():
    """The standard library's Python sources, in a fixed order: enough distinct text for 32000 ids."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" not in path.parts and "test" not in path.parts:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = fixtures.llama3_tokenizer(training_texts(), VOCAB - len(fixtures.LLAMA3_SPECIALS))
    assert tokenizer.get_vocab_size() == VOCAB, f"the corpus gave only {tokenizer.get_vocab_size()} ids"
    begin, end, eot = (tokenizer.token_to_id(t) for t in ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"))

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                         num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=4096,
                         rms_norm_eps=1e-5, bos_token_id=begin, eos_token_id=[end, eot], tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    model = LlamaForCausalLM(config).to(DTYPES[args.dtype])
    model.save_pretrained(args.out_dir, max_shard_size="4GB")
    fixtures.write_json(args.out_dir / "generation_config.json",
                        {"bos_token_id": begin, "do_sample": True, "eos_token_id": [end, eot],
                         "temperature": 0.6, "top_p": 0.9})
    fixtures.save_tokenizer(args.out_dir, "llama3", tokenizer)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{args.out_dir}: {parameters / 1e6:.1f}M parameters, {args.dtype}")


if __name__ == "__main__":
    main()
