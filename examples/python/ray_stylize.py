"""Stylize a folder with Ray Data: one Stylizer (one GPU context) per actor.

    python examples/python/ray_stylize.py STYLE IN_DIR OUT_DIR [--actors 2]

wgstyle stays a stateless worker; Ray schedules it, over one machine or a cluster. Images
are resized to one size so that a batch goes through the GPU in one pass.
"""

import argparse
import sys

import numpy as np


class StylizeBatch:
    """A Ray Data callable class: constructed once per actor, called per batch."""

    def __init__(self, style: str):
        import wgstyle

        self.stylizer = wgstyle.Stylizer(style)

    def __call__(self, batch: dict) -> dict:
        images = list(batch["image"])
        batch["image"] = np.stack(self.stylizer.stylize_batch(images))
        return batch


def run(style: str, inputs: str, outputs: str, actors: int = 2, size: int = 256, batch_size: int = 4):
    """Reads `inputs`, stylizes, writes PNGs under the local folder `outputs`; returns the
    number of files written there."""
    import os

    import ray

    ds = ray.data.read_images(inputs, size=(size, size), mode="RGB")
    ds = ds.map_batches(
        StylizeBatch,
        fn_constructor_args=(style,),
        concurrency=actors,
        batch_size=batch_size,
        batch_format="numpy",
    )
    # One pass over the data: counting the dataset as well would stylize everything twice.
    ds.write_images(outputs, column="image", file_format="png")
    return len(os.listdir(outputs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("style")
    ap.add_argument("inputs")
    ap.add_argument("outputs")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    n = run(a.style, a.inputs, a.outputs, a.actors, a.size)
    print(f"{n} images stylized into {a.outputs}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
