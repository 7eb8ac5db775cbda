#!/usr/bin/env bash
# Runs the plugin integration tests (dlopen, every adapter and refusal,
# panics contained) under valgrind's memcheck; exits non-zero on any memory
# error. Miri cannot dlopen, so this covers the dynamic path; the static
# plugin-side call path (shims, views, error buffers, catch_unwind) runs
# under Miri without ami-core:
#   MIRIFLAGS=-Zmiri-ignore-leaks cargo +nightly miri test -p ami-plugin-abi -p ami-plugin-testkit
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p ami-plugin-acrobot -p ami-plugin-sampling -p ami-plugin-testkit
bin=$(cargo test --quiet -p ami-tests --test plugin --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | tail -1)
echo "valgrind: $bin"
RUST_BACKTRACE=0 valgrind --quiet --error-exitcode=1 --leak-check=no --track-origins=no "$bin" --test-threads=1 "$@"
