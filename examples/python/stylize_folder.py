"""Stylize every image of a folder with a thread pool sharing one Stylizer.

    python examples/python/stylize_folder.py STYLE IN_DIR OUT_DIR [--threads 4]

The GPU work runs with the GIL released, so threads overlap decoding, encoding and GPU
work. Existing outputs are kept (pass --force to replace them); each output is written to
a temporary file and renamed, so a failure never leaves a partial file.
"""

import argparse
import os
import pathlib
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

import wgstyle

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("style")
    ap.add_argument("inputs", type=pathlib.Path)
    ap.add_argument("outputs", type=pathlib.Path)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()

    stylizer = wgstyle.Stylizer(a.style)
    a.outputs.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in a.inputs.iterdir() if p.suffix.lower() in EXTENSIONS)

    def one(src: pathlib.Path) -> str:
        dst = a.outputs / src.name
        if dst.resolve() == src.resolve():
            return f"{src}: refusing to overwrite the input"
        if dst.exists() and not a.force:
            return f"{dst}: exists (--force to replace)"
        try:
            out = stylizer.stylize(Image.open(src))
            fd, tmp = tempfile.mkstemp(dir=a.outputs, suffix=dst.suffix)
            with os.fdopen(fd, "wb") as f:
                out.save(f, format=Image.registered_extensions()[dst.suffix.lower()])
            os.replace(tmp, dst)
            return ""
        except (wgstyle.Error, OSError) as e:
            return f"{src}: {e}"

    with ThreadPoolExecutor(a.threads) as pool:
        errors = [e for e in pool.map(one, files) if e]
    for e in errors:
        print("error:", e, file=sys.stderr)
    print(f"{len(files) - len(errors)} written, {len(errors)} failed", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
