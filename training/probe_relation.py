"""Where the judge's check reads a left-or-right question's relation from.

A spatial reasoning check starts by copying the question ("Question: Is the red circle to the left
of ..."). For fresh left-or-right questions this gives the check's prompt and that copy up to "to
the", and reads whether the model puts more probability on the asked word ("left" or "right") than
on the other. It does so for three prompts: both responses naming the asked relation (a right
reasoning and one with a shifted column, as the judge pairs had until step 14,140), the right reasoning
and one naming the opposite relation (the answers' own slip), in both orders, and no caption and no
responses at all. Each row is split by how the asked relation stands in the image.

    .venv/bin/python training/probe_relation.py models/stagebeam-shapes
"""
from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import LlavaForConditionalGeneration

import shapes
from diagnose import percent, print_table
from examples import expand_image, pixels, prompt_text
from judge_prompt import judge_prompt
from tournaments import STANDINGS, standing

PROMPTS = ["both name the asked relation", "the first names the opposite", "the second names the opposite",
           "no caption, no responses"]


def left_or_right_items(rng: random.Random, count: int):
    while count:
        item = shapes.make_item(rng, shapes.random_scene(rng, 2, 8), "spatial")
        if item is not None and item.plan["q"]["rel"] in ("left of", "right of"):
            count -= 1
            yield item


def image_standing(item: shapes.Item) -> str:
    q, objects = item.plan["q"], item.scene.objects
    a = next(o for o in objects if q["f"].matches(o)).column
    b = next(o for o in objects if q["g"].matches(o)).column
    return standing(q["rel"] == "left of", a, b)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--items", type=int, default=120)
    parser.add_argument("--seed", type=int, default=424242)
    args = parser.parse_args()
    tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    model = LlavaForConditionalGeneration.from_pretrained(args.model).eval()
    image_id, words = tok.token_to_id("<image>"), [tok.token_to_id("Ġleft"), tok.token_to_id("Ġright")]

    tally = Counter()
    for item in left_or_right_items(random.Random(args.seed), args.items):
        q, objects = item.plan["q"], item.scene.objects
        shifted = shapes.reasoning_text("spatial", q, objects, {"shift": True})[0]
        opposite = shapes.reasoning_text("spatial", q, objects, {"opposite": True})[0]
        hints = {"caption": item.caption}
        users = {"both name the asked relation": judge_prompt("reasoning", item.question, hints, item.reasoning, shifted),
                 "the first names the opposite": judge_prompt("reasoning", item.question, hints, opposite, item.reasoning),
                 "the second names the opposite": judge_prompt("reasoning", item.question, hints, item.reasoning, opposite),
                 "no caption, no responses": judge_prompt("reasoning", item.question, {}, "", "")}
        copied = "Question: " + item.question[:item.question.index(" to the ") + len(" to the")]
        asked = 0 if q["rel"] == "left of" else 1
        for name, user in users.items():
            ids = expand_image(tok.encode(prompt_text(user) + copied, add_special_tokens=False).ids, image_id)
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids]),
                               pixel_values=torch.from_numpy(pixels(item.scene.image()))[None]).logits[0, -1]
            tally[name, image_standing(item), bool(logits[words].argmax() == asked)] += 1

    print_table([["prompt"] + [f"{s}: asked word preferred" for s in STANDINGS]]
                + [[p] + [percent(tally[p, s, True], tally[p, s, True] + tally[p, s, False]) for s in STANDINGS]
                   for p in PROMPTS])


if __name__ == "__main__":
    main()
