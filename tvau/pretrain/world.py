"""The pretraining world's footage and its generic per-patch targets (never anomaly labels).

Footage: tvau.synth's scenes, actors and renderer, with `plan_activity_video` instead of the anomaly
planner: joggers, cyclists, skaters, cars, people lying down, sparring pairs, ball games, jumpers,
bags put down, groups and people pacing are all ordinary here, several per video, on cameras (scene
numbers) that `tvau synth` never makes. Rendered in memory (no files).

Targets, per patch of the backbone's grid (two frames x 14 x 14 pixels): what a generic pretrained
model knows, read from the generator's per-object ground truth:
- category: the object covering most of the patch (background below `min_coverage`);
- action: what that object is doing (a pose/motion word; "loitering" and "gathering" are not
  actions, a pacing or grouped person is walking or standing by its own speed);
- velocity: its displacement over the frame pair, in units of its height (x10);
- appearance: what the object looks like, on every patch it covers (so any of its tokens can say
  it): its upper colour (a person's top, an object's body), lower colour, top and bottom garment
  (IGNORE where the object has none, e.g. a car's garments).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from tvau import vocab
from tvau.pretrain.config import WorldConfig
from tvau.synth.palette import LOWER_GARMENTS, UPPER_GARMENTS

CATEGORY_TARGETS: tuple[str, ...] = ("background", *vocab.CATEGORIES)
ACTION_TARGETS: tuple[str, ...] = (
    "none", "walking", "standing", "running", "jumping", "falling", "lying", "punching", "riding",
    "skateboarding", "throwing", "flying", "driving", "still",
)
# Generator action word -> generic action. None: decided by the object's own speed (walking/standing).
_ACTION_OF = {"walking": "walking", "standing": "standing", "running": "running", "jumping": "jumping",
              "falling": "falling", "lying": "lying", "fighting": "punching", "riding": "riding",
              "skateboarding": "skateboarding", "throwing": "throwing", "flying": "flying",
              "driving": "driving", "dropped": "still", "loitering": None, "gathering": None}
# The appearance targets: (name, words) per column of WorldVideo.appearance.
APPEARANCE_TARGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("upper_color", vocab.COLORS), ("lower_color", vocab.COLORS),
    ("top", UPPER_GARMENTS), ("bottom", LOWER_GARMENTS),
)
IGNORE = -100  # target index the losses skip (torch's cross-entropy default)
VELOCITY_SCALE = 10.0  # person heights per frame x 10: a walk is ~0.4, a car ~1.6


@dataclass
class WorldVideo:
    frames: np.ndarray  # (T, S, S, 3) uint8 RGB
    ids: np.ndarray  # (T, S, S) uint8 object ids, 0 = background
    category: np.ndarray  # (max_id + 1,) int: CATEGORY_TARGETS index per object id (0 for id 0)
    action: np.ndarray  # (T, max_id + 1) int: ACTION_TARGETS index per frame and object id
    velocity: np.ndarray  # (T, max_id + 1, 2) float32: (dx, dy) to the next frame / height x 10
    appearance: np.ndarray  # (max_id + 1, 4) int: APPEARANCE_TARGETS indices per object id (IGNORE: none)
    dialogue: list = field(default_factory=list)  # generic (question, answer) turns, tvau.pretrain.language


def _appearance(actors) -> np.ndarray:
    out = np.full((max((a.oid for a in actors), default=0) + 1, len(APPEARANCE_TARGETS)), IGNORE, np.int64)
    for a in actors:
        colors = a.look["colors"]
        words = (colors.get("upper", colors.get("body")), colors.get("lower"), a.look.get("top"), a.look.get("bottom"))
        for k, (word, (_, table)) in enumerate(zip(words, APPEARANCE_TARGETS)):
            if word is not None:
                out[a.oid, k] = table.index(word)
    return out


def _labels(actors, scene, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    max_id = max((a.oid for a in actors), default=0)
    cat = np.zeros(max_id + 1, np.int64)
    act = np.zeros((T, max_id + 1), np.int64)
    vel = np.zeros((T, max_id + 1, 2), np.float32)
    for a in actors:
        cat[a.oid] = CATEGORY_TARGETS.index(a.category)
        ground = a.pose.get("ground") if a.category == "ball" else None
        for t in range(T):
            if not a.present[t]:
                continue
            h = scene.person_height(float(ground[t] if ground is not None else a.y[t])) * a.size
            nxt = min(t + 1, T - 1)
            d = (np.array([a.x[nxt] - a.x[t], a.y[nxt] - a.y[t]]) if a.present[nxt] else np.zeros(2))
            vel[t, a.oid] = VELOCITY_SCALE * d / max(h, 1e-6)
            word = a.action[t]
            generic = _ACTION_OF.get(word, "none") if word is not None else "none"
            if generic is None:
                generic = "walking" if np.hypot(*d) > 1e-3 else "standing"
            act[t, a.oid] = ACTION_TARGETS.index(generic)
    return cat, act, vel


def render_world_video(cfg: WorldConfig, stream: int, index: int, describe=None) -> WorldVideo:
    """Video `index` of random stream `stream` (0 = vision training, 1 = its held-out metrics,
    2 = language training, 3 = its held-out metrics): a pure function of (cfg, stream, index).
    `describe(actors, scene, ids, rng)` (tvau.pretrain.language.world_dialogues) writes its dialogues."""
    from tvau.synth.render import render_video
    from tvau.synth.scenarios import plan_activity_video
    from tvau.synth.scene import make_scene

    cv2.setNumThreads(1)
    rng = np.random.default_rng([cfg.seed, 7, stream, index])
    scene_no = cfg.scene_offset + 1 + int(rng.integers(cfg.scenes))
    scene = make_scene(scene_no, cfg.size, np.random.default_rng([cfg.seed, 0, scene_no]))
    k = int(rng.integers(cfg.min_activities, cfg.max_activities + 1)) if cfg.activities else 0
    acts = [cfg.activities[int(i)] for i in rng.integers(len(cfg.activities), size=k)] if k else []
    T = cfg.video_frames
    actors = plan_activity_video(rng, scene, T, acts, (cfg.min_pedestrians, cfg.max_pedestrians))
    frames, ids = zip(*render_video(scene, actors, T, rng, cfg.noise_sigma, cfg.lighting_amplitude))
    cat, act, vel = _labels(actors, scene, T)
    ids = np.stack(ids)
    # Its own random stream, so the dialogue never changes what is rendered.
    turns = describe(actors, scene, ids, np.random.default_rng([cfg.seed, 11, stream, index])) if describe else []
    return WorldVideo(np.stack(frames), ids, cat, act, vel, _appearance(actors), turns)


def resize_clip(frames: np.ndarray, ids: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames to the model's clip size as T-VAU's clip loader resizes them (tvau.data.clips), and the
    id maps with nearest neighbours."""
    from tvau.data.clips import _resize

    f = np.stack([_resize(x, height, width) for x in frames])
    i = np.stack([_resize(x, height, width, nearest=True) for x in ids])
    return f, i


