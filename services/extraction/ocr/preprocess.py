"""Image analysis and preparation before recognition: skew, sideways pages, ruling lines (numpy on
8-bit grey).

Bare Tesseract reads a ruled table rotated by one degree as garbage and drops short cells (a table's
"Pos" column) next to ruling lines; turning the page straight and whitening the lines is what makes
the difference (corpus/scanned: 64-95 % → 98-100 % of the words per page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Skew search: coarse steps over ±MAX_SKEW, then finer around the best.
MAX_SKEW_DEG = 10.0
_SKEW_STEPS = ((1.0, 10), (0.1, 10), (0.02, 5))  # (step in degrees, steps each side of the best so far)
_MAX_POINTS = 60_000  # dark pixels used for the projection profile (a stride sample of all of them)


@dataclass(frozen=True)
class Layout:
    skew_deg: float  # counter-clockwise rotation that makes the text lines horizontal
    sideways: bool  # the lines run vertically: the page is turned by 90° or 270°
    ink: float  # share of dark pixels (0 on a blank page)


def otsu_threshold(gray: np.ndarray) -> int:
    """The grey level that best splits the histogram into two classes (ink and paper), from a sample of
    the pixels (bincount widens its input to 64 bits: a whole page would cost more than the answer)."""
    step = max(1, int(math.sqrt(gray.size / 250_000)))
    hist = np.bincount(gray[::step, ::step].ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    levels = np.arange(256, dtype=np.float64)
    weight_bg = np.cumsum(hist)
    weight_fg = total - weight_bg
    cum_mean = np.cumsum(hist * levels)
    mean_bg = cum_mean / np.maximum(weight_bg, 1)
    mean_fg = (cum_mean[-1] - cum_mean) / np.maximum(weight_fg, 1)
    between = weight_bg * weight_fg * (mean_bg - mean_fg) ** 2
    return int(np.argmax(between))


def _profile(ys: np.ndarray, xs: np.ndarray, deg: float) -> np.ndarray:
    """How many points fall into each row when projected across lines tilted by `deg` (2-pixel rows)."""
    r = math.radians(deg)
    rows = ((ys * math.cos(r) - xs * math.sin(r)) / 2).astype(np.int64)
    rows -= rows.min()
    return np.bincount(rows).astype(np.float64)


def _sharpness(profile: np.ndarray) -> float:
    return float(profile @ profile)


def _gaps(profile: np.ndarray) -> float:
    """Share of (nearly) empty rows between the first and last inked one: the space between lines."""
    inked = np.flatnonzero(profile)
    if len(inked) < 2:
        return 0.0
    span = profile[inked[0] : inked[-1] + 1]
    return float((span <= 0.02 * span.max()).mean())


def _best_angle(ys: np.ndarray, xs: np.ndarray, start: float, steps: tuple[tuple[float, int], ...]) -> float:
    best = start
    for step, n in steps:
        candidates = [best + step * k for k in range(-n, n + 1) if abs(best + step * k) <= MAX_SKEW_DEG]
        best = max(candidates, key=lambda deg: _sharpness(_profile(ys, xs, deg)))
    return best


def analyse_layout(gray: np.ndarray, threshold: int | None = None, step: int = 1) -> Layout:
    """Skew angle and sideways-ness from projection profiles of the dark pixels of an image of about
    150 dpi (`step` takes every n-th pixel of a finer one)."""
    small = gray[::step, ::step]
    thr = otsu_threshold(small) if threshold is None else threshold
    ys, xs = np.nonzero(small < thr)
    ink = len(ys) / max(small.size, 1)
    if len(ys) < 200:
        return Layout(0.0, False, ink)
    stride = max(1, len(ys) // _MAX_POINTS)
    ys = ys[::stride].astype(np.float32)
    xs = xs[::stride].astype(np.float32)
    # Lines of text leave empty rows between them, and hardly any empty columns (the letters of the many
    # lines fill them); a page turned by 90° is the other way round. Each is measured at its best angle.
    coarse = _SKEW_STEPS[:1]
    across = _best_angle(ys, xs, 0.0, coarse)
    along = _best_angle(xs, ys, 0.0, coarse)
    row_gaps, column_gaps = _gaps(_profile(ys, xs, across)), _gaps(_profile(xs, ys, along))
    sideways = column_gaps > max(2 * row_gaps, 0.05)
    if sideways:
        # The caller turns the page and measures again; this angle is in the turned frame.
        return Layout(round(along, 2), True, ink)
    return Layout(round(_best_angle(ys, xs, across, _SKEW_STEPS[1:]), 2), False, ink)


def _runs(mask: np.ndarray, longer_than: int = 0, shorter_than: int | None = None) -> np.ndarray:
    """The pixels of `mask` that lie in a horizontal run of set pixels of the given length."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), bool)
    padded[:, 1:-1] = mask
    # Every row starts and ends unset, so its changes come in pairs: run start, run end, ...
    changes = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    starts, ends = changes[0::2], changes[1::2]
    length = ends - starts
    keep = length >= longer_than
    if shorter_than is not None:
        keep &= length <= shorter_than
    starts, length = starts[keep], length[keep]
    out = np.zeros(h * (w + 1), bool)
    if len(starts):
        # The flat index of every pixel of every kept run: each run's start, counted up along the run.
        first = np.cumsum(length) - length
        out[np.repeat(starts - first, length) + np.arange(int(length.sum()))] = True
    return out.reshape(h, w + 1)[:, :w]


