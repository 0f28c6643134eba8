"""How long the judge's training examples are, in model positions (the prompt with its image, the
check and the verdict), per topic, over items drawn with the usual family mix, and the share longer
than the built-in model's context (max_position_embeddings). training/HISTORY.md quotes these figures.

    .venv/bin/python training/judge_lengths.py [--items 3000]

Also estimates a written check for whole-answer pairs, which they lack: the pair's prompt, plus the
same item's reasoning check, plus a caption of the judge's own (what such a check would have to
write before it could work the answer out)."""
from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

import shapes
from examples import Encoder, judge_example
from tokenizers import Tokenizer

MODEL = Path(__file__).resolve().parent.parent / "models/stagebeam-shapes"


def summary(name: str, lengths: list[int], context: int) -> str:
    lengths = sorted(lengths)
    over = sum(n > context for n in lengths)
    return (f"{name:<24} {len(lengths):>6} {lengths[len(lengths) // 2]:>7} {lengths[int(len(lengths) * 0.95)]:>6} "
            f"{lengths[-1]:>5} {100 * over / len(lengths):>9.1f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    context = json.loads((MODEL / "config.json").read_text())["text_config"]["max_position_embeddings"]
    parser.add_argument("--context", type=int, default=context,
                        help="the share of examples longer than this is shown (default: the built-in model's context)")
    args = parser.parse_args()

    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    enc = Encoder(tok, tok.token_to_id("<image>"))
    rng = random.Random(args.seed)
    by_topic: dict[str, list[int]] = defaultdict(list)
    answer_check: list[int] = []
    for _ in range(args.items):
        item = shapes.random_item(rng)
        example = judge_example(enc, rng, item)
        if example is not None:
            by_topic[example["topic"]].append(len(example["ids"]))
        answer, reasoning = judge_example(enc, rng, item, "answer"), judge_example(enc, rng, item, "reasoning")
        if answer is not None and reasoning is not None:
            prompt = sum(1 for w in answer["w"] if w == 0)
            check = sum(1 for w in reasoning["w"] if w > 0)
            answer_check.append(prompt + check + len(tok.encode(item.caption).ids))

    print(f"{'judge examples':<24} {'drawn':>6} {'median':>7} {'p95':>6} {'max':>5} {'> ' + str(args.context):>10}")
    for topic, lengths in sorted(by_topic.items()):
        print(summary(topic, lengths, args.context))
    print(summary("answer, checked (est.)", answer_check, args.context))


if __name__ == "__main__":
    main()
