"""What a figure shows, read back from its PNG (matplotlib's image reader): the tests of every
command and demo that writes a figure check its content with these, not its 8-byte header, so
a blank, one-colour or NaN plot fails.

Two kinds of figure are written:
    mosaics   images tiled edge to edge (plots.tile) and drawn in grey (samples, reconstructions,
              strips, the manifold grid): found as large blocks of grey, non-white pixels
    plots     axes with curves, bars or points: found by their frames (the left and right spines,
              long straight dark lines), their content as the coloured pixels inside them
An image drawn with NaN, or not drawn, is white, so it has no mosaic; a plot of NaN has its
frame and no coloured curve inside it.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np

PNG = b"\x89PNG\r\n\x1a\n"
WHITE = 0.98        # a pixel at or above this in every channel is the figure's background
GREY = 0.02         # a pixel whose channels differ by less than this is grey (the mosaics' colour map)
DARK = 0.35         # a frame is drawn in black; antialiasing keeps its core below this
COLOUR = 0.25       # a pixel whose channels differ by more than this belongs to a coloured mark
MIN_MOSAIC = 20     # pixels: smaller grey blocks are text or marks, not a mosaic
MIN_SPINE = 40      # pixels: a frame's side is at least this long; letters and tick marks are shorter
SAME_SPAN = 8       # pixels: two sides of one frame end within this of each other (a tick mark at a
                    # corner, 3.5 points = 6 pixels at 120 dpi, lengthens a side)


def read(path: Path) -> np.ndarray:
    """The PNG at ``path`` as (H, W, 3) floats in [0, 1] (alpha dropped); refuses anything else."""
    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG, f"{path} is not a PNG"
    image = matplotlib.image.imread(path)[..., :3].astype(np.float64)
    assert np.isfinite(image).all()
    assert np.ptp(image.reshape(-1, 3), axis=0).max() > 0.2, f"{path} is (nearly) one colour"
    return image


def _runs(mask: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a 1-D mask at least min_length long."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_length]


def mosaics(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each mosaic, top to bottom then left to right: a block at least
    MIN_MOSAIC pixels each way, most of whose rows and columns are non-white, and which is grey."""
    filled = image.min(axis=2) < WHITE                                   # (H, W)
    grey = np.ptp(image, axis=2) < GREY                                  # (H, W)
    blocks = []
    row_count = filled.sum(axis=1)
    for top, bottom in _runs(row_count >= 0.25 * row_count.max(), MIN_MOSAIC):
        col_count = filled[top:bottom].sum(axis=0)
        # 0.2: a column of a mosaic may be white for most of its height (blank tiles padding the last
        # rows, a white stroke down a one-row strip); a column of text beside it is sparser
        for left, right in _runs(col_count >= 0.2 * (bottom - top), MIN_MOSAIC):
            block = (slice(top, bottom), slice(left, right))
            if filled[block].mean() > 0.6 and grey[block].mean() > 0.97:
                blocks.append((top, bottom, left, right))
    return blocks


def tiles(image: np.ndarray, box: tuple[int, int, int, int], rows: int, cols: int) -> np.ndarray:
    """The mosaic in ``box`` cut into rows x cols tiles, each pooled to 8 x 8 grey levels after
    dropping a 15% border (the rescaled tiles' edges blur into their neighbours): (rows, cols, 8, 8).
    Asserts the box's shape is that of rows x cols square tiles (every model's images are square)."""
    top, bottom, left, right = box
    est_rows = (bottom - top) / ((right - left) / cols)
    assert abs(est_rows - rows) < 0.3, f"the mosaic holds {est_rows:.2f} rows of {cols} tiles, expected {rows}"
    grey = image[top:bottom, left:right].mean(axis=2)
    ys, xs = np.linspace(0, bottom - top, rows + 1), np.linspace(0, right - left, cols + 1)
    out = np.empty((rows, cols, 8, 8))
    for r in range(rows):
        for c in range(cols):
            h, w = ys[r + 1] - ys[r], xs[c + 1] - xs[c]
            y = np.linspace(ys[r] + 0.15 * h, ys[r + 1] - 0.15 * h, 9).astype(int)
            x = np.linspace(xs[c] + 0.15 * w, xs[c + 1] - 0.15 * w, 9).astype(int)
            out[r, c] = [[grey[y[i]:y[i + 1], x[j]:x[j + 1]].mean() for j in range(8)] for i in range(8)]
    return out


