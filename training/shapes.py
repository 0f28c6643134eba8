"""Synthetic visual-reasoning data for the built-in model: scenes, questions, four-stage answers and
judge pairs.

A scene is a 48x48 image holding 1-8 objects on a 3x3 grid of 16-pixel cells (one object per cell).
The vision tower's patches are 16 pixels too, so each image token sees exactly one cell: seeing an
object is a per-patch classification, which a small model can learn (an earlier prototype did
not learn to see objects that straddled patches). The difficulty lives in the multi-step reasoning
(filter, count, subtract, compare, locate, count by position), where a sampled slip can happen and
can be checked.

Everything is a pure function of a seed, so a split is reproducible from its seed range.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

IMAGE_SIZE = 48
CELL = 16
BACKGROUND = (235, 235, 235)
COLOURS = {
    "red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220),
    "yellow": (230, 200, 30), "purple": (150, 60, 190), "gray": (110, 110, 110),
}
SHAPES = ["circle", "square", "triangle"]
SIZES = ["small", "large"]
HALF_WIDTH = {"small": 4, "large": 7}
POSITIONS = ["top left", "top middle", "top right", "middle left", "center", "middle right",
             "bottom left", "bottom middle", "bottom right"]


@dataclass(frozen=True)
class Shape:
    cell: int  # 0..8, reading order
    size: str
    colour: str
    shape: str

    @property
    def row(self) -> int: return self.cell // 3

    @property
    def column(self) -> int: return self.cell % 3

    @property
    def position(self) -> str: return POSITIONS[self.cell]

    @property
    def name(self) -> str: return f"{self.size} {self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[Shape, ...]  # sorted by cell

    def image(self) -> Image.Image:
        img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
        draw = ImageDraw.Draw(img)
        for o in self.objects:
            cx, cy = o.column * CELL + CELL // 2, o.row * CELL + CELL // 2
            h = HALF_WIDTH[o.size]
            fill = COLOURS[o.colour]
            if o.shape == "circle":
                draw.ellipse([cx - h, cy - h, cx + h - 1, cy + h - 1], fill=fill)
            elif o.shape == "square":
                draw.rectangle([cx - h + 1, cy - h + 1, cx + h - 2, cy + h - 2], fill=fill)
            else:
                draw.polygon([(cx, cy - h), (cx - h, cy + h - 1), (cx + h - 1, cy + h - 1)], fill=fill)
        return img


def random_scene(rng: random.Random, min_objects: int = 1, max_objects: int = 8) -> Scene:
    n = rng.randint(min_objects, max_objects)
    cells = sorted(rng.sample(range(9), n))
    return Scene(tuple(Shape(c, rng.choice(SIZES), rng.choice(list(COLOURS)), rng.choice(SHAPES)) for c in cells))


# ---------------------------------------------------------------------------------------------
# Filters: a set of attribute values an object must have ("red", "large blue", "blue square").

@dataclass(frozen=True)
class Filter:
    size: str | None = None
    colour: str | None = None
    shape: str | None = None

    def matches(self, o: Shape) -> bool:
        return all(v is None or v == getattr(o, k) for k, v in
                   (("size", self.size), ("colour", self.colour), ("shape", self.shape)))

    def words(self) -> list[str]:
        return [w for w in (self.size, self.colour) if w]

    def plural(self) -> str:
        noun = f"{self.shape}s" if self.shape else "objects"
        return " ".join(self.words() + [noun])

    def singular(self) -> str:
        return " ".join(self.words() + [self.shape or "object"])

    def criterion(self) -> str:
        """Just the attribute words, in the order an object's name has them ("large circle")."""
        return " ".join(w for w in (self.size, self.colour, self.shape) if w)

    def checks(self) -> list[tuple[str, Callable[[Shape], bool]]]:
        """One check per attribute word, for a scan that decides word by word ("red: yes, circle: no")."""
        return [(v, lambda o, k=k, v=v: getattr(o, k) == v)
                for k, v in (("size", self.size), ("colour", self.colour), ("shape", self.shape)) if v]


