"""RBDC/TBDC: hand-worked cases, and the vectorised sweep against a literal loop over the spec."""

import numpy as np
import pytest

from tvau.metrics.regions import (
    box_iou_inclusive,
    components_to_regions,
    heatmap_to_regions,
    object_boxes,
    rbdc_tbdc,
    score_boxes,
)


def track(tid, frames, box):
    return np.array([[tid, f, *box] for f in frames], dtype=float)


def dets(*rows):
    return np.array(rows, dtype=float).reshape(-1, 6)


BOX = (10, 10, 19, 19)


def test_perfect_detection_is_one():
    gt = {"v": track(1, range(10), BOX)}
    det = {"v": dets(*[(f, *BOX, 0.9) for f in range(10)])}
    res = rbdc_tbdc(gt, det, num_frames=100)
    assert res.rbdc == pytest.approx(1.0) and res.tbdc == pytest.approx(1.0)


def test_no_detections_is_zero():
    res = rbdc_tbdc({"v": track(1, range(3), BOX)}, {}, num_frames=10)
    assert res.rbdc == 0.0 and res.tbdc == 0.0


def test_high_scoring_false_positive_then_hit():
    # FP (frame without ground truth) at 0.9 -> (0.1, 0); hit at 0.5 -> (0.1, 1); flat to (1, 1).
    gt = {"v": track(1, [0], (0, 0, 9, 9))}
    det = {"v": dets((5, 0, 0, 9, 9, 0.9), (0, 0, 0, 9, 9, 0.5))}
    res = rbdc_tbdc(gt, det, num_frames=10)
    assert res.rbdc == pytest.approx(0.9) and res.tbdc == pytest.approx(0.9)
    np.testing.assert_allclose(res.fpr, [0, 0.1, 0.1])
    np.testing.assert_allclose(res.rbdr, [0, 0, 1])


def test_duplicate_box_is_neither_hit_nor_false_positive():
    # 0.9 hit (1/2 regions); 0.8 duplicate: neither; 0.7 far box: FP -> fpr 0.1; 0.6 hit frame 1.
    # Curve (0,0) (0,.5) (0,.5) (.1,.5) (.1,1) (1,1): area .1*.5 + .9 = .95.
    # Were the duplicate a false positive the area would be .2*.5 + .8 = .9.
    gt = {"v": track(1, [0, 1], (0, 0, 9, 9))}
    det = {
        "v": dets((0, 0, 0, 9, 9, 0.9), (0, 0, 0, 9, 9, 0.8), (0, 50, 50, 59, 59, 0.7), (1, 0, 0, 9, 9, 0.6))
    }
    res = rbdc_tbdc(gt, det, num_frames=10)
    assert res.rbdc == pytest.approx(0.95)
    assert res.tbdc == pytest.approx(1.0)  # 1 of 2 regions >= 10% at the first step


def test_track_detected_through_one_region_in_ten():
    # Track 1: 10 regions, one detected -> 1/10 >= 0.1: detected. Track 2: 11 regions, one detected
    # -> 1/11 < 0.1: not detected. No false positives: RBDC = 2/21, TBDC = 1/2.
    gt = {"a": track(1, range(10), BOX), "b": track(7, range(11), BOX)}
    det = {"a": dets((3, *BOX, 0.9)), "b": dets((4, *BOX, 0.8))}
    res = rbdc_tbdc(gt, det, num_frames=100)
    assert res.rbdc == pytest.approx(2 / 21)
    assert res.tbdc == pytest.approx(0.5)


def test_beta_share_boundary_is_inclusive():
    # 3 of 30 regions is exactly the 10% share (c / n >= beta). Here 0.1 * 30 is exactly 3.0 in
    # floats, so this case does not exercise the rounding guard: the next test does.
    gt = {"v": track(1, range(30), BOX)}
    det = {"v": dets(*[(f, *BOX, 0.9) for f in range(3)])}
    assert rbdc_tbdc(gt, det, num_frames=100).tbdc == pytest.approx(1.0)
    det2 = {"v": dets(*[(f, *BOX, 0.9) for f in range(2)])}
    assert rbdc_tbdc(gt, det2, num_frames=100).tbdc == pytest.approx(0.0)


@pytest.mark.parametrize("beta, n", [(0.55, 100), (0.07, 100), (0.14, 50), (0.28, 25)])
def test_beta_share_is_not_fooled_by_float_rounding(beta, n):
    # beta * n lands just above an integer in floats (0.55 * 100 = 55.00000000000001), so a bare
    # ceil(beta * n) asks for one region too many: k = round(beta * n) of n regions reach the share
    # exactly (k / n >= beta holds in floats too) and must count; k - 1 must not.
    k = round(beta * n)
    assert beta * n > k and k / n >= beta  # the premise: the float product overshoots
    gt = {"v": track(1, range(n), BOX)}
    hit = {"v": dets(*[(f, *BOX, 0.9) for f in range(k)])}
    assert rbdc_tbdc(gt, hit, num_frames=200, beta=beta).tbdc == pytest.approx(1.0)
    short = {"v": dets(*[(f, *BOX, 0.9) for f in range(k - 1)])}
    assert rbdc_tbdc(gt, short, num_frames=200, beta=beta).tbdc == 0.0


