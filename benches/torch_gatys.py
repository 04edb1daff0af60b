#!/usr/bin/env python3
"""PyTorch reference timing of one Gatys iteration (and a whole run), for the real-GPU comparison.

The same objective as wgstyle's `optimize` (docs/optimize.md, ../shared/golden/README.md) on the
same VGG19 layers: the image (BGR, minus the Caffe mean) runs through VGG19 up to relu5_1;
`content_weight * mean((F(x) - F(c))^2)` at relu4_2, `style_weight * sum_l (1/L) sum (G_l(x) -
G_l(s))^2` with `G = F^T F / (H W C)` at relu1_1..relu5_1, `tv_weight * sum of squared neighbour
differences`; backward to the image; one Adam step. Weights are random of the real shapes (as in
`wgstyle bench`'s Gatys case): timing does not depend on their values.

    python benches/torch_gatys.py --device cuda --size 512 --iterations 500 --json gatys.json
    python benches/torch_gatys.py --device cpu --size 64 --reps 3          # runs anywhere

Times come from CUDA events around each iteration after `--warmup` iterations (median of `--reps`),
then `--iterations` Adam iterations are run and timed end to end (the 500-iteration figure).
float32 with TF32 off and `cudnn.benchmark = True`, like torch_transform.py.
"""

import argparse
import json
import statistics
import sys
import time

VGG = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256),
       (256, 256), "M", (256, 512), (512, 512), (512, 512), (512, 512), "M", (512, 512)]
NAMES = ["relu1_1", "relu1_2", "pool1", "relu2_1", "relu2_2", "pool2", "relu3_1", "relu3_2",
         "relu3_3", "relu3_4", "pool3", "relu4_1", "relu4_2", "relu4_3", "relu4_4", "pool4",
         "relu5_1"]
STYLE = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT = ["relu4_2"]


def vgg_features(torch, device, channels_last=False):
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(0)
    params = []
    for spec in VGG:
        if spec == "M":
            params.append(None)
            continue
        cin, cout = spec
        w = (torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5).to(device)
        if channels_last:
            w = w.contiguous(memory_format=torch.channels_last)
        params.append((w, torch.zeros(cout, device=device)))

    def run(x):
        out = {}
        for name, p in zip(NAMES, params):
            x = F.max_pool2d(x, 2) if p is None else F.relu(F.conv2d(x, p[0], p[1], padding=1))
            out[name] = x
        return out
    return run


def gram(f):
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (h * w * c)


def make_step(torch, feats, content, style, cw, sw, tvw, lr):
    with torch.no_grad():
        fc = feats(content)
        fs = feats(style)
        tc = {k: fc[k] for k in CONTENT}
        ts = {k: gram(fs[k]) for k in STYLE}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)

    def step():
        opt.zero_grad(set_to_none=True)
        f = feats(x)
        lc = sum(((f[k] - tc[k]) ** 2).mean() for k in CONTENT) * cw
        ls = sum(((gram(f[k]) - ts[k]) ** 2).sum() for k in STYLE) * (sw / len(STYLE))
        tv = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()
        loss = lc + ls + tvw * tv
        loss.backward()
        opt.step()
        return loss
    return step


def setup(device):
    """Imports torch and sets it up like torch_transform.py: on CUDA cuDNN's per-shape algorithm
    search on, TF32 off (plain float32). Returns (torch, whether the device is CUDA)."""
    import torch
    cuda = device.startswith("cuda")
    if cuda:
        if not torch.cuda.is_available():
            sys.exit("no CUDA device (use --device cpu)")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch, cuda


def time_step(torch, cuda, step, warmup, reps):
    """Milliseconds of each of `reps` calls of `step` after `warmup` untimed ones."""
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    for i in range(warmup + reps):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=0, help="also time a whole run of N iterations")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch, cuda = setup(a.device)
    g = torch.Generator().manual_seed(1)
    content = (torch.rand(1, 3, a.size, a.size, generator=g) * 255 - 120).to(a.device)
    style = (torch.rand(1, 3, a.size, a.size, generator=g) * 255 - 120).to(a.device)
    step = make_step(torch, vgg_features(torch, a.device), content, style, 1.0, 1e-3, 1e-4, 2.0)
    times = time_step(torch, cuda, step, a.warmup, a.reps)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu",
           "size": a.size, "iteration_ms": statistics.median(times), "min_ms": min(times),
           "max_ms": max(times), "reps": a.reps}
    print(f"gatys {a.size}^2: {out['iteration_ms']:.2f} ms per Adam iteration "
          f"(min {min(times):.2f}, max {max(times):.2f}, {a.reps} reps)", flush=True)
    if a.iterations:
        sync()
        t0 = time.perf_counter()
        for _ in range(a.iterations):
            loss = step()
        loss.item()
        out["run_iterations"] = a.iterations
        out["run_s"] = time.perf_counter() - t0
        print(f"gatys {a.size}^2: {a.iterations} iterations in {out['run_s']:.2f} s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
