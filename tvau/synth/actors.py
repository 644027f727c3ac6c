"""Actors and how they are drawn: people (with gait, running, falling, jumping, fighting, throwing,
riding and skating poses), bicycles, skateboards, cars, bags and balls.

Every primitive is painted twice: in colour on the frame and with the object's id on the id map,
so the object-ID PNGs are exactly the pixels the object covers (occlusion included: actors are
painted far to near). Shapes are built in a local frame in units of the person's height h
(u forward along the facing direction, v up from the feet), then rotated and placed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

SHIFT = 4  # sub-pixel bits for OpenCV drawing: smooth motion even for small figures
ONE = 1 << SHIFT


class Canvas:
    """A frame (H, W, 3) uint8 RGB and its object-id map (H, W) uint8, painted together."""

    def __init__(self, frame: np.ndarray, ids: np.ndarray) -> None:
        self.frame, self.ids = frame, ids

    @staticmethod
    def _p(p) -> tuple[int, int]:
        return round(p[0] * ONE), round(p[1] * ONE)

    def line(self, p, q, rgb, width: float, oid: int) -> None:
        t = max(1, round(width))
        cv2.line(self.frame, self._p(p), self._p(q), rgb, t, cv2.LINE_8, SHIFT)
        cv2.line(self.ids, self._p(p), self._p(q), oid, t, cv2.LINE_8, SHIFT)

    def circle(self, c, r: float, rgb, oid: int, width: int = -1) -> None:
        rr = max(1, round(r * ONE))
        cv2.circle(self.frame, self._p(c), rr, rgb, width, cv2.LINE_8, SHIFT)
        cv2.circle(self.ids, self._p(c), rr, oid, width, cv2.LINE_8, SHIFT)

    def poly(self, pts, rgb, oid: int) -> None:
        arr = np.round(np.asarray(pts) * ONE).astype(np.int32)[None]
        cv2.fillPoly(self.frame, arr, rgb, cv2.LINE_8, SHIFT)
        cv2.fillPoly(self.ids, arr, oid, cv2.LINE_8, SHIFT)


@dataclass
class Actor:
    """One object of a video, with its per-frame state (arrays of length T = frames)."""

    oid: int  # object id in the id maps (1..255)
    category: str  # tvau.vocab.CATEGORIES
    look: dict  # colours (words and RGB) and clothing, see palette.sample_outfit
    size: float  # individual height factor (1 = average adult)
    x: np.ndarray  # (T,) foot x, pixels
    y: np.ndarray  # (T,) foot y, pixels
    present: np.ndarray  # (T,) bool: exists in the scene (may still be outside the frame)
    face: np.ndarray  # (T,) +1 facing right, -1 facing left
    action: list  # (T,) tvau.vocab.ACTIONS word or None where absent
    anomalous: np.ndarray  # (T,) bool: this object is anomalous in this frame
    anomaly_kind: str | None = None  # ANOMALY_KINDS key when the object takes part in an anomaly
    pose: dict = field(default_factory=dict)  # per-frame pose arrays (persons), see draw_person
    layer: int = 0  # tie-break in depth order (a rider is painted over the bicycle)
    attach: Actor | None = None  # a bicycle/skateboard carrying this person (pose follows it)


def _place(foot, h, face, tilt, lift):
    """A function mapping local (u, v) in units of h to image (x, y)."""
    a = tilt * face
    c, s = np.cos(a), np.sin(a)
    fx, fy = foot[0], foot[1] - lift * h

    def f(u, v):
        dx, dy = u * face * h, -v * h
        return (fx + dx * c - dy * s, fy + dx * s + dy * c)
    return f


def _limb(origin, angle, length):
    """End point of a limb hanging from origin, angle from straight down, positive = forward."""
    return (origin[0] + length * np.sin(angle), origin[1] - length * np.cos(angle))


def draw_person(cv: Canvas, a: Actor, t: int, h: float) -> None:
    p = {k: float(v[t]) for k, v in a.pose.items()}
    look, oid, face = a.look, a.oid, int(a.face[t])
    f = _place((a.x[t], a.y[t]), h, face, p["tilt"], p["lift"])
    upper, lower, skin = look["upper_rgb"], look["lower_rgb"], look["skin_rgb"]
    lean = p["lean"]
    hip = (0.0, 0.48)
    # Upper body leans forward about the hip.
    sh = (hip[0] + 0.32 * np.sin(lean), hip[1] + 0.32 * np.cos(lean))
    head = (hip[0] + 0.44 * np.sin(lean), hip[1] + 0.44 * np.cos(lean))
    phase, amp, knee = p["phase"], p["amp"], p["knee"]

    mode = int(p["mode"])  # 0 gait, 1 ride (feet on pedals), 2 skate (feet on board)
    if mode == 1:
        pc = (0.05, 0.2)
        feet = [(pc[0] + 0.09 * np.cos(phase + k * np.pi), pc[1] + 0.09 * np.sin(phase + k * np.pi)) for k in (0, 1)]
        knees = [((hip[0] + ft[0]) / 2 + 0.1, (hip[1] + ft[1]) / 2 + 0.04) for ft in feet]
    else:
        if mode == 2:
            thigh = (0.22, -0.22)
        else:
            thigh = (amp * np.sin(phase), -amp * np.sin(phase))
        knees, feet = [], []
        for k in (0, 1):
            kn = _limb(hip, thigh[k], 0.25)
            bend = knee * (0.5 + 0.5 * np.sin(phase + k * np.pi + np.pi / 2)) if mode == 0 else 0.15
            knees.append(kn)
            feet.append(_limb(kn, thigh[k] - bend - p["tuck"], 0.25))

    # Arms: swing opposite to the legs, or the pose's override (punching, throwing, riding).
    arm = p["arm"]
    if mode == 1:
        hands = [(0.32, 0.62), (0.3, 0.6)]
        elbows = [((sh[0] + hd[0]) / 2, (sh[1] + hd[1]) / 2 + 0.03) for hd in hands]
    else:
        angles = [arm + p["arm_amp"] * np.sin(phase + np.pi), arm + p["arm_amp"] * np.sin(phase)]
        if p["punch"] > 0:  # alternate straight punches forward, fast
            angles = [np.pi / 2 * (0.6 + 0.5 * max(0, np.sin(p["punch"]))),
                      np.pi / 2 * (0.6 + 0.5 * max(0, -np.sin(p["punch"])))]
        if p["throw"] > 0:  # throwing arm: from behind and up, over the head, to the front
            angles[1] = -2.6 + 3.9 * min(1.0, p["throw"])
        elbows = [_limb(sh, ang, 0.16) for ang in angles]
        bend = p["elbow"]
        hands = [_limb(e, ang + bend, 0.15) for e, ang in zip(elbows, angles)]

    w_leg, w_arm = 0.085 * h, 0.06 * h
    shin_rgb = skin if look["bottom"] in ("shorts", "skirt") else lower
    fore_rgb = skin if look["top"] == "t-shirt" else upper

    def leg(k):
        cv.line(f(*hip), f(*knees[k]), lower if look["bottom"] != "skirt" else skin, w_leg, oid)
        cv.line(f(*knees[k]), f(*feet[k]), shin_rgb, w_leg, oid)
        cv.circle(f(*feet[k]), 0.04 * h, (30, 30, 30), oid)

    def arm_(k):
        cv.line(f(*sh), f(*elbows[k]), upper, w_arm, oid)
        cv.line(f(*elbows[k]), f(*hands[k]), fore_rgb, w_arm, oid)
        cv.circle(f(*hands[k]), 0.03 * h, skin, oid)

    leg(1)
    arm_(1)
    # Torso (a coat reaches below the hip; a skirt is a trapezoid from the hip).
    nx, ny = np.cos(lean), -np.sin(lean)  # across the body
    bot = 0.3 if look["top"] == "coat" else 0.46
    hb = (hip[0] + (bot - hip[1]) * np.sin(lean) * 0, bot)
    torso = [(sh[0] - 0.1 * nx, sh[1] - 0.1 * ny), (sh[0] + 0.1 * nx, sh[1] + 0.1 * ny),
             (hb[0] + 0.09, hb[1]), (hb[0] - 0.09, hb[1])]
    if look["bottom"] == "skirt":
        cv.poly([f(-0.08, 0.5), f(0.08, 0.5), f(0.13, 0.3), f(-0.13, 0.3)], lower, oid)
    cv.poly([f(*q) for q in torso], upper, oid)
    cv.circle(f(*head), 0.085 * h, skin, oid)
    cv.circle(f(head[0] - 0.02, head[1] + 0.03), 0.07 * h, look["hair_rgb"], oid)
    leg(0)
    arm_(0)
    if look.get("bag_rgb") is not None and p["bag"] > 0:  # carried bag hangs from the back hand
        hx, hy = hands[1]
        cv.poly([f(hx - 0.06, hy - 0.02), f(hx + 0.06, hy - 0.02), f(hx + 0.07, hy - 0.17),
                 f(hx - 0.07, hy - 0.17)], look["bag_rgb"], oid)


def draw_bicycle(cv: Canvas, a: Actor, t: int, h: float) -> None:
    f = _place((a.x[t], a.y[t]), h, int(a.face[t]), 0.0, 0.0)
    rgb, oid, w = a.look["body_rgb"], a.oid, max(1.0, 0.035 * h)
    rear, front, seat, crank, bar = (-0.3, 0.17), (0.34, 0.17), (-0.04, 0.46), (0.05, 0.2), (0.27, 0.55)
    for c in (rear, front):
        cv.circle(f(*c), 0.17 * h, (25, 25, 25), oid, width=max(1, round(w)))
    for p, q in ((rear, crank), (crank, seat), (seat, rear), (crank, bar), (seat, bar), (bar, front)):
        cv.line(f(*p), f(*q), rgb, w, oid)
    cv.line(f(seat[0] - 0.05, seat[1]), f(seat[0] + 0.05, seat[1]), (20, 20, 20), w, oid)


def draw_skateboard(cv: Canvas, a: Actor, t: int, h: float) -> None:
    f = _place((a.x[t], a.y[t]), h, int(a.face[t]), 0.0, 0.0)
    rgb, oid = a.look["body_rgb"], a.oid
    cv.line(f(-0.24, 0.05), f(0.24, 0.05), rgb, max(1.0, 0.045 * h), oid)
    for u in (-0.16, 0.16):
        cv.circle(f(u, 0.02), 0.025 * h, (230, 230, 220), oid)


def draw_car(cv: Canvas, a: Actor, t: int, h: float) -> None:
    L = 2.1  # car length in person heights
    f = _place((a.x[t], a.y[t]), h, int(a.face[t]), 0.0, 0.0)
    rgb, oid = a.look["body_rgb"], a.oid
    cv.poly([f(-L / 2, 0.1), f(L / 2, 0.1), f(L / 2, 0.42), f(-L / 2, 0.44)], rgb, oid)
    cv.poly([f(-0.6, 0.42), f(-0.4, 0.7), f(0.35, 0.7), f(0.6, 0.42)], rgb, oid)
    glass = (60, 78, 96)
    cv.poly([f(-0.5, 0.45), f(-0.36, 0.65), f(-0.03, 0.65), f(-0.03, 0.45)], glass, oid)
    cv.poly([f(0.03, 0.45), f(0.03, 0.65), f(0.32, 0.65), f(0.5, 0.45)], glass, oid)
    for u in (-0.62, 0.62):
        cv.circle(f(u, 0.12), 0.14 * h, (22, 22, 22), oid)
        cv.circle(f(u, 0.12), 0.06 * h, (160, 160, 160), oid)
    cv.circle(f(L / 2 - 0.04, 0.34), 0.04 * h, (250, 240, 190), oid)


def draw_bag(cv: Canvas, a: Actor, t: int, h: float) -> None:
    f = _place((a.x[t], a.y[t]), h, 1, 0.0, 0.0)
    rgb, oid = a.look["body_rgb"], a.oid
    cv.poly([f(-0.08, 0.0), f(0.08, 0.0), f(0.07, 0.15), f(-0.07, 0.15)], rgb, oid)
    cv.line(f(-0.04, 0.15), f(0.0, 0.2), rgb, max(1.0, 0.02 * h), oid)
    cv.line(f(0.0, 0.2), f(0.04, 0.15), rgb, max(1.0, 0.02 * h), oid)


def draw_ball(cv: Canvas, a: Actor, t: int, h: float) -> None:
    cv.circle((a.x[t], a.y[t]), max(1.0, 0.055 * h), a.look["body_rgb"], a.oid)
    cv.circle((a.x[t] - 0.015 * h, a.y[t] - 0.015 * h), max(0.5, 0.02 * h), (250, 250, 250), a.oid)


DRAW = {"person": draw_person, "bicycle": draw_bicycle, "skateboard": draw_skateboard,
        "car": draw_car, "bag": draw_bag, "ball": draw_ball}