def test_tied_step_reaching_fpr_exactly_one_keeps_its_hit():
    # One score step holds two false positives (frame 1, no ground truth) and the only hit: on 2
    # frames it ends at FPR 2/2 = 1.0 exactly, inside [0, 1], so the curve runs (0, 0) -> (1, 1)
    # and the area is 0.5. Were FPR 1 excluded (< 1 instead of <= 1) the hit would be lost: 0.
    gt = {"v": track(1, [0], BOX)}
    det = {"v": dets((1, 40, 40, 49, 49, 0.5), (1, 0, 0, 3, 3, 0.5), (0, *BOX, 0.5))}
    res = rbdc_tbdc(gt, det, num_frames=2)
    np.testing.assert_array_equal(res.fpr, [0.0, 1.0])
    assert res.rbdc == pytest.approx(0.5) and res.tbdc == pytest.approx(0.5)


@pytest.mark.parametrize(
    "gt_box, det_box, iou, hit",
    [
        ((0, 0, 99, 9), (81, 0, 180, 9), 190 / 1810, True),  # just above 0.1
        ((0, 0, 99, 9), (82, 0, 181, 9), 180 / 1820, False),  # just below 0.1
        ((0, 0, 9, 9), (0, 0, 0, 9), 0.1, True),  # exactly 0.1 counts (IoU >= alpha)
        # Inclusive pixels: 20/180 = 0.111 hits; with width x2 - x1 it would be 9/153 = 0.059.
        ((0, 0, 9, 9), (8, 0, 17, 9), 20 / 180, True),
    ],
)
def test_iou_just_above_and_below_alpha(gt_box, det_box, iou, hit):
    assert box_iou_inclusive(np.array([gt_box]), np.array([det_box]))[0] == pytest.approx(iou)
    res = rbdc_tbdc({"v": track(1, [0], gt_box)}, {"v": dets((0, *det_box, 0.5))}, num_frames=10)
    assert res.rbdc == pytest.approx(1.0 if hit else 0.0)


def test_one_detection_may_detect_several_regions():
    gt = {"v": np.vstack([track(1, [0], (0, 0, 9, 9)), track(2, [0], (2, 0, 11, 9))])}
    res = rbdc_tbdc(gt, {"v": dets((0, 0, 0, 11, 9, 0.9))}, num_frames=5)
    assert res.rbdc == pytest.approx(1.0) and res.tbdc == pytest.approx(1.0)


def test_false_positives_beyond_one_per_frame_are_cut():
    # 3 FPs on 2 frames before the hit: the hit lies at FPR 1.5, outside [0, 1].
    gt = {"v": track(1, [0], BOX)}
    det = {"v": dets((1, *BOX, 0.9), (1, 0, 0, 3, 3, 0.8), (1, 40, 40, 49, 49, 0.7), (0, *BOX, 0.1))}
    assert rbdc_tbdc(gt, det, num_frames=2).rbdc == 0.0


def test_tied_scores_do_not_depend_on_listing_order():
    gt = {"v": track(1, [0], BOX)}
    a = rbdc_tbdc(gt, {"v": dets((0, *BOX, 0.5), (3, *BOX, 0.5))}, num_frames=10)
    b = rbdc_tbdc(gt, {"v": dets((3, *BOX, 0.5), (0, *BOX, 0.5))}, num_frames=10)
    # One step (FPR 0.1, RBDR 1): (0,0)-(0.1,1)-(1,1), area 0.05 + 0.9.
    assert a.rbdc == b.rbdc == pytest.approx(0.95)


def test_bad_boxes_and_empty_ground_truth_are_errors():
    with pytest.raises(ValueError, match="x2 < x1"):
        rbdc_tbdc({"v": track(1, [0], (5, 0, 4, 9))}, {}, num_frames=1)
    with pytest.raises(ValueError, match="without ground-truth"):
        rbdc_tbdc({}, {"v": dets((0, *BOX, 0.5))}, num_frames=1)


# ------------------------------------------------------------------ literal reference (the spec)


