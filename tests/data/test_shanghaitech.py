"""A small ShanghaiTech-layout tree built here is read correctly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tvau.data import DatasetError, open_dataset
from tvau.video import VideoWriter

H, W, N = 48, 80, 20


def _build(root):
    rng = np.random.default_rng(0)
    (root / "training" / "videos").mkdir(parents=True)
    with VideoWriter(root / "training" / "videos" / "01_001.avi", 24, W, H, codec="mpeg4") as w:
        for _ in range(12):
            w.write(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    vdir = root / "testing" / "frames" / "01_0014"
    vdir.mkdir(parents=True)
    pixel = np.zeros((N, H, W), np.uint8)
    for t in range(N):
        img = np.full((H, W, 3), 90, np.uint8)
        cv2.imwrite(str(vdir / f"{t:03d}.jpg"), img)
    for t in range(5, 10):  # a moving square: track 1
        pixel[t, 10:20, 2 * t:2 * t + 8] = 1
    pixel[7, 30:32, 60:62] = 1  # a smaller blob in the same frame: not the largest contour
    for t in range(14, 17):  # a second run of anomalous frames: track 2
        pixel[t, 5:25, 40:45] = 1
    labels = pixel.reshape(N, -1).any(1).astype(np.uint8)
    (root / "testing" / "test_frame_mask").mkdir()
    (root / "testing" / "test_pixel_mask").mkdir()
    np.save(root / "testing" / "test_frame_mask" / "01_0014.npy", labels)
    np.save(root / "testing" / "test_pixel_mask" / "01_0014.npy", pixel)
    return pixel, labels


def test_read_shanghaitech_tree(tmp_path):
    pixel, labels = _build(tmp_path)
    recs = open_dataset(tmp_path, "shanghaitech")
    train, test = recs
    assert (train.name, train.split, train.num_frames, train.height, train.width) == ("01_001", "train", 12, H, W)
    assert not train.is_anomalous and len(list(train.iter_frames(3, 7))) == 4
    assert (test.name, test.split, test.num_frames, test.height, test.width) == ("01_0014", "test", N, H, W)
    np.testing.assert_array_equal(test.frame_labels, labels)
    masks = np.stack(list(test.iter_anomaly_masks()))
    np.testing.assert_array_equal(masks, pixel.astype(bool))
    frames = list(test.iter_frames(2, 4))
    assert len(frames) == 2 and frames[0].shape == (H, W, 3) and abs(int(frames[0].mean()) - 90) <= 2
    # Derived tracks: one per run of anomalous frames, the largest-contour box per frame.
    assert [t.track_id for t in test.tracks] == [1, 2]
    t1, t2 = test.tracks
    assert t1.frames.tolist() == [5, 6, 7, 8, 9]
    assert t1.boxes.tolist() == [[2 * t, 10, 2 * t + 7, 19] for t in range(5, 10)]
    assert t2.frames.tolist() == [14, 15, 16] and t2.boxes.tolist() == [[40, 5, 44, 24]] * 3


def test_public_track_files_and_errors(tmp_path):
    _build(tmp_path)
    tdir = tmp_path / "tracks"
    tdir.mkdir()
    (tdir / "01_0014.txt").write_text("3,5,1,2,10,12\n3,6,2,2,11,12\n")
    test = open_dataset(tmp_path, "shanghaitech", tracks_dir=tdir)[1]
    assert len(test.tracks) == 1 and test.tracks[0].boxes.tolist() == [[1, 2, 10, 12], [2, 2, 11, 12]]
    (tdir / "01_0014.txt").write_text("3,25,1,2,10,12\n")
    with pytest.raises(DatasetError, match="outside the video"):
        open_dataset(tmp_path, "shanghaitech", tracks_dir=tdir)
    np.save(tmp_path / "testing" / "test_frame_mask" / "01_0014.npy", np.zeros(N - 1))
    with pytest.raises(DatasetError, match="19 frame labels for 20 frames"):
        open_dataset(tmp_path, "shanghaitech")
    (tmp_path / "testing" / "test_frame_mask" / "01_0014.npy").unlink()
    with pytest.raises(DatasetError, match="missing frame labels"):
        open_dataset(tmp_path, "shanghaitech")
