"""Procedural eye crops in the OCEC parquet layout: a source domain A and a shifted target domain B.

Every image is rendered on a 40x80 canvas with vectorised numpy (one array op per feature for a whole
chunk of samples), then resized to its own crop size (about 40-72 x 20-40 px) and PNG-encoded.

An eye is skin (tone, shading, socket shadow) with an almond aperture between an upper and a lower lid.
The aperture height is the "openness" q: open eyes show sclera, iris, pupil and a catch-light under a
dark upper-lid margin with lashes; closed eyes are a lid line with lashes hanging down. Both classes
have samples near the boundary (squints and barely-closed slits) so the task is not trivially separable.

Domain B differs the way real target data does: lighting (gain, colour cast, gradient), blur, sensor
noise, JPEG, glasses (frame lines, lens tint, glare highlights), other eye shapes (narrow or round)
and iris colours (blue, green, grey). ``shift`` in [0, 1] scales every one of those effects (and the
probability of the B shapes and colours), so a sweep of shift values gives paired, gradually harder
sets. Measured effect on a model trained on A only: docs/data.md.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ocec_engine.atomic import atomic_path

CANVAS_H, CANVAS_W = 40, 80
CROP_H = (20, 40)
CROP_W = (40, 72)
_CHUNK = 256
_DOMAIN_STREAM = {"A": 0, "B": 1}

_SKIN_LIGHT = np.array([0.94, 0.80, 0.70], np.float32)
_SKIN_DARK = np.array([0.38, 0.25, 0.18], np.float32)
_IRIS_A = np.array(
    [[0.30, 0.18, 0.10], [0.22, 0.13, 0.08], [0.42, 0.33, 0.18], [0.40, 0.30, 0.22]], np.float32
)
_IRIS_B = np.array(
    [[0.38, 0.55, 0.72], [0.40, 0.55, 0.40], [0.56, 0.58, 0.60], [0.55, 0.45, 0.28]], np.float32
)

F32 = np.float32


@dataclass
class _Params:
    """Per-sample parameters for one chunk (every field has leading dim n)."""

    label: np.ndarray  # 1 open, 0 closed
    q: np.ndarray  # openness 0..1
    skin: np.ndarray  # [n,3]
    cx: np.ndarray
    cy: np.ndarray
    angle: np.ndarray
    zoom: np.ndarray
    a: np.ndarray  # aperture half width
    hu: np.ndarray  # upper lid height at q = 1
    hl: np.ndarray  # lower lid height at q = 1
    lid_pow: np.ndarray  # lid curve exponent (small = round)
    crease: np.ndarray  # crease darkness
    iris_x: np.ndarray
    iris_y: np.ndarray
    iris_r: np.ndarray
    pupil: np.ndarray  # pupil radius as a fraction of the iris radius
    iris_rgb: np.ndarray  # [n,3]
    lash: np.ndarray  # lash strength
    lash_freq: np.ndarray
    lash_phase: np.ndarray
    brow: np.ndarray  # eyebrow strength (0 = out of the crop)
    brow_y: np.ndarray
    closed_curve: np.ndarray
    line_w: np.ndarray
    shade: np.ndarray  # [n,2] linear shading gradient
    socket: np.ndarray


def _uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(F32)


def _openness(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Open: mostly wide, 15 % squints near the boundary; closed: mostly shut, 20 % thin slits."""
    n = len(label)
    wide = rng.uniform(0.38, 1.0, n)
    squint = rng.uniform(0.17, 0.38, n)
    shut = rng.uniform(0.0, 0.04, n)
    slit = rng.uniform(0.04, 0.14, n)
    open_q = np.where(rng.random(n) < 0.15, squint, wide)
    closed_q = np.where(rng.random(n) < 0.20, slit, shut)
    return np.where(label == 1, open_q, closed_q).astype(F32)


