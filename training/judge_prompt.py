"""The judge's prompt exactly as stagebeam renders it, read from the Swift source of the built-in
templates (one source of truth: training on a copy that drifted would teach the wrong prompt)."""
from __future__ import annotations

import json
import re
from pathlib import Path

SWIFT_SOURCE = Path(__file__).resolve().parent.parent / "Sources/Search/DefaultJudgeTemplates.swift"


def load_templates() -> dict:
    text = SWIFT_SOURCE.read_text()
    match = re.search(r'#"""\n(.*?)\n"""#', text, re.S)
    if match is None:
        raise SystemExit(f"cannot find the templates JSON in {SWIFT_SOURCE}")
    return json.loads(match.group(1))


TEMPLATES = load_templates()


def render(template: str, values: dict[str, str]) -> str:
    """Placeholders.render: each {name} that has a value is replaced; other text is kept."""
    return re.sub(r"\{([A-Za-z0-9_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def judge_prompt(topic: str, question: str, hints: dict[str, str], first: str, second: str) -> str:
    criterion = TEMPLATES["criteria"][topic]
    blocks = "".join(render(TEMPLATES["hint"], {"stage": s, "text": hints[s]})
                     for s in criterion["hints"] if s in hints)
    return render(TEMPLATES["prompt"], {"question": question, "criterion": criterion["criterion"], "hints": blocks,
                                        "stage": topic, "candidate1": first, "candidate2": second})


def verdict(better_is_first: bool) -> str:
    """The assistant's answer: the verdict prefix, the winning choice, a full stop."""
    return TEMPLATES["verdictPrefix"] + TEMPLATES["choices"][0 if better_is_first else 1] + "."


def rationale(topic: str, first_answer: str, second_answer: str, reached: str, working: str = "",
              asked: str | None = None) -> str:
    """The short written check a `generate`-mode verdict starts with ("" for topics without one).
    Comparing two responses in one step is what the small model never learned (its verdicts stayed
    at chance), so the check breaks it into steps it can take: the answer the check itself reaches
    (read off the chosen reasoning for a conclusion, worked out again from the chosen caption for a
    reasoning), then each response's final answer and whether it matches that one (a comparison of
    two nearby words); the verdict then names the response that matched.

    A reasoning check reads both responses' answers first, right after the prompt that ends with
    them. Read after its own working, it copied them right only 42% of the time where they differed
    (step 10,500, validation): it wrote its own answer instead, since in training one response always
    reached it. For a comparison, the check first restates what is asked (`asked`, from
    shapes.check_fields), read from the question the prompt repeats just before it."""
    def checked(verb: str) -> str:
        return " ".join(f"Response {k} {verb} {answer}, which {'matches' if answer == reached else 'does not match'}."
                        for k, answer in ((1, first_answer), (2, second_answer)))
    if topic == "conclusion":
        return f"The reasoning reaches {reached}. {checked('answers')}"
    if topic == "reasoning":
        return (f"{asked + ' ' if asked else ''}"
                f"Response 1 reaches {first_answer}. Response 2 reaches {second_answer}. "
                f"Working from the caption: {working} My working reaches {reached}. {checked('reaches')}")
    return ""


DECISION = re.compile(r"((?<=Asked:) (?:\w+ )?(?:lower|higher|equal)|(?<=\d is) (?:lower than|higher than|equal to)"
                      r"|(?<=Are there) (?:more|fewer|as many)|(?<=to the) (?:left|right)"
                      r"|(?<=:) (?:yes|no)\b|(?<=, so) (?:yes|no)\b|(?<=reaches) -?\w+|(?<=answers) -?\w+"
                      r"|(?<=which) (?:matches|does not match))")


def judge_answer(pair: dict, better_first: bool) -> tuple[str, list[tuple[str, float]]]:
    """The judge's whole reply to `pair` shown in this order, and its loss weights: the check's
    decisions (when the topic has a check) and the verdict's choice (" 1" / " 2", what logprob
    verdicts read; not at all for an undecided pair) fully, the words around them lightly."""
    check = ""
    if "better_answer" in pair:
        first, second = ((pair["better_answer"], pair["worse_answer"]) if better_first
                         else (pair["worse_answer"], pair["better_answer"]))
        reached = pair.get("reached", pair["better_answer"])
        check = rationale(pair["topic"], first, second, reached, pair.get("working", ""), pair.get("asked"))
    text = verdict(better_first)
    prefix, choice, stop = text[:-3], text[-3:-1], text[-1:]
    # The check's decisions carry the verdict's weight: each yes/no of the working, the answers read
    # ("reaches 5", "answers 5") and their comparison ("which matches"). The words copied around them
    # stay light. At 0.3 the model read a response's final answer right 38% of the time (step 9,000).
    pieces = [(part, 1.0 if i % 2 else 0.3) for i, part in enumerate(DECISION.split(check)) if part]
    pieces = pieces + [(" " + prefix, 0.1)] if check else [(prefix, 0.1)]
    pieces += [(choice, 0.0 if pair.get("undecided") else 1.0), (stop, 0.1)]
    return "".join(p for p, _ in pieces), pieces
