#!/usr/bin/env python3
"""Test-time scaling curve: accuracy against compute, per search method and budget.

Reads the JSON reports of one or more `stagebeam eval --json` runs over the same dataset and writes
  - a JSON file: one point per method and budget (accuracy, generated tokens per question — the
    candidates' and the judge's written checks —, wall seconds per question, judge calls, scored
    candidates, CPU seconds per question — the evaluating process's user and system time, which on a
    busy machine stays close to an idle one's wall time at one thread, unlike wall time) for the
    whole set and for the chosen families;
  - an SVG (no plotting library needed): accuracy against generated tokens per question and against
    CPU seconds per question, log-scaled, one line per method through its budgets, greedy as a
    dashed reference; one more panel for the chosen families (the hardest ones).

scripts/bench/scaling-curve.sh runs the evals and calls this script.
"""
import argparse
import json
import math
from pathlib import Path

COLOURS = {
    "greedy": "#000000",
    "best-of-n": "#ff7f0e",
    "sentence": "#8c564b",
    "stage": "#1f77b4",
    "stage-beam": "#2ca02c",
    "swires": "#d62728",
}


def load_points(reports, families):
    points = []
    for report in reports:
        data = json.loads(Path(report).read_text())
        for index, row in enumerate(data["results"]):
            n = row["n"]
            point = {
                "method": row["method"],
                "budget": row["beam"],
                "n": n,
                "correct": row["correct"],
                "accuracy": row["accuracy"],
                "candidate_tokens_per_question": row["tokens"] / n,
                "judge_tokens_per_question": row.get("judge_tokens", 0) / n,
                "generated_tokens_per_question": (row["tokens"] + row.get("judge_tokens", 0)) / n,
                "seconds_per_question": row["seconds"] / n,
                "cpu_seconds_per_question": row["cpu_seconds"] / n,
                "judge_calls_per_question": row["judge_calls"] / n,
                "scored_candidates_per_question": row.get("scored_candidates", 0) / n,
                "report": Path(report).name,
            }
            chosen = [data["by_family"][f][index] for f in families if f in data["by_family"]]
            for cell in chosen:
                assert cell["method"] == row["method"] and cell["beam"] == row["beam"], "by_family rows out of order"
            if chosen:
                right, total = sum(c["correct"] for c in chosen), sum(c["n"] for c in chosen)
                point["families"] = {"names": families, "n": total, "correct": right, "accuracy": right / total}
            points.append(point)
    # Greedy runs once per report; keep the first (they are the same answers).
    seen, unique = set(), []
    for p in points:
        key = (p["method"], p["budget"])
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def panel(points, x_key, y_of, title, x_label, origin_x, origin_y, width=420, height=300):
    """One panel as SVG elements, positioned at (origin_x, origin_y)."""
    pad_left, pad_right, pad_top, pad_bottom = 50, 12, 28, 40
    xs = [p[x_key] for p in points]
    ys = [y_of(p) * 100 for p in points]
    x_lo, x_hi = math.log2(min(xs)) - 0.2, math.log2(max(xs)) + 0.2
    y_lo, y_hi = math.floor(min(ys) / 2) * 2 - 1, min(100, math.ceil(max(ys) / 2) * 2 + 1)

    def px(x, y):
        fx = (math.log2(x) - x_lo) / (x_hi - x_lo)
        fy = (y - y_lo) / (y_hi - y_lo)
        return (origin_x + pad_left + fx * (width - pad_left - pad_right),
                origin_y + height - pad_bottom - fy * (height - pad_top - pad_bottom))

    parts = [
        f'<text x="{origin_x + width / 2}" y="{origin_y + 16}" font-size="13" text-anchor="middle">{title}</text>',
        f'<rect x="{origin_x + pad_left}" y="{origin_y + pad_top}" width="{width - pad_left - pad_right}" '
        f'height="{height - pad_top - pad_bottom}" fill="none" stroke="#444"/>',
        f'<text x="{origin_x + pad_left + (width - pad_left - pad_right) / 2}" y="{origin_y + height - 6}" '
        f'font-size="11" text-anchor="middle">{x_label}</text>',
    ]
    for y in range(int(math.ceil(y_lo)), int(y_hi) + 1):
        if y % 2:
            continue
        _, gy = px(2 ** x_lo, y)
        parts.append(f'<line x1="{origin_x + pad_left}" y1="{gy:.1f}" x2="{origin_x + width - pad_right}" y2="{gy:.1f}" '
                     f'stroke="#ddd"/><text x="{origin_x + pad_left - 4}" y="{gy + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{y}%</text>')
    for e in range(math.ceil(x_lo), math.floor(x_hi) + 1):
        gx, _ = px(2 ** e, y_lo)
        parts.append(f'<line x1="{gx:.1f}" y1="{origin_y + height - pad_bottom}" x2="{gx:.1f}" '
                     f'y2="{origin_y + height - pad_bottom + 4}" stroke="#444"/><text x="{gx:.1f}" '
                     f'y="{origin_y + height - pad_bottom + 15}" font-size="10" text-anchor="middle">{2 ** e:g}</text>')
    for method, colour in COLOURS.items():
        mine = sorted((p for p in points if p["method"] == method), key=lambda p: p[x_key])
        if not mine:
            continue
        coords = [px(p[x_key], y_of(p) * 100) for p in mine]
        if method == "greedy":
            gx, gy = coords[0]
            parts.append(f'<line x1="{origin_x + pad_left}" y1="{gy:.1f}" x2="{origin_x + width - pad_right}" '
                         f'y2="{gy:.1f}" stroke="{colour}" stroke-dasharray="4 3"/>')
        else:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="'
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
        for (x, y), p in zip(coords, mine):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
                         f'<text x="{x + 4:.1f}" y="{y - 4:.1f}" font-size="9" fill="{colour}">{p["budget"]}</text>')
    return parts


