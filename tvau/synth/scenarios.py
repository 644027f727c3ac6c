"""What happens in a video: normal pedestrians, plus at most one anomaly event of a given kind.

Each builder returns Actors with per-frame positions, poses, actions and anomaly flags. Normal and
anomalous people share one appearance sampler (palette.sample_outfit); what differs is motion
(speed, gait, pose, trajectory shape, grouping) or the shape of a non-person object.
"""

from __future__ import annotations

import numpy as np

from tvau.synth.actors import Actor
from tvau.synth.motion import Motion, anchored, simulate
from tvau.synth.palette import COLOR_RGB, jitter, sample_color, sample_outfit
from tvau.synth.scene import Scene

WALK = (0.8, 1.2)  # normal walking speed factors
RUN = (2.6, 3.2)
BIKE = (3.0, 3.8)
SKATE = (2.2, 2.8)
CAR = (3.5, 4.5)


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        if self.n > 255:
            raise ValueError("more than 255 objects in one video (uint8 id maps)")
        return self.n


def _pose(T: int) -> dict[str, np.ndarray]:
    z = np.zeros(T)
    return {"phase": z.copy(), "amp": z.copy(), "knee": z + 0.35, "lean": z + 0.04, "tilt": z.copy(),
            "lift": z.copy(), "tuck": z.copy(), "arm": z.copy(), "arm_amp": z.copy(),
            "elbow": z + 0.2, "punch": z.copy(), "throw": z.copy(), "mode": z.copy(), "bag": z.copy()}


def _person(ids: _Ids, rng, scene: Scene, m: Motion, T: int, look=None, size=None) -> Actor:
    """A person following motion m with a gait derived from its speed."""
    look = look or sample_outfit(rng)
    if size is None:
        size = rng.uniform(0.62, 0.8) if rng.random() < 0.1 else rng.uniform(0.86, 1.12)
    pose = _pose(T)
    phase = rng.uniform(0, 2 * np.pi)
    for t in range(T):
        if not m.present[t]:
            continue
        h = scene.person_height(m.y[t]) * size
        if t > 0 and m.present[t - 1]:
            d = float(np.hypot(m.x[t] - m.x[t - 1], m.y[t] - m.y[t - 1]))
            cycle = 0.8 * h * max(1.0, m.speed[t]) ** 0.5  # longer strides when running
            phase += 2 * np.pi * d / cycle
        v = m.speed[t]
        pose["phase"][t] = phase
        run = v >= 2.0
        pose["amp"][t] = 0.0 if v == 0 else (0.75 if run else 0.42)
        pose["knee"][t] = 1.2 if run else 0.35
        pose["lean"][t] = 0.3 if run else 0.04
        pose["arm_amp"][t] = 0.9 if run else 0.5 * pose["amp"][t]
        pose["elbow"][t] = 1.4 if run else 0.2
        pose["bag"][t] = 1.0 if look.get("bag_rgb") is not None else 0.0
    action = [None if not m.present[t] else ("running" if m.speed[t] >= 2 else
                                             "walking" if m.speed[t] > 0 else "standing") for t in range(T)]
    return Actor(oid=ids(), category="person", look=look, size=float(size), x=m.x, y=m.y,
                 present=m.present.copy(), face=m.face.copy(), action=action,
                 anomalous=np.zeros(T, bool), pose=pose)


def _object(ids: _Ids, rng, category: str, m_like: Actor | Motion, T: int, action: str) -> Actor:
    color = sample_color(rng)
    look = {"colors": {"body": color}, "clothing": "", "body_rgb": jitter(COLOR_RGB[color], rng)}
    present = m_like.present.copy()
    return Actor(oid=ids(), category=category, look=look, size=1.0, x=m_like.x.copy(), y=m_like.y.copy(),
                 present=present, face=m_like.face.copy(),
                 action=[action if present[t] else None for t in range(T)], anomalous=np.zeros(T, bool))


