"""Training examples as token ids: the prompt (chat template, image, question) and the supervised
assistant text, with per-token loss weights."""
from __future__ import annotations

import random
import re

import numpy as np

import shapes
from judge_prompt import judge_answer, judge_prompt

IMAGE_TOKENS = 9  # (48 / 16)^2 patches; the CLS token is dropped ("default" feature strategy)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
DESCRIBE = "Describe the objects in the image and where they are."
JUDGE_TOPICS = {"summary": 5, "caption": 20, "reasoning": 50, "conclusion": 12, "answer": 13}

CHAT_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}{{- '<|' + message['role'] + '|>\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}"
    "{%- for content in message['content'] %}{%- if content['type'] == 'image' %}{{- '<image>\n' }}"
    "{%- elif content['type'] == 'text' %}{{- content['text'] }}{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|end|>\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|assistant|>\n' }}{%- endif %}")


def prompt_text(user: str) -> str:
    """CHAT_TEMPLATE rendered for one user turn with one image and the generation prompt."""
    return f"<|begin|><|user|>\n<image>\n{user}<|end|>\n<|assistant|>\n"


def pixels(image) -> np.ndarray:
    """CLIPImageProcessor on a 48x48 image: resize and crop to 48 are the identity, then rescale and
    normalise (checked against the processor when the model is saved)."""
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return ((arr - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1).copy()


class Encoder:
    def __init__(self, tokenizer, image_token_id: int):
        self.tok = tokenizer
        self.image_token_id = image_token_id

    def encode(self, user: str, assistant: str, weights: list[tuple[str, float]] | None = None):
        """ids, per-token weights (0 on the prompt). `weights` optionally reweights the assistant
        text piecewise: [(piece, weight), ...] whose concatenation is `assistant`."""
        prompt = self.tok.encode(prompt_text(user), add_special_tokens=False).ids
        prompt = expand_image(prompt, self.image_token_id)
        pieces = weights or [(assistant, 1.0)]
        ids, w = list(prompt), [0.0] * len(prompt)
        full = self.tok.encode(prompt_text(user) + assistant + "<|end|>", add_special_tokens=False).ids
        full = expand_image(full, self.image_token_id)
        assert full[:len(prompt)] == prompt, "prompt tokens change when the answer follows"
        answer_ids = full[len(prompt):]
        # Piecewise weights: tokenize each piece boundary by re-encoding growing prefixes.
        done = 0
        text_so_far = prompt_text(user)
        for piece, weight in pieces:
            text_so_far += piece
            upto = len(expand_image(self.tok.encode(text_so_far, add_special_tokens=False).ids, self.image_token_id)) - len(prompt)
            w += [weight] * (upto - done)
            done = upto
        w += [pieces[-1][1]] * (len(answer_ids) - done)  # the closing <|end|>
        ids += answer_ids
        return ids, w


def expand_image(ids: list[int], image_token_id: int) -> list[int]:
    out = []
    for t in ids:
        out += [t] * IMAGE_TOKENS if t == image_token_id else [t]
    return out


def generation_example(enc: Encoder, item: shapes.Item, reasoning_weight: float = 1.0, decision_weight: float = 1.0):
    """A staged answer. `reasoning_weight` scales the loss on the REASONING stage's text, where the
    model, once it saw every object, still listed objects its own caption does not have.
    `decision_weight` scales it on the scan's decisions (the "yes"/"no" after each object, see
    shapes.scan): they are one token in ten of the scan, the rest is copied from the caption, and
    without the weight the model first learned to say "no" to everything (most objects do not
    match)."""
    text = item.assistant_text()
    pieces = None
    if (reasoning_weight, decision_weight) != (1.0, 1.0):  # piecewise weights re-encode growing prefixes
        start = text.index("<REASONING>") + len("<REASONING>")
        end = text.index("</REASONING>")
        pieces = [(text[:start], 1.0)]
        # Odd parts are the decisions.
        for i, part in enumerate(re.split(r"(?<=:)( yes| no)\b", text[start:end])):
            if part:
                pieces.append((part, reasoning_weight * (decision_weight if i % 2 else 1.0)))
        pieces.append((text[end:], 1.0))
    ids, w = enc.encode(item.question, text, weights=pieces)
    return {"kind": "answer", "ids": ids, "w": w, "image": item.scene.image()}


def caption_example(enc: Encoder, rng: random.Random, scene: shapes.Scene, shape_weight: float = 1.0):
    """An image description. `shape_weight` scales the loss on the shape words: the decoder learned
    size and colour from the frozen tower's features but not shape, which is only 5% of their
    variance and so gets a small gradient; weighting its words up is a curriculum for that skill."""
    text = shapes.caption_text(rng, scene.objects)
    pieces = None
    if shape_weight != 1.0:
        parts = re.split(rf"( (?:{'|'.join(shapes.SHAPES)}))\b", text)  # odd parts are the shape words
        pieces = [(part, shape_weight if i % 2 else 1.0) for i, part in enumerate(parts) if part]
    ids, w = enc.encode(DESCRIBE, text, weights=pieces)
    return {"kind": "describe", "ids": ids, "w": w, "image": scene.image()}


def judge_example(enc: Encoder, rng: random.Random, item: shapes.Item, topic: str | None = None):
    for _ in range(10):
        topic_now = topic or rng.choices(list(JUDGE_TOPICS), weights=list(JUDGE_TOPICS.values()))[0]
        pair = shapes.judge_pair(rng, item, topic_now)
        if pair is not None:
            break
    else:
        return None
    better_first = rng.random() < 0.5
    first, second = (pair["better"], pair["worse"]) if better_first else (pair["worse"], pair["better"])
    user = judge_prompt(pair["topic"], item.question, pair["hints"], first, second)
    answer, weights = judge_answer(pair, better_first)
    ids, w = enc.encode(user, answer, weights=weights)
    return {"kind": "judge", "ids": ids, "w": w, "image": item.scene.image(), "topic": pair["topic"],
            "better_first": better_first}
