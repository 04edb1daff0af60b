#!/usr/bin/env python3
"""PyTorch reference timing of the fast style network, for the real-GPU comparison.

The same network as benches/tf_transform.py (lengstrom/fast-style-transfer's transform.py) in
PyTorch, float32, with the same weights (a deeplearnjs checkpoint directory such as
../shared/weights/styles/scream, or a wgstyle .safetensors file) and TensorFlow's semantics:
"SAME" zero padding (asymmetric for stride 2 on even sizes), instance norm with biased variance
and eps 1e-3, `conv2d_transpose` as `conv_transpose2d(stride 2, padding 0)` cropped to 2× the
input, output `tanh(x)·150 + 255/2`.

    python benches/torch_transform.py --weights ../shared/weights/styles/scream --device cuda --sizes 1024
    python benches/torch_transform.py --weights ... --device cpu --sizes 64     # runs anywhere

On CUDA: cuDNN with `torch.backends.cudnn.benchmark = True` (per-shape algorithm search during
the warm-up), TF32 off (plain float32 arithmetic, like wgstyle's kernels), optional
`--channels-last`; times from CUDA events around each forward after `--warmup` calls, median of
`--reps`. FLOPs are counted like wgstyle's `Arch::flops` (66.1 GFLOP at 512², 264 at 1024²).
`--check-golden FILE.safetensors` compares with a ../shared/golden/transform file.
"""

import argparse
import json
import os
import statistics
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tf_transform import flops, load_weights  # noqa: E402  (no TensorFlow needed for these)


def build(torch, v, device, channels_last):
    import torch.nn.functional as F

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    # TF HWIO [kh, kw, in, out] -> torch OIHW; TF transposed [kh, kw, out, in] -> torch [in, out, kh, kw].
    P = [t(a.transpose(3, 2, 0, 1)) if a.ndim == 4 else t(a) for a in v]

    def same_pad(x, k, s):
        pads = []
        for n in (x.shape[3], x.shape[2]):  # F.pad wants (left, right, top, bottom)
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    def inorm(x, i):
        return F.instance_norm(x, weight=P[i + 1], bias=P[i], eps=1e-3)

    def conv(x, i, s, relu=True):
        k = P[i].shape[2]
        x = F.conv2d(same_pad(x, k, s), P[i], stride=s)
        x = inorm(x, i + 1)
        return F.relu(x) if relu else x

    def conv_t(x, i):
        h, w = x.shape[2], x.shape[3]
        x = F.conv_transpose2d(x, P[i], stride=2)[:, :, : 2 * h, : 2 * w]
        return F.relu(inorm(x, i + 1))

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
        return torch.tanh(h) * 150 + 255.0 / 2

    if channels_last:
        P = [p.contiguous(memory_format=torch.channels_last) if p.ndim == 4 else p for p in P]
    return net


def time_size(torch, net, size, device, reps, warmup, channels_last):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 3, size, size, generator=g) * 255).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    cuda = device.startswith("cuda")
    times = []
    with torch.inference_mode():
        for i in range(warmup + reps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                net(x)
                end.record()
                torch.cuda.synchronize()
                ms = start.elapsed_time(end)
            else:
                t0 = time.perf_counter()
                net(x)
                ms = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                times.append(ms)
    ms = statistics.median(times)
    f = flops(size, size)
    return {"size": size, "ms": ms, "ms_min": min(times), "ms_max": max(times), "reps": reps,
            "gflop": f / 1e9, "gflops": f / ms / 1e6}


def check_golden(torch, net, path, device):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]

    def get(name):
        b, c = header[name]["data_offsets"]
        return np.frombuffer(data[b:c], dtype="<f4").reshape(header[name]["shape"])

    x = torch.from_numpy(get("input_rgb").transpose(2, 0, 1).copy())[None].to(device)
    with torch.inference_mode():
        y = net(x)[0].permute(1, 2, 0).cpu().numpy()
    return float(np.abs(y - get("output_raw")).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="deeplearnjs checkpoint dir or wgstyle .safetensors")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--sizes", default="512,1024", help="comma-separated square sizes (default 512,1024)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    ap.add_argument("--check-golden", metavar="FILE", help="a ../shared/golden/transform/*.safetensors")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()

    import torch
    if a.device.startswith("cuda"):
        if not torch.cuda.is_available():
            sys.exit("no CUDA device (use --device cpu)")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        name = torch.cuda.get_device_name(torch.device(a.device))
        info = {"torch": torch.__version__, "device": name, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version()}
    else:
        info = {"torch": torch.__version__, "device": "cpu", "threads": torch.get_num_threads()}
    print(", ".join(f"{k} {v}" for k, v in info.items()))
    net = build(torch, load_weights(a.weights), a.device, a.channels_last)
    out = {"info": info, "results": []}
    if a.check_golden:
        d = check_golden(torch, net, a.check_golden, a.device)
        out["golden_max_abs_diff"] = d
        print(f"golden {a.check_golden}: max |diff| {d:.2e} (0..255 scale)")
    for s in [int(x) for x in a.sizes.split(",") if x]:
        r = time_size(torch, net, s, a.device, a.reps, a.warmup, a.channels_last)
        out["results"].append(r)
        print(f"transform {s}x{s}: {r['ms']:.2f} ms (min {r['ms_min']:.2f}, max {r['ms_max']:.2f}, "
              f"{r['reps']} reps), {r['gflop']:.1f} GFLOP, {r['gflops']:.1f} GFLOP/s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
