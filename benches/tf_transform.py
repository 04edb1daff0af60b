#!/usr/bin/env python3
"""TensorFlow reference timing of the fast style network (lengstrom/fast-style-transfer).

The network is lengstrom's `src/transform.py` `net()` written out in TF2 (a `tf.function` with a
static input shape, i.e. one graph, as `evaluate.py` builds it): TF "SAME" zero padding, no conv
biases, instance norm over H×W with biased variance and eps 1e-3 (shift = V(i+1), scale = V(i+2)),
two `conv2d_transpose` (stride 2, SAME, output 2× the input), output `tanh(x)·150 + 255/2`. It loads
the same weights wgstyle's fast path loads: a deeplearnjs checkpoint directory (`manifest.json`,
e.g. ../shared/weights/styles/scream) or a wgstyle `.safetensors` file (`wgstyle convert`).

Usage (from the repository root; `pip install tensorflow-cpu` in a venv):

    python benches/tf_transform.py --weights ../shared/weights/styles/scream --sizes 256,512
    python benches/tf_transform.py --weights ... --check IMAGE.png --wgstyle target/release/wgstyle

Timing: for each size, `--warmup` untimed calls (graph tracing, oneDNN primitive creation), then
`--reps` timed calls on a random 0..255 image; the median (and min..max) in ms and GFLOP/s, with
FLOPs counted exactly like wgstyle (`Arch::flops`: 2 per multiply-add of the convolutions;
66.1 GFLOP at 512²). `--check` runs one image through TF and through `wgstyle` and compares the
8-bit outputs (wgstyle crops to the input size; so does this script).
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np


def layer_specs(width=32):
    """(name, kind, k, cin, cout) of the 16 layers, in wgstyle's order and naming."""
    w = width
    v = [("conv1", "conv1", 9, 3, w), ("conv2", "conv2", 3, w, 2 * w),
         ("conv3", "conv2", 3, 2 * w, 4 * w)]
    for r in range(1, 6):
        for part in "ab":
            v.append((f"res{r}_{part}", "conv1", 3, 4 * w, 4 * w))
    v += [("up1", "up", 3, 4 * w, 2 * w), ("up2", "up", 3, 2 * w, w),
          ("conv_out", "conv1", 9, w, 3)]
    return v


def flops(h, w, width=32):
    """FLOPs of one forward pass, exactly as wgstyle's `Arch::flops`."""
    h2, w2 = -(-h // 2), -(-w // 2)
    q = (-(-h2 // 2)) * (-(-w2 // 2))
    out_px = {"conv1": h * w, "conv2": h2 * w2, "up1": 4 * q, "up2": 16 * q, "conv_out": 16 * q}
    f = 0.0
    for name, kind, k, cin, cout in layer_specs(width):
        px = out_px.get(name, q)
        if kind == "up":
            px /= 4  # a transposed conv applies its taps once per input pixel
        f += 2.0 * px * k * k * cin * cout
    return f


def load_deeplearnjs(d):
    """lengstrom's 48 variables from a deeplearnjs dump: V(i) = Variable_i (TF layouts)."""
    with open(os.path.join(d, "manifest.json")) as f:
        manifest = json.load(f)
    v = []
    for i in range(48):
        name = "Variable" if i == 0 else f"Variable_{i}"
        e = manifest[name]
        a = np.fromfile(os.path.join(d, e["filename"]), dtype="<f4").reshape(e["shape"])
        v.append(a)
    return v


def load_safetensors(path):
    """wgstyle's safetensors (`NAME.kernel` HWIO, transposed kernels as [kh, kw, in, out]),
    returned as lengstrom's 48 variables (transposed kernels back to TF's [kh, kw, out, in])."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    if meta.get("wgstyle.upsample", "transpose") != "transpose" or meta.get("wgstyle.width", "32") != "32":
        sys.exit(f"{path}: only lengstrom's architecture (width 32, transposed convs) is supported")
    data = raw[8 + n:]

    def get(name):
        e = header[name]
        dt = {"F32": "<f4", "F16": "<f2"}[e["dtype"]]
        b, c = e["data_offsets"]
        return np.frombuffer(data[b:c], dtype=dt).astype(np.float32).reshape(e["shape"])

    v = []
    for name, kind, *_ in layer_specs():
        k = get(f"{name}.kernel")
        if kind == "up":
            k = np.ascontiguousarray(k.transpose(0, 1, 3, 2))
        v += [k, get(f"{name}.shift"), get(f"{name}.scale")]
    return v


def load_weights(path):
    if os.path.isdir(path):
        return load_deeplearnjs(path)
    return load_safetensors(path)


def build(tf, v, shape):
    """transform.py's net() on a static [n, h, w, 3] input, as one tf.function graph."""
    V = [tf.constant(a) for a in v]

    def inorm(x, i):
        mu, var = tf.nn.moments(x, [1, 2], keepdims=True)
        return V[i + 1] * ((x - mu) / (var + 1e-3) ** 0.5) + V[i]

    def conv(x, i, stride, relu=True):
        x = tf.nn.conv2d(x, V[i], [1, stride, stride, 1], padding="SAME")
        x = inorm(x, i + 1)
        return tf.nn.relu(x) if relu else x

    def conv_t(x, i):
        n, h, w, _ = x.shape
        cout = V[i].shape[2]
        x = tf.nn.conv2d_transpose(x, V[i], [n, 2 * h, 2 * w, cout], [1, 2, 2, 1], padding="SAME")
        return tf.nn.relu(inorm(x, i + 1))

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)], jit_compile=False)
    def net(x):
        h = conv(x, 0, 1)
        h = conv(h, 3, 2)
        h = conv(h, 6, 2)
        for b in range(5):
            i = 9 + 6 * b
            h = h + conv(conv(h, i, 1), i + 3, 1, relu=False)
        h = conv_t(h, 39)
        h = conv_t(h, 42)
        h = conv(h, 45, 1, relu=False)
        return tf.nn.tanh(h) * 150 + 255.0 / 2

    return net


