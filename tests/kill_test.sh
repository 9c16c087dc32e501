#!/usr/bin/env bash
# No torn files: SIGKILL mnist-train at random moments while it trains, writes
# checkpoints and saves (or replaces) models, and after every kill check what
# it left behind:
#   - a model folder holds no model.json (never saved yet) or a complete model
#     that our loader (`mnist-train summary`) and real TF.js (load_check.js:
#     tf.loadLayersModel, then predict on a zero image) both accept; once it
#     held a model it keeps one, and it changes only in a run that got to its
#     final save (so it is the old model or the new one);
#   - every ckpt-* folder is a complete checkpoint (state.json, model.json)
#     that both loaders accept, and `--resume` accepts the newest one;
#   - leftover temporary files or folders are hidden (a name starting with
#     '.'), or are weight files that model.json names (a save that was cut
#     short between its renames); they are counted and listed.
# Two kinds of runs, picked at random:
#   train    many short epochs (300 images), a checkpoint after every epoch,
#            the model saved to M at the end; continued with --resume after a
#            kill, started afresh (into the same or an emptied checkpoint
#            folder) once it completed;
#   replace  one epoch starting from a model (a small TF.js-made convnet, a
#            full-size one, or R itself) and saved into R, which already holds
#            a model of the same or another architecture (so a torn
#            model.json/weights pair would not load), checkpoint folder CR;
#            saved as one weights.bin or in shards of one of two sizes, so a
#            replacement may change the weight files too.
# The moment of each kill is picked in one of three ways, in turn at random:
#   uniform   uniformly over the measured length of such a run (start-up
#             included);
#   targeted  shortly after a checkpoint write or the final save begins (seen
#             in the logs), within the measured length of such a write;
#   syscall   (where strace is installed) exactly before the N-th call of one
#             of the calls that change files or folders (rename, link, unlink,
#             rmdir, mkdir, fsync), N picked uniformly over the calls that the
#             set-up run of that kind made: strace delivers SIGKILL on entry.
#
# Usage: kill_test.sh MNIST_TRAIN NODE_DIR KILLS [SEED]
#   NODE_DIR: tests/node (load_check.js, make_reference_model.js, node_modules)
# Environment: MNIST_DATA_DIR (default <repo>/data/mnist), NODE (default node),
#   KILL_TEST_DIR (work folder; default a new one under $TMPDIR, removed on PASS).
# Prints where every kill landed, a tally, and PASS or FAIL.
set -u

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 MNIST_TRAIN NODE_DIR KILLS [SEED]" >&2
  exit 2
fi
train=$1 node_dir=$2 kills=$3 seed=${4:-$(( $(date +%s) % 100000 ))}
here=$(cd "$(dirname "$0")" && pwd)
data=${MNIST_DATA_DIR:-$here/../data/mnist}
node=${NODE:-node}
RANDOM=$seed
if [ -n "${KILL_TEST_DIR:-}" ]; then
  W=$KILL_TEST_DIR
  rm -rf "$W" && mkdir -p "$W" || exit 2
  keep_work=1
else
  W=$(mktemp -d "${TMPDIR:-/tmp}/kill_test.XXXXXX") || exit 2
  keep_work=0
fi
echo "kill_test: $kills kills, seed $seed, work folder $W"

# Pauses without starting a process: read with a timeout on a FIFO that
# nobody writes to.
mkfifo "$W/.tick" && exec 9<>"$W/.tick"
pause() { read -r -t "$1" -u 9 _; }           # seconds, fractional
now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
rand() { echo $(( ((RANDOM << 15) | RANDOM) % ($1 + 1) )); }   # 0..$1
ms_to_s() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }

# The calls that change what a folder holds, or make it durable.
syscalls=rename,renameat,renameat2,link,linkat,unlink,unlinkat,rmdir,mkdir,mkdirat,fsync
have_strace=0
command -v strace > /dev/null 2>&1 && strace -qq -o /dev/null true 2> /dev/null && have_strace=1
# traced OUTFILE CMD...: CMD, under strace (counting the calls above) if present.
traced() {
  local out=$1
  shift
  if [ "$have_strace" = 1 ]; then
    exec strace -qq -o "$out" -e trace="$syscalls" "$@"
  else
    : > "$out"
    exec "$@"
  fi
}
# call_counts TRACE: "name:count" per call, as the kill picker wants them.
call_counts() { sed -nE 's/^([a-z0-9_]+)\(.*/\1/p' "$1" | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' '; }
# pick_call "name:count ...": a call invocation picked uniformly, as "name N".
pick_call() {
  local total=0 e r
  for e in $1; do total=$((total + ${e#*:})); done
  r=$(( 1 + $(rand $((total - 1))) ))
  for e in $1; do
    if [ "$r" -le "${e#*:}" ]; then echo "${e%%:*} $r"; return; fi
    r=$((r - ${e#*:}))
  done
}

common=(--train-limit 300 --validation-split 0.2 --threads 1 --seed 7 --data-dir "$data")
shard_sizes=(0 400009 1000003)   # --weight-shard-size of a replace run (0: none)
epochs_a=20
failures=0
declare -a failure_text=()
fail() {
  failures=$((failures + 1))
  failure_text+=("$*")
  echo "  FAIL: $*"
}

# ---- Following a run's logs ------------------------------------------------
# follow PID ERR OUT KIND N LIMIT_MS: returns 0 once the N-th epoch line
# (KIND=ckpt: a checkpoint write starts right after it) or the
# "Evaluation result" line (KIND=final: the final save follows) has appeared,
# 1 if the process ended first, 2 after LIMIT_MS.
follow() {
  local pid=$1 err=$2 out=$3 kind=$4 n=$5 limit=$6 seen=0 line part_e='' part_o=''
  local t0
  t0=$(now_ms)
  exec 3<"$err" 4<"$out"
  local rc=2
  while :; do
    while IFS= read -r line <&3; do
      line=$part_e$line part_e=''
      if [ "$kind" = ckpt ] && [[ $line == *"] Epoch "[0-9]* ]]; then
        seen=$((seen + 1))
        [ "$seen" -ge "$n" ] && { rc=0; break 2; }
      fi
    done
    part_e=$part_e$line
    while IFS= read -r line <&4; do
      line=$part_o$line part_o=''
      if [ "$kind" = final ] && [[ $line == "Evaluation result:"* ]]; then rc=0; break 2; fi
    done
    part_o=$part_o$line
    kill -0 "$pid" 2>/dev/null || { rc=1; break; }
    [ $(( $(now_ms) - t0 )) -ge "$limit" ] && { rc=2; break; }
    pause 0.001
  done
  exec 3<&- 4<&-
  return $rc
}

# timeline PID ERR OUT: prints the start-to-end length of a run and the longest
# checkpoint write and final save it saw (ms), from the times its log lines
# appeared.
timeline() {
  local pid=$1 err=$2 out=$3 line t0 t e_last=0 ck=0 ev=0 fin=0 part_e='' part_o=''
  t0=$(now_ms)
  exec 3<"$err" 4<"$out"
  while :; do
    while IFS= read -r line <&4; do
      line=$part_o$line part_o=''
      [[ $line == "Evaluation result:"* ]] && ev=$(now_ms)
    done
    part_o=$part_o$line
    while IFS= read -r line <&3; do
      line=$part_e$line part_e='' t=$(now_ms)
      [[ $line == *"] Epoch "[0-9]* ]] && e_last=$t
      [[ $line == *"checkpoint: "* ]] && [ $((t - e_last)) -gt "$ck" ] && ck=$((t - e_last))
      [[ $line == *"] saved "* ]] && fin=$((t - ev))
    done
    part_e=$part_e$line
    kill -0 "$pid" 2>/dev/null || break
    pause 0.001
  done
  exec 3<&- 4<&-
  echo "$(( $(now_ms) - t0 )) $ck $fin"
}

# ---- Folder state ----------------------------------------------------------
# A key for a folder's visible files (names and contents); "absent" if it has
# no model.json.
model_key() {
  [ -f "$1/model.json" ] || { echo absent; return; }
  (cd "$1" && find . -maxdepth 1 -type f ! -name '.*' -print0 | sort -z | xargs -0 md5sum | md5sum | cut -c1-12)
}
# Entries other than a saved model's or checkpoint's: hidden ones anywhere,
# other visible names in a model folder, non-ckpt-* names in a checkpoint folder.
extra_entries() {
  [ -d "$W/$1" ] || return 0
  case $1 in
    M | R)
      local named
      named=" $(weight_paths "$W/$1") "
      (cd "$W/$1" && find . -mindepth 1 -maxdepth 1 ! -name model.json ! -name history.json ! -name .mnist-train.lock -printf '%f\n' | sort) |
        while IFS= read -r e; do [[ $named == *" $e "* ]] || echo "$e"; done ;;
    *) (cd "$W/$1" && find . -mindepth 1 -maxdepth 1 ! -name 'ckpt-*' ! -name .mnist-train.lock -printf '%f\n' | sort) ;;
  esac
}
complete_ckpts() { [ -d "$1" ] && (cd "$1" && for d in ckpt-*; do [ -f "$d/state.json" ] && echo "$d"; done | sort); }
newest_ckpt() { complete_ckpts "$1" | tail -n 1; }
# Weight files model.json names (first-level names only, as we write them).
weight_paths() { sed -n 's/.*"paths":\[\([^]]*\)\].*/\1/p' "$1/model.json" 2>/dev/null | tr -d '"' | tr ',' ' '; }

declare -A cpp_ok=()          # "<folder> <key>" -> our loader accepted it
declare -A node_ok=()         # "<folder> <key>" -> TF.js accepted it
declare -A had_model=()       # model folder -> it held a model once
declare -A leftover_seen=()   # leftover name pattern -> count of kills that left one
saved_fail=0

save_failure_state() {
  saved_fail=$((saved_fail + 1))
  [ "$saved_fail" -le 5 ] || return 0
  mkdir -p "$W/failed-$1" && cp -a "$W/M" "$W/R" "$W/C" "$W/CR" "$W/run.out" "$W/run.err" "$W/failed-$1/" 2>/dev/null
  echo "  (state kept in $W/failed-$1)"
}

# check_all KILL: every check above on M, R, C and CR. A folder whose files
# did not change since it passed is not loaded again.
check_all() {
  local k=$1 f d b name key line list=() to_node=() to_cpp=() bad=()
  local -A key_of=() newest=()
  for f in M R; do
    if [ -f "$W/$f/model.json" ]; then
      list+=("$W/$f")
    elif [ -n "${had_model[$f]:-}" ]; then
      fail "kill $k: $f held a model before and has no model.json now ($(ls -A "$W/$f" 2>/dev/null | tr '\n' ' '))"
    fi
  done
  for f in C CR; do
    [ -d "$W/$f" ] || continue
    for d in "$W/$f"/ckpt-*; do
      [ -e "$d" ] || continue
      if [ ! -f "$d/state.json" ] || [ ! -f "$d/model.json" ]; then
        fail "kill $k: $f/$(basename "$d") looks like a checkpoint but is incomplete (holds: $(ls -A "$d" | tr '\n' ' '))"
        bad+=("$d")
        continue
      fi
      list+=("$d")
    done
    name=$(newest_ckpt "$W/$f")
    [ -n "$name" ] && newest["$W/$f/$name"]=$f
  done
  for d in "${list[@]}"; do
    key_of[$d]=$(model_key "$d")
    [ -n "${node_ok["$d ${key_of[$d]}"]:-}" ] || to_node+=("$d")
    [ -n "${cpp_ok["$d ${key_of[$d]}"]:-}" ] || to_cpp+=("$d")
  done
  local node_pid=
  if [ ${#to_node[@]} -gt 0 ]; then
    timeout 120 "$node" "$node_dir/load_check.js" "${to_node[@]}" > "$W/node.out" 2>&1 &
    node_pid=$!
  fi
  # Our loader, all folders at once (two cores): `summary` loads a model
  # folder; --resume takes the newest complete checkpoint, loading all of it
  # (--epochs 1 trains no more: these are end-of-epoch checkpoints of epoch 2
  # or later, so it writes nothing).
  local i=0 pids=() logs=()
  for d in "${to_cpp[@]}"; do
    i=$((i + 1))
    logs+=("$W/check.$i")
    if [ -n "${newest[$d]:-}" ]; then
      timeout 60 "$train" "${common[@]}" --test-limit 10 --epochs 1 \
        --checkpoint-dir "$W/${newest[$d]}" --resume > /dev/null 2> "$W/check.$i" &
    else
      timeout 60 "$train" summary --model "$d" > /dev/null 2> "$W/check.$i" &
    fi
    pids+=($!)
  done
  i=0
  for d in "${to_cpp[@]}"; do
    if ! wait "${pids[$i]}"; then
      fail "kill $k: our loader refuses ${d#"$W"/}$([ -n "${newest[$d]:-}" ] && echo " (--resume on ${newest[$d]})"): $(grep -v '^\[debug\]' "${logs[$i]}" | tail -n 2 | tr '\n' ' ')"
      bad+=("$d")
    elif [ -n "${newest[$d]:-}" ] && ! grep -q "starting from $d\$" "${logs[$i]}"; then
      fail "kill $k: --resume on ${newest[$d]} did not take ${d##*/}: $(grep -v '^\[debug\]' "${logs[$i]}" | tail -n 3 | tr '\n' ' ')"
      bad+=("$d")
    else
      cpp_ok["$d ${key_of[$d]}"]=1
    fi
    i=$((i + 1))
  done
  if [ -n "$node_pid" ]; then
    wait "$node_pid"
    for d in "${to_node[@]}"; do
      if grep -q "^OK $d " "$W/node.out"; then
        node_ok["$d ${key_of[$d]}"]=1
      else
        fail "kill $k: TF.js: $(grep -m1 "^FAIL $d:" "$W/node.out" || tail -n 2 "$W/node.out" | tr '\n' ' ')"
        bad+=("$d")
      fi
    done
  fi
  for f in M R; do [ -f "$W/$f/model.json" ] && had_model[$f]=1; done
  if [ ${#bad[@]} -gt 0 ]; then
    save_failure_state "$k"
    # Remove what is broken so that later kills test something new.
    for b in "${bad[@]}"; do rm -rf "$b"; done
    for f in M R; do [ -f "$W/$f/model.json" ] || unset 'had_model[$f]'; done
  fi
}

# ---- Set-up: reference models and measured lengths -------------------------
mkdir -p "$W/M" "$W/R"
if ! "$node" "$node_dir/make_reference_model.js" "$W/S0" --arch small-convnet --count 1 \
     > "$W/setup.txt" 2>&1; then
  cat "$W/setup.txt"; echo "FAIL: could not make the small TF.js model"; exit 1
fi
: > "$W/run.out"; : > "$W/run.err"
(traced "$W/trace.train" "$train" "${common[@]}" --test-limit 100 --log-level debug --epochs 4 \
  --checkpoint-dir "$W/setup-ck" --model-save-path "$W/B0") > "$W/run.out" 2> "$W/run.err" &
pid=$!
read -r len_a ck_a fin_a < <(timeline "$pid" "$W/run.err" "$W/run.out")
wait "$pid" || { cat "$W/run.err"; echo "FAIL: set-up training run"; exit 1; }
: > "$W/run.out"; : > "$W/run.err"
(traced "$W/trace.replace" "$train" "${common[@]}" --test-limit 100 --log-level debug --epochs 1 \
  --model-load-path "$W/B0" --checkpoint-dir "$W/setup-ck2" --model-save-path "$W/setup-R") \
  > "$W/run.out" 2> "$W/run.err" &
pid=$!
read -r len_b ck_b fin_b < <(timeline "$pid" "$W/run.err" "$W/run.out")
wait "$pid" || { cat "$W/run.err"; echo "FAIL: set-up replace run"; exit 1; }
rm -rf "$W/setup-ck" "$W/setup-ck2" "$W/setup-R"
ck_ms=$(( (ck_a > ck_b ? ck_a : ck_b) * 3 / 2 + 5 ))
fin_ms=$(( (fin_a > fin_b ? fin_a : fin_b) * 3 / 2 + 5 ))
win_a=$len_a win_b=$(( len_b * 11 / 10 ))
echo "measured: train run (4 epochs) ${len_a} ms, replace run ${len_b} ms, checkpoint write <= ${ck_a}/${ck_b} ms, final save ${fin_a}/${fin_b} ms"
echo "kill windows: uniform over 0..${win_a} ms (train) / 0..${win_b} ms (replace); targeted: 0..${ck_ms} ms after a checkpoint write starts, 0..${fin_ms} ms after the final save starts"
modes=2
if [ "$have_strace" = 1 ]; then
  modes=3
  calls_a=$(call_counts "$W/trace.train") calls_b=$(call_counts "$W/trace.replace")
  echo "syscall kills: calls in the set-up runs: train ${calls_a}; replace ${calls_b}"
else
  echo "strace not found: no syscall kills"
fi

# ---- The kills ----------------------------------------------------------------
declare -A where=() by_mode=()
runs=0 killed=0 exited=0 a_done=0 b_done=0 a_last_completed=1
start_all=$(now_ms)
for ((k = 1; k <= kills; k++)); do
  if [ $((RANDOM % 2)) = 0 ]; then
    kind=train
    args=("${common[@]}" --test-limit 100 --log-level debug --epochs $epochs_a
          --checkpoint-dir "$W/C" --model-save-path "$W/M")
    newest=$(newest_ckpt "$W/C")
    if [ -n "$newest" ] && [ "$a_last_completed" = 0 ]; then
      args+=(--resume)
      left=$(( epochs_a - 10#${newest:5:6} + 1 ))
      desc="train --resume from $newest"
    else
      if [ -n "$newest" ] && [ $((RANDOM % 2)) = 0 ]; then rm -rf "$W/C"; fi
      left=$epochs_a
      desc="train afresh ($(complete_ckpts "$W/C" | wc -l) old checkpoints)"
    fi
    win=$win_a target=M
  else
    kind=replace
    srcs=(S0 B0)
    [ -f "$W/R/model.json" ] && srcs+=(R)
    src=${srcs[$((RANDOM % ${#srcs[@]}))]}
    args=("${common[@]}" --test-limit 100 --log-level debug --epochs 1 --model-load-path "$W/$src"
          --checkpoint-dir "$W/CR" --model-save-path "$W/R")
    # One weights.bin, or shards (6 or 3 files of the full convnet), so that
    # a replacement may also change which files the model is made of.
    shard=${shard_sizes[$((RANDOM % ${#shard_sizes[@]}))]}
    [ "$shard" != 0 ] && args+=(--weight-shard-size "$shard")
    left=1
    desc="replace R ($( [ -f "$W/R/model.json" ] && grep -q '"units":64' "$W/R/model.json" && echo small || { [ -f "$W/R/model.json" ] && echo full || echo none; }), $(weight_paths "$W/R" | wc -w) weight files) from $src$([ "$shard" != 0 ] && echo " in shards of $shard bytes")"
    win=$win_b target=R
  fi
  before_m=$(model_key "$W/M") before_r=$(model_key "$W/R")
  [ "$target" = M ] && before_key=$before_m || before_key=$before_r
  unset extra_before
  declare -A extra_before=()
  for f in M R C CR; do
    while IFS= read -r e; do [ -n "$e" ] && extra_before["$f/$e"]=1; done < <(extra_entries "$f")
  done

  : > "$W/run.out"; : > "$W/run.err"
  mode=$((RANDOM % modes))
  if [ "$mode" = 2 ]; then
    read -r call nth < <(pick_call "$([ "$kind" = train ] && echo "$calls_a" || echo "$calls_b")")
    strace -qq -o /dev/null -e trace="$call" -e inject="$call:signal=KILL:when=$nth" \
      "$train" "${args[@]}" > "$W/run.out" 2> "$W/run.err" &
  else
    "$train" "${args[@]}" > "$W/run.out" 2> "$W/run.err" &
  fi
  pid=$!
  if [ "$mode" = 2 ]; then
    if follow "$pid" "$W/run.err" "$W/run.out" none 1 60000; [ $? = 2 ]; then
      # Still running after a minute: end the traced run itself, not only strace.
      for c in $(pgrep -P "$pid"); do kill -KILL "$c" 2>/dev/null; done
    fi
    how="before $call call $nth" mode_name=syscall
  elif [ "$mode" = 0 ]; then
    delay=$(rand "$win")
    pause "$(ms_to_s "$delay")"
    how="at $(ms_to_s "$delay") s" mode_name=uniform
  else
    tkind=ckpt n=$(( 1 + RANDOM % (left < 1 ? 1 : left < 3 ? left : 3) ))
    if [ "$left" -le 0 ] ||
       { { [ "$kind" = replace ] || [ "$left" -le 3 ]; } && [ $((RANDOM % 2)) = 0 ]; }; then
      tkind=final n=1
    fi
    follow "$pid" "$W/run.err" "$W/run.out" "$tkind" "$n" 20000
    delay=$(rand $([ "$tkind" = final ] && echo "$fin_ms" || echo "$ck_ms"))
    pause "$(ms_to_s "$delay")"
    how="$delay ms after $([ "$tkind" = final ] && echo "the final save began" || echo "epoch line $n")"
    mode_name=targeted
  fi
  kill -KILL "$pid" 2>/dev/null
  { wait "$pid"; } 2>/dev/null
  rc=$?
  runs=$((runs + 1))
  by_mode[$mode_name]=$(( ${by_mode[$mode_name]:-0} + 1 ))

  # Where it landed, from its logs and the leftovers.
  epochs_logged=$(grep -c '\] Epoch [0-9]' "$W/run.err")
  ckpts_logged=$(grep -c 'checkpoint: ' "$W/run.err")
  if [ "$rc" != 137 ]; then
    moment="exited before the kill (exit $rc)"
    exited=$((exited + 1))
    if [ "$rc" != 0 ]; then
      fail "kill $k: $desc exited with $rc: $(grep -v '^\[debug\]' "$W/run.err" | tail -n 2 | tr '\n' ' ')"
    fi
    if [ "$kind" = train ]; then a_last_completed=1 a_done=$((a_done + 1)); else b_done=$((b_done + 1)); fi
  else
    killed=$((killed + 1))
    [ "$kind" = train ] && a_last_completed=0
    if ! grep -q '\] device: ' "$W/run.err"; then
      moment="start-up (loading)"
    elif grep -q '^Evaluation result' "$W/run.out" && ! grep -q '\] saved ' "$W/run.err"; then
      if [ "$(model_key "$W/$target")" = "$before_key" ]; then
        moment="final save (old model in place)"
      else
        moment="final save (new model in place)"
      fi
    elif [ "$epochs_logged" -gt "$ckpts_logged" ]; then
      moment="checkpoint write"
    elif grep -q '\] saved ' "$W/run.err"; then
      moment="after the final save"
    else
      moment="training/evaluation"
    fi
  fi
  new_left=()
  for f in M R C CR; do
    while IFS= read -r e; do
      [ -n "$e" ] && [ -z "${extra_before["$f/$e"]:-}" ] && new_left+=("$f/$e")
    done < <(extra_entries "$f")
  done
  # Old or new: only the run's target changes, and only once it got to its
  # final save.
  after_m=$(model_key "$W/M") after_r=$(model_key "$W/R")
  for f in M R; do
    [ "$f" = M ] && b=$before_m a=$after_m || b=$before_r a=$after_r
    [ "$a" = "$b" ] && continue
    if [ "$f" != "$target" ]; then
      fail "kill $k: $f changed in a run that saves to $target"
    elif ! grep -q '^Evaluation result' "$W/run.out"; then
      fail "kill $k: $f changed before the run got to its final save"
    fi
  done
  detail=
  for e in "${new_left[@]}"; do
    pat=$(echo "$e" | sed -E 's/[0-9]+/N/g')
    leftover_seen["$pat"]=$(( ${leftover_seen["$pat"]:-0} + 1 ))
    detail="$detail $pat"
  done
  if [[ $moment == "checkpoint write" ]]; then
    case "$detail" in
      *C*/.tmp-ckpt*) moment="checkpoint write (temporary folder)" ;;
      *C*/.old-ckpt*) moment="checkpoint write (replacing or pruning an old one)" ;;
      *) moment="checkpoint write (rename or pruning)" ;;
    esac
  fi
  if [[ $moment == "final save"* ]]; then
    weights=$(weight_paths "$W/$target")
    [[ $weights == *weights.new-* ]] &&
      moment="$moment, model.json names $(echo "$weights" | sed -E 's/[0-9]+/N/g' | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')"
  fi
  where["$moment"]=$(( ${where["$moment"]:-0} + 1 ))
  echo "kill $k: $desc, $how: $moment${detail:+; new leftovers:$detail}"
  check_all "$k"
done
total_s=$(( ($(now_ms) - start_all) / 1000 ))

echo
echo "=== $runs runs in ${total_s} s: $killed killed, $exited ended before the kill (train runs completed: $a_done, replace runs: $b_done)"
echo "kill moments picked: uniform ${by_mode[uniform]:-0}, targeted ${by_mode[targeted]:-0}, syscall ${by_mode[syscall]:-0}"
echo "where the kills landed:"
for m in "${!where[@]}"; do printf '  %4d  %s\n' "${where[$m]}" "$m"; done | sort -k2
if [ ${#leftover_seen[@]} -gt 0 ]; then
  echo "leftovers (how many kills left one):"
  for p in "${!leftover_seen[@]}"; do printf '  %4d  %s\n' "${leftover_seen[$p]}" "$p"; done | sort -k2
else
  echo "leftovers: none"
fi
echo "left at the end:"
for f in M R C CR; do echo "  $f: $(ls -A "$W/$f" 2>/dev/null | tr '\n' ' ')"; done
[ "$runs" = "$kills" ] || fail "only $runs of $kills runs were done"
if [ "$failures" -gt 0 ] || [ "$killed" -eq 0 ]; then
  echo "$failures failure(s):"
  for t in "${failure_text[@]}"; do echo "  $t"; done
  echo "work folder kept: $W"
  echo FAIL
  exit 1
fi
[ "$keep_work" = 1 ] || rm -rf "$W"
echo PASS