def _sample_params(rng: np.random.Generator, shape_rng: np.random.Generator, label: np.ndarray,
                   shift: float) -> _Params:  # fmt: skip
    n = len(label)
    tone = rng.random(n).astype(F32)[:, None]
    skin = (_SKIN_LIGHT * (1 - tone) + _SKIN_DARK * tone) * rng.uniform(0.94, 1.06, (n, 3)).astype(F32)
    a = _uniform(rng, 0.55, 0.78, n)
    hu = _uniform(rng, 0.26, 0.34, n)
    hl = _uniform(rng, 0.11, 0.16, n)
    lid_pow = _uniform(rng, 0.7, 1.0, n)
    crease = _uniform(rng, 0.05, 0.22, n)
    iris_rgb = _IRIS_A[rng.integers(0, len(_IRIS_A), n)] * rng.uniform(0.7, 1.25, (n, 1)).astype(F32)
    # Domain B shapes and colours: drawn for every sample (so streams stay paired across shifts),
    # used with probability `shift`.
    narrow = shape_rng.random(n) < 0.5
    use_b_shape = shape_rng.random(n) < shift
    use_b_iris = shape_rng.random(n) < shift * 0.8
    b_iris = _IRIS_B[shape_rng.integers(0, len(_IRIS_B), n)] * shape_rng.uniform(0.85, 1.2, (n, 1)).astype(
        F32
    )
    narrow_b = use_b_shape & narrow
    round_b = use_b_shape & ~narrow
    hu = np.where(narrow_b, hu * 0.55, np.where(round_b, hu * 1.2, hu)).astype(F32)
    hl = np.where(narrow_b, hl * 0.6, np.where(round_b, hl * 1.35, hl)).astype(F32)
    a = np.where(narrow_b, a * 1.08, np.where(round_b, a * 0.85, a)).astype(F32)
    lid_pow = np.where(round_b, lid_pow * 0.55, lid_pow).astype(F32)
    crease = np.where(narrow_b, 0.0, crease).astype(F32)
    iris_rgb = np.where(use_b_iris[:, None], b_iris, iris_rgb).astype(F32)
    pose = 12.0 + 10.0 * shift
    return _Params(
        label=label,
        q=_openness(rng, label),
        skin=skin.astype(F32),
        cx=_uniform(rng, -0.12, 0.12, n),
        cy=_uniform(rng, -0.06, 0.08, n),
        angle=np.radians(rng.uniform(-pose, pose, n)).astype(F32),
        zoom=_uniform(rng, 0.85, 1.12, n),
        a=a,
        hu=hu,
        hl=hl,
        lid_pow=lid_pow,
        crease=crease,
        iris_x=(rng.uniform(-0.35, 0.35, n) * a).astype(F32),
        iris_y=_uniform(rng, -0.03, 0.05, n),
        iris_r=_uniform(rng, 0.19, 0.26, n),
        pupil=_uniform(rng, 0.32, 0.55, n),
        iris_rgb=iris_rgb,
        lash=rng.uniform(0.3, 0.9, n).astype(F32) * (rng.random(n) < 0.85),
        lash_freq=_uniform(rng, 35.0, 60.0, n),
        lash_phase=_uniform(rng, 0.0, 6.28, n),
        brow=rng.uniform(0.3, 0.7, n).astype(F32) * (rng.random(n) < 0.4),
        brow_y=_uniform(rng, -0.50, -0.40, n),
        closed_curve=_uniform(rng, 0.03, 0.09, n),
        line_w=_uniform(rng, 0.018, 0.035, n),
        shade=rng.normal(0.0, 0.06, (n, 2)).astype(F32),
        socket=_uniform(rng, 0.0, 0.15, n),
    )


def _col(x: np.ndarray) -> np.ndarray:
    """Per-sample scalar [n] -> [n,1,1] for broadcasting over the canvas."""
    return x[:, None, None]


