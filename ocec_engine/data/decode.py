"""Decode encoded images once into uint8 CHW tensors at the model's input size.

Resizing matches OpenCV's INTER_LINEAR on uint8 (what the reference's albumentations Resize does):
half-pixel bilinear, no antialiasing, rounded back to uint8. Decoding runs in a thread pool for big
sets (Pillow's decoders and torch's kernels release the GIL); nothing is printed.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ocec_engine.errors import DataError

PARALLEL_MIN_IMAGES = 512  # below this a pool costs more than it saves
_CHUNK = 256

ImageSource = bytes | Path | None  # None: a row without image bytes (an error, reported by position)


@functools.lru_cache(maxsize=4096)
def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel bilinear taps along one axis (torch's align_corners=False rule, cv2's INTER_LINEAR)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def resize_uint8(hwc: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 HxWx3 -> uint8 3xHxW at ``size`` (H, W): bilinear like cv2.INTER_LINEAR, no antialias.

    Plain numpy (no torch intra-op threads), so many decode threads do not oversubscribe the CPU.
    """
    h, w = size
    if hwc.shape[:2] != (h, w):
        y0, y1, wy = _axis_weights(hwc.shape[0], h)
        x0, x1, wx = _axis_weights(hwc.shape[1], w)
        img = hwc.astype(np.float32)
        wx3 = wx[None, :, None]
        rows = np.take(img, x0, axis=1) * (1 - wx3) + np.take(img, x1, axis=1) * wx3  # horizontal pass
        wy3 = wy[:, None, None]
        out = np.take(rows, y0, axis=0) * (1 - wy3) + np.take(rows, y1, axis=0) * wy3  # then vertical
        hwc = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))


def decode_image(src: ImageSource, size: tuple[int, int]) -> torch.Tensor:
    """Encoded bytes or a file path -> uint8 3xHxW (RGB). Raises whatever PIL raises."""
    if src is None or (isinstance(src, bytes) and not src):
        raise ValueError("no image bytes")
    with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as img:
        rgb = np.array(img.convert("RGB"))  # a writable copy (torch.from_numpy needs one)
    return resize_uint8(rgb, size)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def decode_all(
    sources: Sequence[ImageSource],
    size: tuple[int, int],
    where: Callable[[int], str],
    workers: int | None = None,
) -> torch.Tensor:
    """Decode every source into one uint8 [N,3,H,W] tensor; a failure names ``where(i)``."""
    out = torch.empty((len(sources), 3, size[0], size[1]), dtype=torch.uint8)

    def run(start: int) -> None:
        for i in range(start, min(start + _CHUNK, len(sources))):
            try:
                out[i] = decode_image(sources[i], size)
            except Exception as exc:  # PIL raises many types for bad data
                raise DataError(f"{where(i)}: cannot decode image ({type(exc).__name__}: {exc})") from exc

    starts = range(0, len(sources), _CHUNK)
    n_workers = workers if workers is not None else default_workers()
    if n_workers <= 1 or len(sources) < PARALLEL_MIN_IMAGES:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for future in [pool.submit(run, s) for s in starts]:
                future.result()
    return out