def svg(points, families, title):
    width, height = 880, 690
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="20" font-size="14" text-anchor="middle">{title}</text>']
    overall = lambda p: p["accuracy"]
    parts += panel(points, "generated_tokens_per_question", overall, "all questions",
                   "generated tokens per question (candidates + judge checks)", 10, 30)
    parts += panel(points, "cpu_seconds_per_question", overall, "all questions", "CPU seconds per question (one thread)", 450, 30)
    hard = [p for p in points if "families" in p]
    if hard:
        name = " and ".join(families)
        fam = lambda p: p["families"]["accuracy"]
        parts += panel(hard, "generated_tokens_per_question", fam, f"{name} only",
                       "generated tokens per question (candidates + judge checks)", 10, 340)
        parts += panel(hard, "cpu_seconds_per_question", fam, f"{name} only", "CPU seconds per question (one thread)", 450, 340)
    for i, (method, colour) in enumerate(m for m in COLOURS.items() if any(p["method"] == m[0] for p in points)):
        parts.append(f'<text x="{70 + 120 * i}" y="{height - 8}" font-size="12" fill="{colour}">■ {method}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="`stagebeam eval --json` outputs")
    parser.add_argument("--families", default="compare,spatial", help="families drawn on their own (comma-separated)")
    parser.add_argument("--title", default="Accuracy against test-time compute")
    parser.add_argument("--meta", type=Path, help="a JSON object recorded as the curve's `run` (commands, commit, machine)")
    parser.add_argument("--json-out", type=Path, required=True)
    parser.add_argument("--svg-out", type=Path, required=True)
    args = parser.parse_args()
    families = [f for f in args.families.split(",") if f]
    points = load_points(args.reports, families)
    meta = json.loads(args.meta.read_text()) if args.meta else {}
    args.json_out.write_text(json.dumps({"run": meta, "families": families, "points": points}, indent=1) + "\n")
    args.svg_out.write_text(svg(points, families, args.title))


if __name__ == "__main__":
    main()