def patch_targets(video: WorldVideo, start: int, ids: np.ndarray, patch: int = 14, temporal: int = 2,
                  min_coverage: float = 0.1) -> dict[str, np.ndarray]:
    """Targets of the clip starting at frame `start` whose (resized) id maps are `ids` (T, H, W):
    category (T', H', W') int, action (T', H', W') int, velocity (T', H', W', 2) float32, appearance
    (T', H', W', 4) int (IGNORE on background), on the backbone's patch grid (T' = T / temporal,
    H' = H / patch)."""
    T, H, W = ids.shape
    tq, hq, wq = T // temporal, H // patch, W // patch
    cells = ids[: tq * temporal, : hq * patch, : wq * patch].reshape(tq, temporal, hq, patch, wq, patch)
    cells = cells.transpose(0, 2, 4, 1, 3, 5).reshape(tq, hq, wq, -1)
    n = cells.shape[-1]
    best = np.zeros((tq, hq, wq), np.int64)
    best_count = np.zeros((tq, hq, wq), np.int64)
    for oid in np.unique(cells):
        if oid == 0:
            continue
        c = (cells == oid).sum(-1)
        better = c > best_count
        best[better], best_count[better] = oid, c[better]
    best[best_count < min_coverage * n] = 0
    t0 = start + np.arange(tq) * temporal  # labels of the pair's first frame
    category = video.category[best]
    action = video.action[t0[:, None, None], best]
    velocity = video.velocity[t0[:, None, None], best]
    look = video.appearance[best]
    action[best == 0] = 0
    velocity[best == 0] = 0
    look[best == 0] = IGNORE
    return {"category": category, "action": action, "velocity": velocity.astype(np.float32), "appearance": look}
