"""The examples: the thread-pool folder example always, the Ray one where ray is installed."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from test_stylize import image

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"


def test_folder_example_writes_stylized_images_and_keeps_existing(stylizer, style_path, tmp_path):
    from PIL import Image

    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    imgs = [image(24, 32, seed=s) for s in range(3)]
    for k, img in enumerate(imgs):
        Image.fromarray(img).save(src / f"{k}.png")
    cmd = [sys.executable, str(EXAMPLES / "stylize_folder.py"), str(style_path), str(src), str(dst)]
    subprocess.run(cmd, check=True)
    for k, img in enumerate(imgs):
        np.testing.assert_array_equal(np.asarray(Image.open(dst / f"{k}.png")), stylizer.stylize(img))
    # A second run without --force replaces nothing and says so.
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1 and "exists" in r.stderr


def test_ray_example_on_two_images(style_path, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (not in CI: see python/README.md)")
    from PIL import Image

    sys.path.insert(0, str(EXAMPLES))
    import ray_stylize

    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        Image.fromarray(image(32, 32, seed=k)).save(src / f"{k}.png")
    # The actors import StylizeBatch from this module, so their workers need it on their path.
    ray.init(num_cpus=2, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(EXAMPLES)}})
    try:
        n = ray_stylize.run(str(style_path), str(src), str(tmp_path / "out"), actors=1, size=32)
    finally:
        ray.shutdown()
    assert n == 2
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
