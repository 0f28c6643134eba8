"""What the built-in model sees: teacher-forced accuracy of each attribute word in image descriptions.

For fresh scenes (seeded, not the test split), the model reads the reference description token by
token; at every size, colour and shape word it must pick the right one among that attribute's
words. Chance is 50% for size, 17% for colour, 33% for shape. This is how the training found that
the decoder read size and colour long before shape.

    python training/perception.py models/stagebeam-shapes          # a saved model
    python training/perception.py training/runs/checkpoint.pt      # a training checkpoint
    python training/perception.py --variance models/stagebeam-shapes   # and where the features hold each attribute
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

import shapes
from examples import DESCRIBE, Encoder, pixels

SHIPPED = Path(__file__).resolve().parent.parent / "models/stagebeam-shapes"
ATTRIBUTES = {"size": shapes.SIZES, "colour": list(shapes.COLOURS), "shape": shapes.SHAPES}


def load(path: Path):
    """(model, tokenizers.Tokenizer) from a saved model directory or a train.py checkpoint."""
    if path.is_dir():
        from tokenizers import Tokenizer
        from transformers import LlavaForConditionalGeneration
        return LlavaForConditionalGeneration.from_pretrained(path), Tokenizer.from_file(str(path / "tokenizer.json"))
    import train
    state = torch.load(path, weights_only=False)
    # Checkpoints saved before they carried their tokenizer all used the shipped model's.
    tok = train.checkpoint_tokenizer(state) or train.checkpoint_tokenizer(None, SHIPPED / "tokenizer.json")
    model = train.build_model(tok.get_vocab_size(), {t: tok.token_to_id(t) for t in train.SPECIAL})
    model.load_state_dict(state["model"])
    return model, tok


@torch.no_grad()
def attribute_accuracy(model, tok, scenes: int, seed: int, device: str = "cpu") -> dict[str, tuple[int, int]]:
    """{attribute: (right, total)} over `scenes` random scenes (train.py logs it as "seen")."""
    enc = Encoder(tok, tok.token_to_id("<image>"))
    word_ids = {a: [tok.encode(" " + w, add_special_tokens=False).ids for w in words] for a, words in ATTRIBUTES.items()}
    assert all(len(i) == 1 for ids in word_ids.values() for i in ids), "each attribute word must be one token"
    candidates = {a: [i[0] for i in ids] for a, ids in word_ids.items()}
    rng = random.Random(seed)
    tally = {a: [0, 0] for a in ATTRIBUTES}
    for _ in range(scenes):
        scene = shapes.random_scene(rng)
        ids, weights = enc.encode(DESCRIBE, shapes.caption_text(rng, scene.objects))
        logits = model(input_ids=torch.tensor([ids], device=device),
                       pixel_values=torch.from_numpy(pixels(scene.image())[None]).to(device)).logits[0]
        for pos in range(1, len(ids)):
            for attribute, options in candidates.items():
                if weights[pos] > 0 and ids[pos] in options:
                    pick = options[int(torch.argmax(logits[pos - 1, options]))]
                    tally[attribute][0] += int(pick == ids[pos])
                    tally[attribute][1] += 1
    return {a: (right, total) for a, (right, total) in tally.items()}


@torch.no_grad()
def variance_shares(model, scenes: int, seed: int) -> dict[str, dict[str, float]]:
    """{"tower" | "projector": {attribute: share}}: how much of the variance of one cell's features
    (the tower's last layer, and the projector's output the decoder reads) the object's attribute
    explains (between-class variance over total). A faint attribute gets a faint gradient."""
    rng = random.Random(seed)
    features, labels = {"tower": [], "projector": []}, {a: [] for a in ATTRIBUTES}
    for _ in range(scenes):
        scene = shapes.random_scene(rng)
        tower = model.model.vision_tower(torch.from_numpy(pixels(scene.image())[None]),
                                         output_hidden_states=True).hidden_states[-1][:, 1:]
        projected = model.model.multi_modal_projector(tower)
        for o in scene.objects:
            features["tower"].append(tower[0, o.cell])
            features["projector"].append(projected[0, o.cell])
            for attribute, words in ATTRIBUTES.items():
                labels[attribute].append(words.index(getattr(o, attribute)))
    shares = {}
    for where, rows in features.items():
        x = torch.stack(rows)
        mean, total = x.mean(0), x.var(0, unbiased=False).sum()
        shares[where] = {}
        for attribute, values in labels.items():
            values = torch.tensor(values)
            between = sum((values == c).float().mean() * ((x[values == c].mean(0) - mean) ** 2).sum()
                          for c in values.unique())
            shares[where][attribute] = float(between / total)
    return shares


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a saved model directory or a train.py checkpoint (.pt)")
    parser.add_argument("--scenes", type=int, default=150)
    parser.add_argument("--seed", type=int, default=77)
    parser.add_argument("--variance", action="store_true",
                        help="also the share of each cell's feature variance that each attribute explains")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tok = load(args.model)
    model.eval()
    for attribute, (right, total) in attribute_accuracy(model, tok, args.scenes, args.seed).items():
        print(f"{attribute:7} {right}/{total} {100 * right / max(total, 1):.1f}% (chance {100 / len(ATTRIBUTES[attribute]):.0f}%)")
    if args.variance:
        for where, shares in variance_shares(model, 400, args.seed).items():
            print(f"share of {where} feature variance: " + ", ".join(f"{a} {v:.1%}" for a, v in shares.items()))


if __name__ == "__main__":
    main()
