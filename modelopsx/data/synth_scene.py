"""Street-scene layout, background and the cast of a synthetic sequence.

A sequence (one `group`) is a static camera: the background, the street furniture and the people's looks are
drawn from the group's random stream; each frame only moves people and cars along the street. The ground is a
flat plane seen from a level camera, so a person whose feet touch row `y` is `k * (y - horizon)` pixels tall:
far people are small and high, near people are large and low, exactly as in street footage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from modelopsx.data.synth_sprites import (
    DISTRACTORS,
    PersonLook,
    Sprite,
    draw_car,
    draw_distractor,
    draw_person,
    random_color,
    random_look,
)

MIN_PERSON_HEIGHT = 20.0


@dataclass
class Layout:
    width: int
    height: int
    horizon: float  # foot line of the farthest ground (the building base)
    road_top: float
    road_bottom: float
    k: float  # person height per pixel below the horizon

    def person_height_at(self, foot_y: float) -> float:
        return self.k * (foot_y - self.horizon)

    def foot_for_height(self, h: float) -> float:
        return self.horizon + h / self.k

    @property
    def max_person_height(self) -> float:
        return self.person_height_at(self.height * 1.02)


@dataclass
class Walker:
    look: PersonLook
    x: float  # foot x at frame 0
    foot_y: float
    scale: float  # body height relative to an adult at that depth (children < 1)
    speed: float  # px per frame along x
    phase: float


@dataclass
class Prop:
    kind: str  # "car" or a distractor kind
    x: float  # left edge at frame 0
    foot_y: float
    seed: int  # the sprite is redrawn from this seed, so it looks the same in every frame
    speed: float = 0.0
    facing: int = 1


@dataclass
class Cast:
    layout: Layout
    background: np.ndarray
    walkers: list[Walker] = field(default_factory=list)
    props: list[Prop] = field(default_factory=list)
    light_gain: float = 1.0
    light_tilt: tuple[float, float] = (0.0, 0.0)
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


def make_layout(rng: np.random.Generator, width: int, height: int) -> Layout:
    horizon = height * rng.uniform(0.3, 0.42)
    road_top = horizon + height * rng.uniform(0.05, 0.09)
    road_bottom = road_top + height * rng.uniform(0.18, 0.28)
    k = float(rng.uniform(1.3, 1.6))
    return Layout(width, height, float(horizon), float(road_top), float(road_bottom), k)


def _texture(rng: np.random.Generator, shape: tuple[int, int], cells: int, amount: float) -> np.ndarray:
    """Smooth multiplicative noise (low-frequency blotches), values around 1."""
    h, w = shape
    small = rng.uniform(1 - amount, 1 + amount, (max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def draw_background(rng: np.random.Generator, lay: Layout) -> np.ndarray:
    w, h = lay.width, lay.height
    img = np.zeros((h, w, 3), np.uint8)
    hz, rt, rb = int(lay.horizon), int(lay.road_top), int(lay.road_bottom)
    # sky: vertical gradient between two random hues (day, overcast, dusk)
    top, bottom = (
        np.array(random_color(rng, (0.1, 0.6), (0.6, 1.0))),
        np.array(random_color(rng, (0.0, 0.4), (0.7, 1.0))),
    )
    ramp = np.linspace(0, 1, hz + 1, dtype=np.float32)[:, None, None]
    img[: hz + 1] = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    # buildings: a row of facades with window grids
    x = -int(rng.integers(0, 30))
    while x < w:
        bw = int(rng.uniform(0.15, 0.45) * w)
        btop = int(rng.uniform(0.0, 0.75) * hz)
        color = random_color(rng, (0.05, 0.5), (0.3, 0.85))
        cv2.rectangle(img, (x, btop), (x + bw, hz), color, -1)
        win = random_color(rng, (0.0, 0.4), (0.1, 0.9))
        step_x, step_y = int(rng.integers(8, 18)), int(rng.integers(10, 22))
        ww, wh = max(2, step_x // 2), max(2, step_y // 2)
        for wy in range(btop + 4, hz - wh - 4, step_y):
            for wx in range(x + 4, x + bw - ww - 2, step_x):
                cv2.rectangle(img, (wx, wy), (wx + ww, wy + wh), win, -1)
        if rng.random() < 0.6:  # a door or shop window at street level
            dx = x + int(rng.uniform(0.1, 0.7) * bw)
            cv2.rectangle(
                img,
                (dx, hz - max(4, (hz - btop) // 5)),
                (dx + max(3, bw // 6), hz),
                random_color(rng, (0.0, 0.6), (0.1, 0.5)),
                -1,
            )
        x += bw
    # ground: far sidewalk, road with lane marks and curbs, near sidewalk with tile lines
    walk = random_color(rng, (0.0, 0.15), (0.5, 0.8))
    road = random_color(rng, (0.0, 0.1), (0.2, 0.4))
    img[hz:rt] = walk
    img[rt:rb] = road
    img[rb:] = walk
    cv2.line(img, (0, rt), (w, rt), (200, 200, 200), 1)
    cv2.line(img, (0, rb), (w, rb), (210, 210, 210), max(1, (rb - rt) // 30))
    mid = (rt + rb) // 2
    dash = int(rng.integers(12, 30))
    for dx in range(-int(rng.integers(0, dash)), w, dash * 2):
        cv2.line(img, (dx, mid), (dx + dash, mid), (200, 230, 240), max(1, (rb - rt) // 40))
    if rng.random() < 0.5:  # zebra crossing: light stripes across the road, a confusing texture
        cx = int(rng.uniform(0.2, 0.8) * w)
        for i in range(6):
            y = rt + int((rb - rt) * (i + 0.3) / 6)
            cv2.rectangle(
                img, (cx - 25 - i * 3, y), (cx + 25 + i * 3, y + max(1, (rb - rt) // 14)), (225, 225, 225), -1
            )
    vx = w * rng.uniform(0.3, 0.7)
    for i in range(-12, 13):
        cv2.line(img, (int(vx + i * 4), rb), (int(vx + i * w / 6), h), _darker(walk), 1)
    tile_y, gap = float(rb), 4.0
    while tile_y < h:
        cv2.line(img, (0, int(tile_y)), (w, int(tile_y)), _darker(walk), 1)
        gap *= 1.35
        tile_y += gap
    tex = _texture(rng, (h, w), 12, 0.12) * _texture(rng, (h, w), 3, 0.06)
    return np.clip(img.astype(np.float32) * tex[:, :, None], 0, 255).astype(np.uint8)


def _darker(color: tuple[int, int, int]) -> tuple[int, int, int]:
    return int(color[0] * 0.8), int(color[1] * 0.8), int(color[2] * 0.8)


def _sample_walker(
    rng: np.random.Generator,
    lay: Layout,
    target_h: float,
    x: float | None = None,
    look: PersonLook | None = None,
) -> Walker:
    scale = 1.0 if rng.random() < 0.85 else float(rng.uniform(0.6, 0.8))  # a few children
    foot_y = lay.foot_for_height(target_h / scale)
    look = look or random_look(rng)
    speed = 0.0 if look.pose != "walk" else look.facing * target_h * rng.uniform(0.04, 0.09)
    if x is None:
        x = float(rng.uniform(-0.05, 1.05) * lay.width)
    return Walker(look, x, float(foot_y), scale, float(speed), float(rng.uniform(0, 2 * math.pi)))


def make_cast(rng: np.random.Generator, width: int, height: int) -> Cast:
    """Everything in a sequence that does not depend on the frame."""
    lay = make_layout(rng, width, height)
    cast = Cast(lay, draw_background(rng, lay))
    max_h = min(lay.max_person_height, 0.92 * height)
    log_lo, log_hi = math.log(MIN_PERSON_HEIGHT), math.log(max_h)

    def height_sample() -> float:
        return math.exp(rng.uniform(log_lo, log_hi))

    for _ in range(int(rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6]))):
        cast.walkers.append(_sample_walker(rng, lay, height_sample()))
    if rng.random() < 0.3:  # a crowd: people at nearly the same depth, overlapping sideways
        h0 = height_sample()
        x = float(rng.uniform(0.1, 0.7) * width)
        for _ in range(int(rng.integers(3, 8))):
            h_i = h0 * rng.uniform(0.9, 1.1)
            cast.walkers.append(_sample_walker(rng, lay, h_i, x=x))
            x += h_i * rng.uniform(0.15, 0.35)  # overlapping, but mostly below IoU 0.5 with a neighbour
    # street furniture scattered on both sidewalks
    for _ in range(int(rng.integers(2, 7))):
        foot = float(
            rng.uniform(lay.horizon + 3, lay.road_top)
            if rng.random() < 0.4
            else rng.uniform(lay.road_bottom, height)
        )
        kind = str(rng.choice(DISTRACTORS))
        cast.props.append(Prop(kind, float(rng.uniform(-0.05, 1.0) * width), foot, int(rng.integers(2**31))))
    # cars in the lanes, some parked, some driving
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        foot = float(rng.uniform(lay.road_top + 0.2 * (lay.road_bottom - lay.road_top), lay.road_bottom))
        facing = 1 if rng.random() < 0.5 else -1
        speed = 0.0 if rng.random() < 0.4 else facing * lay.person_height_at(foot) * rng.uniform(0.2, 0.5)
        cast.props.append(
            Prop(
                "car",
                float(rng.uniform(-0.3, 0.9) * width),
                foot,
                int(rng.integers(2**31)),
                float(speed),
                facing,
            )
        )
    # deliberate occluders just in front of some people, so partial occlusion is common
    for walker in cast.walkers:
        if rng.random() < 0.3:
            h = lay.person_height_at(walker.foot_y)
            kind = (
                "car"
                if rng.random() < 0.3 and h < 0.5 * height
                else str(rng.choice(["pole", "trash", "bollard", "board", "sign", "hydrant"]))
            )
            dx = walker.x + rng.uniform(-0.25, 0.1) * h + (-h * 1.2 if kind == "car" else 0.0)
            cast.props.append(
                Prop(
                    kind,
                    float(dx),
                    walker.foot_y + float(rng.uniform(1.0, 0.05 * h + 2)),
                    int(rng.integers(2**31)),
                    0.0,
                    1,
                )
            )
    cast.light_gain = float(rng.uniform(0.6, 1.25))
    cast.light_tilt = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.25, 0.25)))
    cast.tint = (float(rng.uniform(0.88, 1.12)), 1.0, float(rng.uniform(0.88, 1.12)))
    return cast


def frame_sprites(cast: Cast, t: int, with_people: bool) -> list[Sprite]:
    """Draw every object of frame `t`; people carry their index in `meta["person"]`."""
    lay = cast.layout
    sprites: list[Sprite] = []
    for prop in cast.props:
        prng = np.random.default_rng(prop.seed)
        h = lay.person_height_at(prop.foot_y)
        if h < 6:
            continue
        if prop.kind == "car":
            rgba = draw_car(prng, 0.88 * h, prop.facing)
        else:
            rgba = draw_distractor(prng, prop.kind, h)
        x = prop.x + prop.speed * t
        sprites.append(
            Sprite(
                rgba,
                int(round(x)),
                int(round(prop.foot_y)) - rgba.shape[0] + 1,
                prop.foot_y,
                "car" if prop.kind == "car" else "distractor",
            )
        )
    if with_people:
        for index, walker in enumerate(cast.walkers):
            h = lay.person_height_at(walker.foot_y) * walker.scale
            rgba, fx, fy = draw_person(walker.look, h, walker.phase + 0.9 * t)
            x = walker.x + walker.speed * t
            sprites.append(
                Sprite(
                    rgba,
                    int(round(x - fx)),
                    int(round(walker.foot_y - fy)),
                    walker.foot_y,
                    "person",
                    {"person": index},
                )
            )
    sprites.sort(key=lambda s: s.depth)  # painter's order: far first
    return sprites
