"""Second training phase: teach the judge on the model's own samples.

Hand-made corruptions (train.py) teach the judge what a wrong caption or a slipped count looks like;
the mistakes the model actually makes when sampling are subtler, and an earlier prototype found a
judge trained only on corruptions picked the right one of its own samples about half the time. So:
sample answers from the trained model at the search's temperature, grade each stage against the known
scene and answer, pair a right candidate with a wrong one (caption: objects and positions; reasoning
and whole answers: the final answer), and continue training on those verdicts mixed with the
ordinary examples (so answering is not forgotten).
    .venv/bin/python training/self_judge.py --model models/stagebeam-shapes
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes  # noqa: E402
from dataset import held_out_keys, item_key  # noqa: E402
from diagnose import final_word  # noqa: E402
from examples import Encoder, expand_image, pixels, prompt_text  # noqa: E402
from judge_prompt import judge_answer, judge_prompt  # noqa: E402
from train import (SPECIAL, Stream, batch_loss, bucketed, choice_token_ids, collate, freeze_vision_tower,  # noqa: E402
                   judge_accuracy, save)

STAGES = ["SUMMARY", "CAPTION", "REASONING", "CONCLUSION"]
OBJECT = re.compile(r"\b(small|large) (" + "|".join(shapes.COLOURS) + r") (circle|square|triangle)\b")
POSITION = re.compile(r"\b(" + "|".join(shapes.POSITIONS) + r")\b", re.I)


def split_stages(text: str) -> dict[str, str] | None:
    out = {}
    for s in STAGES:
        m = re.search(f"<{s}>(.*?)</{s}>", text, re.S)
        if m is None:
            return None
        out[s.lower()] = m.group(1).strip()
    return out


def caption_is_right(caption: str, scene: shapes.Scene) -> bool:
    names = [" ".join(m) for m in OBJECT.findall(caption)]
    positions = [p.lower() for p in POSITION.findall(caption)]
    return names == [o.name for o in scene.objects] and positions == [o.position for o in scene.objects]


@torch.no_grad()
def sample(model, tok, items, n: int, image_token: int, pad: int, eos: int, seed: int):
    """n answers per item at temperature 0.6, top-p 0.9 (the search's sampling)."""
    torch.manual_seed(seed)
    prompts = [expand_image(tok.encode(prompt_text(i.question), add_special_tokens=False).ids, image_token) for i in items]
    width = max(map(len, prompts))
    ids = torch.full((len(items), width), pad)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for r, p in enumerate(prompts):  # left padding, as generation needs
        ids[r, width - len(p):] = torch.tensor(p)
        mask[r, width - len(p):] = 1
    px = torch.from_numpy(np.stack([pixels(i.scene.image()) for i in items]))
    out = model.generate(input_ids=ids, attention_mask=mask, pixel_values=px, do_sample=True, temperature=0.6,
                         top_p=0.9, top_k=0, max_new_tokens=300, num_return_sequences=n, eos_token_id=eos,
                         pad_token_id=pad)
    texts = tok.decode_batch(out[:, width:].tolist(), skip_special_tokens=False)
    return [[t.split("<|end|>")[0] for t in texts[k * n:(k + 1) * n]] for k in range(len(items))]


def own_pairs(rng: random.Random, item: shapes.Item, samples: list[str]) -> list[dict]:
    """Right-versus-wrong pairs among one item's samples (the reference text stands in for a right
    candidate when no sample is right, so every mistake the model made becomes a lesson)."""
    graded = []
    for s in samples:
        stages = split_stages(s)
        if stages is not None:
            graded.append((s, stages, caption_is_right(stages["caption"], item.scene),
                           final_word(stages["conclusion"]) == item.answer))
    reference = item.stages()
    pairs = []
    wrong_captions = [st["caption"] for _, st, cap_ok, _ in graded if not cap_ok]
    if wrong_captions:
        right = next((st["caption"] for _, st, ok, _ in graded if ok), reference["caption"])
        pairs.append({"topic": "caption", "hints": {}, "better": right, "worse": rng.choice(wrong_captions)})
    # Reasoning after a right caption: right versus wrong final answer.
    after_right = [(st, ok) for _, st, cap_ok, ok in graded if cap_ok]
    wrong_reasoning = [(st["reasoning"], final_word(st["conclusion"])) for st, ok in after_right if not ok]
    if wrong_reasoning:
        right = next((st["reasoning"] for st, ok in after_right if ok), reference["reasoning"])
        worse, worse_answer = rng.choice(wrong_reasoning)
        pairs.append({"topic": "reasoning", "hints": {"caption": reference["caption"]}, "better": right,
                      "worse": worse, "better_answer": item.answer, "worse_answer": worse_answer,
                      **shapes.check_fields(item)})
    wrong_answers = [s for s, _, _, ok in graded if not ok]
    if wrong_answers:
        right = next((s for s, _, _, ok in graded if ok), item.assistant_text())
        pairs.append({"topic": "answer", "hints": {}, "better": right.strip(), "worse": rng.choice(wrong_answers).strip()})
    return pairs


def pair_example(enc: Encoder, rng: random.Random, item: shapes.Item, pair: dict):
    better_first = rng.random() < 0.5
    first, second = (pair["better"], pair["worse"]) if better_first else (pair["worse"], pair["better"])
    answer, weights = judge_answer(pair, better_first)
    ids, w = enc.encode(judge_prompt(pair["topic"], item.question, pair["hints"], first, second), answer, weights=weights)
    return {"kind": "judge", "ids": ids, "w": w, "image": item.scene.image(), "topic": pair["topic"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/stagebeam-shapes"))
    parser.add_argument("--items", type=int, default=1536)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=Path("training/log"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerFast
    model = LlavaForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    fast = PreTrainedTokenizerFast.from_pretrained(args.model)
    tok = fast.backend_tokenizer
    ids = {t: tok.token_to_id(t) for t in SPECIAL}
    enc = Encoder(tok, ids["<image>"])
    rng = random.Random(args.seed)
    held_out = held_out_keys()
    start = time.time()

    items, pairs = [], []
    while len(items) < args.items:
        item = shapes.random_item(rng)
        if item_key(item) not in held_out:
            items.append(item)
    stats = {"samples": 0, "caption_right": 0, "answer_right": 0, "format_valid": 0}
    for k in range(0, len(items), 64):
        chunk = items[k:k + 64]
        for item, samples in zip(chunk, sample(model, tok, chunk, args.samples, ids["<image>"], ids["<pad>"],
                                               ids["<|end|>"], args.seed + k)):
            for s in samples:
                stages = split_stages(s)
                stats["samples"] += 1
                stats["format_valid"] += stages is not None
                stats["caption_right"] += bool(stages and caption_is_right(stages["caption"], item.scene))
                stats["answer_right"] += bool(stages and final_word(stages["conclusion"]) == item.answer)
            pairs += [(item, p) for p in own_pairs(rng, item, samples)]
        print(f"sampled {k + len(chunk)}/{len(items)} items · {len(pairs)} pairs · {time.time() - start:.0f} s", flush=True)
    print("own samples:", {k: v for k, v in stats.items()}, flush=True)

    rng.shuffle(pairs)
    held_count = min(128, len(pairs) // 4)  # judged before and after, never trained on
    held, train_pairs = pairs[:held_count], pairs[held_count:]
    if not held or not train_pairs:
        raise SystemExit(f"only {len(pairs)} right-versus-wrong pairs from {len(items)} questions: sample more (--items)")
    held_examples = [pair_example(enc, rng, i, p) for i, p in held]
    held_batches = [collate(held_examples[k:k + 24], ids["<pad>"]) for k in range(0, len(held_examples), 24)]
    choice_ids = choice_token_ids(tok)
    before = judge_accuracy(model, held_batches, choice_ids, "cpu")
    print(f"judge accuracy on held-out own-sample pairs before: {before:.3f}", flush=True)

    stream = Stream(enc, args.seed + 1, held_out, args.batch_tokens, ids["<pad>"])
    freeze_vision_tower(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    model.train()
    pending = []
    for step in range(args.steps):
        if not pending:
            # Half own-sample verdicts, half ordinary examples.
            mixed = [pair_example(enc, rng, *rng.choice(train_pairs)) for _ in range(96)]
            mixed += [stream.example("mix") for _ in range(96)]
            pending = bucketed(mixed, args.batch_tokens, rng, ids["<pad>"])
        for g in opt.param_groups:
            g["lr"] = args.lr * (1 - step / args.steps)
        loss, parts = batch_loss(model, pending.pop(), "cpu")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 50 == 0:
            model.eval()
            acc = judge_accuracy(model, held_batches, choice_ids, "cpu")
            model.train()
            print(f"step {step + 1}/{args.steps} · {parts} · held-out own-pair accuracy {acc:.3f} · "
                  f"{time.time() - start:.0f} s", flush=True)
    model.eval()
    after = judge_accuracy(model, held_batches, choice_ids, "cpu")
    print(f"judge accuracy on held-out own-sample pairs after: {after:.3f}", flush=True)
    save(model, tok, ids, args.model)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    (args.log_dir / "self_judge.json").write_text(json.dumps(
        {"own_samples": stats, "pairs": len(pairs), "held_out_pairs": len(held), "accuracy_before": before,
         "accuracy_after": after, "seconds": round(time.time() - start, 1), "args": {k: str(v) for k, v in vars(args).items()}},
        indent=2) + "\n")


if __name__ == "__main__":
    main()
