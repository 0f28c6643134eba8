"""Where the built-in model's answers go wrong: seeing or reasoning.

Reads the answers `stagebeam eval --answers FILE` wrote and the dataset's reference answers, and
prints per method and beam: how often the CAPTION names exactly the scene's objects, and the
accuracy when it does and when it does not. A low exact-caption share with high accuracy after an
exact caption says the model fails at seeing, not at reasoning.

    stagebeam eval --methods greedy,stage --beam 4 --answers /tmp/answers.jsonl
    python training/diagnose.py /tmp/answers.jsonl
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
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
            reference[item["id"]] = caption_objects(item["reference"])
    runs = defaultdict(list)
    for line in args.answers.read_text().splitlines():
        if line.strip():
            a = json.loads(line)
            runs[(a["method"], a["beam"])].append((caption_objects(a["answer"]) == reference[a["id"]], a["correct"]))

    header = ["method/beam", "n", "caption exact", "accuracy | exact caption", "accuracy | other caption"]
    rows = [header]
    for (method, beam), graded in runs.items():
        exact = [ok for seen, ok in graded if seen]
        other = [ok for seen, ok in graded if not seen]
        rows.append([f"{method}/{beam}", str(len(graded)), percent(len(exact), len(graded)),
                     percent(sum(exact), len(exact)), percent(sum(other), len(other))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
