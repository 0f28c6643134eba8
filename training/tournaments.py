"""How the search's tournaments chose among the built-in model's own candidates.

Reads `stagebeam batch --record-search` output for the shapes dataset and grades every candidate of
each stage against the item's reference: a CAPTION is right when it names exactly the reference's
objects; a REASONING when it reaches the reference answer; a CONCLUSION when it gives it. Per stage it
prints how often any candidate was right (the most a perfect judge could keep), how often the
chosen one was, and how each match between a right and a wrong candidate went, by the position
the right one was shown in. That separates "no candidate was right" from "the judge chose wrong".
For written verdicts (`--judge-mode generate`) on reasoning it then reads the judge's check: how often
its own working reached the reference answer in those right-versus-wrong calls (in all and per
question family), how often it copied each response's answer right ("Response 1 reaches 4")
where the two responses' answers differ, and, for comparisons, how often it restated what is asked
right ("Asked: column lower."), for left-or-right questions by whether what is asked holds in the
image.

    stagebeam batch --input /tmp/val/val.jsonl --output /tmp/stage.jsonl --method stage --beam 4 \\
        --judge-mode generate --judge-temperature 0 --record-search
    python training/tournaments.py /tmp/stage.jsonl --dataset /tmp/val/val.jsonl
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import shapes
from diagnose import caption_objects, final_word, percent, print_table

# A count question's REASONING ends "So there are 2 red squares.", a side question's "So 2 objects are to
# the left of the blue square."; every other family's ends with its answer.
COUNT_ENDING = re.compile(r"So (?:there (?:are|is) )?(\w+)[^.]*\.\s*$")


def reached(reasoning: str) -> str | None:
    """The answer a REASONING reaches."""
    count = COUNT_ENDING.search(reasoning)
    words = re.findall(r"[a-z0-9]+", reasoning.lower())
    return count.group(1).lower() if count else words[-1] if words else None


def grade(stage: str, text: str, item: dict) -> bool:
    """Whether one candidate's text is right."""
    if stage == "caption":
        return caption_objects(f"<CAPTION>{text}</CAPTION>") == caption_objects(item["reference"])
    if stage == "reasoning":
        return reached(text) == item["answer"].lower()
    if stage == "conclusion":
        return final_word(text) == item["answer"].lower()
    raise ValueError(stage)


WORKING = re.compile(r"My working reaches (\w+)")
ASKED = re.compile(r"Asked: (\w+ \w+)\.")


def asked(question: str) -> str | None:
    """What a compare, spatial or side question asks, as the check restates it (shapes.asked), read
    off the question's words (the dataset keeps the question, not the plan it was made from). A side
    question names its relation as a spatial one does, and restates it alike."""
    for ask, words in (("more", "Are there more "), ("fewer", "Are there fewer "), ("same", "Are there as many ")):
        if question.startswith(words):
            return shapes.asked("compare", {"ask": ask})
    for relation, (phrase, _, _) in shapes.RELATIONS.items():
        if f" {phrase} the " in question:
            return shapes.asked("spatial", {"rel": relation})
    return None


STANDINGS = ("asked holds", "opposite holds", "same column")


def standing(left_asked: bool, a: int, b: int) -> str:
    """How "is A left of B" (or right of) stands with A in column a and B in column b: "asked
    holds", "opposite holds" or "same column"."""
    if a == b:
        return "same column"
    return "asked holds" if (a < b) == left_asked else "opposite holds"


def image_holds(item: dict) -> str | None:
    """For a left-or-right question, how what is asked stands in the image (`standing`), from the
    columns the reference reasoning names ("..., in column 1.")."""
    what = asked(item["question"])
    columns = [int(c) for c in re.findall(r"in column (\d)", item["reference"])]
    if what not in ("column lower", "column higher") or len(columns) != 2:
        return None
    return standing(what == "column lower", *columns)


