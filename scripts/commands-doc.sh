#!/usr/bin/env bash
# Writes docs/commands.md from the `--help` of every stagebeam subcommand, so the page says what the
# built executable accepts. Run after changing a command's options:
#   swift build -c release --product stagebeam && scripts/commands-doc.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${STAGEBEAM:-$root/.build/release/stagebeam}"
[[ -x "$bin" ]] || { echo "commands-doc: no $bin; run 'swift build -c release --product stagebeam'" >&2; exit 1; }
# The subcommands, as the top-level help lists them.
commands=$(COLUMNS=200 "$bin" --help | sed -n '/^SUBCOMMANDS:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
{
  cat <<'EOF'
# Commands

Every subcommand of `stagebeam` with its options, as `stagebeam COMMAND --help` prints them
(`scripts/commands-doc.sh` writes this page from the built executable).

- Commands that load a model (`run`, `generate`, `eval`, `tokenize`, `bench`, `bench-search`,
  `worker`, and `batch` without `--coordinator`) use `--model DIR`, else `$STAGEBEAM_MODEL`, else the
  built-in `models/stagebeam-shapes` found in the current directory or above the executable.
- Search options left out take the defaults each `--help` below names: for `run`, `eval` and
  in-process `batch`, the model's recommended settings from its `stagebeam.json` (the built-in
  model's: `--beam 4 --judge-mode generate --judge-temperature 0`, for the stage method
  `--search-stages reasoning --temperature 1.2` and for SWIRES `--candidates 2`, what its figures
  were measured with), else the reference implementation's.
- The coordinator, workers and clients log to standard error; `--log-format` / `--log-level` or
  `$STAGEBEAM_LOG_FORMAT` / `$STAGEBEAM_LOG_LEVEL` choose how
  ([cluster/README.md](../cluster/README.md), "Logs").
- Judge prompts are configuration: `--judge-templates FILE` replaces the built-in wording, whose JSON
  is `defaultJudgeTemplatesJSON` in `Sources/Search/DefaultJudgeTemplates.swift`.

`generate` follows transformers:
- `--raw` encodes the prompt exactly as `tokenizer(prompt)` does (BOS included); without it the
  model's chat template is applied. `--raw --temperature 0 --ignore-eos` reproduces
  `generate(do_sample=False)` token for token. Sampling defaults come from `generation_config.json`
  (greedy when it does not ask for sampling).
- With `--image`, `--raw` processes the prompt as `processor(text=prompt, images=image)` does: the
  prompt holds the image token (`<image>`), which is expanded to the image's feature rows; without
  `--raw` the chat template places the image.
- Sample *i* of `--n N` uses seed `--seed + i`, and its tokens depend only on that seed, not on the
  samples decoded beside it. A stop string is kept at the end of the text (as transformers'
  `stop_strings`) and is matched across token boundaries.
- `--json` prints `{"prompt_token_ids", "samples": [{"token_ids", "text", "finish_reason",
  "cumulative_logprob", "logprobs": [[{"id", "logprob"}]]}], "timings"}`; log-probabilities are
  natural logs under the model at temperature 1, before any sampling filter.

EOF
  echo '```'
  COLUMNS=110 "$bin" --help
  echo '```'
  for command in $commands; do
    printf '\n## stagebeam %s\n\n```\n' "$command"
    COLUMNS=110 "$bin" "$command" --help
    echo '```'
  done
} >"$root/docs/commands.md"
echo "commands-doc: wrote docs/commands.md ($(echo $commands | wc -w) commands)"