def _route_frames(scene: Scene, p, q, v: float) -> int:
    from tvau.synth.motion import WALK_SPEED
    return int(np.hypot(*(np.asarray(q) - p)) / (v * WALK_SPEED * scene.size * 0.7)) + 1


def pedestrian(ids: _Ids, rng, scene: Scene, T: int) -> Actor:
    """A normal passer-by: crosses along a route, sometimes pausing briefly."""
    p, q = scene.sample_route(rng)
    v = rng.uniform(*WALK)
    if rng.random() < 0.15:
        mid = p + rng.uniform(0.3, 0.7) * (q - p)
        steps = [("move", mid, v), ("hold", int(rng.integers(8, 20))), ("move", q, v)]
    else:
        steps = [("move", q, v)]
    n = _route_frames(scene, p, q, v)
    start = int(rng.integers(-n + 12, max(-n + 13, int(0.75 * T))))
    return _person(ids, rng, scene, simulate(scene, p, steps, start, T), T)


def _mark(a: Actor, frames: np.ndarray, kind: str, action: str | None = None) -> None:
    frames = frames & a.present
    a.anomalous |= frames
    a.anomaly_kind = kind
    if action:
        for t in np.nonzero(frames)[0]:
            a.action[t] = action


def _on_route(rng, p, q, lo=0.3, hi=0.55):
    return p + rng.uniform(lo, hi) * (q - p)


def _route_spot(rng, scene: Scene, lo=0.3, hi=0.55):
    """A route and a point on it well inside the frame (where an event will take place)."""
    s = scene.size
    for _ in range(100):
        p, q = scene.sample_route(rng)
        spot = _on_route(rng, p, q, lo, hi)
        if 0.15 * s < spot[0] < 0.85 * s and 0.3 * s < spot[1] < 0.88 * s:
            break
    return p, q, spot


# --- anomaly builders: (ids, rng, scene, T, ta) -> list[Actor] -------------------------------------

def running(ids, rng, scene, T, ta):
    p, q, spot = _route_spot(rng, scene)
    m = anchored(scene, p, [("move", spot, rng.uniform(*WALK)), ("move", q, rng.uniform(*RUN))], 1, ta, T)
    a = _person(ids, rng, scene, m, T)
    _mark(a, m.step == 1, "running", "running")
    return [a]


def falling(ids, rng, scene, T, ta):
    p, _q, spot = _route_spot(rng, scene)
    m = anchored(scene, p, [("move", spot, rng.uniform(*WALK)), ("hold", None)], 1, ta, T)
    a = _person(ids, rng, scene, m, T)
    dur = int(rng.integers(6, 10))
    for t in range(ta, T):
        tau = min(1.0, (t - ta) / dur)
        a.pose["tilt"][t] = np.pi / 2 * tau ** 2  # accelerating topple in the facing direction
        a.pose["arm"][t] = 1.6 * tau
        a.pose["amp"][t] = 0.15
        a.action[t] = "falling" if tau < 1 else "lying"
    _mark(a, np.arange(T) >= ta, "falling")
    return [a]


def jumping(ids, rng, scene, T, ta):
    p, q, spot = _route_spot(rng, scene)
    period, n = int(rng.integers(9, 14)), int(rng.integers(3, 6))
    steps = [("move", spot, rng.uniform(*WALK)), ("hold", period * n), ("move", q, rng.uniform(*WALK))]
    m = anchored(scene, p, steps, 1, ta, T)
    a = _person(ids, rng, scene, m, T)
    for t in np.nonzero(m.step == 1)[0]:
        tau = ((t - ta) % period) / period
        air = np.sin(np.pi * tau)
        a.pose["lift"][t] = 0.3 * air
        a.pose["tuck"][t] = 0.7 * air
        a.pose["knee"][t] = 0.8
        a.pose["arm"][t] = 2.4 * air
    _mark(a, m.step == 1, "jumping", "jumping")
    return [a]