def reference_rbdc_tbdc(gt, det, num_frames, alpha=0.1, beta=0.1):
    """A direct loop over docs/method.md section 9, one detection at a time (distinct scores)."""
    regions = [(v, int(r[0]), int(r[1]), r[2:6]) for v, rows in gt.items() for r in rows]
    tracks = {}
    for i, (v, t, _, _) in enumerate(regions):
        tracks.setdefault((v, t), []).append(i)
    all_dets = sorted(
        ((r[5], v, int(r[0]), r[1:5]) for v, rows in det.items() for r in rows), key=lambda d: -d[0]
    )
    detected = set()
    fp = 0
    pts = [(0.0, 0.0, 0.0)]
    for _, v, f, box in all_dets:
        matches = [
            i
            for i, (rv, _, rf, rbox) in enumerate(regions)
            if rv == v and rf == f and box_iou_inclusive(box[None], rbox[None])[0] >= alpha
        ]
        if not matches:
            fp += 1
        detected.update(matches)
        tbdr = np.mean([sum(i in detected for i in ids) / len(ids) >= beta for ids in tracks.values()])
        pts.append((fp / num_frames, len(detected) / len(regions), tbdr))

    def area(k):
        xs = [p[0] for p in pts if p[0] <= 1]
        ys = [p[k] for p in pts if p[0] <= 1]
        if xs[-1] < 1:
            xs.append(1.0)
            ys.append(ys[-1])
        return sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(xs) - 1))

    return area(1), area(2)


def test_vectorised_sweep_matches_literal_loop():
    rng = np.random.default_rng(7)
    gt, det = {}, {}
    for v in range(4):
        rows = []
        for t in range(rng.integers(1, 4)):
            start, n = rng.integers(0, 20), rng.integers(1, 15)
            x, y = rng.integers(0, 60, 2)
            for f in range(start, start + n):
                x, y = x + rng.integers(-2, 3), y + rng.integers(-2, 3)
                rows.append([t, f, x, y, x + 15, y + 20])
        gt[f"vid{v}"] = np.array(rows, dtype=float)
    for v in range(5):  # vid4 has detections only
        n = 60
        f = rng.integers(0, 35, n)
        xy = rng.integers(0, 70, (n, 2))
        wh = rng.integers(5, 30, (n, 2))
        det[f"vid{v}"] = np.column_stack([f, xy, xy + wh, rng.random(n)]).astype(float)
    for num_frames in (150, 60):
        ref = reference_rbdc_tbdc(gt, det, num_frames)
        res = rbdc_tbdc(gt, det, num_frames)
        assert 0 < res.rbdc < 1
        assert (res.rbdc, res.tbdc) == pytest.approx(ref, abs=1e-12)


def test_chunked_join_matches_unchunked():
    from tvau.metrics.regions import rbdc_tbdc_arrays

    rng = np.random.default_rng(3)
    R, D = 300, 2000
    gv, gf = rng.integers(0, 3, R), rng.integers(0, 40, R)
    gxy = rng.integers(0, 50, (R, 2))
    dv, df = rng.integers(0, 3, D), rng.integers(0, 40, D)
    dxy = rng.integers(0, 50, (D, 2))
    args = (
        gv,
        np.arange(R) // 5,
        gf,
        np.hstack([gxy, gxy + 12]),
        dv,
        df,
        np.hstack([dxy, dxy + 12]),
        rng.random(D),
    )
    a = rbdc_tbdc_arrays(*args, num_frames=500)
    b = rbdc_tbdc_arrays(*args, num_frames=500, chunk_pairs=7)
    assert (a.rbdc, a.tbdc) == (b.rbdc, b.tbdc) and a.rbdc > 0


# ------------------------------------------------------------------ heatmap -> region detections


def test_components_give_boxes_scored_by_maximum():
    heat = np.zeros((40, 50), dtype=np.float32)
    heat[5:15, 10:30] = 0.6
    heat[8, 12] = 0.95  # the maximum inside the first blob
    heat[30:36, 40:46] = 0.35  # only above the lowest level
    out = components_to_regions(heat, levels=(0.3, 0.5, 0.9), min_area=4)
    rows = {tuple(r[:4].astype(int)): r[4] for r in out}
    assert rows[(10, 5, 29, 14)] == pytest.approx(0.95)
    assert rows[(40, 30, 45, 35)] == pytest.approx(0.35)
    # The single pixel above 0.9 is smaller than min_area and dropped; the 0.3 and 0.5 blobs of the
    # first region are the same box and kept once.
    assert len(out) == 2 and out[0, 4] >= out[1, 4]


def test_boxes_option_scores_given_boxes_and_object_boxes():
    obj = np.zeros((20, 20), dtype=np.int32)
    obj[2:5, 3:9] = 7
    obj[10:18, 12:14] = 1000
    boxes = object_boxes(obj)
    np.testing.assert_array_equal(boxes, [[3, 2, 8, 4], [12, 10, 13, 17]])
    heat = np.zeros((20, 20))
    heat[3, 4] = 0.8
    heat[15, 13] = 0.2
    out = score_boxes(heat, boxes)
    np.testing.assert_allclose(out, [[3, 2, 8, 4, 0.8], [12, 10, 13, 17, 0.2]])
    np.testing.assert_allclose(heatmap_to_regions(heat, "boxes", boxes=boxes), out)
    with pytest.raises(ValueError, match="unknown region option"):
        heatmap_to_regions(heat, "blobs")