def random_filter(rng: random.Random, scene: Scene) -> Filter:
    # Half the time describe an object that is in the scene, so counts are not mostly zero.
    base = rng.choice(scene.objects) if rng.random() < 0.7 else Shape(0, rng.choice(SIZES), rng.choice(list(COLOURS)), rng.choice(SHAPES))
    kind = rng.choice(["colour", "shape", "colour", "colour+shape", "size+colour", "size+shape"])
    return Filter(size=base.size if "size" in kind else None,
                  colour=base.colour if "colour" in kind else None,
                  shape=base.shape if "shape" in kind else None)


def unique_description(scene: Scene, o: Shape, without: str | None = None) -> Filter | None:
    """The shortest filter that picks out `o` alone, preferring colour+shape; `without` names an
    attribute the description must not use."""
    for f in (Filter(colour=o.colour, shape=o.shape), Filter(shape=o.shape), Filter(colour=o.colour),
              Filter(size=o.size, shape=o.shape), Filter(size=o.size, colour=o.colour),
              Filter(size=o.size, colour=o.colour, shape=o.shape)):
        if without is not None and getattr(f, without) is not None:
            continue
        if sum(f.matches(x) for x in scene.objects) == 1:
            return f
    return None


def uniquely_described(scene: Scene) -> list[tuple[Shape, Filter]]:
    """Each object that some filter picks out alone, with its shortest such filter."""
    described = [(o, unique_description(scene, o)) for o in scene.objects]
    return [(o, f) for o, f in described if f is not None]


# ---------------------------------------------------------------------------------------------
# Questions and their four-stage answers.

@dataclass
class Item:
    scene: Scene
    family: str
    question: str
    answer: str
    summary: str
    caption: str
    reasoning: str
    conclusion: str
    # What the reasoning is built from, so the judge-pair generator can write a slipped version.
    plan: dict

    def stages(self) -> dict[str, str]:
        return {"summary": self.summary, "caption": self.caption, "reasoning": self.reasoning,
                "conclusion": self.conclusion}

    def assistant_text(self) -> str:
        return join_stages(self.stages())


def join_stages(stages: dict[str, str]) -> str:
    """The answer as stagebeam's search assembles it: tags around each stage, a blank line between."""
    return "\n\n".join(f"<{k.upper()}>{v}</{k.upper()}>" for k, v in stages.items())


def caption_text(rng: random.Random, objects, style: int | None = None) -> str:
    style = rng.randrange(3) if style is None else style
    n = len(objects)
    if style == 0:
        body = " ".join(f"{o.position.capitalize()}: a {o.name}." for o in objects)
        return f"{body} That is {n} object{'s' if n != 1 else ''} in total."
    if style == 1:
        parts = [f"a {o.name} at the {o.position}" for o in objects]
        listed = parts[0] if n == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"The image shows {listed}. There {'is' if n == 1 else 'are'} {n} object{'s' if n != 1 else ''}."
    body = " ".join(f"In the {o.position} there is a {o.name}." for o in objects)
    return f"{body} I count {n} object{'s' if n != 1 else ''}."


def scan(label: str, criterion: str, matches, objects, missed: Shape | None = None, extra: Shape | None = None,
         until_found: bool = False, checks: list[tuple[str, Callable[[Shape], bool]]] | None = None) -> tuple[str, list[Shape]]:
    """The caption's objects checked one by one against a description, in the caption's order:
    'Red objects, object by object. Top left: large red circle, red: yes (1). Center: small blue
    square, red: no. That is 1.' Each step copies the next object the caption names, restates the
    attribute words it must have (`criterion`), and decides one match. So the list of matches is
    never written from memory (listing the matches directly, the model named objects its own caption
    did not have: step 4,600, 105 of 143 wrong greedy answers), and the decision compares words a few
    tokens apart (training/HISTORY.md, "Making the model reason from its caption"). A slip, as a
    sampled candidate might make it, says no to a match (`missed`) or yes to a non-match (`extra`).
    `until_found` stops at the first yes (a unique object is being looked for).
    With `checks` each line decides word by word before it decides the match ("large red circle, red:
    yes, circle: no, so no."): the judge's careful working (`working`)."""
    def word(yes: bool) -> str:
        return "yes" if yes else "no"

    lines, chosen = [], []
    for o in objects:
        says_yes = (matches(o) and o is not missed) or o is extra
        if says_yes:
            chosen.append(o)
        counted = f" ({len(chosen)})" if says_yes and not until_found else ""
        if checks:
            decided = ", ".join(f"{w}: {word(check(o))}" for w, check in checks)
            lines.append(f"{o.position.capitalize()}: {o.name}, {decided}, so {word(says_yes)}{counted}.")
        else:
            lines.append(f"{o.position.capitalize()}: {o.name}, {criterion}: {word(says_yes)}{counted}.")
        if until_found and says_yes:
            break
    text = f"{label}, object by object. " + " ".join(lines)
    return (text if until_found else f"{text} That is {len(chosen)}."), chosen


