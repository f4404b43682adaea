#!/usr/bin/env bash
# A folder of pictures through one command against one command per picture (warm compilation cache), and a
# style-weight sweep: the "Many pictures" rows of BENCHMARKS.md.  Run from the repository root:
#   bash experiments/many_pictures.sh [SIZE] [ITERS]
set -euo pipefail
SIZE=${1:-256}; ITERS=${2:-40}
NST=.venv/bin/nst-jax
S=../shared/images/starry_night.jpg
P=../shared/datasets/photos-extra
W=$(mktemp -d)
mkdir -p "$W/in" "$W/sweep"
for n in 13 16 30 41; do cp "$P/deep-photo-style-input-in$n.jpg" "$W/in/"; done  # 683x512, never trained on
head -c 2000 "$P/deep-photo-style-input-in5.jpg" > "$W/in/broken.jpg"
t() { local s; s=$(date +%s.%N); "$@" > /dev/null 2>&1 || true; echo "$(echo "$(date +%s.%N) - $s" | bc)"; }
for m in stylize adain; do
  extra=(); [ "$m" = stylize ] && extra=(--iters "$ITERS")
  # fill the compilation cache with both programs (a batch of 4, one picture): every timed run loads them
  t $NST $m "$W/in" $S -o "$W/warm_$m" --size "$SIZE" "${extra[@]}" --quiet > /dev/null
  t $NST $m "$W/in/deep-photo-style-input-in13.jpg" $S -o "$W/warm_$m.png" --size "$SIZE" "${extra[@]}" --quiet \
    > /dev/null
  folder=$(t $NST $m "$W/in" $S -o "$W/folder_$m" --size "$SIZE" "${extra[@]}" --quiet)
  singles=0
  for f in "$W"/in/deep-*.jpg; do
    s=$(t $NST $m "$f" $S -o "$W/single_${m}_$(basename "$f" .jpg).png" --size "$SIZE" "${extra[@]}" --quiet)
    singles=$(echo "$singles + $s" | bc)
  done
  echo "$m: folder ${folder}s, 4 single commands ${singles}s, ratio $(echo "scale=3; $folder / $singles" | bc)"
done
cp "$P/deep-photo-style-input-in13.jpg" "$W/sweep/"
$NST stylize "$W/sweep/deep-photo-style-input-in13.jpg" $S -o "$W/sweep_out" --size "$SIZE" --iters "$ITERS" \
  --style-weight 20,100,500 --quiet
echo "outputs in $W"
