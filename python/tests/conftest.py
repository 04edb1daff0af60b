"""Shared fixtures: the shared data folder, the style weights, the CLI binary."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _need(path: pathlib.Path, what: str) -> pathlib.Path:
    """`path`, or a skip with a message (a failure under CI=true) where it is absent."""
    if path.exists():
        return path
    msg = f"{what} not found at {path} (set WGSTYLE_SHARED)"
    if _ci():
        pytest.fail(msg + "; CI=true requires it")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared() -> pathlib.Path:
    env = os.environ.get("WGSTYLE_SHARED")
    return _need(pathlib.Path(env) if env else REPO.parent / "shared", "the shared data folder")


@pytest.fixture(scope="session")
def style_path(shared) -> pathlib.Path:
    return _need(shared / "weights" / "styles" / "scream", "the scream style weights")


@pytest.fixture(scope="session")
def vgg_path(shared) -> pathlib.Path:
    return _need(shared / "weights" / "vgg19-tfjs", "the VGG19 weights")


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The `wgstyle` binary built from this tree (ci.sh builds it)."""
    env = os.environ.get("WGSTYLE_BIN")
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = pathlib.Path(env) if env else target / "debug" / "wgstyle"
    if not path.exists():
        msg = f"the wgstyle binary is not at {path} (cargo build --bin wgstyle)"
        if _ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def stylizer(style_path):
    import wgstyle

    return wgstyle.Stylizer(str(style_path))
