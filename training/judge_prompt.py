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
