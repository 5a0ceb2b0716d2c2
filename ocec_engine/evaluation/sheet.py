"""The contact sheet of the worst images: crops in a grid, each captioned with label and P(open)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from ocec_engine.atomic import atomic_path

SCALE = 2  # crops are tiny (32x64): enlarge them so a person can see the eye
COLUMNS = 4
CAPTION = 14  # pixels under each crop
_BACKGROUND = (255, 255, 255)
_TEXT = (180, 0, 0)


def crop_image(image: Tensor) -> Image.Image:
    """uint8 [3, H, W] -> a PIL RGB image."""
    return Image.fromarray(np.ascontiguousarray(image.numpy().transpose(1, 2, 0)), mode="RGB")


def write_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def contact_sheet(crops: list[Tensor], captions: list[str], image_size: tuple[int, int]) -> Image.Image:
    """A grid of ``crops`` (at most COLUMNS wide) with ``captions`` under them; a note when empty."""
    h, w = image_size[0] * SCALE, image_size[1] * SCALE
    cell_w = max(w, 7 * max((len(c) for c in captions), default=0) + 4)
    cols = max(1, min(COLUMNS, len(crops)))
    rows = max(1, -(-len(crops) // cols))
    sheet = Image.new("RGB", (cols * cell_w, rows * (h + CAPTION)), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if not crops:
        draw.text((4, 4), "no misclassified images", fill=_TEXT)
    for i, (crop, caption) in enumerate(zip(crops, captions, strict=True)):
        x, y = (i % cols) * cell_w, (i // cols) * (h + CAPTION)
        sheet.paste(crop_image(crop).resize((w, h), Image.Resampling.NEAREST), (x, y))
        draw.text((x + 2, y + h + 1), caption, fill=_TEXT)
    return sheet
