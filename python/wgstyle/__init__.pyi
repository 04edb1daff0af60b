from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar, Union

import numpy as np
import numpy.typing as npt

_Image = TypeVar("_Image")  # a uint8 numpy array (H×W×3 or H×W×4) or a PIL image

class Error(Exception):
    """Everything wgstyle raises."""

class InputError(Error):
    """An image or option was rejected before any GPU work."""

class WeightsError(Error):
    """A style or its weights are missing, unreadable or malformed."""

class NoAdapterError(Error):
    """No GPU adapter matched, or it could not give a device."""

class OutOfMemoryError(Error):
    """An image does not fit the adapter's buffers, the memory budget or host memory."""

def adapters() -> List[Dict[str, Any]]:
    """Every adapter: name, backend, device_type, driver, features."""

def styles(weights_dir: Optional[str] = None) -> List[Dict[str, Any]]:
    """Styles on disk or in the catalog: name, path (None if only fetchable), license."""

def fetch(name: str, *, force: bool = False) -> str:
    """Downloads a catalog style (checksum verified); returns its path."""

def load_image(path: str) -> npt.NDArray[np.uint8]:
    """Reads an image file as an H×W×3 (or H×W×4 with alpha) uint8 array."""

class Stylizer:
    """A style network on one GPU device; thread-safe, GIL released during GPU work."""

    def __init__(
        self,
        style: str,
        *,
        adapter: Optional[str] = None,
        backend: Optional[str] = None,
        precision: str = "auto",
        max_memory: Optional[int] = None,
        weights_dir: Optional[str] = None,
    ) -> None: ...
    @property
    def style(self) -> str:
        """The style's name."""
    @property
    def adapter(self) -> Dict[str, Any]:
        """The device in use: name, backend, device_type, driver, features."""
    def stylize(
        self, image: _Image, *, preserve_colors: bool = False, strength: float = 1.0
    ) -> _Image:
        """Stylizes one image; returns the same kind and size, alpha kept."""
    def stylize_batch(
        self, images: Sequence[_Image], *, preserve_colors: bool = False, strength: float = 1.0
    ) -> List[_Image]:
        """Stylizes same-sized images in one GPU pass."""

def optimize(
    content: _Image,
    styles: Sequence[Any],
    callback: Optional[Callable[[int, Dict[str, float]], Optional[bool]]] = None,
    *,
    iterations: int = 500,
    optimizer: str = "lbfgs",
    learning_rate: float = 2.0,
    lbfgs_history: int = 10,
    content_weight: float = 1.0,
    style_weight: float = 1e-3,
    tv_weight: float = 1e-4,
    content_layers: Optional[List[str]] = None,
    style_layers: Optional[List[str]] = None,
    style_blend_weights: Optional[List[float]] = None,
    style_scale: float = 1.0,
    init: str = "content",
    seed: int = 0,
    pooling: str = "max",
    original_colors: bool = False,
    size: int = 512,
    vgg: Optional[str] = None,
    weights_dir: Optional[str] = None,
    adapter: Optional[str] = None,
    backend: Optional[str] = None,
) -> _Image:
    """Gatys-style optimisation, the CLI's options as keyword arguments."""
