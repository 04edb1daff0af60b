#!/usr/bin/env bash
# Prepares the real-GPU run (benches/gpu/run.sh) on a machine without a GPU: builds the x86-64
# release binary and test executables, packs them with the Vulkan/EGL loaders and the subset of
# ../shared each phase needs into two ignored folders, each within the device tool's 64 MiB carry
# limit:
#   .gpu/a  phase "check": binaries, loaders, scream + wave (f32), VGG19's conv shards, goldens
#   .gpu/b  phase "train": the nine styles as f16 safetensors (precision test), public-domain
#           paintings, a subset of train256
# Usage: benches/gpu/prepare.sh [SHARED]   (default $WGSTYLE_SHARED or ../shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${1:-${WGSTYLE_SHARED:-../shared}}
[ -d "$shared/golden" ] || { echo "prepare: $shared has no golden/ (pass the shared folder)" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "prepare: the GPU machine is x86-64; build there or on x86-64" >&2; exit 1; }
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/a/bin .gpu/a/shared .gpu/b/shared
tests=(kernels golden_transform golden_grad gatys precision)

# PROFILE=dev for a quick dry run on lavapipe (debug binaries; far over the carry limit unstripped).
profile=${PROFILE:-release}
tdir=$([ "$profile" = dev ] && echo debug || echo "$profile")
echo "== building ($profile) =="
cargo build --profile "$profile" --locked --bin wgstyle
cargo test --profile "$profile" --locked --no-run --message-format=json "${tests[@]/#/--test=}" \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' > .gpu/tests.txt
cp "target/$tdir/wgstyle" .gpu/a/bin/
while read -r name exe; do cp "$exe" ".gpu/a/bin/test-$name"; done < .gpu/tests.txt
strip .gpu/a/bin/wgstyle .gpu/a/bin/test-*
# The precision test runs in phase 2; executables travel xz-compressed (about a third the size).
mkdir -p .gpu/b/bin && mv .gpu/a/bin/test-precision .gpu/b/bin/
XZ_OPT=-6T2 tar -C .gpu/b -cJf .gpu/b/bin.tar.xz bin && rm -r .gpu/b/bin
cp benches/torch_transform.py benches/tf_transform.py benches/torch_gatys.py benches/torch_train_step.py .gpu/a/bin/
XZ_OPT=-6T2 tar -C .gpu/a -cJf .gpu/a/bin.tar.xz bin && rm -r .gpu/a/bin

echo "== Vulkan and EGL loaders (.deb, amd64) =="
mkdir -p .gpu/a/deb /tmp/wgstyle-apt-amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/wgstyle-apt-amd64'
apt-get $o update -qq
(cd .gpu/a/deb && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

echo "== shared subset =="
a=.gpu/a/shared
mkdir -p $a/weights/styles $a/weights/vgg19-tfjs $a/golden/transform
cp -r "$shared/weights/styles/scream" "$shared/weights/styles/wave" $a/weights/styles/
cp "$shared/weights/vgg19-tfjs/model.json" $a/weights/vgg19-tfjs/
for i in $(seq 1 20); do cp "$shared"/weights/vgg19-tfjs/group1-shard${i}of*.bin $a/weights/vgg19-tfjs/; done
cp "$shared"/golden/transform/{scream,wave}_* "$shared"/golden/transform/input_* $a/golden/transform/
cp -r "$shared/golden/grad" "$shared/golden/gatys" $a/golden/
cp "$shared/golden/README.md" $a/golden/
mkdir -p $a/images/content && cp "$shared/images/content/chicago.jpg" $a/images/content/

b=.gpu/b/shared
mkdir -p $b/weights/styles $b/images/style $b/images/content $b/train256 $b/golden
cp "$shared/images/content/chicago.jpg" $b/images/content/
for s in "$shared"/weights/styles/*/; do
  n=$(basename "$s")
  # A safetensors file where the tests expect the checkpoint directory: load_transform reads either.
  "target/$tdir/wgstyle" convert --f16 "$s" "$b/weights/styles/$n"
done
for p in the_scream wave starry_night the_shipwreck_of_the_minotaur; do
  cp "$shared"/images/style/$p.* $b/images/style/
done
# The first 300 photos by name: CC BY 2.0 ones (nips17_*) and the rest alike, for training only.
mapfile -t photos < <(ls "$shared/train256" | grep -iE '\.(jpe?g|png)$')
for f in "${photos[@]:0:300}"; do cp "$shared/train256/$f" $b/train256/; done
cp "$shared"/train256-meta/* $b/ 2>/dev/null || true

for d in .gpu/a .gpu/b; do
  mib=$(du -sm $d | cut -f1)
  echo "$d: ${mib} MiB"
  [ "$profile" != release ] || [ "$mib" -le 60 ] || { echo "prepare: $d is over the 64 MiB carry limit" >&2; exit 1; }
done
echo "ready: see benches/gpu/README.md for the two device calls"