def read_answers(check: str) -> dict[int, str]:
    """The answer the check first says each response reaches, by position shown (1, 2): its reading
    of the response itself, before its working (judge_prompt.rationale)."""
    read = {}
    for k, answer in re.findall(r"Response ([12]) reaches (-?\w+)", check):
        read.setdefault(int(k), answer.lower())
    return read


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="JSON lines from stagebeam batch --record-search")
    parser.add_argument("--dataset", type=Path, default=Path("datasets/shapes/test.jsonl"))
    args = parser.parse_args()
    items = {i["id"]: i for i in map(json.loads, filter(str.strip, args.dataset.read_text().splitlines()))}

    stages = ["caption", "reasoning", "conclusion"]
    any_right, chosen_right, units = Counter(), Counter(), Counter()
    matches = Counter()  # (stage, right shown first?, judge kept the right one?) → count
    working = Counter()  # right-versus-wrong reasoning calls: (family, the judge's working reached the answer?)
    copied = Counter()  # responses whose answer differs from the other's: the check copied it right?
    restated = Counter()  # comparison checks: (family, restated what is asked right?)
    left_right = Counter()  # left-or-right checks: (how what is asked stands in the image, restated right?)
    for line in filter(str.strip, args.output.read_text().splitlines()):
        out = json.loads(line)
        item, record = items[out["id"]], out["search"]
        for stage_record in record["stages"]:
            stage = stage_record["stage"]
            if stage not in stages:
                continue
            unit = stage_record["units"][0]
            right = {c["index"]: grade(stage, c["text"], item) for c in unit["candidates"]}
            units[stage] += 1
            any_right[stage] += any(right.values())
            chosen_right[stage] += right[unit["winner"]]
            texts = {c["index"]: c["text"] for c in unit["candidates"]}
            for match in (unit.get("tournament") or {}).get("matches", []):
                a, b = match["a"], match["b"]
                if stage == "reasoning":
                    check_calls(match, texts, right, item, working, copied, restated, left_right)
                if right[a] != right[b] and match["outcome"] == "judged":
                    matches[stage, right[a], right[match["winner"]]] += 1
                elif right[a] != right[b]:
                    matches[stage, right[a], None] += 1

    rows = [["stage", "units", "some candidate right", "chosen right", "right shown first: kept",
             "right shown second: kept", "undecided"]]
    for s in stages:
        first = matches[s, True, True], matches[s, True, False]
        second = matches[s, False, True], matches[s, False, False]
        rows.append([s, str(units[s]), percent(any_right[s], units[s]), percent(chosen_right[s], units[s]),
                     percent(first[0], sum(first)), percent(second[0], sum(second)),
                     str(matches[s, True, None] + matches[s, False, None])])
    print_table(rows)
    if working or copied:
        working_right = sum(n for (_, ok), n in working.items() if ok)
        print()
        print_table([["reasoning checks", "working reaches the answer (right vs wrong)",
                      "answer copied right (answers differ)"],
                     ["", percent(working_right, sum(working.values())), percent(copied[True], sum(copied.values()))]])
        print()
        families = sorted({family for family, _ in working} | {family for family, _ in restated})
        print_table([["family", "working reaches the answer (right vs wrong)", "what is asked restated right (all calls)"]]
                    + [[f, percent(working[f, True], working[f, True] + working[f, False]),
                        percent(restated[f, True], restated[f, True] + restated[f, False])] for f in families])
    if left_right:
        print()
        print_table([["left-or-right checks: in the image", "what is asked restated right"]]
                    + [[k, percent(left_right[k, True], left_right[k, True] + left_right[k, False])]
                       for k in STANDINGS])


def check_calls(match: dict, texts: dict[int, str], right: dict[int, bool], item: dict,
                working: Counter, copied: Counter, restated: Counter, left_right: Counter):
    """Tallies what the written checks of one reasoning match got right."""
    answer, what = item["answer"].lower(), asked(item["question"])
    a, b = match["a"], match["b"]
    for call in match["calls"]:
        check = call["reply"].get("verdict", {}).get("text")
        if check is None:  # a logprob verdict writes no check
            continue
        if what is not None:
            restatement = ASKED.search(check)
            ok = bool(restatement and restatement.group(1) == what)
            restated[item.get("family", "?"), ok] += 1
            if (holds := image_holds(item)) is not None:
                left_right[holds, ok] += 1
        if right[a] != right[b]:
            reached_by_judge = WORKING.search(check)
            working[item.get("family", "?"), bool(reached_by_judge and reached_by_judge.group(1).lower() == answer)] += 1
        shown = (a, b) if call["order"] == "forward" else (b, a)
        if reached(texts[a]) != reached(texts[b]):
            read = read_answers(check)
            for position, index in ((1, shown[0]), (2, shown[1])):
                copied[read.get(position) == reached(texts[index])] += 1


if __name__ == "__main__":
    main()