def loitering(ids, rng, scene, T, ta):
    c = scene.sample_spot(rng)
    ang = rng.uniform(0, np.pi)
    d = rng.uniform(0.06, 0.1) * scene.size * np.array([np.cos(ang), 0.5 * np.sin(ang)])
    steps, k = [], 0
    while len(steps) < 40:
        tgt = c + (d if k % 2 == 0 else -d) + rng.normal(0, 0.015 * scene.size, 2)
        steps.append(("move", tgt, rng.uniform(0.45, 0.7)))
        if rng.random() < 0.5:
            steps.append(("hold", int(rng.integers(4, 12))))
        k += 1
    m = simulate(scene, c, steps, 0, T)  # pacing back and forth for the whole video
    a = _person(ids, rng, scene, m, T)
    _mark(a, np.ones(T, bool), "loitering", "loitering")
    return [a]


def _vehicle_like(ids, rng, scene, T, ta, speed, category, kind, rider_mode, action):
    p, q = scene.sample_route(rng)
    m = simulate(scene, p, [("move", q, rng.uniform(*speed))], ta - int(rng.integers(0, 8)), T)
    out = []
    carrier = _object(ids, rng, category, m, T, action)
    _mark(carrier, np.ones(T, bool), kind)
    out.append(carrier)
    if rider_mode is not None:
        rider = _person(ids, rng, scene, m, T)
        rider.layer = 1
        rider.attach = carrier
        carrier.size = rider.size
        rp = rider.pose
        for t in np.nonzero(m.present)[0]:
            rp["mode"][t] = rider_mode
            rp["amp"][t], rp["knee"][t], rp["arm_amp"][t], rp["elbow"][t] = 0.0, 0.15, 0.1, 0.3
            if rider_mode == 1:  # pedalling: the crank turns with distance
                rp["lean"][t] = 0.35
            else:  # skating: upright, arms out for balance, gentle sway
                rp["lean"][t] = 0.08 + 0.05 * np.sin(0.3 * t)
                rp["arm"][t] = 0.6
                rp["lift"][t] = 0.07
        _mark(rider, np.ones(T, bool), kind, action)
        out.append(rider)
    return out


def bicycle(ids, rng, scene, T, ta):
    return _vehicle_like(ids, rng, scene, T, ta, BIKE, "bicycle", "bicycle", 1, "riding")


def skateboard(ids, rng, scene, T, ta):
    return _vehicle_like(ids, rng, scene, T, ta, SKATE, "skateboard", "skateboard", 2, "skateboarding")


def vehicle(ids, rng, scene, T, ta):
    return _vehicle_like(ids, rng, scene, T, ta, CAR, "car", "vehicle", None, "driving")


def fighting(ids, rng, scene, T, ta):
    p, q, mid = _route_spot(rng, scene, 0.35, 0.6)
    u = (q - p) / np.linalg.norm(q - p)
    gap = 0.17 * scene.person_height(mid[1]) * np.array([1.0, 0.3]) * np.sign(u[0] or 1)
    people, arrive = [], []
    for src, spot in ((p, mid - gap), (q, mid + gap)):
        t_arr = ta + int(rng.integers(-4, 5))
        m = anchored(scene, src, [("move", spot, rng.uniform(*WALK)), ("hold", None)], 1, t_arr, T)
        people.append((m, _person(ids, rng, scene, m, T)))
        arrive.append(t_arr)
    tf = max(arrive)
    (_ma, a), (_mb, b) = people
    for me, other, off in ((a, b, 0.0), (b, a, np.pi / 2)):
        for t in range(tf, T):
            me.face[t] = 1 if other.x[t] > me.x[t] else -1
            me.pose["punch"][t] = 2 * np.pi * (t - tf) / 6 + off
            me.pose["lean"][t] = 0.2 + 0.1 * np.sin(0.9 * t + off)
            me.pose["tilt"][t] = 0.08 * np.sin(0.7 * t + off)
            me.pose["amp"][t] = 0.25 * abs(np.sin(0.5 * t + off))
            me.pose["phase"][t] = 0.8 * t
        jitter_x = 0.04 * scene.person_height(mid[1]) * np.sin(np.arange(T) * 1.3 + off)
        me.x = me.x + np.where(np.arange(T) >= tf, jitter_x, 0)
        _mark(me, np.arange(T) >= tf, "fighting", "fighting")
    return [a, b]