def locate(f: Filter, objects, careful: bool = False) -> tuple[str, Shape]:
    """scan() for the one object `f` describes, stopping where it is found."""
    text, (found, *_) = scan(f"Looking for the {f.singular()}", f.criterion(), f.matches, objects, until_found=True,
                             checks=f.checks() if careful else None)
    return text, found


def count_scan(f: Filter, objects, skip: int | None = None, extra: Shape | None = None,
               careful: bool = False) -> tuple[str, int]:
    """scan() of the objects matching `f`, counted; `skip` (the index of a match) and `extra` (a
    non-match) are the slips; `careful` decides word by word."""
    matching = [o for o in objects if f.matches(o)]
    missed = matching[skip] if skip is not None and skip < len(matching) else None
    text, chosen = scan(f.plural().capitalize(), f.criterion(), f.matches, objects, missed=missed, extra=extra,
                        checks=f.checks() if careful else None)
    return text, len(chosen)


def summary_text(rng: random.Random, family: str, q: dict) -> str:
    if family == "count":
        options = [f"I need to count the {q['f'].plural()} in the image.",
                   f"The question asks how many {q['f'].plural()} there are. I will find each one and count them.",
                   f"To answer, I will list the {q['f'].plural()} and count them."]
    elif family in ("remove", "remove2"):
        what = q['f'].plural() + (f" and all {q['g'].plural()}" if family == "remove2" else "")
        options = [f"I need to count all objects, take away the {what}, and see how many are left.",
                   f"The question asks how many objects remain after removing the {what}. I will count the total and subtract.",
                   f"To answer, I will count the objects and the {what}, then subtract."]
    elif family == "compare":
        options = [f"I need to count the {q['f'].plural()} and the {q['g'].plural()} and compare the two numbers.",
                   f"The question compares the number of {q['f'].plural()} with the number of {q['g'].plural()}. I will count both.",
                   f"To answer, I will count the {q['f'].plural()}, then the {q['g'].plural()}, and compare."]
    elif family == "attribute":
        options = [f"I need to find the {q['f'].singular()} and tell its {q['attr']}.",
                   f"The question asks for the {q['attr']} of the {q['f'].singular()}. I will locate it in the image.",
                   f"To answer, I will look for the {q['f'].singular()} and read its {q['attr']}."]
    elif family == "side":
        f, phrase = q['f'].singular(), RELATIONS[q['rel']][0]
        options = [f"I need to find the {f} and count the objects {phrase} it.",
                   f"The question asks how many objects are {phrase} the {f}. I will locate it and check where each object is.",
                   f"To answer, I will find the {f}, then count the objects {phrase} it."]
    else:  # spatial
        options = [f"I need to find where the {q['f'].singular()} and the {q['g'].singular()} are and compare their positions.",
                   f"The question is about the positions of the {q['f'].singular()} and the {q['g'].singular()}. I will locate both.",
                   f"To answer, I will locate the {q['f'].singular()} and the {q['g'].singular()} and compare them."]
    return rng.choice(options)


def conclusion_text(rng: random.Random, answer: str) -> str:
    return rng.choice([f"The answer is {answer}.", f"So the answer is {answer}.", f"Answer: {answer}."])


RELATIONS = {
    "left of": ("to the left of", "column", lambda a, b: a < b),
    "right of": ("to the right of", "column", lambda a, b: a > b),
    "above": ("above", "row", lambda a, b: a < b),
    "below": ("below", "row", lambda a, b: a > b),
}


OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def stated_relation(q: dict, slip: dict) -> tuple[str, str, Callable[[int, int], bool]]:
    """The RELATIONS entry a spatial or side reasoning states: the asked one, or with the "opposite"
    slip (the answers' own) the relation opposite to it."""
    return RELATIONS[OPPOSITE[q["rel"]] if slip.get("opposite") else q["rel"]]


