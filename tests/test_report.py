"""Overlays, contact sheets and the HTML report."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tvau.report import Section, contact_sheet, outline, overlay, save_png, trajectories, write_html_report


def test_overlay_colours_only_where_heat_is():
    frame = np.full((56, 56, 3), 100, np.uint8)
    heat = np.zeros((4, 4), np.float32)  # patch-grid sized: must be upsampled to the frame
    heat[0, 0] = 1.0
    out = overlay(frame, heat)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[40:, 40:], frame[40:, 40:])  # cold: untouched
    assert np.abs(out[:8, :8].astype(int) - 100).max() > 30  # hot: tinted


def test_contact_sheet_and_png_round_trip(tmp_path):
    imgs = [np.full((20, 30, 3), v, np.uint8) for v in (0, 80, 160, 240)]
    sheet = contact_sheet(imgs, ["a", "b", "c", "d"], cols=3)
    assert sheet.shape == (2 * (20 + 14), 3 * 30, 3)
    path = save_png(tmp_path / "s.png", sheet)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), sheet)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file
    with pytest.raises(ValueError):
        contact_sheet([])


def test_html_report_escapes_and_links(tmp_path):
    page = write_html_report(
        tmp_path / "r.html",
        "Run <1>",
        [Section("Metrics", {"micro_auc": 0.91234, "notes": ["x"]}, [("img/a.png", "heat & mask")],
                 links=[("../docs/index.html", "Data Docs")])],
    )
    text = page.read_text()
    assert "Run &lt;1&gt;" in text and "0.9123" in text and "img/a.png" in text and "heat &amp; mask" in text
    assert "<a href='../docs/index.html'>Data Docs</a>" in text


def test_outline_draws_only_on_the_mask_border():
    frame = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    out = outline(frame, mask)
    assert (out[8, 8:16] == (0, 255, 0)).all()  # top edge
    assert (out[12, 12] == 0).all() and (out[0, 0] == 0).all()  # inside and outside untouched
    assert (frame == 0).all()  # the input is not modified


def test_trajectories_draw_anomalous_paths_in_red_and_normal_in_green():
    frame = np.zeros((90, 90, 3), np.uint8)
    red_path = np.array([[5.0, 80.0], [40.0, 80.0], [80.0, 80.0]])
    green_path = np.array([[5.0, 10.0], [80.0, 10.0]])
    out = trajectories(frame, [(red_path, True, ""), (green_path, False, "")])
    assert out[80, 20, 0] > 200 and out[80, 20, 1] < 60  # red along the anomalous path
    assert out[10, 20, 1] > 150 and out[10, 20, 0] < 60  # green along the normal path
    assert (out[30, 30] == 255).all()  # the 3x3 grid line at x = 30
    assert (out[50, 50] == 0).all()  # elsewhere untouched
