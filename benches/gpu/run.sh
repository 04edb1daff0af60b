#!/usr/bin/env bash
# The real-GPU run, on the device machine (see README.md beside this file). Two phases, one device
# call each, everything written to $OUT (at most 8 files come back):
#   run.sh check   adapter facts; correctness tests; wgstyle bench; PyTorch on the same GPU
#   run.sh train   the precision test (nine styles); training the public-domain styles
# The carried folders are .gpu/a (check) and .gpu/b (train), made by prepare.sh. Budget: about
# 6 minutes per phase (TRAIN_SECONDS per style in phase 2).
# DRY_RUN=1 shrinks every workload so that the script can be checked on lavapipe.
set -uo pipefail
dry=${DRY_RUN:-0}
phase=${1:?usage: run.sh check|train}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/.gpu/out}
mkdir -p "$out"
a=$root/.gpu/a b=$root/.gpu/b
bin=$root/.gpu/bin
# Executables travel as bin.tar.xz in each carried folder; unpacked side by side into .gpu/bin.
for d in "$a" "$b"; do [ -f "$d/bin.tar.xz" ] && tar -C "$root/.gpu" -xJf "$d/bin.tar.xz"; done
log() { echo "[$(date +%T)] $*" | tee -a "$out/summary.txt"; }

# Loaders: the machine has the NVIDIA driver but maybe not the Vulkan/EGL loaders.
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in "$a"/deb/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$f" ] && export VK_DRIVER_FILES=$f && break
done
[ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] &&
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export WGSTYLE_CACHE_DIR=$root/.gpu/cache WGPU_BACKEND=${WGPU_BACKEND:-vulkan}
mkdir -p "$WGSTYLE_CACHE_DIR"
# Runs a command under a time limit, its output appended to a log; says pass/fail in summary.txt.
step() {
  local name=$1 secs=$2 logf=$3; shift 3
  local t0=$SECONDS
  echo "=== $name: $*" >> "$out/$logf"
  timeout -k 5 "$secs" "$@" >> "$out/$logf" 2>&1
  local rc=$?
  log "$name: rc=$rc ($((SECONDS - t0)) s)"
}

case $phase in
check)
  log "phase check on $(hostname); $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"
  {
    "$bin/wgstyle" adapters
    nvidia-smi 2>&1 | head -15
    command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>&1 | head -60
  } > "$out/adapters.txt" 2>&1
  export WGSTYLE_SHARED=$a/shared WGSTYLE_GATYS_STEPS=${WGSTYLE_GATYS_STEPS:-200}
  kt=(); [ "$dry" = 1 ] && kt=(winograd) && export WGSTYLE_GATYS_STEPS=3
  step kernels 120 tests.log "$bin/test-kernels" --test-threads=4 "${kt[@]}"
  step golden_transform 60 tests.log "$bin/test-golden_transform" scream wave batch
  step golden_grad 60 tests.log "$bin/test-golden_grad"
  step gatys 90 tests.log "$bin/test-gatys"
  if [ "$dry" = 1 ]; then quick=(--quick --filter conv1); else quick=(); fi
  step bench 150 bench.log "$bin/wgstyle" bench "${quick[@]}" --json "$out/bench.json"
  if python3 -c 'import torch' 2>/dev/null; then
    w=$a/shared/weights/styles/scream
    if [ "$dry" = 1 ]; then dev=(--device cpu) big=64 both=64 gs=64 it=2 tb=(--batch 1 --size 64 --reps 2);
    else dev=() big=1024 both=512,1024 gs=512 it=500 tb=(--batch 4 --size 256); fi
    cd "$bin"
    step torch_transform_f32 60 torch.log python3 torch_transform.py "${dev[@]}" --weights "$w" --sizes "$both" --json "$out/torch_transform_f32.json"
    step torch_transform_cl 60 torch.log python3 torch_transform.py "${dev[@]}" --weights "$w" --sizes "$big" --channels-last
    step torch_gatys 90 torch.log python3 torch_gatys.py "${dev[@]}" --size "$gs" --iterations "$it"
    step torch_train 60 torch.log python3 torch_train_step.py "${dev[@]}" "${tb[@]}"
    cd "$root"
  else
    log "no PyTorch here: the comparison is missing"
  fi
  step optimize_512_500 120 bench.log "$bin/wgstyle" optimize "$a/shared/golden/gatys/content_tubingen_128x128.png" \
    --style-image "$a/shared/golden/gatys/style_starry_night_128x128.png" --size "$([ "$dry" = 1 ] && echo 64 || echo 512)" --optimizer adam \
    --iterations "$([ "$dry" = 1 ] && echo 3 || echo 500)" --vgg "$a/shared/weights/vgg19-tfjs" -o "$root/.gpu/gatys512.png" --force
  ;;
train)
  log "phase train"
  export WGSTYLE_SHARED=$b/shared
  [ "$dry" = 1 ] || step precision 150 precision.log "$bin/test-precision" --test-threads=1
  secs=${TRAIN_SECONDS:-45}
  mkdir -p "$root/.gpu/models"
  for p in the_scream wave starry_night the_shipwreck_of_the_minotaur; do
    img=$(ls "$b"/shared/images/style/$p.* | head -1)
    # SIGINT at the time limit: the last checkpoint (written atomically) is what remains.
    step "train $p" "$secs" train.log "$bin/wgstyle" train --style-image "$img" --dataset "$b/shared/train256" \
      -o "$root/.gpu/models/$p.safetensors" --vgg "$a/shared/weights/vgg19-tfjs" --iterations "$([ "$dry" = 1 ] && echo 20 || echo 100000)" \
      --checkpoint-every "$([ "$dry" = 1 ] && echo 1 || echo 200)" --image-size "$([ "$dry" = 1 ] && echo 64 || echo 256)" --test-image "$a/shared/images/content/chicago.jpg" \
      --log-json "$root/.gpu/models/$p.jsonl" --force
  done
  tar -C "$root/.gpu" -cf "$out/models.tar" models
  ;;
*) echo "run.sh: unknown phase $phase (check|train)" >&2; exit 2 ;;
esac
log "done"