def throwing(ids, rng, scene, T, ta):
    p, q, spot = _route_spot(rng, scene)
    v = rng.uniform(*WALK)
    m = anchored(scene, p, [("move", spot, v), ("hold", 14), ("move", q, v)], 1, ta, T)
    a = _person(ids, rng, scene, m, T)
    t0, t1, rel = ta + 2, ta + 10, ta + 7
    for t in range(t0, min(t1, T)):
        a.pose["throw"][t] = (t - t0) / (t1 - t0 - 1)
    _mark(a, (np.arange(T) >= t0) & (np.arange(T) < t1), "throwing", "throwing")
    # The ball: released from the raised hand, ballistic flight, bounces, leaves the frame.
    s, face = scene.size, int(a.face[min(rel, T - 1)])
    h = scene.person_height(m.y[min(rel, T - 1)]) * a.size
    bx, by = m.x[min(rel, T - 1)] + face * 0.25 * h, m.y[min(rel, T - 1)] - 0.95 * h
    ground = m.y[min(rel, T - 1)]
    vx, vy, g = face * rng.uniform(0.03, 0.045) * s, -rng.uniform(0.02, 0.03) * s, 0.0025 * s
    bxs, bys, pres = np.zeros(T), np.zeros(T), np.zeros(T, bool)
    for t in range(rel, T):
        if not (-0.05 * s < bx < 1.05 * s) or by > 1.05 * s:
            break
        bxs[t], bys[t], pres[t] = bx, by, True
        bx, by, vy = bx + vx, by + vy, vy + g
        if by > ground and vy > 0:
            by, vy = ground, -0.5 * vy
    ball = Actor(oid=ids(), category="ball", look={}, size=1.0, x=bxs, y=bys, present=pres,
                 face=np.ones(T, np.int8), action=[None] * T, anomalous=np.zeros(T, bool))
    color = sample_color(rng)
    ball.look = {"colors": {"body": color}, "clothing": "", "body_rgb": jitter(COLOR_RGB[color], rng)}
    ball.action = ["flying" if pres[t] else None for t in range(T)]
    ball.pose = {"ground": np.full(T, ground)}
    _mark(ball, pres, "throwing")
    return [a, ball]


def abandoned(ids, rng, scene, T, ta):
    p, q, spot = _route_spot(rng, scene)
    look = sample_outfit(rng)
    if look["bag"] is None:
        look["bag"] = sample_color(rng)
        look["bag_rgb"] = jitter(COLOR_RGB[look["bag"]], rng)
        look["clothing"] += " with a bag"
    v = rng.uniform(*WALK)
    m = anchored(scene, p, [("move", spot, v), ("hold", 10), ("move", q, v)], 1, ta, T)
    carrier = _person(ids, rng, scene, m, T, look=look)
    drop = ta + 4
    carrier.pose["bag"][drop:] = 0.0
    h = scene.person_height(m.y[ta]) * carrier.size
    bag = Actor(oid=ids(), category="bag", look={}, size=1.0,
                x=np.full(T, m.x[ta] - carrier.face[ta] * 0.2 * h), y=np.full(T, m.y[ta] + 0.02 * h),
                present=np.arange(T) >= drop, face=np.ones(T, np.int8), action=[None] * T,
                anomalous=np.zeros(T, bool))
    bag.look = {"colors": {"body": look["bag"]}, "clothing": "", "body_rgb": look["bag_rgb"]}
    bag.action = ["dropped" if t >= drop else None for t in range(T)]
    _mark(bag, np.arange(T) >= drop, "abandoned")
    return [carrier, bag]


