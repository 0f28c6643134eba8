"""Training data for the built-in model's reward model: the model's own candidates of every stage,
labelled right or wrong by the question generator.

Three steps, each resumable:

    # 1. fresh training questions (their own seed; every item of the test, validation and judge
    #    splits is skipped) in the eval format, with what the labels need
    python training/reward_data.py questions --out training/runs/reward/questions --count 1400
    # 2. the model's candidates, M per stage, sampled by stagebeam itself: stage search with logprob
    #    verdicts (cheap; its choice only decides which prefix the next stage continues). `batch`
    #    appends to its output and skips the items already there, so an interrupted run resumes.
    stagebeam batch --input training/runs/reward/questions/train.jsonl \\
        --output training/runs/reward/candidates.jsonl --method stage --beam 4 --judge-mode logprob \\
        --record-search --threads 2
    # 3. one labelled example per candidate (rewritten whole from the two files each time)
    python training/reward_data.py label --questions training/runs/reward/questions/train.jsonl \\
        --candidates training/runs/reward/candidates.jsonl --out training/runs/reward/examples.jsonl

An example is what the search sends the scorer: the question, and the assistant's text through the
scored stage (the chosen earlier stages, then the candidate, tags around each stage, a blank line
between). How each stage is labelled:
- SUMMARY: right when it is one of the phrasings `shapes.summary_text` could have written for this
  question (it restates the question; a summary about other objects is wrong).
- CAPTION: right when it names exactly the scene's objects (position, size, colour, shape) and
  states their number. The reward model reads text only, so it can judge a caption's form and
  consistency but not whether it matches the image.
- REASONING: right when it reaches the reference answer (`tournaments.reached`: its last number or
  word), whatever the scan in between.
- CONCLUSION: right when its last word is the reference answer (how `stagebeam eval` grades).
`group` names the candidates that continue one prefix (one item's one stage): the siblings the
search ranks against each other.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataset  # noqa: E402
import shapes  # noqa: E402
from diagnose import caption_objects  # noqa: E402
from tournaments import grade  # noqa: E402

TRAIN_SEED = 8_000_008
STAGES = ["summary", "caption", "reasoning", "conclusion"]
SLIPS = 2
# The questions per family out of 14: comparisons (compare, spatial) are where the model's answers go
# wrong, so they get more of the draw.
FAMILY_SHARES = {"count": 1, "remove": 1, "remove2": 2, "compare": 4, "attribute": 1, "spatial": 4, "side": 1}


class Every:
    """A stand-in for the random generator that records every option `choice` is offered, so the
    summaries a question could have are known (summary_text draws exactly one choice)."""

    def __init__(self):
        self.options: list[str] = []

    def choice(self, options):
        self.options = list(options)
        return options[0]


def summaries(item: shapes.Item) -> list[str]:
    every = Every()
    shapes.summary_text(every, item.family, item.plan["q"])
    return every.options


def slips(item: shapes.Item, rng: random.Random) -> dict:
    """Generator-made wrong stages for the item (the judge pairs' slips, `shapes.slipped_reasoning`,
    half of the spatial ones stating the opposite relation): up to SLIPS distinct reasoning texts that
    reach a wrong answer, and a conclusion giving a wrong answer."""
    reasoning = []
    for _ in range(4 * SLIPS):
        slipped = shapes.slipped_reasoning(rng, item, opposite_share=shapes.OPPOSITE_SHARE)
        if slipped is not None and slipped[0] not in reasoning:
            reasoning.append(slipped[0])
        if len(reasoning) == SLIPS:
            break
    return {"slipped_reasoning": reasoning,
            "slipped_conclusion": shapes.conclusion_text(rng, shapes.wrong_answer(rng, item))}


def write_questions(out: Path, count: int):
    held_out = dataset.held_out_keys()
    rng = random.Random(TRAIN_SEED)
    families = [f for f, share in FAMILY_SHARES.items() for _ in range(share)]
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "w") as f:
        made = 0
        while made < count:
            family = families[made % len(families)]
            item = shapes.make_item(rng, shapes.random_scene(rng), family)
            if item is None or dataset.item_key(item) in held_out:
                continue
            name = f"train-{made:05d}.png"
            item.scene.image().save(images / name)
            f.write(json.dumps({"id": f"train-{made:05d}", "image": f"images/{name}", "question": item.question,
                                "answer": item.answer, "family": item.family, "reference": item.assistant_text(),
                                "objects": len(item.scene.objects), "summaries": summaries(item),
                                **slips(item, random.Random(TRAIN_SEED + made))}) + "\n")
            made += 1
    print(f"wrote {count} questions to {out / 'train.jsonl'}")


OBJECT_COUNT = re.compile(r"(\d+) objects?\b")


def right(stage: str, text: str, item: dict) -> bool:
    if stage == "summary":
        return text.strip() in item["summaries"]
    if stage == "caption":
        counts = OBJECT_COUNT.findall(text)
        return grade(stage, text, item) and counts[-1:] == [str(item["objects"])]
    return grade(stage, text, item)


def strip_tags(text: str, tag: str) -> str:
    return text.removeprefix(f"<{tag}>").removesuffix(f"</{tag}>")


def label(questions: Path, candidates: Path, out: Path):
    items = {i["id"]: i for i in map(json.loads, filter(str.strip, questions.read_text().splitlines()))}
    counts = {s: [0, 0] for s in STAGES}
    synthetic = {s: 0 for s in STAGES}
    with open(out, "w") as f:
        for line in filter(str.strip, candidates.read_text().splitlines()):
            result = json.loads(line)
            if "search" not in result:
                continue  # a failed item
            item = items[result["id"]]
            before = ""
            chosen_right: dict[str, bool] = {}
            for record in result["search"]["stages"]:
                stage = record["stage"]
                tag = stage.upper()
                seen = set()
                for candidate in record["units"][0]["candidates"]:
                    text = candidate["text"]
                    if text in seen:
                        continue  # a repeated candidate teaches nothing new
                    seen.add(text)
                    ok = right(stage, text, item)
                    counts[stage][ok] += 1
                    f.write(json.dumps({"id": item["id"], "family": item["family"], "stage": stage,
                                        "group": f"{item['id']}/{stage}", "question": item["question"],
                                        "answer": before + f"<{tag}>{text}</{tag}>", "label": int(ok),
                                        "synthetic": 0}) + "\n")
                # Generator-made wrong texts join the group where the chosen stage before is right (a
                # slip after a wrong caption or reasoning could happen to be right).
                made = []
                if stage == "reasoning" and chosen_right.get("caption"):
                    made = item["slipped_reasoning"]
                elif stage == "conclusion" and chosen_right.get("reasoning"):
                    made = [item["slipped_conclusion"]]
                for text in made:
                    if text in seen:
                        continue
                    seen.add(text)
                    synthetic[stage] += 1
                    f.write(json.dumps({"id": item["id"], "family": item["family"], "stage": stage,
                                        "group": f"{item['id']}/{stage}", "question": item["question"],
                                        "answer": before + f"<{tag}>{text}</{tag}>", "label": 0,
                                        "synthetic": 1}) + "\n")
                chosen_right[stage] = right(stage, strip_tags(record["text"], tag), item)
                before += record["text"] + "\n\n"
    for stage, (wrong, ok) in counts.items():
        print(f"{stage:<11} {ok + wrong:>6} distinct candidates, {wrong:>5} wrong; {synthetic[stage]:>5} generator-made wrong")
    print(f"wrote {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    q = commands.add_parser("questions", help="write fresh training questions")
    q.add_argument("--out", type=Path, required=True)
    q.add_argument("--count", type=int, default=1400)
    lab = commands.add_parser("label", help="label the candidates of a stagebeam batch --record-search run")
    lab.add_argument("--questions", type=Path, required=True)
    lab.add_argument("--candidates", type=Path, required=True)
    lab.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "questions":
        write_questions(args.out, args.count)
    else:
        label(args.questions, args.candidates, args.out)


if __name__ == "__main__":
    main()
