#!/usr/bin/env bash
# A folder of pictures through one command against one command per picture (warm compilation cache), and a
# style-weight sweep: the "Many pictures" rows of BENCHMARKS.md.  Run from the repository root:
#   bash experiments/many_pictures.sh [SIZE] [ITERS]
#   bash experiments/many_pictures.sh --smoke     # (or SMOKE=1) 32 px, one picture, no warm-up, adain only:
#                                                 # its folder command and its single command (not stylize,
#                                                 # not the sweep); a failing command fails the script
# NST: the nst-jax command (default .venv/bin/nst-jax).
set -euo pipefail
SMOKE=${SMOKE:-}
if [ "${1:-}" = --smoke ]; then SMOKE=1; shift; fi
SIZE=${1:-256}; ITERS=${2:-40}
PICTURES=(13 16 30 41)
METHODS=(stylize adain)
if [ -n "$SMOKE" ]; then SIZE=32; ITERS=2; PICTURES=(13); METHODS=(adain); fi
NST=${NST:-.venv/bin/nst-jax}
S=../shared/images/starry_night.jpg
P=../shared/datasets/photos-extra
W=$(mktemp -d)
mkdir -p "$W/in" "$W/sweep"
for n in "${PICTURES[@]}"; do cp "$P/deep-photo-style-input-in$n.jpg" "$W/in/"; done  # 683x512, never trained on
head -c 2000 "$P/deep-photo-style-input-in5.jpg" > "$W/in/broken.jpg"
t() {  # the command's seconds; its failure is ignored (the folder holds a broken file), but a smoke run stops
  # at a crash (a traceback, or an exit status other than 1, the one of an input that could not be read)
  local s rc=0; s=$(date +%s.%N)
  "$@" > /dev/null 2> "$W/stderr" || rc=$?
  if [ -n "$SMOKE" ] && { [ "$rc" -gt 1 ] || grep -q Traceback "$W/stderr"; }; then cat "$W/stderr" >&2; return 1; fi
  echo "$(echo "$(date +%s.%N) - $s" | bc)"
}
for m in "${METHODS[@]}"; do
  extra=(); [ "$m" = stylize ] && extra=(--iters "$ITERS")
  if [ -z "$SMOKE" ]; then
    # fill the compilation cache with both programs (a batch of 4, one picture): every timed run loads them
    t $NST $m "$W/in" $S -o "$W/warm_$m" --size "$SIZE" "${extra[@]}" --quiet > /dev/null
    t $NST $m "$W/in/deep-photo-style-input-in13.jpg" $S -o "$W/warm_$m.png" --size "$SIZE" "${extra[@]}" --quiet \
      > /dev/null
  fi
  folder=$(t $NST $m "$W/in" $S -o "$W/folder_$m" --size "$SIZE" "${extra[@]}" --quiet)
  singles=0
  for f in "$W"/in/deep-*.jpg; do
    s=$(t $NST $m "$f" $S -o "$W/single_${m}_$(basename "$f" .jpg).png" --size "$SIZE" "${extra[@]}" --quiet)
    singles=$(echo "$singles + $s" | bc)
  done
  echo "$m: folder ${folder}s, ${#PICTURES[@]} single commands ${singles}s, ratio $(echo "scale=3; $folder / $singles" | bc)"
done
if [ -z "$SMOKE" ]; then
  cp "$P/deep-photo-style-input-in13.jpg" "$W/sweep/"
  $NST stylize "$W/sweep/deep-photo-style-input-in13.jpg" $S -o "$W/sweep_out" --size "$SIZE" --iters "$ITERS" \
    --style-weight 20,100,500 --quiet
fi
echo "outputs in $W"
