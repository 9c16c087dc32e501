#!/usr/bin/env bash
# Fails when a C++ file of the tree is not formatted as .clang-format says
# (Debian's clang-format 14). With --fix, formats them in place instead.
# Usage: scripts/check_format.sh [--fix]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tool=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$tool" ] || { echo "check_format.sh: clang-format-14 is missing (scripts/setup.sh --tests)" >&2; exit 1; }
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  # Tracked files and new ones not yet added (but not ignored ones).
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp')
else
  mapfile -t files < <(find include src tests bench -name '*.cpp' -o -name '*.hpp' | sort)
fi
if [ "${1:-}" = "--fix" ]; then
  "$tool" -i "${files[@]}"
  exit 0
fi
report=$(mktemp)
trap 'rm -f "$report"' EXIT
if "$tool" --dry-run --Werror "${files[@]}" 2> "$report"; then
  echo "check_format.sh: ${#files[@]} files formatted as .clang-format says" >&2
  exit 0
fi
grep -E '^[^ ].*: error:' "$report" | cut -d: -f1 | sort -u | sed 's/^/  not formatted: /' >&2
echo "check_format.sh: run scripts/check_format.sh --fix, then commit" >&2
exit 1
