"""Where the built-in model's answers go wrong: seeing or reasoning.

Reads the answers `stagebeam eval --answers FILE` wrote and the dataset's reference answers, and
prints per method and beam: how often the CAPTION names exactly the scene's objects, and the
accuracy when it does and when it does not (a low exact-caption share with high accuracy after an
exact caption says the model fails at seeing, not at reasoning); then, for the wrong answers, how
the REASONING's list of matching objects differs from the reference's.

    stagebeam eval --methods greedy,stage --beam 4 --answers /tmp/answers.jsonl
    python training/diagnose.py /tmp/answers.jsonl
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import shapes

NAME = rf"(?P<size>{'|'.join(shapes.SIZES)}) (?P<colour>{'|'.join(shapes.COLOURS)}) (?P<shape>{'|'.join(shapes.SHAPES)})"
POSITION = rf"(?P<position>{'|'.join(shapes.POSITIONS)})"
# The three caption styles of shapes.caption_text.
OBJECT_PATTERNS = [re.compile(rf"{POSITION}: an? {NAME}", re.I), re.compile(rf"an? {NAME} at the {POSITION}", re.I),
                   re.compile(rf"in the {POSITION} there is an? {NAME}", re.I)]


def caption_objects(answer: str) -> frozenset | None:
    """The (position, size, colour, shape) objects its CAPTION names; None without a CAPTION."""
    match = re.search(r"<CAPTION>(.*?)</CAPTION>", answer, re.S)
    if match is None:
        return None
    found = set()
    for pattern in OBJECT_PATTERNS:
        for m in pattern.finditer(match.group(1)):
            found.add(tuple(m.group(k).lower() for k in ("position", "size", "colour", "shape")))
    return frozenset(found)


LISTED = re.compile(r"the ((?:small|large) \w+ \w+) \(\d+\)")


def reasoning_mistake(answer: str, reference: str) -> str:
    """How a wrong answer's REASONING differs from the reference's, by the objects it lists as
    matching ("the small red circle (1)"): "extra", "missing", "extra and missing", or "same list"
    (the mistake comes after the listing: counting, arithmetic, comparison, position)."""
    def listed(text: str) -> Counter:
        match = re.search(r"<REASONING>(.*?)</REASONING>", text, re.S)
        return Counter(LISTED.findall(match.group(1)) if match else [])
    got, want = listed(answer), listed(reference)
    extra, missing = bool(got - want), bool(want - got)
    return {(True, True): "extra and missing", (True, False): "extra", (False, True): "missing"}.get((extra, missing), "same list")


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} {100 * part / whole:.1f}%" if whole else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("answers", type=Path, help="JSON lines from stagebeam eval --answers")
    parser.add_argument("--dataset", type=Path, default=Path("datasets/shapes/test.jsonl"))
    args = parser.parse_args()

    reference = {}
    for line in args.dataset.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            reference[item["id"]] = item["reference"]
    runs, mistakes = defaultdict(list), defaultdict(Counter)
    for line in args.answers.read_text().splitlines():
        if line.strip():
            a = json.loads(line)
            run = (a["method"], a["beam"])
            runs[run].append((caption_objects(a["answer"]) == caption_objects(reference[a["id"]]), a["correct"]))
            if not a["correct"]:
                mistakes[run][reasoning_mistake(a["answer"], reference[a["id"]])] += 1

    rows = [["method/beam", "n", "caption exact", "accuracy | exact caption", "accuracy | other caption"]]
    for (method, beam), graded in runs.items():
        exact = [ok for seen, ok in graded if seen]
        other = [ok for seen, ok in graded if not seen]
        rows.append([f"{method}/{beam}", str(len(graded)), percent(len(exact), len(graded)),
                     percent(sum(exact), len(exact)), percent(sum(other), len(other))])
    print_table(rows)
    print()
    kinds = ["extra", "missing", "extra and missing", "same list"]
    print_table([["method/beam", "wrong", *(f"reasoning lists: {k}" for k in kinds)]]
                + [[f"{method}/{beam}", str(sum(counts.values())), *(str(counts[k]) for k in kinds)]
                   for (method, beam), counts in mistakes.items()])


def print_table(rows: list[list[str]]):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
