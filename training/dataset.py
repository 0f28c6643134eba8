"""The held-out splits stagebeam ships (datasets/shapes/), so `stagebeam eval` runs with no Python:
    .venv/bin/python training/dataset.py --out datasets/shapes
test.jsonl: 350 questions (50 per family) with exact answers; judge-test.jsonl: 300 judge pairs
(60 per topic); images/*.png; examples/: a few images and questions for the demo.
With --validation DIR it writes a validation split instead (val.jsonl, 350 questions from its own
seed): models are compared on it, never on the test split. Training never sees an item whose scene
and question are in these splits (train.py filters them by `item_key`)."""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes  # noqa: E402

TEST_SEED = 3_000_003
VALIDATION_SEED = 6_000_006
JUDGE_SEED = 4_000_004
PER_FAMILY = 50
PER_TOPIC = 60
TOPICS = ["summary", "caption", "reasoning", "conclusion", "answer"]
# The families the judge pairs are drawn from: those that existed when judge-test.jsonl was made, so
# it stays what it was (a new family, drawn among them, would change every pair after its first).
JUDGE_FAMILIES = ("count", "remove", "remove2", "compare", "attribute", "spatial")


def item_key(item: shapes.Item) -> tuple:
    return (item.scene.objects, item.question)


def test_items(seed: int = TEST_SEED) -> list[shapes.Item]:
    """PER_FAMILY items of each family, in shapes.FAMILY_WEIGHTS' order from one generator: a family
    added at the end adds its items and leaves the others as they were."""
    rng = random.Random(seed)
    items = []
    for family in shapes.FAMILY_WEIGHTS:
        made = 0
        while made < PER_FAMILY:
            item = shapes.make_item(rng, shapes.random_scene(rng), family)
            if item is not None:
                items.append(item)
                made += 1
    return items


def judge_items() -> list[tuple[shapes.Item, dict]]:
    rng = random.Random(JUDGE_SEED)
    weights = {family: shapes.FAMILY_WEIGHTS[family] for family in JUDGE_FAMILIES}
    out = []
    for topic in TOPICS:
        made = 0
        while made < PER_TOPIC:
            item = shapes.random_item(rng, weights=weights)
            # The pairs as committed: made before the both-wrong and opposite-relation slips existed.
            pair = shapes.judge_pair(rng, item, topic, both_wrong_share=0.0, opposite_share=0.0, weights=weights)
            if pair is not None:
                out.append((item, pair))
                made += 1
    return out


def held_out_keys() -> set:
    return ({item_key(i) for i in test_items()} | {item_key(i) for i in test_items(VALIDATION_SEED)}
            | {item_key(i) for i, _ in judge_items()})


def write_questions(items: list[shapes.Item], out: Path, split: str):
    """{split}.jsonl and its images: what `stagebeam eval --dataset` reads."""
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    with open(out / f"{split}.jsonl", "w") as f:
        for i, item in enumerate(items):
            name = f"{split}-{i:04d}.png"
            item.scene.image().save(images / name)
            f.write(json.dumps({"id": f"{split}-{i:04d}", "image": f"images/{name}", "question": item.question,
                                "answer": item.answer, "family": item.family,
                                "reference": item.assistant_text()}) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("datasets/shapes"))
    parser.add_argument("--examples", type=Path, default=Path("examples"))
    parser.add_argument("--validation", type=Path, default=None,
                        help="write only a validation split (its own seed, the test split's format) here")
    parser.add_argument("--validation-seed", type=int, default=VALIDATION_SEED,
                        help="with --validation: another seed gives a fresh split, one no setting was chosen on")
    args = parser.parse_args()
    if args.validation is not None:
        write_questions(test_items(args.validation_seed), args.validation, "val")
        print(f"wrote {args.validation / 'val.jsonl'}")
        return
    write_questions(test_items(), args.out, "test")
    images = args.out / "images"
    with open(args.out / "judge-test.jsonl", "w") as f:
        for i, (item, pair) in enumerate(judge_items()):
            name = f"judge-{i:04d}.png"
            item.scene.image().save(images / name)
            f.write(json.dumps({"id": f"judge-{i:04d}", "image": f"images/{name}", "topic": pair["topic"],
                                "question": item.question, "hints": pair["hints"], "better": pair["better"],
                                "worse": pair["worse"]}) + "\n")
    # Demo examples: from their own seed, one per family, at full difficulty.
    examples = args.examples
    examples.mkdir(parents=True, exist_ok=True)
    rng = random.Random(5_000_005)
    lines = []
    for family in ["count", "remove", "compare", "side"]:
        item = None
        while item is None:
            item = shapes.make_item(rng, shapes.random_scene(rng, 4, 7), family)
        name = f"{family}.png"
        item.scene.image().save(examples / name)
        lines.append(json.dumps({"id": family, "image": name, "question": item.question, "answer": item.answer}))
    (examples / "questions.jsonl").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} and {examples}")


if __name__ == "__main__":
    main()
