"""Trains the built-in model's reward model (models/stagebeam-shapes-reward) on its own labelled
candidates (training/reward_data.py).

    python training/train_reward.py --examples training/runs/reward/examples.jsonl \\
        --checkpoint training/runs/reward/reward.pt --time-budget 1200 --out models/stagebeam-shapes-reward

The reward model is a `LlamaForSequenceClassification` with one label: the policy's text decoder
(its token embeddings and its first `--layers` decoder layers, the final norm) under a fresh `score`
head, reading the conversation as the policy's chat template renders it: the question as the user
turn (text only, no image), the answer through the scored stage as the assistant turn. The score is
the head on the last token.

The loss is the binary cross-entropy of each candidate's label plus a pairwise term: within a group
(the candidates of one stage that continue one prefix), every right candidate should outscore every
wrong one (a logistic loss on the difference). A tenth of the questions (by id) are held out; the
held-out figures per stage are the within-group AUC over right-versus-wrong pairs and how often the
best-scored candidate of a group with a right one is right.

Resumable: `--checkpoint` is saved every `--eval-every` steps with the optimizer state, and a rerun
with the same arguments continues from it. The weights of every evaluated step are kept beside it
(`<checkpoint>-step<N>.pt`), and `--export-step N --out DIR` exports one of them. The log goes to
`--log` (JSON lines). The held-out figures are given twice: over all candidates (generator-made
wrong texts included) and over the model's own candidates only (`own_*`), which is what a search ranks.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
import zlib
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForSequenceClassification

STAGES = ["summary", "caption", "reasoning", "conclusion"]
ROOT = Path(__file__).resolve().parents[1]


def conversation_text(question: str, answer: str, bos: str = "<|begin|>") -> str:
    """The policy's chat template (models/stagebeam-shapes/chat_template.jinja) for a user turn and a
    finished assistant turn, no generation prompt: what the scorer renders."""
    return f"{bos}<|user|>\n{question}<|end|>\n<|assistant|>\n{answer}<|end|>\n"


def held_out(item_id: str) -> bool:
    return zlib.crc32(item_id.encode()) % 10 == 0


def make_model(policy: Path, layers: int) -> LlamaForSequenceClassification:
    text = json.loads((policy / "config.json").read_text())["text_config"]
    config = LlamaConfig(
        vocab_size=text["vocab_size"], hidden_size=text["hidden_size"], intermediate_size=text["intermediate_size"],
        num_hidden_layers=layers, num_attention_heads=text["num_attention_heads"],
        num_key_value_heads=text["num_key_value_heads"], head_dim=text["head_dim"], hidden_act=text["hidden_act"],
        max_position_embeddings=text["max_position_embeddings"], rms_norm_eps=text["rms_norm_eps"],
        rope_parameters=text["rope_parameters"], attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
        bos_token_id=text["bos_token_id"], eos_token_id=text["eos_token_id"], pad_token_id=text["pad_token_id"],
        num_labels=1)
    model = LlamaForSequenceClassification(config)
    state = {}
    with safe_open(policy / "model.safetensors", "pt") as f:
        for key in f.keys():
            if key.startswith("language_model.model."):
                name = "model." + key[len("language_model.model."):]
                if name.startswith("model.layers."):
                    if int(name.split(".")[2]) >= layers:
                        continue
                state[name] = f.get_tensor(key)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["score.weight"] and not unexpected, (missing, unexpected)
    torch.nn.init.zeros_(model.score.weight)
    return model


def load_examples(paths: list[Path], tokenizer: Tokenizer, max_tokens: int, form_share: float):
    """Training and held-out groups. Only `form_share` of the training questions' SUMMARY and CAPTION
    groups are kept (chosen by group name): nearly all their candidates are right, so they teach little
    and would take most of the steps. Held-out groups are all kept."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        for line in filter(str.strip, path.read_text().splitlines()):
            e = json.loads(line)
            e["ids"] = tokenizer.encode(conversation_text(e["question"], e["answer"]), add_special_tokens=False).ids
            if len(e["ids"]) <= max_tokens:
                groups[e["group"]].append(e)
    train, val = [], []
    for name, members in groups.items():
        if held_out(members[0]["id"]):
            val.append(members)
        elif members[0]["stage"] not in ("summary", "caption") or zlib.crc32(name.encode()) % 1000 < form_share * 1000:
            train.append(members)
    return train, val


