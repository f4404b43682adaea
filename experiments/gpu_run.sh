#!/bin/bash
# The GPU benchmarks and training on a GPU machine, as one command: the GPU rows of BENCHMARKS.md, then
# training that continues the shipped networks.  Inputs travel in .gpu/ (experiments/gpu_pack.py); what
# comes back is written under $OUT.
#
#   bash experiments/gpu_run.sh bench            # benchmarks + 40 s training smoke runs (img/s)
#   bash experiments/gpu_run.sh gatys            # only the Gatys row (JAX vs PyTorch, 512 px / 300 iterations)
#   bash experiments/gpu_run.sh many             # pictures per second against batch size (Gatys 512 px / 300
#                                                   # iterations beside PyTorch in a loop; AdaIN, fast), ~6 min
#   bash experiments/gpu_run.sh train A F        # AdaIN for A seconds, then the 4-style network for F seconds
#   bash experiments/gpu_run.sh cin F            # only the 4-style network, F seconds
#   bash experiments/gpu_run.sh sanet S          # SANet for S seconds: a new transform on the shipped AdaIN
#                                                   # decoder, or SANET_INIT (a sanet.npz) continued
#   bash experiments/gpu_run.sh cinbest F        # the same, and also brings back the network of the
#                                                   # checkpoint whose preceding 500 steps had the lowest mean loss
#   bash experiments/gpu_run.sh diag             # experiments/gatys_gpu_diagnosis.py (objective and trajectories,
#                                                   # TF32 on/off; AUTOTUNE0=1 adds XLA's autotune level 0)
#
# ADAIN_EXTRA / CIN_EXTRA / SANET_EXTRA: more training options, e.g. CIN_EXTRA="--lr-decay 2e-4 --clip-grad-norm 50" (what
# the shipped four-painting network was trained with after a loss spike at a constant lr 1e-3).
#
# SMOKE=1 (or --smoke as the first argument, the phase then defaulting to bench) shrinks everything: a CPU dry
# run of the script itself in a temporary folder (a tiny pack built there by gpu_pack.py --smoke, $OUT); the
# benchmark scripts only started in phase bench (each has its own --smoke: here their --help, all three in one
# process with the version line), run with --smoke in the other phases; training 2 steps on 32 px crops (the
# 4-style network's paintings at 32 px); PYTHON defaults to .venv's.  The smoke run of phase bench covers the
# pack, its unpacking and one tiny run of each training (AdaIN, the 4-style network); not the other phases.
#
# What travels is the tracked tree plus .gpu, 64 MiB at most: .gpu is ~46 MiB, so keep experiments/results
# (~9 MiB of grids and logs) off the transfer, then restore the index:
#   git rm -r -q --cached experiments/results && echo /experiments/results/ >> .git/info/exclude
#   ... the device calls ...
#   git reset -q && sed -i '\|^/experiments/results/$|d' .git/info/exclude
set -u
cd "$(dirname "$0")/.."
SMOKE=${SMOKE:-}
if [ "${1:-}" = --smoke ]; then SMOKE=1; shift; set -- "${1:-bench}" "${@:2}"; fi
CALLER_HOME=${NST_JAX_HOME:-}  # (a smoke run packs the weights of the caller's nst_jax cache)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NST_JAX_HOME=/tmp/nst_jax_home
OUT=${OUT:-/tmp/device_out}
P=$PWD/.gpu
PY=${PYTHON:-python3}
SM=()  # the scripts' own smoke option
if [ -n "$SMOKE" ]; then
    W=$(mktemp -d)
    export NST_JAX_HOME=$W/home OUT=$W/out CROP=32 BATCH=2 FCROP=32 FBATCH=2 SMOKE_T=300 SMOKE_STEPS=2
    P=$W/gpu
    [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY=$PWD/.venv/bin/python
    SM=(--smoke)
fi
mkdir -p "$OUT" "$NST_JAX_HOME"
LOG=$OUT/log_${1}.txt
exec > >(tee -a "$LOG") 2>&1
echo "== $(date -u) phase $1"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
if [ -n "$SMOKE" ]; then
    # packs, then unpacks; the weights from the caller's cache (the fresh home would fetch them anew)
    NST_JAX_HOME=$CALLER_HOME "$PY" experiments/gpu_pack.py --smoke "$P" || exit 1
else
    "$PY" experiments/gpu_pack.py --unpack "$P" || exit 1
fi
export NST_JAX_WEIGHTS=$P/vgg19_full.npz NST_SHARED_IMAGES=$P/images
VERSIONS="import jax, torch; print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__, torch.cuda.is_available())"
[ -z "$SMOKE" ] && "$PY" -c "$VERSIONS"  # (a smoke run prints it from the process that starts the benchmarks)
HELD=(--exclude vincent-van-gogh-the-starry-night.jpg --exclude edvard-munch-the-scream.jpg
      --exclude j-m-w-turner-the-shipwreck-of-the-minotaur.jpg --exclude henri-matisse-woman-with-a-hat.jpg)

adain() {  # seconds, ckpt dir, extra
    local t=$1 dir=$2; shift 2
    timeout -s INT "$t" "$PY" -m nst_jax train adain --init-from shipped --content-dir "$P/photos" \
        --style-dir "$P/styles" "${HELD[@]}" --crop "${CROP:-192}" --resize 256 --batch-size "${BATCH:-16}" \
        --warmup 100 --cache-images --ckpt-dir "$dir" --steps 1000000 --ckpt-every 1000 --log-every 50 "$@"
}
cin() {
    local t=$1 dir=$2; shift 2
    timeout -s INT "$t" "$PY" -m nst_jax train fast --style "$P/images/starry_night.jpg" \
        "$P/images/the_scream.jpg" "$P/images/shipwreck.jpg" "$P/images/woman-with-hat-matisse.jpg" \
        --init-from "${CIN_INIT:-nst_jax/models/fast_four_paintings.npz}" --style-norm photos --style-weight 21.3 --tv-weight 1 \
        --content-layers relu2_2 relu4_2 --content-dir "$P/photos" --crop "${FCROP:-256}" --resize 384 \
        --batch-size "${FBATCH:-16}" --warmup 100 --cache-images --ckpt-dir "$dir" --steps 1000000 \
        --ckpt-every 500 --log-every 50 "$@"
}
sanet() {
    local t=$1 dir=$2; shift 2
    local init=(--decoder-from shipped)
    [ -n "${SANET_INIT:-}" ] && init=(--init-from "$SANET_INIT")
    timeout -s INT "$t" "$PY" -m nst_jax train sanet "${init[@]}" --content-dir "$P/photos" \
        --style-dir "$P/styles" "${HELD[@]}" --crop "${SCROP:-256}" --resize 512 --batch-size "${SBATCH:-8}" \
        --warmup 100 --cache-images --ckpt-dir "$dir" --steps 1000000 --ckpt-every 1000 --log-every 50 "$@"
}

if [ "$1" = bench ]; then
    R=experiments/results
    if [ -n "$SMOKE" ]; then  # their own --smoke runs are tested apart: here, that each starts (one process)
        "$PY" - bench_gatys bench_adain bench_fast <<PYEOF || exit 1
$VERSIONS
import contextlib, io, runpy, sys
sys.path.insert(0, "experiments")
for b in sys.argv[1:]:
    sys.argv = [f"experiments/{b}.py", "--help"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code:
            raise
    print(f"smoke: experiments/{b}.py starts (run it with --smoke for a tiny run)")
PYEOF
        T=$W
    else
        timeout 170 "$PY" experiments/bench_gatys.py --sizes 512 --iters 300 --repeats 3 --no-wolfe
        timeout 90 "$PY" experiments/bench_adain.py --repeats 10
        timeout 60 "$PY" experiments/bench_fast.py --repeats 10
        T=/tmp
        tar czf "$OUT/bench_results.tgz" $R/gpu/*.json 2>/dev/null
    fi
    adain "${SMOKE_T:-45}" $T/smoke_adain --steps "${SMOKE_STEPS:-1000000}"
    cin "${SMOKE_T:-45}" $T/smoke_cin --steps "${SMOKE_STEPS:-1000000}" ${SMOKE:+--style-size 32}
    tail -n 3 $T/smoke_adain/metrics.jsonl $T/smoke_cin/metrics.jsonl || exit 1
elif [ "$1" = gatys ]; then
    timeout "${GATYS_T:-110}" "$PY" experiments/bench_gatys.py --sizes 512 --iters 300 --repeats "${REPEATS:-2}" --no-wolfe \
        "${SM[@]}"
    tar czf "$OUT/gatys_results.tgz" experiments/results/gpu/bench_gatys*.json 2>/dev/null
elif [ "$1" = many ]; then
    timeout "${MANY_T:-540}" "$PY" experiments/batch_throughput.py --gatys-size "${MANY_SIZE:-512}" --iters "${MANY_ITERS:-300}" \
        --net-size "${MANY_SIZE:-512}" --batches ${MANY_BATCHES:-1 4 8 16} --torch --photos "$P/photos" "${SM[@]}"
    cp experiments/results/gpu/batch_throughput_*.json "$OUT/" 2>/dev/null
elif [ "$1" = cin ]; then
    cin "$2" /tmp/cin2 ${CIN_EXTRA:-}
    cp /tmp/cin2/model.npz "$OUT/cin4_model.npz"; cp /tmp/cin2/metrics.jsonl "$OUT/cin4_metrics.jsonl"
elif [ "$1" = sanet ]; then
    sanet "$2" /tmp/sanet ${SANET_EXTRA:-}
    cp /tmp/sanet/sanet.npz "$OUT/sanet.npz"; cp /tmp/sanet/metrics.jsonl "$OUT/sanet_metrics.jsonl"
elif [ "$1" = diag ]; then
    timeout "${DIAG_T:-200}" "$PY" experiments/gatys_gpu_diagnosis.py --size "${DIAG_SIZE:-512}" --iters "${DIAG_ITERS:-300}" \
        "${SM[@]}"
    [ -n "${AUTOTUNE0:-}" ] && XLA_FLAGS=--xla_gpu_autotune_level=0 timeout "${DIAG_T2:-90}" "$PY" \
        experiments/gatys_gpu_diagnosis.py --size "${DIAG_SIZE:-512}" --iters "${DIAG_ITERS:-300}" \
        --tag autotune0 --jax-only --precisions default "${SM[@]}"
    tar czf "$OUT/diag_results.tgz" experiments/results/gpu/gatys_gpu_diagnosis_* 2>/dev/null
elif [ "$1" = cinbest ]; then
    # every checkpoint exports model.npz (atomically); keep a copy of each, named by the step in its metadata
    snapshots() {
        local last="" m step
        mkdir -p /tmp/cin_snap
        while sleep 1; do
            [ -f /tmp/cinb/model.npz ] || continue
            m=$(stat -c %y /tmp/cinb/model.npz)
            [ "$m" = "$last" ] && continue
            last=$m
            cp /tmp/cinb/model.npz /tmp/cin_snap/tmp.npz || continue
            step=$("$PY" -c "import json, sys, numpy as np; print(json.loads(str(np.load(sys.argv[1])['__meta__']))['step'])" /tmp/cin_snap/tmp.npz) && mv /tmp/cin_snap/tmp.npz "/tmp/cin_snap/model_$step.npz"
        done
    }
    snapshots & SNAP=$!
    cin "$2" /tmp/cinb ${CIN_EXTRA:-}
    sleep 3; kill $SNAP
    "$PY" - "$OUT" <<'PYEOF'
import glob, json, re, shutil, sys
recs = [json.loads(l) for l in open("/tmp/cinb/metrics.jsonl")]
snaps = {int(re.search(r"model_(\d+)", p).group(1)): p for p in glob.glob("/tmp/cin_snap/model_*.npz")}
def window(s):
    v = [r["loss"] for r in recs if s - 500 < r["step"] <= s]
    return sum(v) / len(v) if v else float("inf")
scores = {s: window(s) for s in sorted(snaps)}
print("mean loss of the 500 steps before each checkpoint:", {s: round(v, 4) for s, v in scores.items()})
best = min(scores, key=scores.get)
print("best checkpoint: step", best, "mean loss", scores[best])
shutil.copy(snaps[best], sys.argv[1] + "/cin4_best.npz")
PYEOF
    cp /tmp/cinb/model.npz "$OUT/cin4_model.npz"; cp /tmp/cinb/metrics.jsonl "$OUT/cin4_metrics.jsonl"
elif [ "$1" = train ]; then
    adain "$2" /tmp/adain ${ADAIN_EXTRA:-}
    cp /tmp/adain/decoder.npz "$OUT/adain_decoder.npz"
    cp /tmp/adain/metrics.jsonl "$OUT/adain_metrics.jsonl"
    cin "$3" /tmp/cin ${CIN_EXTRA:-}
    cp /tmp/cin/model.npz "$OUT/cin4_model.npz"
    cp /tmp/cin/metrics.jsonl "$OUT/cin4_metrics.jsonl"
fi
echo "== $(date -u) done"