def on_side(objects, found: Shape, rel: str) -> list[Shape]:
    """The objects that stand `rel` of `found` ("left of": in a column to its left), in order."""
    _, axis, holds = RELATIONS[rel]
    return [o for o in objects if holds(getattr(o, axis), getattr(found, axis))]


def reasoning_text(family: str, q: dict, objects, slip: dict | None = None, careful: bool = False) -> tuple[str, str]:
    """The step-by-step work and the answer it reaches. `slip` injects one realistic mistake;
    `careful` scans word by word (the judge's working)."""
    slip = slip or {}
    if family == "count":
        text, k = count_scan(q["f"], objects, slip.get("skip"), slip.get("extra"), careful)
        return f"{text} So there are {k} {q['f'].plural() if k != 1 else q['f'].singular()}.", str(k)
    if family in ("remove", "remove2"):
        n = len(objects)
        if family == "remove":
            text, k = count_scan(q["f"], objects, slip.get("skip"), slip.get("extra"), careful)
        else:
            f, g = q["f"], q["g"]
            either = [o for o in objects if f.matches(o) or g.matches(o)]
            skip = slip.get("skip")
            missed = either[skip] if skip is not None and skip < len(either) else None
            text, chosen = scan(f"{f.plural().capitalize()} or {g.plural()}", f"{f.criterion()} or {g.criterion()}",
                                lambda o: f.matches(o) or g.matches(o), objects, missed=missed,
                                checks=[(f.criterion(), f.matches), (g.criterion(), g.matches)] if careful else None)
            k = len(chosen)
        left = n - k + slip.get("arith", 0)
        total = f"There {'is' if n == 1 else 'are'} {n} object{'' if n == 1 else 's'}."
        return f"{total} {text} {n} - {k} = {left}.", str(left)
    if family == "compare":
        a_text, a = count_scan(q["f"], objects, slip.get("skip"), slip.get("extra"), careful)
        b_text, b = count_scan(q["g"], objects, careful=careful)
        relation = "more than" if a > b else "fewer than" if a < b else "the same as"
        if slip.get("flip"):
            relation = {"more than": "fewer than", "fewer than": "more than", "the same as": "more than"}[relation]
        answer = {"more": relation == "more than", "fewer": relation == "fewer than", "same": relation == "the same as"}[q["ask"]]
        if careful:
            return f"{a_text} {b_text} {asked_decision(a, b, asked(family, q))}", "yes" if answer else "no"
        return f"{a_text} {b_text} {a} is {relation} {b}, so {'yes' if answer else 'no'}.", "yes" if answer else "no"
    if family == "attribute":
        f = q["f"]
        # The slip takes another object for the described one: the scan says yes to it alone.
        wrong = slip.get("wrong_object")
        text, found = scan(f"Looking for the {f.singular()}", f.criterion(), lambda o: f.matches(o) and wrong is None,
                           objects, extra=wrong, until_found=True, checks=f.checks() if careful else None)
        o = found[0]
        value = getattr(o, q["attr_key"])
        return f"{text} The {f.singular()} is the {o.name} at the {o.position}. Its {q['attr']} is {value}.", value
    if family == "side":
        return side_reasoning(q, objects, slip, careful)
    # spatial
    f, g = q["f"], q["g"]
    a_text, a = locate(f, objects, careful)
    b_text, b = locate(g, objects, careful)
    phrase, axis, holds = stated_relation(q, slip)
    ia, ib = getattr(a, axis) + 1, getattr(b, axis) + 1
    if slip.get("shift"):
        ia = ia % 3 + 1
    yes = holds(ia, ib)
    if careful:
        return (f"{a_text} {b_text} The {f.singular()} is at the {a.position}, in {axis} {ia}. The {g.singular()} is "
                f"at the {b.position}, in {axis} {ib}. {asked_decision(ia, ib, asked(family, q), axis)}",
                "yes" if yes else "no")
    return (f"{a_text} {b_text} The {f.singular()} is at the {a.position}, in {axis} {ia}. The {g.singular()} is at "
            f"the {b.position}, in {axis} {ib}. {axis.capitalize()} {ia} is {'' if yes else 'not '}{phrase} {axis} {ib}, "
            f"so {'yes' if yes else 'no'}.", "yes" if yes else "no")