def batches(groups: list[list[dict]], batch_tokens: int, rng: random.Random):
    """Groups packed into batches of about `batch_tokens` padded tokens, similar lengths together."""
    order = sorted(groups, key=lambda g: max(len(e["ids"]) for e in g) + rng.random() * 40)
    out, current, width, rows = [], [], 0, 0
    for g in order:
        w = max(width, max(len(e["ids"]) for e in g))
        if current and w * (rows + len(g)) > batch_tokens:
            out.append(current)
            current, width, rows = [], 0, 0
            w = max(len(e["ids"]) for e in g)
        current.append(g)
        width, rows = w, rows + len(g)
    if current:
        out.append(current)
    rng.shuffle(out)
    return out


def forward(model, batch: list[list[dict]], pad: int):
    examples = [e for g in batch for e in g]
    width = max(len(e["ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, :len(e["ids"])] = torch.tensor(e["ids"])
        mask[i, :len(e["ids"])] = 1
    scores = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    return examples, scores


def loss_of(batch, examples, scores):
    labels = torch.tensor([float(e["label"]) for e in examples])
    pointwise = F.binary_cross_entropy_with_logits(scores, labels)
    pair_losses, start = [], 0
    for g in batch:
        s, l = scores[start:start + len(g)], labels[start:start + len(g)]
        start += len(g)
        right, wrong = s[l == 1], s[l == 0]
        if len(right) and len(wrong):
            pair_losses.append(F.softplus(-(right[:, None] - wrong[None, :])).mean())
    pairwise = torch.stack(pair_losses).mean() if pair_losses else scores.sum() * 0
    return pointwise + pairwise, pointwise.item(), pairwise.item(), len(pair_losses)


@torch.no_grad()
def evaluate(model, groups, pad: int, batch_tokens: int) -> dict:
    model.eval()
    scored: dict[str, list[tuple[float, int, int]]] = defaultdict(list)  # group → (score, label, synthetic)
    stage_of = {}
    for batch in batches(groups, batch_tokens, random.Random(0)):
        examples, scores = forward(model, batch, pad)
        for e, s in zip(examples, scores.tolist()):
            scored[e["group"]].append((s, e["label"], e.get("synthetic", 0)))
            stage_of[e["group"]] = e["stage"]
    model.train()
    figures = {}
    for stage in STAGES:
        groups_of_stage = [members for group, members in scored.items() if stage_of[group] == stage]
        figures[stage] = ranking_figures([[(s, l) for s, l, _ in members] for members in groups_of_stage])
        # The model's own candidates only: what the search ranks (the generator-made slips are easier).
        own = ranking_figures([[(s, l) for s, l, synthetic in members if not synthetic] for members in groups_of_stage])
        figures[stage]["own_auc"], figures[stage]["own_pairs"] = own["auc"], own["pairs"]
        figures[stage]["own_best_right"] = own["best_right_mixed"]
        figures[stage]["own_groups_with_right_and_wrong"] = own["groups_with_right_and_wrong"]
    return figures


def ranking_figures(groups: list[list[tuple[float, int]]]) -> dict:
    """Within-group AUC over right-versus-wrong pairs (ties count half), how often the best-scored
    candidate of a group holding a right one is right, and the same over the groups that hold both."""
    pairs = won = ties = best_right = with_right = best_right_mixed = mixed = 0
    for members in groups:
        right = [s for s, l in members if l]
        wrong = [s for s, l in members if not l]
        for r in right:
            for w in wrong:
                pairs += 1
                won += r > w
                ties += r == w
        if right:
            with_right += 1
            best_right += max(members)[1] == 1
            if wrong:
                mixed += 1
                best_right_mixed += max(members)[1] == 1
    return {"auc": (won + 0.5 * ties) / pairs if pairs else None, "pairs": pairs, "best_right": best_right,
            "groups_with_right": with_right, "best_right_mixed": best_right_mixed,
            "groups_with_right_and_wrong": mixed}


def export(model, tokenizer_dir: Path, out: Path, meta: dict):
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(out)
    model.to(torch.float32)
    for name in ("tokenizer.json", "chat_template.jinja"):
        shutil.copy(tokenizer_dir / name, out / name)
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    config.pop("processor_class", None)
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=Path, nargs="+", required=True, help="labelled example files")
    parser.add_argument("--policy", type=Path, default=ROOT / "models/stagebeam-shapes")
    parser.add_argument("--layers", type=int, default=2, help="decoder layers taken from the policy")
    parser.add_argument("--freeze-layers", type=int, default=1,
                        help="the token embeddings and this many first layers keep the policy's weights")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "training/runs/reward/reward.pt")
    parser.add_argument("--log", type=Path, default=ROOT / "training/log/reward-train.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="export the final model here (bf16 weights)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument("--max-tokens", type=int, default=1280)
    parser.add_argument("--epochs", type=float, default=2.0, help="the cosine's length, in passes over the data")
    parser.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds (resume later)")
    parser.add_argument("--form-share", type=float, default=1.0,
                        help="the share of training questions whose SUMMARY and CAPTION groups are trained on")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--export-step", type=int, default=None,
                        help="export the weights saved at this evaluated step (with --out) instead of training")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    tokenizer = Tokenizer.from_file(str(args.policy / "tokenizer.json"))
    pad = json.loads((args.policy / "config.json").read_text())["text_config"]["pad_token_id"]
    train, val = load_examples(args.examples, tokenizer, args.max_tokens, args.form_share)
    print(f"{sum(map(len, train))} training examples in {len(train)} groups, {sum(map(len, val))} held out "
          f"in {len(val)}", flush=True)
    rng = random.Random(args.seed)
    steps_per_epoch = len(batches(train, args.batch_tokens, random.Random(0)))
    total = schedule = max(1, int(steps_per_epoch * args.epochs))

    model = make_model(args.policy, args.layers)
    frozen = [model.model.embed_tokens, *model.model.layers[:args.freeze_layers]]
    for module in frozen:
        module.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.01)
    step = 0
    if args.checkpoint.exists():
        state = torch.load(args.checkpoint, weights_only=False, map_location="cpu")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, rng = state["step"], state["rng"]
        print(f"resumed at step {step} of {total}", flush=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    log = open(args.log, "a")

    def snapshot_path(at: int) -> Path:
        return args.checkpoint.with_name(f"{args.checkpoint.stem}-step{at}.pt")

    def save():
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "rng": rng},
                   args.checkpoint)
        # The weights of every evaluated step, so the held-out figures can pick the one to export.
        torch.save({"model": model.state_dict(), "step": step}, snapshot_path(step))

    if args.export_step is not None:
        state = torch.load(snapshot_path(args.export_step), weights_only=False, map_location="cpu")
        model.load_state_dict(state["model"])
        step = state["step"]
        total = -1  # no training: export this step's weights

    def record(entry: dict):
        log.write(json.dumps(entry) + "\n")
        log.flush()
        print(json.dumps(entry), flush=True)

    start = time.time()
    model.train()
    queue = []
    while step < total:
        if not queue:
            queue = batches(train, args.batch_tokens, rng)
        batch = queue.pop()
        warmup = min(50, total // 10)
        lr = args.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        examples, scores = forward(model, batch, pad)
        loss, pointwise, pairwise, pair_groups = loss_of(batch, examples, scores)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        step += 1
        if step % 10 == 0:
            record({"step": step, "lr": lr, "loss": loss.item(), "pointwise": pointwise, "pairwise": pairwise,
                    "pair_groups": pair_groups, "seconds": round(time.time() - start, 1)})
        done = args.time_budget is not None and time.time() - start > args.time_budget
        if step % args.eval_every == 0 or step == total or done:
            record({"step": step, "validation": evaluate(model, val, pad, args.batch_tokens)})
            save()
        if done:
            print(f"time budget spent at step {step} of {total}; run again to resume", flush=True)
            break
    if args.out is not None:
        export(model, args.policy, args.out, {"layers": args.layers, "frozen_layers": args.freeze_layers,
                                              "steps": step, "schedule_steps": schedule, "lr": args.lr,
                                              "examples": [p.name for p in args.examples], "form_share": args.form_share,
                                              "policy": "stagebeam-shapes"})
        print(f"exported to {args.out}")


if __name__ == "__main__":
    main()
