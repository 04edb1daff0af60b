"""Stylizer: equal to the Rust library's output, alpha, batches, threads, errors."""

import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import wgstyle


def image(h, w, c=3, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth gradients plus noise: something a style network does not map to a constant.
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    img = (base + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)
    if c == 4:
        alpha = rng.integers(0, 256, (h, w, 1), dtype=np.uint8)
        img = np.concatenate([img, alpha], -1)
    return img


def test_equals_the_cli_bit_exact(stylizer, style_path, cli, tmp_path):
    from PIL import Image

    img = image(40, 56)
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(img).save(src)
    subprocess.run(
        [str(cli), "--no-autotune", "--style", str(style_path), str(src), "-o", str(out), "-q"],
        check=True,
    )
    expected = np.asarray(Image.open(out).convert("RGB"))
    got = stylizer.stylize(img)
    assert got.shape == img.shape and got.dtype == np.uint8
    # The network does change the image, so equality means the same computation.
    assert np.abs(got.astype(int) - img).mean() > 10
    np.testing.assert_array_equal(got, expected)


def test_rgba_keeps_alpha_and_pil_round_trips(stylizer):
    from PIL import Image

    rgba = image(32, 24, c=4, seed=1)
    out = stylizer.stylize(rgba)
    assert out.shape == (32, 24, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(out[..., :3], stylizer.stylize(np.ascontiguousarray(rgba[..., :3])))
    pil = stylizer.stylize(Image.fromarray(rgba))
    assert isinstance(pil, Image.Image) and pil.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(pil), out)


def test_non_contiguous_array_equals_contiguous(stylizer):
    img = image(32, 32, seed=2)
    flipped = img[:, ::-1]
    np.testing.assert_array_equal(
        stylizer.stylize(flipped), stylizer.stylize(np.ascontiguousarray(flipped))
    )


def test_batch_equals_singles(stylizer):
    imgs = [image(24, 40, seed=s) for s in range(3)]
    batch = stylizer.stylize_batch(imgs)
    assert len(batch) == 3
    for b, i in zip(batch, imgs):
        np.testing.assert_array_equal(b, stylizer.stylize(i))


def test_strength_zero_is_the_input_and_preserve_colors_changes_colour(stylizer):
    img = image(24, 24, seed=3)
    np.testing.assert_array_equal(stylizer.stylize(img, strength=0.0), img)
    kept = stylizer.stylize(img, preserve_colors=True)
    assert not np.array_equal(kept, stylizer.stylize(img))


def test_four_threads_share_one_stylizer(stylizer):
    imgs = [image(32, 32, seed=10 + s) for s in range(8)]
    expected = [stylizer.stylize(i) for i in imgs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(stylizer.stylize, imgs))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_adapter_and_adapters(stylizer):
    a = stylizer.adapter
    assert {"name", "backend", "device_type", "driver", "features"} <= set(a)
    assert any(x["name"] == a["name"] for x in wgstyle.adapters())


def test_missing_style_raises_weights_error():
    with pytest.raises(wgstyle.WeightsError, match="no-such-style"):
        wgstyle.Stylizer("no-such-style", weights_dir="/nonexistent")
    with pytest.raises(wgstyle.Error, match="no such style file"):
        wgstyle.Stylizer("/nonexistent/x.safetensors")


def test_bad_images_and_options_raise_input_error(stylizer, tmp_path):
    for bad in [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 2), np.uint8),
                np.zeros((8, 8, 3), np.float32), np.zeros((0, 8, 3), np.uint8), "x.png"]:
        with pytest.raises(wgstyle.InputError):
            stylizer.stylize(bad)
    with pytest.raises(wgstyle.InputError, match="strength"):
        stylizer.stylize(image(8, 8), strength=2.0)
    with pytest.raises(wgstyle.InputError, match="one size"):
        stylizer.stylize_batch([image(8, 8), image(8, 12)])
    with pytest.raises(wgstyle.InputError, match="precision"):
        wgstyle.Stylizer("scream", precision="f8")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(wgstyle.InputError, match="corrupt.png"):
        wgstyle.load_image(str(corrupt))


def test_load_image_reads_alpha(tmp_path):
    from PIL import Image

    rgba = image(12, 10, c=4)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(wgstyle.load_image(str(tmp_path / "a.png")), rgba)


def test_styles_lists_the_catalog():
    names = [s["name"] for s in wgstyle.styles()]
    assert names == sorted(names) and len(names) > 0


def test_gil_is_released_during_gpu_work(stylizer):
    import threading
    import time

    imgs = [image(96, 96, seed=20 + s) for s in range(4)]
    took = []

    def work():
        t = time.perf_counter()
        stylizer.stylize_batch(imgs)
        took.append(time.perf_counter() - t)

    worker = threading.Thread(target=work)
    last, gap = time.perf_counter(), 0.0
    worker.start()
    # Were the GIL held for the whole call, this loop would stall for its full length.
    while worker.is_alive():
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    worker.join()
    assert took and gap < 0.5 * took[0], (gap, took)
