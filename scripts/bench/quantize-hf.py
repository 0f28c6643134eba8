#!/usr/bin/env python3
"""`stagebeam quantize --model DIR` against llama.cpp and transformers, end to end.

    LLAMA_CPP_DIR=~/.cache/stagebeam/llama.cpp .venv/bin/python scripts/bench/quantize-hf.py [TYPES]

TYPES: comma-separated, default F16,Q8_0,Q4_0,Q4_K_M,Q5_K_M. Makes two small random checkpoints with
transformers (and tokenizers trained here, scripts/fixtures/make_model_fixtures.py):
  llama  LlamaForCausalLM, hidden 256, 8 layers, GQA 4/2, FFN 768, untied, bf16, three shards
  qwen2  Qwen2ForCausalLM, hidden 256, 8 layers, GQA 4/2, FFN 640 (rows of ffn_down are not whole
         256-value blocks: the K-quant fallbacks), tied embeddings, q/k/v biases, f32, one file
quantizes each with stagebeam (STAGEBEAM, default .build/release/stagebeam) to every type, and checks:
  (a) llama.cpp loads and runs the file: llama-bench (prompt 32, decode 16 tokens, 2 threads); with a
      llama-server ($LLAMA_SERVER or found under $LLAMA_CPP_DIR), its token ids for a prompt against
      the `tokenizers` library's, and its greedy tokens against transformers' on the same file;
  (b) transformers loads the file (from_pretrained(dir, gguf_file=...), weights de-quantized to f32)
      and its log-probabilities equal stagebeam's (`generate --logprobs 20 --json`) on the same file:
      the 20 most likely tokens of each greedy step, up to the first step the two choose differently;
      docs/models.md's logit tolerances (1e-4 for F16, 0.25 for the int8-activation kernels) bound
      log-probabilities by twice as much;
  (c) llama.cpp's own convert_hf_to_gguf.py (F16) or converter + llama-quantize (--pure for one
      type, the mix rules for Q4_K_M/Q5_K_M) on the same checkpoint: tensor types and bytes, and keys.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import llama_cpp_reference as reference  # noqa: E402
from make_model_fixtures import llama3_tokenizer, qwen2_tokenizer, randomise, save_tokenizer  # noqa: E402

STAGEBEAM = os.environ.get("STAGEBEAM", str(ROOT / ".build" / "release" / "stagebeam"))
PROMPT = "The answer is 42, isn't it? Let me count: 1, 2, 3."
NEW_TOKENS = 12
TOLERANCE = {"F16": 2e-4}  # on log-probabilities; every other type 0.5
PURE = {"F16": None, "Q8_0": True, "Q4_0": True, "Q4_K_M": False, "Q5_K_M": False}


def make_checkpoints(root):
    common = dict(hidden_size=256, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=512)
    made = {}
    tokenizer = llama3_tokenizer()
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), intermediate_size=768, rms_norm_eps=1e-5,
                         rope_theta=500000.0, bos_token_id=tokenizer.token_to_id("<|begin_of_text|>"),
                         eos_token_id=tokenizer.token_to_id("<|end_of_text|>"), tie_word_embeddings=False, **common)
    model = LlamaForCausalLM(config)
    randomise(model, 1, 0.08)
    made["llama"] = (root / "llama", "llama-bpe")
    model.to(torch.bfloat16).save_pretrained(made["llama"][0], max_shard_size="1MB")
    save_tokenizer(made["llama"][0], "llama3", tokenizer)

    tokenizer = qwen2_tokenizer()
    config = Qwen2Config(vocab_size=tokenizer.get_vocab_size(), intermediate_size=640, rms_norm_eps=1e-6,
                         rope_theta=1000000.0, eos_token_id=tokenizer.token_to_id("<|im_end|>"),
                         tie_word_embeddings=True, **common)
    model = Qwen2ForCausalLM(config)
    randomise(model, 2, 0.08)
    made["qwen2"] = (root / "qwen2", "qwen2")
    model.save_pretrained(made["qwen2"][0])
    save_tokenizer(made["qwen2"][0], "qwen2", tokenizer)
    return made


def llama_bench(path):
    out = subprocess.run([str(reference.tool("llama-bench")), "-m", str(path), "-p", "32", "-n", "16", "-t", "2", "-r", "1",
                          "-o", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        return f"llama-bench FAILED: {out.stderr.strip().splitlines()[-1:]}"
    runs = json.loads(out.stdout)
    speeds = {("pp" if r["n_prompt"] else "tg"): r["avg_ts"] for r in runs}
    return f"llama-bench ran (pp32 {speeds['pp']:.0f} tok/s, tg16 {speeds['tg']:.0f} tok/s)"


def llama_server():
    if "LLAMA_SERVER" in os.environ:
        return Path(os.environ["LLAMA_SERVER"])
    found = sorted(p for p in reference.LLAMA_CPP_DIR.rglob("llama-server") if p.is_file() and os.access(p, os.X_OK))
    return found[0] if found else None


def post(port, route, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{route}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def served(server, path):
    """llama-server on `path`: its token ids for PROMPT and its greedy continuation."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A copied build folder finds its shared libraries beside the executable.
    env = dict(os.environ, LD_LIBRARY_PATH=f"{server.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    process = subprocess.Popen([str(server), "-m", str(path), "--port", str(port), "-t", "2", "-c", "256", "-np", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        for _ in range(240):
            if process.poll() is not None:
                raise RuntimeError(f"llama-server exited: {process.stderr.read().decode()[-400:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        ids = post(port, "/tokenize", {"content": PROMPT, "add_special": True})["tokens"]
        completion = post(port, "/completion", {"prompt": ids, "n_predict": NEW_TOKENS, "temperature": 0, "top_k": 1,
                                                "ignore_eos": True, "return_tokens": True, "cache_prompt": False})
        return ids, completion["tokens"]
    finally:
        process.terminate()
        process.wait()


def agreement(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare_files(ours, theirs):
    """Tensors: how many have llama.cpp's type and bytes; keys: those that differ."""
    a, b = gguf.GGUFReader(ours), gguf.GGUFReader(theirs)
    mine = {t.name: t for t in a.tensors}
    equal, differ = 0, []
    for t in b.tensors:
        m = mine.get(t.name)
        if m is not None and m.tensor_type == t.tensor_type and np.array_equal(np.asarray(m.data).view(np.uint8),
                                                                               np.asarray(t.data).view(np.uint8)):
            equal += 1
        else:
            differ.append(f"{t.name} ({t.tensor_type.name} vs ours {m.tensor_type.name if m is not None else 'missing'})")
    extra = sorted(set(mine) - {t.name for t in b.tensors})

    def fields(reader):
        return {k: f.contents() if f.types[0] != gguf.GGUFValueType.ARRAY else [f.contents(i) for i in range(len(f.data))]
                for k, f in reader.fields.items() if not k.startswith("GGUF.") and k != "general.name"}
    fa, fb = fields(a), fields(b)
    keys = [k for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k) and not (k.startswith("general.") and k in fb and k not in fa
                                                                                    and k.split(".")[1] in ("basename", "size_label", "finetune"))]
    summary = f"{equal}/{len(b.tensors)} tensors byte-equal"
    if differ:
        summary += f" (differ: {', '.join(differ[:4])}{'…' if len(differ) > 4 else ''})"
    if extra:
        summary += f", extra here: {extra}"
    summary += "; keys equal" if not keys else f"; keys that differ: {keys}"
    return summary


def transformers_vs_stagebeam(path, qtype):
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    ids = tokenizer(PROMPT)["input_ids"]
    prompt = torch.tensor([ids])
    with torch.no_grad():
        generated = model.generate(prompt, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        new = generated[0, len(ids):].tolist()
        logprobs = torch.log_softmax(model(generated).logits[0, len(ids) - 1:-1], -1)
    answer = json.loads(subprocess.run(
        [STAGEBEAM, "generate", "--model", str(path), "--raw", "--prompt", PROMPT, "--max-tokens", str(NEW_TOKENS),
         "--temperature", "0", "--ignore-eos", "--logprobs", "20", "--json"],
        check=True, capture_output=True, text=True).stdout)
    ours = answer["samples"][0]
    ours["prompt_token_ids"] = answer["prompt_token_ids"]
    agree = agreement(ours["token_ids"], new)
    worst = max(abs(entry["logprob"] - logprobs[step, entry["id"]].item())
                for step, top in enumerate(ours["logprobs"][:agree + 1]) for entry in top)
    top2 = logprobs.topk(2).values
    margin = (top2[:, 0] - top2[:, 1]).tolist()
    where = "greedy ids identical" if agree == NEW_TOKENS else (
        f"greedy ids identical for {agree} tokens, then a step where transformers' top-2 margin is {margin[agree]:.4f}")
    limit = TOLERANCE.get(qtype, 0.5)
    verdict = "within" if worst <= limit else "OVER"
    same_ids = "prompt ids equal" if ours["prompt_token_ids"] == ids else "prompt ids DIFFER"
    return ids, new, f"{same_ids}; {where}; max |Δ logprob| (top 20 per step) {worst:.2e}, {verdict} {limit}"


def main():
    types = sys.argv[1].split(",") if len(sys.argv) > 1 else list(PURE)
    server = llama_server()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name, (directory, pre) in make_checkpoints(scratch).items():
            f32 = scratch / f"{name}-llama-cpp-f32.gguf"
            reference.convert(directory, f32, "f32", pre)
            for qtype in types:
                ours = scratch / f"{name}-{qtype}.gguf"
                start = time.time()
                done = subprocess.run([STAGEBEAM, "quantize", "--model", str(directory), "--type", qtype, "--output", str(ours)],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{name} {qtype}: stagebeam quantize FAILED: {done.stderr.strip()}")
                    continue
                print(f"{name} {qtype}: stagebeam quantize {time.time() - start:.1f} s, {ours.stat().st_size / 1e6:.2f} MB")
                print(f"  (a) {llama_bench(ours)}")
                hf_ids, hf_greedy, report = transformers_vs_stagebeam(ours, qtype)
                if server:
                    ids, greedy = served(server, ours)
                    expected = AutoTokenizer.from_pretrained(directory)(PROMPT)["input_ids"]
                    n = agreement(greedy, hf_greedy)
                    print(f"  (a) llama-server: prompt ids {'equal to' if ids == expected else 'DIFFER from'} the tokenizers library's; "
                          f"greedy ids {'identical to' if n == NEW_TOKENS else f'equal for {n} of {NEW_TOKENS} tokens to'} transformers'")
                print(f"  (b) transformers vs stagebeam on this file: {report}")
                theirs = scratch / f"{name}-{qtype}-llama-cpp.gguf"
                if PURE[qtype] is None:
                    reference.convert(directory, theirs, qtype.lower(), pre)
                    how = "convert_hf_to_gguf.py --outtype " + qtype.lower()
                else:
                    reference.quantize(f32, theirs, qtype, PURE[qtype])
                    how = "convert_hf_to_gguf.py f32 + llama-quantize " + ("--pure " if PURE[qtype] else "") + qtype
                print(f"  (c) against {how}: {compare_files(ours, theirs)}")


if __name__ == "__main__":
    main()