def side_reasoning(q: dict, objects, slip: dict, careful: bool) -> tuple[str, str]:
    """How many objects lie on one side of a described one ("How many objects are to the left of
    the blue square?", a classic CLEVR question): find it, then decide for each object whether its
    column (or row) is on the asked side of the found one's. Each decision relates two numbers to
    what is asked, the step the answers of compare and spatial questions get wrong (asked), up to
    five times in one answer. An answer decides each in one word ("Top left, column 1: yes
    (1)."); the judge's careful working writes the comparison and the asked word out
    (asked_decision). The slips: the opposite side counted (`opposite`), the found object's column
    misread (`shift`), one object on the side said no (`missed`) or one off it said yes (`extra`)."""
    f = q["f"]
    found_text, found = locate(f, objects, careful)
    phrase, axis, holds = stated_relation(q, slip)
    at = getattr(found, axis) + 1
    if slip.get("shift"):
        at = at % 3 + 1
    lines, k = [], 0
    for o in objects:
        here = getattr(o, axis) + 1
        yes = (holds(here, at) and o is not slip.get("missed")) or o is slip.get("extra")
        k += yes
        counted = f" ({k})" if yes else ""
        if careful:
            lines.append(f"{o.position.capitalize()}: {asked_decision(here, at, asked('side', q)).removesuffix('.')}{counted}.")
        else:
            lines.append(f"{o.position.capitalize()}, {axis} {here}: {'yes' if yes else 'no'}{counted}.")
    text = (f"{found_text} The {f.singular()} is at the {found.position}, in {axis} {at}. Objects {phrase} {axis} {at}, "
            f"object by object. {' '.join(lines)} That is {k}.")
    if careful:  # the check's working ends at its count: it must fit the judge's context (make_question)
        return text, str(k)
    return f"{text} So {k} {'object is' if k == 1 else 'objects are'} {phrase} the {f.singular()}.", str(k)


def asked(family: str, q: dict) -> str | None:
    """What a compare, spatial or side question asks, restated as a comparison of two numbers: "count
    lower" (fewer), "column higher" (to the right of). The judge's check writes it first
    (check_fields); the working's decision at the end copies its last word ("Asked: lower, so
    yes"), which nothing else in the context uses. Every wrong greedy answer of step 12,317 on the
    validation split scanned right and went wrong in this last step, relating the two numbers to
    what is asked (19 of 19), and a working that took the step the answers' way reached the right
    answer in 51% of the calls where the two responses disagreed."""
    if family == "compare":
        return "count " + {"more": "higher", "fewer": "lower", "same": "equal"}[q["ask"]]
    if family in ("spatial", "side"):
        _, axis, _ = RELATIONS[q["rel"]]
        return f"{axis} {'lower' if q['rel'] in ('left of', 'above') else 'higher'}"
    return None


def asked_decision(a: int, b: int, asked_text: str, axis: str | None = None) -> str:
    """The judge working's last step: how two numbers compare, then whether that is what is asked."""
    relation = "lower than" if a < b else "higher than" if a > b else "equal to"
    wanted = asked_text.split()[-1]
    first, second = (f"{axis.capitalize()} {a}", f"{axis} {b}") if axis else (str(a), str(b))
    return f"{first} is {relation} {second}. Asked: {wanted}, so {'yes' if relation.startswith(wanted) else 'no'}."


# A "side" question is asked of scenes with at most this many objects: its judge prompt holds two
# answers that each scan every object, and with the check it had to fit the model's context, 1,024
# positions when the family was made (train.CONTEXT is now 1,280).
SIDE_MAX_OBJECTS = 5
FAMILY_WEIGHTS = {"count": 25, "remove": 18, "remove2": 10, "compare": 17, "attribute": 15, "spatial": 15,
                  "side": 15}


