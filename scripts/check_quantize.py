#!/usr/bin/env python3
"""Checks `stagebeam quantize` against the reference tools, for each requested type:

  1. the written file is read by the gguf Python package (GGUFReader), every tensor's type listed;
  2. every matrix's blocks equal gguf-py's quantizer (gguf.quants.quantize) on the source's f32 values,
     byte for byte, for the types gguf-py can write (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; it only reads K-quants);
  3. transformers loads the written file (from_pretrained(gguf_file=...), which de-quantizes it to f32)
     and its greedy tokens and their log-probabilities are compared with `stagebeam generate --json
     --logprobs 1` on the same file, up to the first step where the two choose differently (printed
     with transformers' top-2 logit margin there, to set against the int8 activations' tolerance of
     0.25 on logits, GGUFModelTests).

    .venv/bin/python scripts/check_quantize.py .build/release/stagebeam Tests/Fixtures/gguf/llama-f32.gguf Q8_0,Q4_0,Q4_K,Q6_K
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPT = "The answer is 42, isn't it? Let me count: 1, 2, 3."
NEW_TOKENS = 12


def main():
    binary, source, types = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(",")
    original = gguf.GGUFReader(source)
    f32 = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(reversed(t.shape.tolist())))
           for t in original.tensors}
    with tempfile.TemporaryDirectory() as scratch:
        for qtype in types:
            out = Path(scratch) / f"{qtype}.gguf"
            subprocess.run([binary, "quantize", str(source), str(out), "--type", qtype], check=True, capture_output=True)
            reader = gguf.GGUFReader(out)
            counts = {}
            for t in reader.tensors:
                counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
            equal = compared = 0
            for t in reader.tensors:
                if t.tensor_type.name in ("F32", "F16", "BF16") or len(t.shape) != 2:
                    continue
                try:
                    expected = gguf.quants.quantize(f32[t.name].astype(np.float32), t.tensor_type)
                except NotImplementedError:
                    continue
                compared += 1
                equal += int(np.array_equal(np.asarray(t.data).reshape(-1), expected.reshape(-1)))
            blocks = f"{equal}/{compared} matrices byte-equal to gguf.quants" if compared else "gguf.quants cannot write this type"

            tokenizer = AutoTokenizer.from_pretrained(scratch, gguf_file=out.name)
            model = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=out.name, dtype=torch.float32).eval()
            ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
            with torch.no_grad():
                generated = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, min_new_tokens=NEW_TOKENS)
                new = generated[0, ids.shape[1]:]
                logits = model(generated).logits[0, ids.shape[1] - 1:-1]
            reference = torch.log_softmax(logits, -1).gather(1, new.view(-1, 1)).view(-1).tolist()
            ours = json.loads(subprocess.run(
                [binary, "generate", "--model", str(out), "--raw", "--prompt", PROMPT, "--max-tokens", str(NEW_TOKENS),
                 "--temperature", "0", "--ignore-eos", "--logprobs", "1", "--json"],
                check=True, capture_output=True, text=True).stdout)["samples"][0]
            # Compared up to the first step where the two choose differently (then the texts differ).
            agree = next((i for i, (a, b) in enumerate(zip(ours["token_ids"], new.tolist())) if a != b), NEW_TOKENS)
            chosen = [step[0]["logprob"] for step in ours["logprobs"]]
            worst = max(abs(a - b) for a, b in zip(chosen[:agree + 1], reference[:agree + 1]))
            top2 = logits.topk(2).values
            margins = (top2[:, 0] - top2[:, 1]).tolist()
            where = "identical" if agree == NEW_TOKENS else (
                f"identical for {agree} tokens, then a choice where transformers' top-2 logit margin is {margins[agree]:.4f}")
            print(f"{qtype}: read by gguf-py ({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}); {blocks}; "
                  f"greedy ids {where}; max |Δ logprob| of the chosen tokens up to there {worst:.4f}")


if __name__ == "__main__":
    main()
