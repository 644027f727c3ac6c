"""Ground-truth regions from object masks: the RBDC/TBDC convention (docs/method.md section 10).

A region is the bounding box of the largest contour of an object's pixels in one frame, in
inclusive pixel coordinates (x2 is the last column inside, so width = x2 - x1 + 1).
"""

from __future__ import annotations

import cv2
import numpy as np


def largest_contour_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) inclusive box of the largest outer contour of a 2-D mask, or None if
    empty. "Largest" is by contour area, ties (e.g. one-pixel-wide shapes of area 0) broken by
    the box area."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if not m.any():
        return None
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    best, key = None, (-1.0, -1)
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        k = (float(cv2.contourArea(c)), w * h)
        if k > key:
            best, key = (x, y, x + w - 1, y + h - 1), k
    return best
