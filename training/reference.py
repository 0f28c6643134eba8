"""What transformers computes on the built-in model, for stagebeam's tests to match:
    .venv/bin/python training/reference.py --model models/stagebeam-shapes --out Tests/Fixtures/builtin/reference.json
The prompt is a held-out question with its image, rendered by the model's own chat template; the
fixture holds the ids, pixels, image features, logits of every prompt position and a greedy
continuation (the same fields as the LLaVA fixtures of scripts/fixtures/make_vision_fixtures.py).

A second fixture (--long-out) holds a judge prompt on a reasoning pair long enough that the judge's
greedy check runs past position 1,024 (the model's context until commit 38d0fac): its ids, the logits of its
last position and the greedy check, to hold the positions the judge reaches to transformers too."""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor, GenerationConfig, LlavaForConditionalGeneration

NEW_TOKENS = 48
LONG_DRAWS = 300  # the longest judge prompt on a reasoning pair among this many drawn items
LONG_SEED = 16
CHECK_TOKENS = 480  # the search's verdict budget (--judge-max-tokens)


def long_judge_reference(model, processor, image_dir: Path) -> dict:
    """A judge prompt (two reasoning responses and the question, as stagebeam renders it) on a drawn
    scene, and transformers' greedy check for it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import shapes
    from judge_prompt import judge_prompt
    rng = random.Random(LONG_SEED)
    longest = None
    for _ in range(LONG_DRAWS):
        item = shapes.random_item(rng)
        pair = shapes.judge_pair(rng, item, "reasoning")
        if pair is None:
            continue
        user = judge_prompt("reasoning", item.question, pair["hints"], pair["better"], pair["worse"])
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        length = len(processor.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if longest is None or length > longest[0]:
            longest = (length, prompt, item.scene.image())
    _, prompt, image = longest
    inputs = processor(text=prompt, images=image, return_tensors="pt", add_special_tokens=False)
    image_dir.mkdir(parents=True, exist_ok=True)
    image_path = image_dir / "long-judge.png"
    image.save(image_path)
    with torch.no_grad():
        last_logits = model(**inputs).logits[0, -1]
        generated = model.generate(**inputs, max_new_tokens=CHECK_TOKENS)
    ids = inputs["input_ids"][0].tolist()
    new_ids = generated[0, len(ids):].tolist()
    return {"image": str(image_path), "prompt": prompt, "input_ids": ids, "last_logits": last_logits.tolist(),
            "greedy_ids": new_ids, "greedy_text": processor.tokenizer.decode(new_ids)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models/stagebeam-shapes"))
    parser.add_argument("--dataset", type=Path, default=Path("datasets/shapes/test.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("Tests/Fixtures/builtin/reference.json"))
    parser.add_argument("--long-out", type=Path, default=Path("Tests/Fixtures/builtin/reference-long-judge.json"))
    args = parser.parse_args()

    item = json.loads(args.dataset.read_text().splitlines()[0])
    processor = AutoProcessor.from_pretrained(args.model)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item["question"]}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image_path = args.dataset.parent / item["image"]
    inputs = processor(text=prompt, images=Image.open(image_path), return_tensors="pt", add_special_tokens=False)
    unexpanded = processor.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    model = LlavaForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    eos = model.config.text_config.eos_token_id
    model.generation_config = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=[eos], pad_token_id=eos)
    with torch.no_grad():
        features = model.model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output[0]
        logits = model(**inputs).logits[0]
        generated = model.generate(**inputs)
    ids = inputs["input_ids"][0].tolist()
    new_ids = generated[0, len(ids):].tolist()
    reference = {
        "image": str(image_path), "prompt": prompt,
        "image_token_id": model.config.image_token_id, "unexpanded_ids": unexpanded, "input_ids": ids,
        "pixel_values": inputs["pixel_values"][0].flatten().tolist(), "pixel_shape": list(inputs["pixel_values"].shape[1:]),
        "image_features": features.tolist(), "logits": logits.tolist(), "greedy_ids": new_ids,
        "greedy_text": processor.tokenizer.decode(new_ids),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reference) + "\n")
    print(f"wrote {args.out}: {len(ids)} prompt tokens, greedy: {reference['greedy_text']!r}")

    long = long_judge_reference(model, processor, args.long_out.parent)
    args.long_out.write_text(json.dumps(long) + "\n")
    print(f"wrote {args.long_out}: {len(long['input_ids'])} prompt tokens, greedy check to position "
          f"{len(long['input_ids']) + len(long['greedy_ids'])}: ...{long['greedy_text'][-120:]!r}")


if __name__ == "__main__":
    main()