def _soft(d: np.ndarray, width: float = 0.02) -> np.ndarray:
    """Anti-aliased mask of d > 0 (d in canvas units, 1 unit = 40 px)."""
    return np.clip(d / width + 0.5, 0.0, 1.0)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below lo, 1 above hi, linear between (fades features out towards the eye corners)."""
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _blend(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """img [n,H,W,3] painted with colour rgb ([n,3] or [3]) through mask [n,H,W]."""
    m = mask[..., None]
    colour = rgb[:, None, None, :] if rgb.ndim == 2 else rgb
    return img * (1 - m) + colour * m


def _grid(p: _Params) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Canvas coordinates (u, v) and eye-frame coordinates (ue, ve) after pose and zoom."""
    ys, xs = np.mgrid[0:CANVAS_H, 0:CANVAS_W].astype(F32)
    u = ((xs + 0.5) - CANVAS_W / 2) / (CANVAS_W / 2)
    v = ((ys + 0.5) - CANVAS_H / 2) / (CANVAS_W / 2)
    du, dv = u[None] - _col(p.cx), v[None] - _col(p.cy)
    cos, sin = _col(np.cos(p.angle)), _col(np.sin(p.angle))
    ue = (du * cos + dv * sin) / _col(p.zoom)
    ve = (-du * sin + dv * cos) / _col(p.zoom)
    return np.broadcast_to(u, ue.shape), np.broadcast_to(v, ue.shape), ue, ve


def _render_chunk(p: _Params, rng: np.random.Generator) -> np.ndarray:
    """[n,H,W,3] float in [0,1]."""
    n = len(p.label)
    u, v, ue, ve = _grid(p)
    # skin with shading, socket shadow and fine texture
    shading = 1.0 + _col(p.shade[:, 0]) * u + _col(p.shade[:, 1]) * v * 2
    socket = 1.0 - _col(p.socket) * np.exp(-((ue / 0.9) ** 2 + (ve / 0.35) ** 2))
    texture = 1.0 + rng.normal(0.0, 0.015, (n, CANVAS_H, CANVAS_W)).astype(F32)
    img = p.skin[:, None, None, :] * (shading * socket * texture)[..., None]

    a = _col(p.a)
    t = np.clip(1.0 - (ue / a) ** 2, 0.0, 1.0)
    tp = t ** _col(p.lid_pow)
    q = _col(p.q)
    y_up = -_col(p.hu) * q * tp
    y_lo = _col(p.hl) * q * t
    inside = np.where(t > 0, np.minimum(ve - y_up, y_lo - ve), -1.0)
    aperture = _soft(inside, 0.015)

    # crease above the upper lid and an eyebrow band near the top of some crops
    crease_y = y_up - 0.10 - 0.08 * t
    img = img * (1 - (_col(p.crease) * np.exp(-(((ve - crease_y) / 0.025) ** 2)) * (t > 0.05))[..., None])
    brow = _col(p.brow) * _soft(0.06 - np.abs(v - _col(p.brow_y) - 0.1 * u**2), 0.03)
    img = img * (1 - 0.6 * brow[..., None])

    # the eye itself: sclera, iris, pupil, catch-light, clipped by the aperture
    sclera = np.array([0.92, 0.90, 0.87], F32) * (1 - 0.25 * (np.abs(ue) / a) ** 2)[..., None]
    r = np.hypot(ue - _col(p.iris_x), ve - _col(p.iris_y))
    ir = _col(p.iris_r)
    limbus = 1.0 - 0.45 * np.clip((r / ir - 0.7) / 0.3, 0, 1)
    iris = p.iris_rgb[:, None, None, :] * limbus[..., None]
    eye = sclera * (1 - _soft(ir - r)[..., None]) + iris * _soft(ir - r)[..., None]
    eye = _blend(eye, _soft(ir * _col(p.pupil) - r), np.array([0.04, 0.03, 0.03], F32))
    glint = _soft(ir * 0.22 - np.hypot(ue - _col(p.iris_x) - 0.35 * ir, ve - _col(p.iris_y) + 0.35 * ir))
    eye = _blend(eye, glint * 0.85, np.array([1.0, 1.0, 1.0], F32))
    eye = eye * (1 - 0.35 * np.exp(-(((ve - y_up) / 0.05) ** 2)))[..., None]  # lid shadow on the eye
    img = img * (1 - aperture[..., None]) + eye * aperture[..., None]

    # lid margins: the upper lid line (open) or the closed lid line, both with lashes
    dark = p.skin * 0.25
    lw = _col(p.line_w)
    closed_line = y_lo + _col(p.closed_curve) * t  # a closed lid sags into a downward arc
    upper = _soft(lw - np.abs(ve - y_up), 0.012) * _ramp(t, 0.0, 0.05)
    lower = 0.35 * _soft(lw * 0.6 - np.abs(ve - y_lo), 0.012) * _ramp(t, 0.03, 0.1)
    shut = _soft(lw - np.abs(ve - closed_line), 0.012) * _ramp(t, 0.0, 0.05) * (q < 0.15)
    stripes = np.sin(ue * _col(p.lash_freq) + _col(p.lash_phase)) > 0.55
    lash_up = _soft(0.07 - (y_up - ve), 0.02) * (ve < y_up) * stripes * (q >= 0.15)
    lash_dn = _soft(0.06 - (ve - closed_line), 0.02) * (ve > closed_line) * stripes * (q < 0.15)
    lashes = _col(p.lash) * (lash_up + lash_dn) * _ramp(t, 0.1, 0.25)
    lines = np.clip(np.maximum.reduce([upper, lower, shut, lashes]), 0, 1)
    return np.clip(_blend(img, lines * 0.9, dark), 0.0, 1.0)


