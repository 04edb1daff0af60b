"""wgstyle: neural style transfer on any GPU (hand-written WGSL kernels driven by wgpu).

numpy ``uint8`` arrays (``H×W×3`` or ``H×W×4``, alpha kept) or PIL images in, the same kind
out. Every call that does GPU work releases the GIL; a :class:`Stylizer` can be shared by
threads.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from . import _wgstyle
from ._wgstyle import (
    Error,
    InputError,
    NoAdapterError,
    OutOfMemoryError,
    WeightsError,
    adapters,
    fetch,
    load_image,
    styles,
)

__all__ = [
    "Error",
    "InputError",
    "NoAdapterError",
    "OutOfMemoryError",
    "WeightsError",
    "Stylizer",
    "adapters",
    "fetch",
    "load_image",
    "optimize",
    "styles",
]


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "mode")


def _to_array(image: Any) -> np.ndarray:
    """A PIL image as an array (RGB, or RGBA when it has alpha); arrays pass unchanged."""
    if _is_pil(image):
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    return image


def _like(result: np.ndarray, original: Any) -> Any:
    """``result`` as the kind of ``original`` (PIL image or array)."""
    if _is_pil(original):
        from PIL import Image

        return Image.fromarray(result)
    return result


class Stylizer:
    """A style network on one GPU device.

    ``style`` is a style name (looked up as the CLI's ``--style``: the weights search path,
    then the catalog), a ``.safetensors`` file or a checkpoint directory. ``adapter`` is a
    case-insensitive substring of the adapter's name, ``backend`` one of ``vulkan``,
    ``metal``, ``dx12``, ``gl``; ``precision`` is ``"auto"``, ``"f32"`` or ``"f16"``;
    ``max_memory`` limits the GPU memory of one pass in bytes (larger images go in tiles,
    with the same result). Without ``adapter`` and ``backend`` all Stylizers of the process
    share one device.

    Thread-safe: one instance may be used from many threads at once; the GPU work runs
    with the GIL released.
    """

    def __init__(
        self,
        style: str,
        *,
        adapter: Optional[str] = None,
        backend: Optional[str] = None,
        precision: str = "auto",
        max_memory: Optional[int] = None,
        weights_dir: Optional[str] = None,
    ) -> None:
        self._inner = _wgstyle.Stylizer(
            str(style),
            adapter=adapter,
            backend=backend,
            precision=precision,
            max_memory=max_memory,
            weights_dir=weights_dir,
        )

    @property
    def style(self) -> str:
        """The style's name."""
        return self._inner.style

    @property
    def adapter(self) -> Dict[str, Any]:
        """The device in use: name, backend, device_type, driver, features."""
        return self._inner.adapter

    def stylize(self, image: Any, *, preserve_colors: bool = False, strength: float = 1.0) -> Any:
        """Stylizes one image (``H×W×3``/``H×W×4`` ``uint8`` array or PIL image); returns
        the same kind, same size, alpha kept. ``preserve_colors`` keeps the input's colours
        (luminance transfer); ``strength`` in 0..1 blends with the input."""
        out = self._inner.stylize_arrays(
            [_to_array(image)], preserve_colors=preserve_colors, strength=strength
        )[0]
        return _like(out, image)

    def stylize_batch(
        self, images: Sequence[Any], *, preserve_colors: bool = False, strength: float = 1.0
    ) -> List[Any]:
        """Stylizes images of one size in one GPU pass (in groups where memory requires);
        equal to :meth:`stylize` on each."""
        images = list(images)
        if not images:
            return []
        outs = self._inner.stylize_arrays(
            [_to_array(i) for i in images], preserve_colors=preserve_colors, strength=strength
        )
        return [_like(o, i) for o, i in zip(outs, images)]

    def __repr__(self) -> str:
        return f"Stylizer({self.style!r}, adapter={self.adapter['name']!r})"


def optimize(
    content: Any,
    styles: Sequence[Any],
    callback: Optional[Callable[[int, Dict[str, float]], Optional[bool]]] = None,
    **options: Any,
) -> Any:
    """Gatys-style optimisation (the CLI's ``wgstyle optimize``): returns an image whose
    VGG19 features match ``content`` and whose Gram matrices match ``styles``.

    Options are the CLI's, as keyword arguments: iterations, optimizer ("lbfgs"/"adam"),
    learning_rate, lbfgs_history, content_weight, style_weight, tv_weight, content_layers,
    style_layers, style_blend_weights, style_scale, init ("content"/"random"), seed,
    pooling ("max"/"avg"), original_colors, size, vgg, weights_dir, adapter, backend.
    ``callback(iteration, losses)`` is called after each iteration with a dict of
    total/content/style/tv; returning ``False`` stops early.
    """
    out = _wgstyle.optimize(
        _to_array(content), [_to_array(s) for s in styles], callback=callback, **options
    )
    return _like(out, content)