def remove_rules(gray: np.ndarray, dpi: int, threshold: int | None = None) -> np.ndarray:
    """A copy with ruling lines (long, thin, straight strokes: table borders, underlines, form lines)
    turned to paper white; text, and filled areas such as a dark table header, stay.
    Found at half resolution (a pixel is dark when any of its four is), which is plenty for lines."""
    thr = otsu_threshold(gray) if threshold is None else threshold
    # Ink only: a grey table-header fill must not join the letters on it into one long run. The lighter
    # anti-aliased edge of a line is covered by growing the mask below.
    dark = gray < thr
    h2, w2 = dark.shape[0] // 2, dark.shape[1] // 2
    d = dark[: 2 * h2, : 2 * w2]
    small = d[0::2, 0::2] | d[1::2, 0::2] | d[0::2, 1::2] | d[1::2, 1::2]
    min_len = max(dpi // 4, 20)  # half an inch at full resolution: longer than any letter stroke
    max_thick = max(dpi // 80, 2)  # ~0.6 mm: thicker is a filled area, not a rule
    long_h = _runs(small, longer_than=min_len)
    long_v = _runs(np.ascontiguousarray(small.T), longer_than=min_len).T
    # A rule is long one way and thin the other (a filled box is long both ways and thick); where two
    # rules cross, the crossing is thin within each direction's own long pixels.
    rules = _runs(np.ascontiguousarray(long_h.T), shorter_than=max_thick).T | _runs(
        long_v, shorter_than=max_thick
    )
    if not rules.any():
        return gray
    grown = rules.copy()  # one more (half-resolution) pixel around: the faint fringe of a scanned line
    grown[1:] |= rules[:-1]
    grown[:-1] |= rules[1:]
    grown[:, 1:] |= rules[:, :-1]
    grown[:, :-1] |= rules[:, 1:]
    full = np.zeros(gray.shape, bool)
    full[: 2 * h2, : 2 * w2].reshape(h2, 2, w2, 2)[:] = grown[:, None, :, None]
    # Paper colour, not white: a white stripe between grey cells is an edge of its own, and single
    # digits beside it were misread.
    paper = int(np.median(gray[::4, ::4][gray[::4, ::4] >= thr])) if (gray[::4, ::4] >= thr).any() else 255
    out = gray.copy()
    out[full] = paper
    return out