def crowd(ids, rng, scene, T, ta):
    g = scene.sample_spot(rng, margin=0.25)
    n = int(rng.integers(5, 8))
    out = []
    r = 0.08 * scene.size * scene.persp(g[1])
    for i in range(n):
        ang = 2 * np.pi * i / n + rng.uniform(-0.3, 0.3)
        spot = g + r * np.array([np.cos(ang), 0.45 * np.sin(ang)])
        src = scene.sample_route(rng)[0]
        t_arr = ta + int(rng.integers(-6, 7))
        m = anchored(scene, src, [("move", spot, rng.uniform(*WALK)), ("hold", None)], 1, t_arr, T)
        a = _person(ids, rng, scene, m, T)
        for t in range(max(t_arr, 0), T):
            a.face[t] = 1 if g[0] > a.x[t] else -1
            a.pose["lean"][t] = 0.04 + 0.03 * np.sin(0.2 * t + i)
            a.pose["arm"][t] = 0.15 * np.sin(0.15 * t + i)
        _mark(a, np.arange(T) >= t_arr, "crowd", "gathering")
        out.append(a)
    return out


BUILDERS = {"running": running, "fighting": fighting, "loitering": loitering, "jumping": jumping,
            "throwing": throwing, "crowd": crowd, "bicycle": bicycle, "skateboard": skateboard,
            "falling": falling, "abandoned": abandoned, "vehicle": vehicle}


def _event_visible(actors: list[Actor], size: int, min_frames: int = 6) -> bool:
    """Every anomalous actor stands inside the frame for at least min_frames anomalous frames."""
    for a in actors:
        if a.anomaly_kind is None or not a.anomalous.any():
            continue
        inside = a.anomalous & (a.x > 0.03 * size) & (a.x < 0.97 * size) & (a.y > 0.1 * size) & (a.y < 1.0 * size)
        if inside.sum() < min(min_frames, int(a.anomalous.sum())) or not inside.any():
            return False
    return any(a.anomalous.any() for a in actors)


def plan_video(rng: np.random.Generator, scene: Scene, frames: int, kind: str | None,
               pedestrians: tuple[int, int]) -> list[Actor]:
    """All actors of one video: normal pedestrians, then the anomaly event (if kind is given).
    An event whose actors would stay out of view is re-drawn (deterministically, same rng)."""
    for _ in range(50):
        ids = _Ids()
        n = int(rng.integers(pedestrians[0], pedestrians[1] + 1))
        actors = [pedestrian(ids, rng, scene, frames) for _ in range(n)]
        if kind is None:
            return actors
        ta = int(rng.integers(int(0.15 * frames), int(0.45 * frames) + 1))
        actors += BUILDERS[kind](ids, rng, scene, frames, ta)
        if _event_visible(actors, scene.size):
            return actors
    raise RuntimeError(f"could not place a visible '{kind}' event in scene {scene.index}")


def plan_activity_video(rng: np.random.Generator, scene: Scene, frames: int, activities: list[str],
                        pedestrians: tuple[int, int]) -> list[Actor]:
    """A video of the *pretraining world* (tvau.pretrain): the same people and objects, but the
    events are ordinary activities (joggers, cyclists, skaters, cars, people lying down, sparring,
    playing ball, jumping, putting a bag down, groups, people pacing), several per video, and nobody
    is anomalous: every anomaly flag is cleared. Each activity reuses its anomaly builder, so the
    shapes and poses are exactly those of the anomaly world; an activity whose actors would stay out
    of view is re-drawn (deterministically, same rng), and dropped after 20 tries."""
    ids = _Ids()
    n = int(rng.integers(pedestrians[0], pedestrians[1] + 1))
    actors = [pedestrian(ids, rng, scene, frames) for _ in range(n)]
    for kind in activities:
        for _ in range(20):
            before = ids.n
            ta = int(rng.integers(0, max(1, int(0.5 * frames))))
            extra = BUILDERS[kind](ids, rng, scene, frames, ta)
            if _event_visible(extra, scene.size):
                actors += extra
                break
            ids.n = before  # reuse the ids of the discarded try
    for a in actors:
        a.anomalous[:] = False
        a.anomaly_kind = None
    return actors
