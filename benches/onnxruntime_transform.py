#!/usr/bin/env python3
"""ONNX Runtime (CPU) timing of pytorch/examples' TransformerNet, the peer of wgstyle's fast path.

Runs an ONNX file of the network (dynamic input size, e.g.
../shared/golden/pytorch/transformer_net_opset17_dynamic.onnx) on random 0..255 inputs of the
given square sizes with ONNX Runtime's CPU execution provider, `--threads` intra-op threads
(default 2: the cores wgstyle's lavapipe figures use), all graph optimisations on. Prints the
median of `--reps` runs after `--warmup` and GFLOP/s counted like wgstyle's `Arch::flops` for
this architecture (nearest x2 + 3x3 convolution when going up: 80.6 GFLOP at 512^2, 66.1 for lengstrom's transposed convolutions).

    pip install onnxruntime numpy
    python benches/onnxruntime_transform.py --model ../shared/golden/pytorch/transformer_net_opset17_dynamic.onnx --sizes 256,512
"""

import argparse
import json
import statistics
import time

import numpy as np


def flops(h, w, width=32):
    """FLOPs (2 per multiply-add) of the convolutions, exactly as wgstyle's `Arch::flops`."""
    h2, w2 = -(-h // 2), -(-w // 2)
    q = -(-h2 // 2) * -(-w2 // 2)
    layers = [(h * w, 9, 3, width), (h2 * w2, 3, width, 2 * width), (q, 3, 2 * width, 4 * width)]
    layers += [(q, 3, 4 * width, 4 * width)] * 10
    layers += [(4 * q, 3, 4 * width, 2 * width), (16 * q, 3, 2 * width, width), (16 * q, 9, width, 3)]
    return sum(2.0 * px * k * k * cin * cout for px, k, cin, cout in layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="TransformerNet .onnx with a dynamic input size")
    ap.add_argument("--sizes", default="256,512", help="comma-separated square sizes")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    info = {"onnxruntime": ort.__version__, "threads": a.threads, "model": a.model}
    print(", ".join(f"{k} {v}" for k, v in info.items()))
    out = {"info": info, "results": []}
    rng = np.random.default_rng(0)
    for s in [int(x) for x in a.sizes.split(",") if x]:
        x = (rng.random((1, 3, s, s), dtype=np.float32) * 255).astype(np.float32)
        times = []
        for i in range(a.warmup + a.reps):
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        ms = statistics.median(times)
        f = flops(s, s)
        r = {"size": s, "ms": ms, "ms_min": min(times), "ms_max": max(times), "reps": a.reps,
             "gflop": f / 1e9, "gflops": f / ms / 1e6}
        out["results"].append(r)
        print(f"onnxruntime {s}x{s}: {ms:.1f} ms (min {r['ms_min']:.1f}, max {r['ms_max']:.1f}, "
              f"{a.reps} reps), {r['gflop']:.1f} GFLOP, {r['gflops']:.1f} GFLOP/s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