def _gaussian_blur(img: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable per-sample Gaussian blur (sigma in canvas px; 0 = none), edge-replicated."""
    radius = 4
    offsets = np.arange(-radius, radius + 1, dtype=F32)
    s = np.maximum(sigma, 1e-3)[:, None]
    w = np.exp(-0.5 * (offsets[None] / s) ** 2)
    w = (w / w.sum(1, keepdims=True)).astype(F32)
    out = img
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        size = out.shape[axis]
        acc = np.zeros_like(out)
        for k in range(2 * radius + 1):
            piece = padded[:, k : k + size] if axis == 1 else padded[:, :, k : k + size]
            acc += w[:, k, None, None, None] * piece
        out = acc
    return out


def _domain_b(img: np.ndarray, p: _Params, rng: np.random.Generator, shift: float) -> np.ndarray:
    """Lighting, glasses, glare and blur, each scaled by shift (drawn always, so streams stay paired)."""
    n = len(p.label)
    u, v, _, _ = _grid(p)
    # glasses: a frame rim above (and sometimes below) the eye, a slight lens tint, and glare blobs
    has_glasses = rng.random(n) < 0.6 * shift
    rim_y = rng.uniform(-0.42, -0.28, n).astype(F32)
    rim_curve = rng.uniform(-0.15, 0.15, n).astype(F32)
    rim_w = rng.uniform(0.02, 0.05, n).astype(F32)
    rim = _soft(_col(rim_w) - np.abs(v - _col(rim_y) - _col(rim_curve) * u**2), 0.015)
    lower_y = rng.uniform(0.33, 0.48, n).astype(F32)
    has_lower = rng.random(n) < 0.5
    low_rim = _soft(_col(rim_w) - np.abs(v - _col(lower_y) + 0.1 * u**2), 0.015) * _col(has_lower)
    frame_rgb = rng.uniform(0.02, 0.35, (n, 1)).astype(F32) * np.ones(3, F32)
    glasses = np.maximum(rim, low_rim) * _col(has_glasses)
    img = _blend(img, glasses, frame_rgb)
    tint = 1.0 - 0.12 * _col(has_glasses) * rng.uniform(0, 1, (n, 1, 1)).astype(F32)
    img = img * tint[..., None]
    blobs = rng.integers(1, 4, n)
    glare = np.zeros(img.shape[:3], F32)
    for k in range(3):
        gx = rng.uniform(-0.7, 0.7, n).astype(F32)
        gy = rng.uniform(-0.3, 0.3, n).astype(F32)
        gs = rng.uniform(0.05, 0.16, n).astype(F32)
        ga = rng.uniform(0.3, 0.85, n).astype(F32) * (k < blobs) * has_glasses
        glare += _col(ga) * np.exp(-((u - _col(gx)) ** 2 + ((v - _col(gy)) * 1.6) ** 2) / (2 * _col(gs) ** 2))
    img = img + np.clip(glare, 0, 1)[..., None] * (1.0 - img)
    # lighting: gain, colour cast, a directional gradient, gamma
    gain = np.exp(rng.normal(0.0, 0.45, n) * shift).astype(F32)
    cast = (1.0 + rng.normal(0.0, 0.10, (n, 3)) * shift).astype(F32)
    direction = rng.uniform(0, 2 * math.pi, n).astype(F32)
    strength = rng.uniform(0.0, 0.7, n).astype(F32) * shift
    ramp = 1.0 + _col(strength) * (u * _col(np.cos(direction)) + 2 * v * _col(np.sin(direction)))
    img = img * (_col(gain) * ramp)[..., None] * cast[:, None, None, :]
    gamma = np.exp(rng.normal(0.0, 0.25, n) * shift).astype(F32)
    img = np.clip(img, 0.0, 1.0) ** gamma[:, None, None, None]
    blur = (rng.uniform(0.0, 1.8, n) * shift).astype(F32)
    return np.clip(_gaussian_blur(img, blur), 0.0, 1.0)


def _finish(canvas: np.ndarray, rng: np.random.Generator, shift: float) -> list[bytes]:
    """Resize each canvas to its crop size, add sensor noise, JPEG some (B), encode PNG."""
    out = []
    for img in canvas:
        h = int(rng.integers(CROP_H[0], CROP_H[1] + 1))
        w = int(rng.integers(max(CROP_W[0], int(h * 1.4)), CROP_W[1] + 1))
        pil = Image.fromarray((img * 255 + 0.5).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
        noise_sigma = 0.012 + rng.uniform(0.0, 0.06) * shift
        arr = np.asarray(pil, F32) / 255 + rng.normal(0.0, noise_sigma, (h, w, 3)).astype(F32)
        pil = Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))
        quality = int(rng.integers(25, 70))
        if rng.random() < 0.5 * shift:
            buf = io.BytesIO()
            pil.save(buf, format="JPEG", quality=quality)
            pil = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        buf = io.BytesIO()
        pil.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def render(
    labels: np.ndarray, *, seed: int = 0, domain: str = "A", shift: float | None = None
) -> list[bytes]:
    """PNG bytes of one eye crop per label (1 open, 0 closed); deterministic given the arguments."""
    if domain not in _DOMAIN_STREAM:
        raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
    s = float(shift) if shift is not None else (1.0 if domain == "B" else 0.0)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"shift must be in [0, 1], got {shift}")
    stream = _DOMAIN_STREAM[domain]
    images: list[bytes] = []
    for start in range(0, len(labels), _CHUNK):
        chunk = np.asarray(labels[start : start + _CHUNK])
        key = [seed, stream, start]
        rng = np.random.default_rng(key)  # the eyes: the same for every shift
        shape_rng = np.random.default_rng([*key, 1])
        effect_rng = np.random.default_rng([*key, 2])
        params = _sample_params(rng, shape_rng, chunk, s)
        canvas = _domain_b(_render_chunk(params, rng), params, effect_rng, s)
        images += _finish(canvas, np.random.default_rng([*key, 3]), s)
    return images


def make_dataset(
    out: Path,
    *,
    domain: str = "A",
    n: int = 1000,
    seed: int = 0,
    shift: float | None = None,
    val_fraction: float = 0.25,
) -> Path:
    """Write ``out/dataset.parquet`` (OCEC layout, balanced classes) and return its path."""
    if n < 4:
        raise ValueError("n must be >= 4 (both classes in both splits)")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.arange(n) % 2  # balanced and interleaved: open, closed, open, ...
    labels = 1 - labels
    n_val_per_class = max(1, round(n // 2 * val_fraction))
    rank = np.arange(n) // 2  # position within its class
    splits = np.where(rank < n_val_per_class, "val", "train")
    images = render(labels, seed=seed, domain=domain, shift=shift)
    s = float(shift) if shift is not None else (1.0 if domain == "B" else 0.0)
    tag = f"synthetic_{domain}" if shift is None else f"synthetic_{domain}_shift{s:.2f}"
    table = pa.table(
        {
            "split": pa.array(splits.tolist(), pa.string()),
            "label": pa.array(["open" if y else "closed" for y in labels], pa.string()),
            "class_id": pa.array(labels.tolist(), pa.int64()),
            "image_path": pa.array([f"{tag}/{sp}/{i:06d}.png" for i, sp in enumerate(splits)], pa.string()),
            "source": pa.array([f"{tag}_{seed}" for _ in range(n)], pa.string()),
            "image_bytes": pa.array(images, pa.binary()),
        }
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dataset.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path
