"""Trains stagebeam's built-in model (models/stagebeam-shapes) from scratch on synthetic scenes.

One command, CPU or CUDA, reproducible from its seed:
    .venv/bin/python training/train.py --out models/stagebeam-shapes
It builds the byte-level BPE tokenizer on the synthetic corpus, a tiny LlavaForConditionalGeneration
(CLIP vision tower, Llama decoder), trains it (a short alignment phase on image descriptions, then
answers, descriptions and judge verdicts mixed), and saves it in Hugging Face layout with its
tokenizer, chat template and image processor. The log and loss curve go to training/log/.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes  # noqa: E402
from examples import (CHAT_TEMPLATE, IMAGE_TOKENS, Encoder, caption_example, generation_example,  # noqa: E402
                      judge_example, pixels, prompt_text)
from dataset import held_out_keys, item_key  # noqa: E402
from perception import attribute_accuracy  # noqa: E402

SPECIAL = ["<|begin|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<image>", "<pad>"]
STAGE_TAGS = [f"<{t}>" for s in ("SUMMARY", "CAPTION", "REASONING", "CONCLUSION") for t in (s, "/" + s)]
# The context the model is served with (max_position_embeddings; rotary positions have no learned
# table, so it only bounds prompt plus reply). Training does not cut examples: the longest reasoning
# judge examples reach about 1,190 positions (training/judge_lengths.py). Until commit 38d0fac it was 1,024,
# and every undecided judge match on the validation split was a check the context cut off.
CONTEXT = 1280


def build_tokenizer(seed: int, vocab_size: int):
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers
    rng = random.Random(seed)
    corpus = []
    for _ in range(4000):
        item = shapes.random_item(rng)
        corpus += [item.question, item.assistant_text()]
    from judge_prompt import TEMPLATES
    corpus += [TEMPLATES["prompt"], TEMPLATES["hint"], TEMPLATES["verdictPrefix"]] * 50
    corpus += [c["criterion"] for c in TEMPLATES["criteria"].values()] * 50
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(STAGE_TAGS), special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in STAGE_TAGS])
    return tok


def checkpoint_tokenizer(state: dict | None, path: Path | None = None) -> Tokenizer | None:
    """The tokenizer a checkpoint's model was trained with (`path` overrides it), or None for a
    fresh run. A resumed model must keep its token ids although the corpus it would build a
    tokenizer from has changed wording since (the scan, from step 4,600)."""
    if path is not None:
        return Tokenizer.from_file(str(path))
    if state is not None and "tokenizer" in state:
        return Tokenizer.from_str(state["tokenizer"])
    return None


def build_model(vocab_size: int, ids: dict):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    vision = CLIPVisionConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                              image_size=48, patch_size=16, projection_dim=128, hidden_act="quick_gelu")
    text = LlamaConfig(vocab_size=vocab_size, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                       num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=CONTEXT,
                       rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                       tie_word_embeddings=False, bos_token_id=ids["<|begin|>"], eos_token_id=ids["<|end|>"],
                       pad_token_id=ids["<pad>"])
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=ids["<image>"],
                         vision_feature_layer=-1, vision_feature_select_strategy="default",
                         image_seq_length=IMAGE_TOKENS, projector_hidden_act="gelu", tie_word_embeddings=False)
    return LlavaForConditionalGeneration(config)


def freeze_vision_tower(model):
    """The CLIP tower stays at its seeded random initialisation (all but its first layer, which
    --patch-lr-scale trains gently: see patch_embedding); the projector and the decoder learn to
    read it. Each 16-pixel patch holds one object, so the tower's random per-patch
    projections already separate colour, size and shape. Trained jointly from scratch, the tower's
    output collapsed to a near-constant vector within 800 steps (across-image spread 0.1 against a
    norm of 1300 at its last layer, and answers identical with the true image, another image or
    zeros): the decoder learned the text before the image, and nothing pulled the tower back."""
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)


def patch_embedding(model):
    """The tower's first layer: one 16×16×3 → 128 projection per cell, trained gently so the
    features can follow what the decoder needs (the rest of the tower stays frozen, see
    freeze_vision_tower). It did not make shape readable on its own, it amplified colour: shape is
    5% of the frozen features' variance (a linear probe still tells shapes apart perfectly), and
    the decoder read size and colour long before it; --shape-weight is what taught shape
    (training/perception.py: 35% at step 1,600, chance 33%; 99% at step 2,900)."""
    return model.model.vision_tower.embeddings.patch_embedding.weight


def strengthen_patch_positions(model, seed: int):
    """CLIP initialises position embeddings with std 0.02, so a frozen random tower says almost
    nothing about *where* a patch is, and the decoder (RoPE only) cannot tell cell 4 from cell 5.
    Drawn at std 0.5 they are a clear, near-orthogonal signature of each cell beside its content."""
    generator = torch.Generator().manual_seed(seed)
    embedding = model.model.vision_tower.embeddings.position_embedding.weight
    with torch.no_grad():
        embedding.copy_(torch.randn(embedding.shape, generator=generator) * 0.5)


class Stream:
    """An endless, seeded stream of length-bucketed batches. Items whose scene and question are in
    the held-out test split are never trained on."""

    def __init__(self, enc: Encoder, seed: int, held_out: set, batch_tokens: int, pad_id: int,
                 judge_share: float = 0.3, describe_share: float = 0.10, shape_weight: float = 1.0,
                 reasoning_weight: float = 1.0, decision_weight: float = 1.0,
                 family_weights: dict[str, float] | None = None, judge_family_weights: dict[str, float] | None = None):
        self.enc, self.rng, self.held_out = enc, random.Random(seed), held_out
        self.family_weights, self.judge_family_weights = family_weights, judge_family_weights
        self.batch_tokens, self.pad_id = batch_tokens, pad_id
        self.judge_share, self.describe_share, self.shape_weight = judge_share, describe_share, shape_weight
        self.reasoning_weight, self.decision_weight = reasoning_weight, decision_weight

    def example(self, phase: str):
        rng = self.rng
        while True:
            item = shapes.random_item(rng, weights=self.family_weights)
            if item_key(item) in self.held_out:
                continue
            roll = rng.random()
            if phase == "align" or roll < self.describe_share:
                return caption_example(self.enc, rng, item.scene, self.shape_weight)
            if roll < 1.0 - self.judge_share:
                return generation_example(self.enc, item, self.reasoning_weight, self.decision_weight)
            if self.judge_family_weights:  # judge examples drawn from their own mix of families
                item = shapes.random_item(rng, weights=self.judge_family_weights)
                if item_key(item) in self.held_out:
                    continue
            ex = judge_example(self.enc, rng, item)
            if ex is not None:
                return ex

    def batches(self, phase: str, pool: int | None = None):
        """About a dozen batches per call: the pool grows with --batch-tokens."""
        pool = pool or 384 * max(1, self.batch_tokens // 8192)
        return bucketed([self.example(phase) for _ in range(pool)], self.batch_tokens, self.rng, self.pad_id)


class WorkerBatches(torch.utils.data.IterableDataset):
    """Mixed-phase batches made by DataLoader worker processes (--workers): making examples costs
    about 40k tokens/s per core, which starves a GPU. Worker k draws its own stream, seeded from
    the run's seed, the step it starts at and k, so a run resumed at the same step with the same
    number of workers sees the same batches in the same order."""

    def __init__(self, make_stream, seed: int):
        self.make_stream, self.seed = make_stream, seed

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        stream = self.make_stream(self.seed * 1000 + (worker.id if worker else 0))
        while True:
            yield from stream.batches("mix")


def bucketed(examples, batch_tokens: int, rng: random.Random, pad_id: int):
    """Examples sorted by length and cut into batches of at most `batch_tokens` padded tokens, in a
    shuffled order: little padding, no length bias over time."""
    batches, current = [], []
    for ex in sorted(examples, key=lambda e: len(e["ids"])):
        if current and len(ex["ids"]) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(ex)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return [collate(b, pad_id) for b in batches]


def choice_token_ids(tok) -> list[int]:
    """The token of each verdict choice (" 1", " 2") as it follows "Response"."""
    return [tok.encode(prompt_text("") + "Response" + c, add_special_tokens=False).ids[-1] for c in (" 1", " 2")]


def collate(batch, pad_id: int):
    width = max(len(e["ids"]) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    weights = torch.zeros((len(batch), width))
    judge = torch.zeros(len(batch), dtype=torch.bool)
    for i, e in enumerate(batch):
        n = len(e["ids"])
        ids[i, :n] = torch.tensor(e["ids"])
        mask[i, :n] = 1
        weights[i, :n] = torch.tensor(e["w"])
        judge[i] = e["kind"] == "judge"
    px = torch.from_numpy(np.stack([pixels(e["image"]) for e in batch]))
    return {"ids": ids, "mask": mask, "weights": weights, "judge": judge, "pixels": px,
            "tokens": int(mask.sum())}


def part_weights(b) -> dict:
    """The loss weight of each predicted token (the targets, ids[:, 1:]) in the answer part and in
    the judge part of a batch."""
    w = b["weights"][:, 1:]
    judge = b["judge"][:, None].float()
    return {"answer": w * (1 - judge), "judge": w * judge}


def batch_loss(model, b, device):
    """Mean over answer tokens plus mean over judge verdicts, so the one-token verdicts are not
    drowned by the hundreds of answer tokens around them."""
    logits = model(input_ids=b["ids"].to(device), pixel_values=b["pixels"].to(device),
                   attention_mask=b["mask"].to(device)).logits[:, :-1]
    targets = b["ids"][:, 1:].to(device)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                         reduction="none").view_as(targets)
    parts = {}
    loss = 0.0
    for name, pw in part_weights(b).items():
        pw = pw.to(device)
        total = pw.sum()
        if total > 0:
            part = (ce * pw).sum() / total
            parts[name] = part.item()
            loss = loss + part
    return loss, parts


@torch.no_grad()
def held_out_losses(model, batches, device) -> dict[str, float]:
    """Each loss part over all the batches' weighted tokens. A mean of the batches' means moved with
    --batch-tokens: at 1,024 tokens a batch of a few long judge examples counted as much as one of
    many short ones (the judge part read 0.113 at 1,024 and 0.011 at 65,536, same model)."""
    sums, totals = {}, {}
    for b in batches:
        parts = batch_loss(model, b, device)[1]
        for name, pw in part_weights(b).items():
            if name in parts:
                total = float(pw.sum())
                sums[name] = sums.get(name, 0.0) + parts[name] * total
                totals[name] = totals.get(name, 0.0) + total
    return {name: sums[name] / totals[name] for name in sums}


@torch.no_grad()
def judge_accuracy(model, batches, choice_ids, device):
    """Share of judge examples whose verdict logit prefers the better response (undecided pairs,
    whose choice is not trained, left out). A reply ends with its choice, "." and <|end|>."""
    correct = total = 0
    for b in batches:
        logits = model(input_ids=b["ids"].to(device), pixel_values=b["pixels"].to(device),
                       attention_mask=b["mask"].to(device)).logits
        for i in torch.nonzero(b["judge"]).flatten().tolist():
            choice_at = int(b["mask"][i].sum()) - 3
            if b["weights"][i, choice_at] == 0:
                continue
            pos = choice_at - 1  # predicts the choice token
            first, second = logits[i, pos, choice_ids[0]], logits[i, pos, choice_ids[1]]
            better_first = int(b["ids"][i, pos + 1]) == choice_ids[0]
            correct += int((first > second) == better_first)
            total += 1
    return correct / max(total, 1)


def save(model, tok, ids, out: Path):
    from transformers import CLIPImageProcessor, LlavaProcessor, PreTrainedTokenizerFast
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin|>", eos_token="<|end|>",
                                   pad_token="<pad>", model_max_length=CONTEXT)
    fast.chat_template = CHAT_TEMPLATE
    image_processor = CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=fast, patch_size=16,
                               vision_feature_select_strategy="default", image_token="<image>",
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)
    fast.save_pretrained(out)
    # The rendered template and the image pixels must be what training fed the model.
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]
    assert fast.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == prompt_text("How many?")
    image = shapes.random_scene(random.Random(0)).image()
    reference = image_processor(image, return_tensors="np")["pixel_values"][0]
    assert np.abs(reference - pixels(image)).max() < 1e-5, "pixels differ from CLIPImageProcessor"


def svg_curve(rows, path: Path):
    """Loss curves as a small self-contained SVG (no plotting library needed)."""
    width, height, pad = 640, 300, 40
    series = {"answer": "#1f77b4", "judge": "#d62728", "val_answer": "#2ca02c"}
    xs = [r["tokens"] for r in rows]
    ys = [r[k] for r in rows for k in series if r.get(k) is not None]
    if not xs or not ys:
        return
    x_max, y_max = max(xs), max(ys)
    def px(x, y):
        return pad + (width - 2 * pad) * x / x_max, height - pad - (height - 2 * pad) * min(y, y_max) / y_max
    lines = []
    for key, colour in series.items():
        pts = [px(r["tokens"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="'
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
    legend = "".join(f'<text x="{width - 150}" y="{20 + 16 * i}" fill="{c}" font-size="12">{k} loss</text>'
                     for i, (k, c) in enumerate(series.items()))
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
        f'<text x="{width / 2}" y="{height - 8}" font-size="12" text-anchor="middle">training tokens ({x_max / 1e6:.1f}M)</text>'
        f'<text x="8" y="{pad}" font-size="12">{y_max:.2f}</text><text x="8" y="{height - pad}" font-size="12">0</text>'
        + "".join(lines) + legend + "</svg>")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("models/stagebeam-shapes"))
    parser.add_argument("--log-dir", type=Path, default=Path("training/log"))
    parser.add_argument("--checkpoint", type=Path, default=Path("training/runs/checkpoint.pt"),
                        help="saved every --eval-every steps; --resume continues from it")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--steps", type=int, default=8000, help="length of the learning-rate schedule")
    parser.add_argument("--stop-at", type=int, default=None,
                        help="save the model after this step instead of at the end of the schedule")
    parser.add_argument("--align-steps", type=int, default=150)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--judge-share", type=float, default=0.3, help="share of judge verdicts among examples")
    parser.add_argument("--patch-lr-scale", type=float, default=0.5,
                        help="train the tower's patch embedding at this multiple of the learning rate (0: frozen)")
    parser.add_argument("--shape-weight", type=float, default=5.0,
                        help="loss weight of the shape words in image descriptions")
    parser.add_argument("--reasoning-weight", type=float, default=1.0,
                        help="loss weight of the REASONING stage in staged answers")
    parser.add_argument("--decision-weight", type=float, default=5.0,
                        help="loss weight of the yes/no decisions in the REASONING's scan of the objects")
    parser.add_argument("--describe-share", type=float, default=0.25,
                        help="share of plain image descriptions among examples")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="use this tokenizer.json instead of the checkpoint's or one built from the corpus "
                             "(for checkpoints saved before they carried their tokenizer)")
    parser.add_argument("--phase", default=None,
                        help="with --resume: what this phase changed, appended to run.json's history")
    parser.add_argument("--phase-steps", type=int, default=None,
                        help="with --resume: a new warm-up and cosine over this many steps from the resumed one")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="with --resume: like --phase-steps, with as many steps as fit in these seconds "
                             "(the pace is measured over the phase's steps 100-300; the number is printed and logged)")
    parser.add_argument("--family-weight", action="append", default=[], metavar="FAMILY=WEIGHT",
                        help="how often training draws a question family, against shapes.FAMILY_WEIGHTS "
                             "(the validation stream keeps those); repeatable")
    parser.add_argument("--judge-family-weight", action="append", default=[], metavar="FAMILY=WEIGHT",
                        help="the judge examples' own mix, against shapes.FAMILY_WEIGHTS (without it they "
                             "follow --family-weight); repeatable")
    parser.add_argument("--workers", type=int, default=0,
                        help="processes making batches (0: the training process itself); for a GPU")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    state = torch.load(args.checkpoint, weights_only=False, map_location="cpu") if args.resume and args.checkpoint.exists() else None
    tok = checkpoint_tokenizer(state, args.tokenizer) or build_tokenizer(args.seed, args.vocab_size)
    ids = {t: tok.token_to_id(t) for t in SPECIAL}
    enc = Encoder(tok, ids["<image>"])
    model = build_model(tok.get_vocab_size(), ids).to(device)
    strengthen_patch_positions(model, args.seed)
    freeze_vision_tower(model)
    params = sum(p.numel() for p in model.parameters())
    print(f"device {device} · {params / 1e6:.2f}M parameters · vocab {tok.get_vocab_size()}", flush=True)

    held_out = held_out_keys()

    def weights(settings: list[str], option: str) -> dict[str, float]:
        out = dict(shapes.FAMILY_WEIGHTS)
        for setting in settings:
            family, _, weight = setting.partition("=")
            if family not in out or not weight:
                raise SystemExit(f"{option} {setting!r}: expected FAMILY=WEIGHT with a family of {', '.join(out)}")
            out[family] = float(weight)
        return out
    family_weights = weights(args.family_weight, "--family-weight")
    judge_family_weights = weights(args.judge_family_weight, "--judge-family-weight") if args.judge_family_weight else None

    def make_stream(seed):
        return Stream(enc, seed, held_out, args.batch_tokens, ids["<pad>"], args.judge_share, args.describe_share,
                      args.shape_weight, args.reasoning_weight, args.decision_weight, family_weights,
                      judge_family_weights)
    train = make_stream(args.seed)
    val = Stream(enc, args.seed + 1000, held_out, args.batch_tokens, ids["<pad>"])
    val_batches = val.batches("mix", pool=160)
    choice_ids = choice_token_ids(tok)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}]
    patch_group = None
    if args.patch_lr_scale > 0:
        patch_embedding(model).requires_grad_(True)
        patch_group = {"params": [patch_embedding(model)], "weight_decay": 0.0, "lr_scale": args.patch_lr_scale}
    # A checkpoint from before the patch embedding trained has no group for it: add it after loading.
    late_patch_group = (patch_group is not None and state is not None and "opt" in state
                        and len(state["opt"]["param_groups"]) == len(groups))
    opt = torch.optim.AdamW(groups + ([patch_group] if patch_group and not late_patch_group else []),
                            lr=args.lr, betas=(0.9, 0.95))
    warmup = 100
    schedule = {"start": 0, "length": args.steps}  # a phase schedule restarts at the resumed step

    def lr_at(step):
        step -= schedule["start"]
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, schedule["length"] - warmup))
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    step, tokens, rows = 0, 0, []
    args.log_dir.mkdir(parents=True, exist_ok=True)
    if state is not None:
        model.load_state_dict(state["model"])
        # A checkpoint slimmed to travel (no optimizer state or random streams) starts Adam afresh;
        # the phase's warm-up covers that.
        if "opt" in state:
            opt.load_state_dict(state["opt"])
            if late_patch_group:
                opt.add_param_group(patch_group)
            elif patch_group is not None:
                opt.param_groups[-1]["lr_scale"] = args.patch_lr_scale  # the checkpoint's own may differ
        if "rng" in state:
            train.rng.setstate(state["rng"])
            torch.set_rng_state(state["torch_rng"])
        step, tokens, rows = state["step"], state["tokens"], state["rows"]
        print(f"resumed at step {step}" + ("" if "opt" in state else " with a fresh optimizer"), flush=True)
    first_step = step
    if args.phase_steps or args.time_budget:
        if state is None:
            raise SystemExit("--phase-steps and --time-budget continue a run: use them with --resume")
        schedule.update(start=first_step, length=args.phase_steps or 10**9)
    worker_batches = None
    if args.workers > 0:
        worker_batches = iter(torch.utils.data.DataLoader(
            WorkerBatches(make_stream, args.seed * 100_000 + first_step), batch_size=None,
            num_workers=args.workers, prefetch_factor=4, persistent_workers=True))

    start, pending, window = time.time() - (rows[-1]["seconds"] if rows else 0), [], []
    phase_started, calibrated = time.time(), None
    stop = first_step + args.phase_steps if args.phase_steps else args.steps
    if args.time_budget:
        stop = 10**9  # set once the pace is known
    if args.stop_at is not None:
        stop = min(stop, args.stop_at)
    while step < stop:
        # The rate is measured over steps 100-300 of the phase: by then the batches the workers
        # prefetched while the model loaded are used up, and the pace is theirs and the device's.
        if args.time_budget and step == first_step + 100:
            calibrated = time.time()
        if args.time_budget and step == first_step + 300:
            rate = 200 / (time.time() - calibrated)
            left = args.time_budget - (time.time() - phase_started)
            schedule["length"] = 300 + int(0.9 * rate * left)  # 10% kept for evaluations and saving
            stop = min(first_step + schedule["length"], args.stop_at or 10**9)
            print(f"{rate:.2f} steps/s: this phase runs {schedule['length']} steps (to step {stop})", flush=True)
        if worker_batches is not None and step >= args.align_steps:
            b = next(worker_batches)
        else:
            if not pending:
                pending = train.batches("align" if step < args.align_steps else "mix")
            b = pending.pop()
        for g in opt.param_groups:
            g["lr"] = lr_at(step) * g.get("lr_scale", 1.0)
        model.train()
        loss, parts = batch_loss(model, b, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += b["tokens"]
        window.append(parts)
        if step % args.eval_every == 0 or step == stop:
            model.eval()
            val_losses = held_out_losses(model, val_batches, device)
            row = {"step": step, "tokens": tokens, "seconds": round(time.time() - start, 1), "lr": lr_at(step)}
            for key in ("answer", "judge"):
                vals = [p[key] for p in window if key in p]
                row[key] = round(sum(vals) / len(vals), 4) if vals else None
                row[f"val_{key}"] = round(val_losses[key], 4) if key in val_losses else None
            row["val_judge_accuracy"] = round(judge_accuracy(model, val_batches, choice_ids, device), 4)
            seen = attribute_accuracy(model, tok, scenes=30, seed=77, device=device)
            row["seen"] = {attribute: round(right / max(total, 1), 4) for attribute, (right, total) in seen.items()}
            rows.append(row)
            window = []
            rate = tokens / max(row["seconds"], 1e-9)
            print(f"step {step}/{stop} · {tokens / 1e6:.2f}M tokens · {rate:.0f} tok/s · "
                  f"answer {row['answer']} (val {row['val_answer']}) · judge {row['judge']} "
                  f"(val {row['val_judge']}, acc {row['val_judge_accuracy']}) · seen "
                  + " ".join(f"{a} {v:.0%}" for a, v in row["seen"].items()), flush=True)
            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "tokenizer": tok.to_str(),
                        "step": step, "tokens": tokens,
                        "rows": rows, "rng": train.rng.getstate(), "torch_rng": torch.get_rng_state()}, args.checkpoint)
            (args.log_dir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            svg_curve(rows, args.log_dir / "loss.svg")

    model.eval()
    save(model.to("cpu"), tok, ids, args.out)
    meta = {"device": device, "torch": torch.__version__, "parameters": params, "steps": step, "tokens": tokens,
            "seconds": rows[-1]["seconds"] if rows else None, "args": {k: str(v) for k, v in vars(args).items()}}
    if args.time_budget:
        meta["phase_steps"] = schedule["length"]  # what --phase-steps reproduces this phase with
    run_log = args.log_dir / "run.json"
    if args.resume and run_log.exists():
        # A model trained in phases: each resumed run's command line is in its history entry.
        history = json.loads(run_log.read_text()).get("history", [])
        meta["history"] = history + [f"{first_step}-{step}: {args.phase or 'resumed'}"]
    run_log.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"saved {args.out}", flush=True)


if __name__ == "__main__":
    main()
