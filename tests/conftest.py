"""Shared fixtures: tiny seeded images on disk and the real pretrained encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.features import VGGEncoder, load_encoder
from styleforge.infer.transfer import TransferConfig

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ASSETS = Path(__file__).resolve().parents[1] / "src" / "styleforge" / "assets"


def write_image(path: Path, size: tuple[int, int] = (80, 64), seed: int = 0) -> Path:
    """A smooth random RGB picture of (width, height), written to ``path``."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture(scope="session")
def transfer_encoder() -> VGGEncoder:
    """The real offline VGG16, cut for the default transfer layers."""
    cfg = TransferConfig()
    return load_encoder([*cfg.style_layers, cfg.content_layer])


@pytest.fixture
def photo() -> torch.Tensor:
    """A real photo (scikit-image's bundled cat), 64 px long side, (1,3,43,64)."""
    from skimage import data

    from styleforge.images import pil_to_tensor, resize_to

    return resize_to(pil_to_tensor(Image.fromarray(data.chelsea())), 64)


@pytest.fixture
def starry() -> torch.Tensor:
    """The embedded Starry Night, 64 px long side."""
    from styleforge.images import load_image

    return load_image(ASSETS / "style_images" / "starry_night.jpg", size=64)


def write_tiny_stylizer(path: Path) -> Path:
    """A tiny seeded from-scratch stylizer model file whose output is far from the photo."""
    from styleforge.infer.model_file import ModelInfo, write_model
    from styleforge.nets import StylizerConfig, StylizerNet

    torch.manual_seed(0)
    net = StylizerNet(StylizerConfig(width=4, n_res=1))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return write_model(path, net.state_dict(), ModelInfo(net=net.config))


def app_model(store: Any, model: Path) -> str:
    """``model`` (a copy) as the finished stylizer of a new style in the web app's ``store``:
    the path the app's actions accept."""
    import shutil

    picture = write_image(store.root.parent / "app-model-up" / "p.png", (64, 64), seed=5)
    style, _ = store.create_style("s", [picture])
    job = store.create_job(style.id, "stylizer", "quick", 1)
    path = store.root / "models" / f"{job.id}.safetensors"
    shutil.copyfile(model, path)
    store.update_job(job.id, status="done", model=str(path))
    return str(path)
