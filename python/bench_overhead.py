"""Times Stylizer.stylize at 512x512 from Python against the Rust library in one sitting.

    python python/bench_overhead.py STYLE [--size 512] [--runs 3] [--rounds 2] [--bin PATH]

The Rust figure is the `wgstyle --timing` binary's "stylize" time (the library's
`Stylizer::stylize_batch` on one image, after its warm-up run), taken on the same image;
rounds alternate the two so that load from other processes falls on both.
"""

import argparse
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

import wgstyle

REPO = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("style")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bin", default=str(REPO / "target" / "debug" / "wgstyle"))
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (a.size, a.size, 3), dtype=np.uint8)
    s = wgstyle.Stylizer(a.style)
    s.stylize(img)  # warm-up: pipelines, buffer pool
    py_ms, rust_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = []
        for k in range(a.runs):
            p = pathlib.Path(tmp) / f"{k}.png"
            Image.fromarray(img).save(p)
            inputs.append(str(p))
        for _ in range(a.rounds):
            out = subprocess.run(
                [a.bin, "--no-autotune", "--style", a.style, "--timing", "-q", "-o",
                 str(pathlib.Path(tmp) / "out"), "--force", *inputs],
                check=True, capture_output=True, text=True,
            ).stdout
            rust_ms += [float(m) for m in re.findall(r"stylize ([0-9.]+) ms", out)]
            for _ in range(a.runs):
                t = time.perf_counter()
                s.stylize(img)
                py_ms.append((time.perf_counter() - t) * 1e3)
    py, rust = statistics.median(py_ms), statistics.median(rust_ms)
    print(f"adapter: {s.adapter['name']} ({s.adapter['backend']})")
    print(f"{a.size}x{a.size}, median of {len(py_ms)}: Python Stylizer.stylize {py:.1f} ms "
          f"(min {min(py_ms):.1f}), Rust Stylizer::stylize {rust:.1f} ms (min {min(rust_ms):.1f})")
    print(f"binding overhead: {py - rust:+.1f} ms = {(py - rust) / rust * 100:+.2f} % "
          f"(mins: {(min(py_ms) - min(rust_ms)) / min(rust_ms) * 100:+.2f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