def distinct(pooled: np.ndarray, tolerance: float = 0.01) -> int:
    """How many of the pooled tiles (..., 8, 8) differ from every earlier one by more than
    ``tolerance`` in some cell (grey levels; 0.01 is 2.5 steps of 8-bit colour)."""
    flat = pooled.reshape(-1, 64)
    kept: list[np.ndarray] = []
    for t in flat:
        if all(np.abs(t - k).max() > tolerance for k in kept):
            kept.append(t)
    return len(kept)


def blank(pooled: np.ndarray) -> np.ndarray:
    """Which pooled tiles are white: the padding of a mosaic's last row, or an image of NaN."""
    return pooled.min(axis=(-2, -1)) >= WHITE


def assert_mosaic(path: Path, rows: int, cols: int, *, count: int = 1, index: int = 0, min_distinct: int = 2,
                  blanks: int = 0) -> np.ndarray:
    """The figure holds ``count`` mosaics; the ``index``-th is rows x cols tiles, ``blanks`` of them white
    (padding), at least ``min_distinct`` different from each other. Returns its pooled tiles."""
    image = read(path)
    boxes = mosaics(image)
    assert len(boxes) == count, f"{path.name}: {len(boxes)} image mosaics, expected {count}"
    pooled = tiles(image, boxes[index], rows, cols)
    assert blank(pooled).sum() == blanks, f"{path.name}: {blank(pooled).sum()} blank tiles, expected {blanks}"
    assert distinct(pooled) >= min_distinct, f"{path.name}: only {distinct(pooled)} different tiles"
    return pooled


def panels(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each plot's frame outside the mosaics: pairs of vertical dark
    lines at least MIN_SPINE long spanning the same rows, read left to right."""
    dark = (image.max(axis=2) < DARK) & (np.ptp(image, axis=2) < GREY)   # (H, W)
    for top, bottom, left, right in mosaics(image):                       # their own pixels are no frame
        dark[max(0, top - 3):bottom + 3, max(0, left - 3):right + 3] = False
    lines: list[list[int]] = []                                          # [top, bottom, left, right]
    for x in range(dark.shape[1]):
        for top, bottom in _runs(dark[:, x], MIN_SPINE):
            for line in lines:                                           # the same line, one column on
                if line[3] >= x - 2 and abs(line[0] - top) <= SAME_SPAN and abs(line[1] - bottom) <= SAME_SPAN:
                    line[3] = x
                    break
            else:
                lines.append([top, bottom, x, x])
    lines = [line for line in lines if line[3] - line[2] < 3]           # a frame is thin; a dark heat map cell is not
    frames = []
    while lines:                         # lines spanning the same rows, left to right: left, right, left, ...
        top, bottom = lines[0][0], lines[0][1]
        row = [line for line in lines if abs(line[0] - top) <= SAME_SPAN and abs(line[1] - bottom) <= SAME_SPAN]
        lines = [line for line in lines if line not in row]
        frames += [(top, bottom, a[3] + 1, b[2]) for a, b in zip(row[::2], row[1::2])]
    return sorted(frames, key=lambda f: (f[0] // 10, f[2]))


def assert_plots(path: Path, count: int, *, min_span: float = 0.3, mosaic_count: int = 0) -> list:
    """The figure holds ``count`` plots (and ``mosaic_count`` mosaics), and in each at least 30 coloured
    pixels spanning at least ``min_span`` of its width: curves, points or bars drawn with finite
    data (a legend's sample lines alone span far less; a histogram of codes near 0 may span little
    of its N(0, 1) axis, so its tests ask for less)."""
    image = read(path)
    assert len(mosaics(image)) == mosaic_count, f"{path.name}: {len(mosaics(image))} mosaics"
    frames = panels(image)
    assert len(frames) == count, f"{path.name}: {len(frames)} plots, expected {count}"
    for top, bottom, left, right in frames:
        inside = np.ptp(image[top + 2:bottom - 2, left + 2:right - 2], axis=2) > COLOUR
        xs = np.flatnonzero(inside.any(axis=0))
        assert inside.sum() >= 30 and (xs[-1] - xs[0]) >= min_span * (right - left), \
            f"{path.name}: the plot at x {left}-{right} shows no curve, points or bars across it"
    return frames