def make_question(rng: random.Random, scene: Scene, family: str) -> tuple[str, dict] | None:
    objs = scene.objects
    if family == "count":
        f = random_filter(rng, scene)
        return rng.choice([f"How many {f.plural()} are there?", f"How many {f.plural()} are in the image?",
                           f"Count the {f.plural()}."]), {"f": f}
    if family == "remove":
        f = random_filter(rng, scene)
        return rng.choice([f"Remove all {f.plural()}. How many objects are left?",
                           f"If all {f.plural()} are taken away, how many objects remain?"]), {"f": f}
    if family == "remove2":
        f, g = random_filter(rng, scene), random_filter(rng, scene)
        if f == g:
            return None
        return rng.choice([f"Remove all {f.plural()} and all {g.plural()}. How many objects are left?",
                           f"Take away every {f.singular()} and every {g.singular()}. How many objects remain?"]), {"f": f, "g": g}
    if family == "compare":
        f, g = random_filter(rng, scene), random_filter(rng, scene)
        if f == g:
            return None
        ask = rng.choice(["more", "fewer", "same"])
        text = {"more": f"Are there more {f.plural()} than {g.plural()}?",
                "fewer": f"Are there fewer {f.plural()} than {g.plural()}?",
                "same": f"Are there as many {f.plural()} as {g.plural()}?"}[ask]
        return text, {"f": f, "g": g, "ask": ask}
    if family == "attribute":
        # Ask for an attribute, then describe an object uniquely without giving that attribute away.
        key = rng.choice(["colour", "colour", "shape", "shape", "size"])
        described = [(o, unique_description(scene, o, without=key)) for o in objs]
        described = [(o, f) for o, f in described if f is not None]
        if not described:
            return None
        o, f = rng.choice(described)
        attr = {"colour": "color", "shape": "shape", "size": "size"}[key]
        return rng.choice([f"What {attr} is the {f.singular()}?", f"What is the {attr} of the {f.singular()}?"]), \
            {"f": f, "attr": attr, "attr_key": key}
    if family == "side":
        if len(objs) > SIDE_MAX_OBJECTS:
            return None
        described = uniquely_described(scene)
        if not described:
            return None
        o, f = rng.choice(described)
        # Mostly a side that has objects: asked of any side, more than half the answers were 0.
        occupied = [rel for rel in RELATIONS if on_side(objs, o, rel)]
        rel = rng.choice(occupied if occupied and rng.random() < 0.8 else list(RELATIONS))
        phrase = RELATIONS[rel][0]
        return rng.choice([f"How many objects are {phrase} the {f.singular()}?",
                           f"Count the objects {phrase} the {f.singular()}."]), {"f": f, "rel": rel}
    # spatial
    described = uniquely_described(scene)
    if len(described) < 2:
        return None
    (a, f), (b, g) = rng.sample(described, 2)
    rel = rng.choice(list(RELATIONS))
    return f"Is the {f.singular()} {RELATIONS[rel][0]} the {g.singular()}?", {"f": f, "g": g, "rel": rel}


def make_item(rng: random.Random, scene: Scene, family: str | None = None,
              weights: dict[str, float] | None = None) -> Item | None:
    weights = weights or FAMILY_WEIGHTS
    family = family or rng.choices(list(weights), weights=list(weights.values()))[0]
    made = make_question(rng, scene, family)
    if made is None:
        return None
    question, q = made
    reasoning, answer = reasoning_text(family, q, scene.objects)
    return Item(scene, family, question, answer, summary_text(rng, family, q), caption_text(rng, scene.objects),
                reasoning, conclusion_text(rng, answer), {"q": q})


def random_item(rng: random.Random, min_objects: int = 1, max_objects: int = 8,
                weights: dict[str, float] | None = None) -> Item:
    while True:
        item = make_item(rng, random_scene(rng, min_objects, max_objects), weights=weights)
        if item is not None:
            return item


# ---------------------------------------------------------------------------------------------
# Judge pairs: one correct candidate and one with a realistic mistake.

