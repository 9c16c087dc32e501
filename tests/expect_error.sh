#!/usr/bin/env bash
# Runs a command that must fail cleanly: exit code CODE, exactly one line on
# stderr matching REGEX, nothing on stderr that looks like a crash.
# Usage: expect_error.sh CODE REGEX COMMAND [ARGS...]
set -u
code=$1 regex=$2
shift 2
err=$(mktemp)
trap 'rm -f "$err"' EXIT
"$@" >/dev/null 2>"$err" </dev/null
rc=$?
echo "exit code $rc; stderr:"
cat "$err"
fail=0
if [ "$rc" -ne "$code" ]; then
  echo "FAIL: expected exit code $code, got $rc"; fail=1
fi
if ! grep -Eq -- "$regex" "$err"; then
  echo "FAIL: stderr does not match: $regex"; fail=1
fi
lines=$(grep -c . "$err")
if [ "$lines" -ne 1 ]; then
  echo "FAIL: expected one error line on stderr, got $lines"; fail=1
fi
if grep -Eq 'terminate called|Exception raised from|frame #|core dumped|Segmentation|Aborted' "$err"; then
  echo "FAIL: crash or stack trace on stderr"; fail=1
fi
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
