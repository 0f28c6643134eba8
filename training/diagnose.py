"""Where the built-in model's answers go wrong: seeing or reasoning.

Reads the answers `stagebeam eval --answers FILE` wrote and the dataset's reference answers, and
prints per method and beam: how often the CAPTION names exactly the scene's objects, and the
accuracy when it does and when it does not (a low exact-caption share with high accuracy after an
exact caption says the model fails at seeing, not at reasoning); then, for the wrong answers, how
the REASONING's scan of the objects differs from the reference's; and how often the scan decides
right, for the objects that match and for the others.

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


def final_word(text: str) -> str | None:
    """The last word of a CONCLUSION (lower-cased): the answer it gives."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return words[-1] if words else None


SCANNED = re.compile(rf"{POSITION}: {NAME}, [a-z ]+: (?P<verdict>yes|no)", re.I)
SCAN_LABEL = re.compile(r"([^.]*?), object by object\.")


def scans(answer: str) -> list[tuple[str, tuple, bool]]:
    """The REASONING's scans (shapes.scan): each scan's label ("Red objects"), each object it
    checked and whether it said the object matches."""
    match = re.search(r"<REASONING>(.*?)</REASONING>", answer, re.S)
    parts = SCAN_LABEL.split(match.group(1) if match else "")
    return [(label.strip(), tuple(m.group(k).lower() for k in ("position", "size", "colour", "shape")), m.group("verdict") == "yes")
            for label, body in zip(parts[1::2], parts[2::2]) for m in SCANNED.finditer(body)]


def decisions(answer: str, reference: str) -> Counter:
    """The answer's scan decisions against the reference's on the same scan and object:
    (should match, said it matches) → count. Objects the reference does not check are skipped."""
    want = {(label, o): yes for label, o, yes in scans(reference)}
    return Counter((want[label, o], yes) for label, o, yes in scans(answer) if (label, o) in want)


def reasoning_mistake(answer: str, reference: str) -> str:
    """How a wrong answer's REASONING differs from the reference's: "miscopied" (its scan names an
    object its own CAPTION does not have), else by the objects it says yes to: "extra", "missing",
    "extra and missing", or "same list" (the mistake comes after the scan: counting, arithmetic,
    comparison, position)."""
    own_caption = caption_objects(answer) or frozenset()
    checked = scans(answer)
    if any(o not in own_caption for _, o, _ in checked):
        return "miscopied"
    got = Counter(o for _, o, yes in checked if yes)
    want = Counter(o for _, o, yes in scans(reference) if yes)
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
    runs, mistakes, decided = defaultdict(list), defaultdict(Counter), defaultdict(Counter)
    for line in args.answers.read_text().splitlines():
        if line.strip():
            a = json.loads(line)
            run = (a["method"], a["beam"])
            runs[run].append((caption_objects(a["answer"]) == caption_objects(reference[a["id"]]), a["correct"]))
            decided[run] += decisions(a["answer"], reference[a["id"]])
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
    kinds = ["miscopied", "extra", "missing", "extra and missing", "same list"]
    print_table([["method/beam", "wrong", *(f"scan: {k}" for k in kinds)]]
                + [[f"{method}/{beam}", str(sum(counts.values())), *(str(counts[k]) for k in kinds)]
                   for (method, beam), counts in mistakes.items()])
    print()
    print_table([["method/beam", "scan decisions", "matches said yes", "others said no"]]
                + [[f"{method}/{beam}", str(sum(c.values())), percent(c[True, True], c[True, True] + c[True, False]),
                    percent(c[False, False], c[False, False] + c[False, True])] for (method, beam), c in decided.items()])


def print_table(rows: list[list[str]]):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