def corrupt_scene_objects(rng: random.Random, objects) -> tuple[Shape, ...]:
    objs = list(objects)
    kind = rng.choice(["colour", "shape", "size", "colour", "drop", "add", "move"])
    i = rng.randrange(len(objs))
    if kind == "colour":
        objs[i] = replace(objs[i], colour=rng.choice([c for c in COLOURS if c != objs[i].colour]))
    elif kind == "shape":
        objs[i] = replace(objs[i], shape=rng.choice([s for s in SHAPES if s != objs[i].shape]))
    elif kind == "size":
        objs[i] = replace(objs[i], size="small" if objs[i].size == "large" else "large")
    elif kind == "drop" and len(objs) > 1:
        objs.pop(i)
    else:
        free = [c for c in range(9) if c not in {o.cell for o in objs}]
        if not free:
            objs[i] = replace(objs[i], colour=rng.choice([c for c in COLOURS if c != objs[i].colour]))
        elif kind == "add" or len(objs) == 1:
            objs.append(Shape(rng.choice(free), rng.choice(SIZES), rng.choice(list(COLOURS)), rng.choice(SHAPES)))
        else:
            objs[i] = replace(objs[i], cell=rng.choice(free))
    return tuple(sorted(objs, key=lambda o: o.cell))


def slipped_reasoning(rng: random.Random, item: Item, opposite_share: float = 0.0) -> tuple[str, str] | None:
    """The item's reasoning with one slip that changes its answer, or None if none applies.
    `opposite_share` of the spatial slips state the opposite relation (see OPPOSITE_SHARE)."""
    q, objs, family = item.plan["q"], item.scene.objects, item.family
    for _ in range(8):
        if family in ("count", "remove", "compare"):
            matches = [o for o in objs if q["f"].matches(o)]
            others = [o for o in objs if not q["f"].matches(o)]
            options = []
            if matches:
                options.append({"skip": rng.randrange(len(matches))})
            if others:
                options.append({"extra": rng.choice(others)})
            if family == "remove":
                options.append({"arith": rng.choice([-1, 1])})
            if family == "compare":
                options.append({"flip": True})
            slip = rng.choice(options) if options else None
        elif family == "remove2":
            slip = rng.choice([{"arith": rng.choice([-1, 1])}, {"skip": 0}])
        elif family == "side":
            found = next(o for o in objs if q["f"].matches(o))
            on = on_side(objs, found, q["rel"])
            off = [o for o in objs if o not in on and o is not found]
            options = [{"opposite": True}, {"shift": True}] + ([{"missed": rng.choice(on)}] if on else []) \
                + ([{"extra": rng.choice(off)}] if off else [])
            slip = rng.choice(options)
        elif family == "attribute":
            others = [o for o in objs if getattr(o, q["attr_key"]) != item.answer]
            slip = {"wrong_object": rng.choice(others)} if others else None
        else:
            slip = {"opposite": True} if opposite_share and rng.random() < opposite_share else {"shift": True}
        if slip is None:
            return None
        text, answer = reasoning_text(family, q, objs, slip)
        if answer != item.answer:
            return text, answer
    return None


# Share of reasoning pairs in which both responses slip, to different answers. Their check reads two
# answers that both differ from its own, so it cannot learn to write its own answer for one of them;
# their verdict is not trained ("undecided": which slip is smaller is not what the check decides).
# The held-out judge pairs have none (dataset.py), and draw no random number for it, so they stay
# what they were before this share existed.
BOTH_WRONG_SHARE = 0.2
# Share of spatial slips that state the relation opposite to the one asked ("Column 2 is to the left
# of column 3, so yes" for "... to the right of ...?"), the slip behind the answers' wrong spatial
# answers. With only shifted columns as slips, both responses always named the asked relation, and
# the check never had to tell it from the relation the image shows: where the opposite holds, it
# preferred the asked word in 16 of 53 probes, and in 2 of 53 with the second response naming the
# opposite (training/probe_relation.py, step 14,140; 120 of 120 after training with these).
# Like BOTH_WRONG_SHARE, the held-out judge pairs have none and draw no random number for it.
OPPOSITE_SHARE = 0.5