def time_size(tf, v, size, reps, warmup):
    net = build(tf, v, [1, size, size, 3])
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32))
    for _ in range(warmup):
        net(x).numpy()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        net(x).numpy()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    f = flops(size, size)
    return {"size": size, "ms": ms, "ms_min": min(times), "ms_max": max(times), "reps": reps,
            "gflop": f / 1e9, "gflops": f / ms / 1e6}


def check(tf, v, weights, image, wgstyle):
    """Stylizes `image` with TF and with `wgstyle`; compares the 8-bit outputs."""
    rgb = tf.io.decode_image(tf.io.read_file(image), channels=3, expand_animations=False).numpy()
    h, w, _ = rgb.shape
    net = build(tf, v, [1, h, w, 3])
    raw = net(tf.constant(rgb[None].astype(np.float32))).numpy()[0, :h, :w]
    ours_tf = np.clip(raw, 0, 255).astype(np.uint8)  # lengstrom's save_img: clip, truncate
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.png")
        subprocess.run([wgstyle, "--quiet", "--style", weights, "-o", out, image], check=True)
        theirs = tf.io.decode_png(tf.io.read_file(out), channels=3).numpy()
    diff = np.abs(ours_tf.astype(np.int32) - theirs.astype(np.int32))
    return {"image": image, "size": [w, h], "max_abs_diff": int(diff.max()),
            "mean_abs_diff": float(diff.mean()), "pixels_off_by_more_than_1": int((diff > 1).sum())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="deeplearnjs checkpoint dir or wgstyle .safetensors")
    ap.add_argument("--sizes", default="256,512", help="comma-separated square sizes (default 256,512)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TF's default, all cores)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--check", metavar="IMAGE", help="compare with wgstyle's output on this image")
    ap.add_argument("--wgstyle", default="target/release/wgstyle", help="the wgstyle binary for --check")
    a = ap.parse_args()

    import tensorflow as tf
    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    v = load_weights(a.weights)
    info = {"tensorflow": tf.__version__, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
            "cpus": os.cpu_count(), "threads": a.threads or "default", "weights": a.weights}
    print("TensorFlow {tensorflow}, oneDNN {onednn}, {cpus} CPUs, intra-op threads {threads}".format(**info))
    results = []
    for s in [int(x) for x in a.sizes.split(",") if x]:
        r = time_size(tf, v, s, a.reps, a.warmup)
        results.append(r)
        print(f"transform {s}x{s}: {r['ms']:.1f} ms (min {r['ms_min']:.1f}, max {r['ms_max']:.1f}, "
              f"{r['reps']} reps), {r['gflop']:.1f} GFLOP, {r['gflops']:.1f} GFLOP/s", flush=True)
    out = {"info": info, "results": results}
    if a.check:
        c = check(tf, v, a.weights, a.check, a.wgstyle)
        out["check"] = c
        print(f"check vs wgstyle on {c['image']} ({c['size'][0]}x{c['size'][1]}): max |diff| "
              f"{c['max_abs_diff']}, mean {c['mean_abs_diff']:.4f}, "
              f"{c['pixels_off_by_more_than_1']} values off by more than 1")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
