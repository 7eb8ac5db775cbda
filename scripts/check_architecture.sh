#!/usr/bin/env bash
# Checks the architecture rules of ARCHITECTURE.md that the compiler does
# not: which crates may depend on what (cargo tree), which crates forbid
# unsafe code, and that no crate has a cycle between its files
# (scripts/check_mod_cycles.py). Exits non-zero on the first broken rule.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "architecture check failed: $*" >&2; exit 1; }

# crate, then the packages it must not depend on (normal dependencies, transitively).
rules=(
  "ami-core petgraph toml libloading dfdx crossbeam ami-kernels ami-graph ami-config object sha2"
  "ami-graph toml libloading dfdx ami-kernels ami-planners ami-config"
  "ami-planners petgraph toml libloading dfdx ami-graph ami-config"
  "ami-learn petgraph toml libloading ami-graph ami-config"
  "ami-config libloading dfdx object sha2"
  "ami-kernels ami-core petgraph toml libloading dfdx"
  "ami-plugin-abi ami-core ndarray serde libloading"
)
for rule in "${rules[@]}"; do
  read -r crate forbidden <<<"$rule"
  deps=$(cargo tree -p "$crate" -e normal --prefix none --offline 2>/dev/null || cargo tree -p "$crate" -e normal --prefix none)
  for f in $forbidden; do
    if grep -qE "^$f v" <<<"$deps"; then
      fail "$crate depends on $f ($(cargo tree -p "$crate" -e normal -i "$f" 2>/dev/null | head -5 | tr '\n' ' '))"
    fi
  done
  echo "ok: $crate depends on none of: $forbidden"
done

# Only the plugin host (and what depends on it) links libloading.
for crate in ami-core ami-graph ami-planners ami-learn ami-config ami-kernels ami-plugin-abi; do
  if cargo tree -p "$crate" -e normal --prefix none 2>/dev/null | grep -q '^libloading v'; then fail "$crate links libloading"; fi
done
echo "ok: only ami-plugin-host opens libraries"

# Every crate but the kernels and the plugin boundary (the ABI, the host and
# the plugins, whose declare_plugin! expands to extern "C" shims) forbids
# unsafe code.
for lib in core/src/lib.rs core/graph/src/lib.rs core/planners/src/lib.rs core/learn/src/lib.rs core/config/src/lib.rs agents/src/lib.rs agents/src/main.rs agents/ami/src/lib.rs; do
  grep -q '^#!\[forbid(unsafe_code)\]' "$lib" || fail "$lib does not say #![forbid(unsafe_code)]"
done
echo "ok: forbid(unsafe_code) in every crate but ami-kernels and the plugin boundary"

python3 scripts/check_mod_cycles.py