def judge_pair(rng: random.Random, item: Item, topic: str, both_wrong_share: float = BOTH_WRONG_SHARE,
               opposite_share: float = OPPOSITE_SHARE, weights: dict[str, float] | None = None) -> dict | None:
    """{"topic", "hints", "better", "worse"} for one stage (or "answer" for whole answers). Reasoning
    and conclusion pairs also carry each response's final answer ("better_answer", "worse_answer")
    and, for reasoning, the right working from the caption ("working"): what the judge's written
    check is made of (judge_prompt.rationale). An "undecided" pair has no better response. A summary
    pair's worse summary answers another question, of a family drawn with `weights`."""
    stages = item.stages()
    if topic == "summary":
        other = None
        for _ in range(20):
            other = make_item(rng, item.scene, weights=weights)
            if other is not None and other.question != item.question and other.summary != item.summary:
                break
        else:
            return None
        worse = other.summary if rng.random() < 0.7 else f"{item.summary} The answer is {other.answer}."
        return {"topic": topic, "hints": {}, "better": item.summary, "worse": worse}
    if topic == "caption":
        bad = corrupt_scene_objects(rng, item.scene.objects)
        style = rng.randrange(3)
        return {"topic": topic, "hints": {}, "better": caption_text(rng, item.scene.objects, style),
                "worse": caption_text(rng, bad, style)}
    if topic == "reasoning":
        slipped = slipped_reasoning(rng, item, opposite_share)
        if slipped is None:
            return None
        pair = {"topic": topic, "hints": {"caption": item.caption}, "better": item.reasoning, "worse": slipped[0],
                "better_answer": item.answer, "worse_answer": slipped[1], **check_fields(item)}
        if both_wrong_share and rng.random() < both_wrong_share:
            other = slipped_reasoning(rng, item, opposite_share)
            if other is not None and other[1] != slipped[1]:
                pair.update(better=other[0], better_answer=other[1], reached=item.answer, undecided=True)
        return pair
    if topic == "conclusion":
        wrong = wrong_answer(rng, item)
        return {"topic": topic, "hints": {"caption": item.caption, "reasoning": item.reasoning},
                "better": item.conclusion, "worse": conclusion_text(rng, wrong),
                "better_answer": item.answer, "worse_answer": wrong}
    # answer: whole answers; the worse one goes wrong at its caption or its reasoning and carries the
    # mistake through to its conclusion.
    bad = dict(stages)
    if rng.random() < 0.5:
        slipped = slipped_reasoning(rng, item, opposite_share)
        if slipped is None:
            return None
        bad["reasoning"], wrong = slipped
    else:
        bad_objects = corrupt_scene_objects(rng, item.scene.objects)
        bad_item = make_item_from_plan(item, bad_objects)
        if bad_item is None or bad_item[1] == item.answer:
            return None
        bad["caption"] = caption_text(rng, bad_objects)
        bad["reasoning"], wrong = bad_item
    bad["conclusion"] = conclusion_text(rng, wrong)
    return {"topic": topic, "hints": {}, "better": item.assistant_text(), "worse": join_stages(bad)}


def working(item: Item) -> str:
    """The judge's own working for a reasoning pair: the item's reasoning with each scan deciding
    word by word. The judge spends more tokens than the answer did on the step the model gets wrong
    (a match said no, step 8,000), so its check is not merely the answer's greedy scan again."""
    return reasoning_text(item.family, item.plan["q"], item.scene.objects, careful=True)[0]


def check_fields(item: Item) -> dict:
    """What a reasoning pair's check is written from: the judge's own `working` and, for a
    comparison, its restatement of what is `asked`: the question copied word for word, then the
    comparison ("Question: Is the red circle to the left of the blue square? Asked: column lower.").
    The prompt repeats the question just before the check. Restating it straight from there, the
    judge told "left of" from "right of" no better than chance (step 13,494, validation: 15 of 33
    checks), and copying it word for word first did not change that (17 of 31): what did was
    judge pairs whose wrong response names the opposite relation (OPPOSITE_SHARE)."""
    what = asked(item.family, item.plan["q"])
    return {"working": working(item)} | ({"asked": f"Question: {item.question} Asked: {what}."} if what else {})


def make_item_from_plan(item: Item, objects) -> tuple[str, str] | None:
    """The item's reasoning redone on a (mis-seen) set of objects."""
    try:
        return reasoning_text(item.family, item.plan["q"], objects)
    except (IndexError, ValueError):  # the described object is not among the mis-seen ones
        return None


def wrong_answer(rng: random.Random, item: Item) -> str:
    a = item.answer
    if a in ("yes", "no"):
        return "no" if a == "yes" else "yes"
    if a.isdigit():
        return str(max(0, int(a) + rng.choice([-1, 1])) if a != "0" else 1)
    pool = list(COLOURS) if a in COLOURS else SHAPES if a in SHAPES else SIZES
    return rng.choice([x for x in pool if x != a])
