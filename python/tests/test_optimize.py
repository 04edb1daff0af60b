"""optimize: the loss goes down, the callback is called and can stop the run."""

import numpy as np
import pytest

import wgstyle
from test_stylize import image


def test_optimize_lowers_the_loss_and_calls_back(vgg_path):
    seen = []
    out = wgstyle.optimize(
        image(32, 32, seed=4),
        [image(32, 32, seed=5)],
        callback=lambda i, losses: seen.append((i, losses["total"])),
        iterations=6,
        size=32,
        vgg=str(vgg_path),
    )
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert [i for i, _ in seen] == list(range(1, len(seen) + 1)) and len(seen) >= 3
    assert seen[-1][1] < seen[0][1]


def test_callback_false_stops_and_exceptions_propagate(vgg_path):
    seen = []

    def stop(i, losses):
        seen.append(i)
        return False

    wgstyle.optimize(image(24, 24), [image(24, 24, seed=1)], callback=stop,
                     iterations=5, size=24, vgg=str(vgg_path), optimizer="adam")
    assert seen == [1]

    def boom(i, losses):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        wgstyle.optimize(image(24, 24), [image(24, 24, seed=1)], callback=boom,
                         iterations=5, size=24, vgg=str(vgg_path), optimizer="adam")


def test_bad_options_raise_before_gpu_work():
    img = image(16, 16)
    with pytest.raises(wgstyle.InputError, match="optimizer"):
        wgstyle.optimize(img, [img], optimizer="sgd")
    with pytest.raises(wgstyle.InputError, match="style image"):
        wgstyle.optimize(img, [])
    with pytest.raises(wgstyle.InputError, match="style_blend_weights"):
        wgstyle.optimize(img, [img], style_blend_weights=[1.0, 2.0])
    with pytest.raises(TypeError):
        wgstyle.optimize(img, [img], no_such_option=1)
