#!/usr/bin/env bash
# Runs one fuzz target of engine/fuzz for a while, on its committed corpus (new inputs it finds
# stay in the corpus directory; crashes go to engine/fuzz/artifacts/TARGET/).
#
#   bash tools/fuzz.sh TARGET [SECONDS]      # e.g. tools/fuzz.sh body 60
#   bash tools/fuzz.sh --list                # the targets
#   bash tools/fuzz.sh --smoke [SECONDS]     # every target a few seconds (CI), seeds only
#
# Uses the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly flags); installs
# cargo-fuzz if missing. Every crash becomes a seed under engine/fuzz/corpus/TARGET so that
# engine/tests/it/fuzz_corpus.rs keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/../engine/fuzz"
targets() { sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v '^libra-engine-fuzz$'; }
if [ "${1:-}" = "--list" ]; then
  targets
  exit 0
fi
if [ "${1:-}" = "--smoke" ]; then
  seconds=${2:-5}
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  RUSTC_BOOTSTRAP=1 cargo fuzz build
  for t in $(targets); do
    # A scratch copy of the corpus: a smoke run adds nothing to the repository.
    scratch=$(mktemp -d)
    cp -r "corpus/$t/." "$scratch/"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "$scratch" -- -max_total_time="$seconds" -max_len=4096
    rm -rf "$scratch"
  done
  exit 0
fi
target=${1:?usage: tools/fuzz.sh TARGET [SECONDS]}
seconds=${2:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "corpus/$target"
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=4096
