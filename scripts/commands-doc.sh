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
- Search options left out (`run`, `submit`, `batch`, `loadtest`, `eval`) take the defaults each
  `--help` below names. The built-in model's published figures use `--beam 4 --judge-mode generate
  --judge-temperature 0` (`make eval`, `make demo`).
- The coordinator, workers and clients log to standard error; `--log-format` / `--log-level` or
  `$STAGEBEAM_LOG_FORMAT` / `$STAGEBEAM_LOG_LEVEL` choose how
  ([cluster/README.md](../cluster/README.md), "Logs").

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
