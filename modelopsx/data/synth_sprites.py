"""Sprites for synthetic street scenes: people, cars and person-like distractors.

Every sprite is drawn on its own BGRA canvas with OpenCV primitives; the alpha channel is the object's exact
(amodal) mask, so the scene compositor can compute tight boxes and visible fractions from pixels, not from
geometry guesses. Coordinates use OpenCV's fixed-point `shift` so small people still get sub-pixel limbs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

SHIFT = 4
_SCALE = 1 << SHIFT

Color = tuple[int, int, int]

SKIN_TONES: list[Color] = [
    (189, 209, 241),
    (150, 180, 224),
    (120, 160, 210),
    (90, 130, 190),
    (60, 95, 150),
    (45, 70, 110),
    (170, 195, 235),
]
HAIR_COLORS: list[Color] = [
    (20, 20, 20),
    (30, 40, 60),
    (40, 70, 110),
    (80, 120, 170),
    (150, 150, 150),
    (60, 60, 70),
]


@dataclass
class Sprite:
    """A drawn object: `rgba` canvas whose alpha is its mask, placed with its top-left at (x0, y0)."""

    rgba: np.ndarray
    x0: int
    y0: int
    depth: float  # foot line in scene pixels: larger = nearer the camera, drawn later
    kind: str  # "person" | "car" | "distractor"
    meta: dict[str, object] = field(default_factory=dict)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _SCALE)), int(round(y * _SCALE))


Point = tuple[float, float]


def _line(img: np.ndarray, a: Point, b: Point, color: Color, thick: float) -> None:
    cv2.line(img, _pt(*a), _pt(*b), (*color, 255), max(1, int(round(thick))), cv2.LINE_8, SHIFT)


def _circle(img: np.ndarray, c: tuple[float, float], r: float, color: Color) -> None:
    cv2.circle(img, _pt(*c), max(1, int(round(r * _SCALE))), (*color, 255), -1, cv2.LINE_8, SHIFT)


def _ellipse(
    img: np.ndarray,
    c: tuple[float, float],
    axes: tuple[float, float],
    angle: float,
    start: float,
    end: float,
    color: Color,
) -> None:
    ax = (max(1, int(round(axes[0] * _SCALE))), max(1, int(round(axes[1] * _SCALE))))
    cv2.ellipse(img, _pt(*c), ax, angle, start, end, (*color, 255), -1, cv2.LINE_8, SHIFT)


def _poly(img: np.ndarray, pts: list[tuple[float, float]], color: Color) -> None:
    arr = np.array([_pt(x, y) for x, y in pts], dtype=np.int32)
    cv2.fillPoly(img, [arr], (*color, 255), cv2.LINE_8, SHIFT)


def _rect(img: np.ndarray, x1: float, y1: float, x2: float, y2: float, color: Color) -> None:
    _poly(img, [(x1, y1), (x2, y1), (x2, y2), (x1, y2)], color)


def _shade(color: Color, factor: float) -> Color:
    b, g, r = (min(255, int(c * factor)) for c in color)
    return b, g, r


def random_color(
    rng: np.random.Generator, sat: tuple[float, float] = (0.2, 0.9), val: tuple[float, float] = (0.25, 0.95)
) -> Color:
    hsv = np.array(
        [[[rng.integers(0, 180), int(255 * rng.uniform(*sat)), int(255 * rng.uniform(*val))]]], dtype=np.uint8
    )
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


# ---------------------------------------------------------------------------------------------------- people


@dataclass
class PersonLook:
    """What stays fixed for one person across the frames of a sequence."""

    skin: Color
    hair: Color
    shirt: Color
    pants: Color
    shoes: Color
    long_sleeves: bool
    coat: bool  # a long coat or dress that covers the thighs
    hat: Color | None
    bag: Color | None
    backpack: Color | None
    pose: str  # "walk" | "stand" | "phone" | "pockets"
    build: float  # shoulder-width factor
    yaw: float  # 0 = side view, 1 = facing the camera
    facing: int  # +1 walks right, -1 walks left


def random_look(rng: np.random.Generator) -> PersonLook:
    dark = rng.random() < 0.35
    pants = random_color(rng, (0.0, 0.6), (0.1, 0.35)) if dark else random_color(rng, (0.1, 0.8), (0.25, 0.8))
    return PersonLook(
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hair=HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))],
        shirt=random_color(rng, (0.0, 0.95), (0.15, 0.98)),
        pants=pants,
        shoes=random_color(rng, (0.0, 0.4), (0.05, 0.5)),
        long_sleeves=bool(rng.random() < 0.6),
        coat=bool(rng.random() < 0.25),
        hat=random_color(rng) if rng.random() < 0.15 else None,
        bag=random_color(rng) if rng.random() < 0.2 else None,
        backpack=random_color(rng) if rng.random() < 0.2 else None,
        pose=str(rng.choice(["walk", "walk", "walk", "stand", "phone", "pockets"])),
        build=float(rng.uniform(0.85, 1.2)),
        yaw=float(rng.uniform(0.0, 1.0)),
        facing=1 if rng.random() < 0.5 else -1,
    )


def draw_person(look: PersonLook, height: float, phase: float) -> tuple[np.ndarray, float, float]:
    """Draw one articulated person of about `height` px; returns (rgba, foot_x, foot_y) in canvas pixels.

    Proportions follow the usual 7.5-head figure; the walking phase sets hip/knee/shoulder/elbow angles, and
    the yaw narrows the body and shrinks the sideways limb swing for people facing the camera.
    """
    h = float(height)
    pad = 3.0
    cw = int(math.ceil(h * 0.85 + 2 * pad))
    ch = int(math.ceil(h * 1.05 + 2 * pad))
    img = np.zeros((ch, cw, 4), dtype=np.uint8)
    cx = cw / 2.0
    top = pad
    width = 0.55 + 0.45 * look.yaw  # frontal people look wider
    swing = 1.15 - 0.75 * look.yaw  # ... and swing limbs less sideways
    d = look.facing
    walking = look.pose == "walk"
    amp_leg = (0.42 if walking else 0.05) * swing
    amp_arm = (0.45 if walking else 0.05) * swing

    head_r = 0.062 * h
    head_c = (cx + d * 0.01 * h, top + head_r)
    shoulder_y = top + 0.185 * h
    hip_y = top + 0.52 * h
    sw = 0.115 * h * width * look.build
    hw = 0.085 * h * width * look.build
    limb = 0.072 * h
    arm_t = 0.055 * h

    def leg(side: int, shade: float) -> None:
        hip = (cx + side * 0.045 * h * width, hip_y)
        theta = amp_leg * math.sin(phase + (0 if side > 0 else math.pi))
        bend = (0.55 if walking else 0.05) * max(0.0, math.sin(phase + (0 if side > 0 else math.pi) - 0.9))
        knee = (hip[0] + d * 0.25 * h * math.sin(theta), hip[1] + 0.25 * h * math.cos(theta))
        shin = theta - bend
        ankle = (knee[0] + d * 0.235 * h * math.sin(shin), knee[1] + 0.235 * h * math.cos(shin))
        _line(img, hip, knee, _shade(look.pants, shade), limb)
        _line(img, knee, ankle, _shade(look.pants, shade), limb * 0.85)
        toe = (ankle[0] + d * 0.055 * h * (1.0 - 0.7 * look.yaw), ankle[1] + 0.01 * h)
        _line(img, ankle, toe, look.shoes, 0.045 * h)

    def arm(side: int, shade: float) -> None:
        shoulder = (cx + side * sw * 0.92, shoulder_y + 0.015 * h)
        if look.pose == "pockets":
            elbow = (shoulder[0] + side * 0.02 * h, shoulder[1] + 0.16 * h)
            hand = (elbow[0] - side * 0.03 * h, elbow[1] + 0.12 * h)
        elif look.pose == "phone" and side > 0:
            elbow = (shoulder[0] + side * 0.035 * h, shoulder[1] + 0.15 * h)
            hand = (head_c[0] + side * head_r * 1.1, head_c[1] + head_r * 0.4)
        else:
            theta = -amp_arm * math.sin(phase + (0 if side > 0 else math.pi))
            elbow = (
                shoulder[0] + d * 0.17 * h * math.sin(theta) + side * 0.01 * h,
                shoulder[1] + 0.17 * h * math.cos(theta),
            )
            fore = theta + (0.35 if walking else 0.1) * swing
            hand = (elbow[0] + d * 0.16 * h * math.sin(fore), elbow[1] + 0.16 * h * math.cos(fore))
        sleeve = _shade(look.shirt, shade)
        _line(img, shoulder, elbow, sleeve, arm_t)
        _line(img, elbow, hand, sleeve if look.long_sleeves else _shade(look.skin, shade), arm_t * 0.85)
        _circle(img, hand, 0.026 * h, _shade(look.skin, shade))
        if look.bag is not None and side < 0 and look.pose != "phone":
            _rect(img, hand[0] - 0.05 * h, hand[1], hand[0] + 0.05 * h, hand[1] + 0.11 * h, look.bag)

    # far limbs first (slightly darker), then torso, then near limbs and head
    leg(-1, 0.8)
    arm(-1, 0.8)
    if look.backpack is not None:
        bx = cx - d * sw * 0.9
        _rect(img, bx - 0.06 * h, shoulder_y + 0.02 * h, bx + 0.06 * h, hip_y - 0.05 * h, look.backpack)
    bottom = top + (0.72 if look.coat else 0.55) * h
    _poly(
        img,
        [
            (cx - sw, shoulder_y),
            (cx + sw, shoulder_y),
            (cx + hw * (1.3 if look.coat else 1.0), bottom),
            (cx - hw * (1.3 if look.coat else 1.0), bottom),
        ],
        look.shirt,
    )
    _line(img, (cx, shoulder_y - 0.03 * h), (cx, shoulder_y + 0.01 * h), look.skin, 0.05 * h)  # neck
    leg(1, 1.0)
    arm(1, 1.0)
    _circle(img, head_c, head_r, look.skin)
    if look.hat is not None:
        _ellipse(
            img, (head_c[0], head_c[1] - head_r * 0.2), (head_r * 1.15, head_r * 0.9), 0, 180, 360, look.hat
        )
    else:
        hair_c = (head_c[0] - d * head_r * 0.15, head_c[1] - head_r * 0.1)
        start, end = (160, 380) if d > 0 else (200, 340)
        _ellipse(img, hair_c, (head_r * 1.05, head_r * 0.95), 0, start, end, look.hair)
    foot_y = top + h
    return img, cx, foot_y


# ------------------------------------------------------------------------------------------------------ cars


def draw_car(rng: np.random.Generator, height: float, facing: int) -> np.ndarray:
    """A side-view car whose wheels touch the bottom row of the canvas."""
    h = float(height)
    length = h * float(rng.uniform(2.3, 3.0))
    ch, cw = int(math.ceil(h)) + 1, int(math.ceil(length)) + 1
    img = np.zeros((ch, cw, 4), dtype=np.uint8)
    body = random_color(rng, (0.0, 0.9), (0.2, 0.95))
    glass = _shade(random_color(rng, (0.0, 0.3), (0.2, 0.45)), 1.0)
    wheel_r = 0.17 * h
    base = h - wheel_r * 0.9
    cab_front = 0.25 + 0.1 * rng.random()
    cab_back = 0.72 + 0.1 * rng.random()
    if facing < 0:
        cab_front, cab_back = 1 - cab_back, 1 - cab_front
    _poly(
        img,
        [
            (0.0, 0.42 * h),
            (0.04 * length, 0.36 * h),
            (length - 0.04 * length, 0.36 * h),
            (length - 1, 0.45 * h),
            (length - 1, base),
            (0.0, base),
        ],
        body,
    )
    _poly(
        img,
        [
            (cab_front * length, 0.38 * h),
            (cab_front * length + 0.12 * length, 0.02 * h),
            (cab_back * length - 0.08 * length, 0.02 * h),
            (cab_back * length, 0.38 * h),
        ],
        body,
    )
    inset = 0.05 * h
    front, back = cab_front * length, cab_back * length
    _poly(
        img,
        [
            (front + inset * 1.5, 0.36 * h),
            (front + 0.12 * length + inset, 0.07 * h),
            (back - 0.08 * length - inset, 0.07 * h),
            (back - inset, 0.36 * h),
        ],
        glass,
    )
    for fx in (0.2, 0.8):
        _circle(img, (fx * length, h - wheel_r), wheel_r, (25, 25, 25))
        _circle(img, (fx * length, h - wheel_r), wheel_r * 0.45, (150, 150, 150))
    light_x = length - 0.03 * length if facing > 0 else 0.03 * length
    _circle(img, (light_x, 0.48 * h), 0.05 * h, (200, 240, 255))
    return img


# ----------------------------------------------------------------------------------------------- distractors


DISTRACTORS = ("pole", "sign", "lamp", "trash", "bollard", "tree", "meter", "board", "hydrant")


def draw_distractor(rng: np.random.Generator, kind: str, person_height: float) -> np.ndarray:
    """Upright street furniture sized relative to a person standing at the same depth.

    Several are deliberately person-like: a sign or meter has a round "head" on a thin body, a sandwich board
    has a person's width and a clothing-like colour, a trash can has a torso's proportions.
    """
    h = float(person_height)
    if kind == "pole":
        ph, pw = h * rng.uniform(1.3, 2.2), max(2.0, h * rng.uniform(0.035, 0.06))
        img = np.zeros((int(ph) + 2, int(pw) + 2, 4), np.uint8)
        _rect(img, 0, 0, pw, ph, random_color(rng, (0.0, 0.4), (0.2, 0.7)))
        return img
    if kind in ("sign", "meter", "lamp"):
        ph = h * (
            rng.uniform(1.2, 1.8)
            if kind == "sign"
            else rng.uniform(0.6, 0.85)
            if kind == "meter"
            else rng.uniform(1.8, 2.5)
        )
        head = h * (rng.uniform(0.12, 0.22) if kind == "sign" else 0.08)
        pw = max(2.0, h * 0.04)
        w = int(head * 2.6) + 4
        img = np.zeros((int(ph) + 2, w, 4), np.uint8)
        cx = w / 2
        pole_color = random_color(rng, (0.0, 0.3), (0.2, 0.6))
        _rect(img, cx - pw / 2, head, cx + pw / 2, ph, pole_color)
        top_color = random_color(rng, (0.5, 1.0), (0.5, 1.0)) if kind == "sign" else pole_color
        shape = rng.integers(3) if kind == "sign" else 0
        if kind == "lamp":
            _ellipse(img, (cx + head * 0.6, head), (head * 1.2, head * 0.5), 0, 0, 360, (180, 230, 240))
        elif shape == 0:
            _circle(img, (cx, head), head, top_color)
        elif shape == 1:
            _rect(img, cx - head, 1, cx + head, head * 2, top_color)
        else:
            _poly(img, [(cx, 1), (cx + head, head * 1.8), (cx - head, head * 1.8)], top_color)
        return img
    if kind in ("trash", "bollard", "hydrant"):
        th = h * {"trash": rng.uniform(0.45, 0.6), "bollard": rng.uniform(0.3, 0.45), "hydrant": 0.35}[kind]
        tw = th * {"trash": rng.uniform(0.55, 0.75), "bollard": 0.3, "hydrant": 0.55}[kind]
        img = np.zeros((int(th) + 2, int(tw) + 2, 4), np.uint8)
        color = (40, 40, 200) if kind == "hydrant" else random_color(rng, (0.0, 0.7), (0.15, 0.6))
        _rect(img, tw * 0.08, th * 0.12, tw * 0.92, th, color)
        _ellipse(img, (tw / 2, th * 0.12), (tw / 2, th * 0.1), 0, 0, 360, _shade(color, 1.25))
        return img
    if kind == "tree":
        th, crown = h * rng.uniform(1.6, 2.4), h * rng.uniform(0.35, 0.6)
        w = int(crown * 2.2) + 2
        img = np.zeros((int(th) + 2, w, 4), np.uint8)
        cx = w / 2
        _rect(img, cx - h * 0.05, crown, cx + h * 0.05, th, (30, 60, 90))
        green = random_color(rng, (0.4, 0.8), (0.2, 0.5))
        for _ in range(5):
            _circle(
                img,
                (cx + rng.uniform(-0.5, 0.5) * crown, crown * rng.uniform(0.8, 1.2)),
                crown * rng.uniform(0.5, 0.8),
                _shade(green, rng.uniform(0.8, 1.2)),
            )
        return img
    # "board": an A-frame sandwich board, about a person's width and half their height
    bh, bw = h * rng.uniform(0.45, 0.7), h * rng.uniform(0.22, 0.32)
    img = np.zeros((int(bh) + 2, int(bw) + 2, 4), np.uint8)
    _poly(img, [(bw * 0.15, 0), (bw * 0.85, 0), (bw, bh), (0, bh)], random_color(rng))
    _rect(img, bw * 0.25, bh * 0.2, bw * 0.75, bh * 0.5, random_color(rng, (0.0, 0.2), (0.8, 1.0)))
    return img
