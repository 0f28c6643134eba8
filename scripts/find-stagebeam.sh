# Sourced by the scripts that run stagebeam: `find_stagebeam NAME` sets $bin to $STAGEBEAM, else the
# release build, else the debug build of the checkout at $root, and exits naming NAME when none is there.
find_stagebeam() {
  bin="${STAGEBEAM:-}"
  if [[ -z "$bin" ]]; then
    for candidate in "$root/.build/release/stagebeam" "$root/.build/debug/stagebeam"; do
      if [[ -x "$candidate" ]]; then bin="$candidate"; break; fi
    done
  fi
  [[ -x "$bin" ]] || { echo "$1: no stagebeam executable (swift build -c release --product stagebeam, or STAGEBEAM=...)" >&2; exit 1; }
}
