"""The 43 GTSRB-like traffic signs, drawn with Pillow: plates, rims, symbols, one template per class.

Each sign is drawn big on a T x T canvas (rotating and shrinking it later anti-aliases its edges),
in GTSRB's class order and names; class 27 is drawn as the blue square "pedestrian crossing".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

T = 128  # template canvas: signs are drawn big, then rotated and shrunk (anti-aliasing)
C = T // 2
RED, BLUE, YELLOW = (200, 16, 32), (18, 66, 170), (247, 196, 0)
WHITE, BLACK, GREY = (246, 246, 246), (22, 22, 22), (150, 150, 150)
Point = tuple[float, float]
Painter = Callable[[ImageDraw.ImageDraw], None]
# Outlines on the template canvas. Triangles are not equilateral-in-a-circle but fill the
# canvas, as real signs do at the same apparent size.
SHAPES: dict[str, list[Point]] = {
    "triangle": [(C, 6), (T - 4, T - 14), (4, T - 14)],
    "inverted_triangle": [(4, 14), (T - 4, 14), (C, T - 6)],
    "octagon": [
        (C + 62 * math.cos(math.radians(22.5 + 45 * k)), C + 62 * math.sin(math.radians(22.5 + 45 * k)))
        for k in range(8)
    ],
    "diamond": [(C, 2), (T - 2, C), (C, T - 2), (2, C)],
    "square": [(8, 8), (T - 8, 8), (T - 8, T - 8), (8, T - 8)],
}


def _shrink(points: list[Point], by: float) -> list[Point]:
    """The polygon moved ``by`` pixels inwards (scaled about its centroid: exact for regular shapes)."""
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    inradius = min(_distance_to_edge((cx, cy), points[i], points[(i + 1) % len(points)]) for i in range(len(points)))
    k = (inradius - by) / inradius
    return [(cx + (x - cx) * k, cy + (y - cy) * k) for x, y in points]


def _distance_to_edge(p: Point, a: Point, b: Point) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    return abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / math.hypot(bx - ax, by - ay)


def draw_plate(
    d: ImageDraw.ImageDraw,
    shape: str,
    fill: tuple,
    rim: tuple | None = None,
    rim_width: int = 13,
    outline: tuple | None = None,
) -> None:
    """The sign's plate: an outline colour (thin), a rim colour (thick), and the fill."""
    layers = [(outline, 0), (rim, 3 if outline else 0), (fill, (3 if outline else 0) + (rim_width if rim else 0))]
    for colour, inset in layers:
        if colour is None:
            continue
        if shape == "circle":
            d.ellipse((2 + inset, 2 + inset, T - 3 - inset, T - 3 - inset), fill=colour)
        else:
            d.polygon(_shrink(SHAPES[shape], inset) if inset else SHAPES[shape], fill=colour)


def arrow(d: ImageDraw.ImageDraw, path: list[Point], colour: tuple, width: int = 12, head: float = 22) -> None:
    """A polyline with a triangular head at its end, pointing along the last segment."""
    (x0, y0), (x1, y1) = path[-2], path[-1]
    ang = math.atan2(y1 - y0, x1 - x0)
    ux, uy = math.cos(ang), math.sin(ang)
    base = (x1 - ux * head, y1 - uy * head)
    d.line(path[:-1] + [base], fill=colour, width=width, joint="curve")
    half = head * 0.75
    d.polygon(
        [(x1, y1), (base[0] - uy * half, base[1] + ux * half), (base[0] + uy * half, base[1] - ux * half)], fill=colour
    )


def arc_points(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 16) -> list[Point]:
    """Points on a circle from angle a0 to a1 (degrees, clockwise on screen)."""
    angles = [math.radians(a0 + (a1 - a0) * i / n) for i in range(n + 1)]
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]


def text(d: ImageDraw.ImageDraw, s: str, colour: tuple, size: int, xy: Point = (C, C), stroke: int = 3) -> None:
    """Centred text in Pillow's bundled default font (same glyphs everywhere for a pinned Pillow)."""
    font = ImageFont.load_default(size=size)
    d.text(xy, s, fill=colour, font=font, anchor="mm", stroke_width=stroke, stroke_fill=colour)


def car(d: ImageDraw.ImageDraw, cx: float, cy: float, w: float, colour: tuple) -> None:
    """A car seen from behind: body, cabin, wheels."""
    d.rounded_rectangle((cx - w / 2, cy - w * 0.12, cx + w / 2, cy + w * 0.32), radius=w * 0.08, fill=colour)
    cabin = [(-0.36, -0.1), (-0.26, -0.45), (0.26, -0.45), (0.36, -0.1)]
    d.polygon([(cx + w * u, cy + w * v) for u, v in cabin], fill=colour)
    d.rectangle((cx - w * 0.45, cy + w * 0.3, cx - w * 0.25, cy + w * 0.5), fill=colour)
    d.rectangle((cx + w * 0.25, cy + w * 0.3, cx + w * 0.45, cy + w * 0.5), fill=colour)


def truck(d: ImageDraw.ImageDraw, cx: float, cy: float, w: float, colour: tuple) -> None:
    """A lorry seen from the side: box, cab, wheels."""
    d.rectangle((cx - w / 2, cy - w * 0.3, cx + w * 0.18, cy + w * 0.18), fill=colour)
    cab = [(0.22, -0.12), (0.42, -0.12), (0.5, 0.02), (0.5, 0.18), (0.22, 0.18)]
    d.polygon([(cx + w * u, cy + w * v) for u, v in cab], fill=colour)
    for wx in (-0.32, -0.08, 0.36):
        d.ellipse((cx + w * wx - w * 0.09, cy + w * 0.14, cx + w * wx + w * 0.09, cy + w * 0.32), fill=colour)


def person(d: ImageDraw.ImageDraw, cx: float, cy: float, h: float, colour: tuple, stride: float = 1.0) -> None:
    """A walking stick figure of height ``h`` standing on (cx, cy + h/2)."""
    w = max(4, int(h * 0.14))
    top, hip = cy - h / 2, cy + h * 0.1
    d.ellipse((cx - h * 0.11, top, cx + h * 0.11, top + h * 0.22), fill=colour)
    d.line([(cx, top + h * 0.24), (cx, hip)], fill=colour, width=w)
    arm, leg = h * 0.22 * stride, h * 0.2 * stride
    d.line([(cx - arm, cy - h * 0.05), (cx, top + h * 0.3), (cx + arm, cy + h * 0.02)], fill=colour, width=w - 1)
    d.line([(cx - leg, cy + h / 2), (cx, hip), (cx + arm, cy + h / 2)], fill=colour, width=w)


def end_stripes(d: ImageDraw.ImageDraw, n: int = 5, colour: tuple = BLACK) -> None:
    """The diagonal stripes of an 'end of ...' sign, bottom-left to top-right."""
    for k in range(n):
        off = (k - (n - 1) / 2) * 7
        d.line([(30 + off, 100 + off), (100 + off, 30 + off)], fill=colour, width=4)


def prohibitory(inner: Painter | None = None) -> Painter:
    """White disc, red rim: a prohibition or a speed limit."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "circle", WHITE, RED, rim_width=14)
        if inner:
            inner(d)

    return paint


def warning(inner: Painter) -> Painter:
    """White triangle, red rim: a danger warning; its symbol sits low, where the triangle is wide."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "triangle", WHITE, RED, rim_width=13)
        inner(d)

    return paint


def mandatory(inner: Painter) -> Painter:
    """Blue disc with a white symbol: a mandatory direction."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "circle", BLUE, None, outline=WHITE)
        inner(d)

    return paint


def end_of(inner: Painter | None = None) -> Painter:
    """White disc, thin grey rim, grey symbol struck through by black stripes: end of a restriction."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "circle", WHITE, GREY, rim_width=5, outline=BLACK)
        if inner:
            inner(d)
        end_stripes(d)

    return paint


def _curve_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(54, 100), (54, 84)] + arc_points(80, 86, 26, 180, 250, 6)[1:] + [(92, 56)], BLACK, width=9, head=17)


def _double_curve(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(70, 100), (70, 90), (60, 80), (58, 74), (66, 66), (70, 60), (62, 50)], BLACK, width=8, head=14)


def _bumps(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((36, 88, 92, 95), fill=BLACK)
    d.chord((38, 70, 62, 106), 180, 360, fill=BLACK)
    d.chord((66, 70, 90, 106), 180, 360, fill=BLACK)


def _slippery(d: ImageDraw.ImageDraw) -> None:
    car(d, C, 66, 30, BLACK)
    for dx in (-12, 10):
        d.line([(C + dx - 8, 95), (C + dx - 2, 87), (C + dx + 2, 95), (C + dx + 8, 87)], fill=BLACK, width=4)


def _narrows_right(d: ImageDraw.ImageDraw) -> None:
    d.line([(48, 98), (48, 54)], fill=BLACK, width=8)
    d.line([(82, 98), (82, 80), (70, 68), (70, 54)], fill=BLACK, width=8, joint="curve")


def _road_work(d: ImageDraw.ImageDraw) -> None:
    person(d, 56, 76, 40, BLACK, stride=1.3)
    d.line([(68, 74), (86, 94)], fill=BLACK, width=4)
    d.polygon([(72, 98), (88, 84), (98, 98)], fill=BLACK)


def _signals(d: ImageDraw.ImageDraw) -> None:
    d.rounded_rectangle((53, 46, 75, 100), radius=6, fill=BLACK)
    for cy, colour in ((56, RED), (73, YELLOW), (90, (30, 170, 60))):
        d.ellipse((C - 7, cy - 7, C + 7, cy + 7), fill=colour)


def _pedestrian_crossing(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "square", BLUE, None, outline=WHITE)
    d.polygon([(C, 20), (T - 22, T - 26), (22, T - 26)], fill=WHITE)
    person(d, C, 78, 42, BLACK, stride=1.2)
    for k in range(4):
        d.rectangle((36 + 15 * k, T - 40, 44 + 15 * k, T - 32), fill=BLACK)


def _children(d: ImageDraw.ImageDraw) -> None:
    person(d, 52, 74, 42, BLACK)
    person(d, 78, 82, 28, BLACK)


def _bicycle(d: ImageDraw.ImageDraw) -> None:
    for cx in (46, 82):
        d.ellipse((cx - 12, 74, cx + 12, 98), outline=BLACK, width=4)
    d.line([(46, 86), (60, 68), (76, 68), (82, 86)], fill=BLACK, width=4)
    d.line([(60, 68), (64, 86), (46, 86)], fill=BLACK, width=4)
    d.line([(74, 60), (76, 68)], fill=BLACK, width=4)


def _snow(d: ImageDraw.ImageDraw) -> None:
    for a in (90, 30, -30):
        dx, dy = 19 * math.cos(math.radians(a)), 19 * math.sin(math.radians(a))
        d.line([(C - dx, 78 - dy), (C + dx, 78 + dy)], fill=BLACK, width=6)
    d.ellipse((C - 5, 73, C + 5, 83), fill=BLACK)


def _deer(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(38, 78), (48, 68), (78, 68), (88, 56), (96, 58), (90, 74), (84, 84), (50, 86)], fill=BLACK)
    d.line([(52, 84), (42, 98)], fill=BLACK, width=5)
    d.line([(80, 82), (90, 97)], fill=BLACK, width=5)
    d.line([(90, 56), (86, 46)], fill=BLACK, width=3)
    d.line([(93, 56), (98, 46)], fill=BLACK, width=3)


def _ahead(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(C, 108), (C, 22)], WHITE, width=14, head=24)


def _keep_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(38, 38), (92, 92)], WHITE, width=14, head=24)


def _truck(d: ImageDraw.ImageDraw) -> None:
    truck(d, C, C, 56, BLACK)


def _turn_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(48, 100), (48, 72)] + arc_points(70, 72, 22, 180, 270, 6)[1:] + [(102, 50)], WHITE, width=13, head=22)


def _straight_or_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(52, 108), (52, 24)], WHITE, width=12, head=20)
    arrow(d, [(52, 86)] + arc_points(72, 86, 20, 180, 270, 5)[1:] + [(104, 66)], WHITE, width=12, head=20)


def _roundabout(d: ImageDraw.ImageDraw) -> None:
    for a in (0, 120, 240):
        arrow(d, arc_points(C, C, 30, a - 10, a + 70, 8), WHITE, width=10, head=18)


def _truck_and_car(colour_truck: tuple, colour_car: tuple) -> Painter:
    def paint(d: ImageDraw.ImageDraw) -> None:
        truck(d, 46, 62, 36, colour_truck)
        car(d, 86, 64, 28, colour_car)

    return paint


def _two_cars(colour_left: tuple, colour_right: tuple) -> Painter:
    def paint(d: ImageDraw.ImageDraw) -> None:
        car(d, 44, 66, 30, colour_left)
        car(d, 84, 66, 30, colour_right)

    return paint


def _exclamation(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(C - 6, 46), (C + 6, 46), (C + 3, 82), (C - 3, 82)], fill=BLACK)
    d.ellipse((C - 6, 87, C + 6, 99), fill=BLACK)


def _priority_cross(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(C - 5, 44), (C + 5, 44), (C + 8, 100), (C - 8, 100)], fill=BLACK)
    d.rectangle((C - 22, 64, C + 22, 72), fill=BLACK)


def _stop(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "octagon", RED, None, outline=WHITE)
    text(d, "STOP", WHITE, 34, stroke=2)


def _priority_road(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "diamond", YELLOW, WHITE, rim_width=12, outline=BLACK)


def _no_entry(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "circle", RED, None, outline=WHITE)
    d.rectangle((24, 54, T - 24, 74), fill=WHITE)


def _yield(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "inverted_triangle", WHITE, RED, rim_width=16)


def _speed(value: str, colour: tuple = BLACK) -> Painter:
    size = 44 if len(value) == 3 else 56
    return lambda d: text(d, value, colour, size)


@dataclass(frozen=True)
class SignClass:
    """A class of the signs set: its human name, its painter, and whether to flip the drawing."""

    name: str
    paint: Painter
    mirror: bool = False


# The 43 GTSRB classes, in GTSRB's order so that class 33 is "turn right ahead" as in the
# paper. Class 27 is drawn as the blue square "pedestrian crossing" to have a square plate.
# Left-hand twins are their right-hand sign flipped (all plates are symmetric).
SIGN_CLASSES: list[SignClass] = [
    SignClass("speed limit 20", prohibitory(_speed("20"))),
    SignClass("speed limit 30", prohibitory(_speed("30"))),
    SignClass("speed limit 50", prohibitory(_speed("50"))),
    SignClass("speed limit 60", prohibitory(_speed("60"))),
    SignClass("speed limit 70", prohibitory(_speed("70"))),
    SignClass("speed limit 80", prohibitory(_speed("80"))),
    SignClass("end of speed limit 80", end_of(_speed("80", GREY))),
    SignClass("speed limit 100", prohibitory(_speed("100"))),
    SignClass("speed limit 120", prohibitory(_speed("120"))),
    SignClass("no passing", prohibitory(_two_cars(RED, BLACK))),
    SignClass("no passing for trucks", prohibitory(_truck_and_car(RED, BLACK))),
    SignClass("right of way at next crossing", warning(_priority_cross)),
    SignClass("priority road", _priority_road),
    SignClass("yield", _yield),
    SignClass("stop", _stop),
    SignClass("no vehicles", prohibitory()),
    SignClass("no trucks", prohibitory(_truck)),
    SignClass("no entry", _no_entry),
    SignClass("general caution", warning(_exclamation)),
    SignClass("dangerous curve left", warning(_curve_right), True),
    SignClass("dangerous curve right", warning(_curve_right)),
    SignClass("double curve", warning(_double_curve)),
    SignClass("bumpy road", warning(_bumps)),
    SignClass("slippery road", warning(_slippery)),
    SignClass("road narrows on right", warning(_narrows_right)),
    SignClass("road work", warning(_road_work)),
    SignClass("traffic signals", warning(_signals)),
    SignClass("pedestrian crossing", _pedestrian_crossing),
    SignClass("children crossing", warning(_children)),
    SignClass("bicycles crossing", warning(_bicycle)),
    SignClass("ice or snow", warning(_snow)),
    SignClass("wild animals", warning(_deer)),
    SignClass("end of all limits", end_of()),
    SignClass("turn right ahead", mandatory(_turn_right)),
    SignClass("turn left ahead", mandatory(_turn_right), True),
    SignClass("ahead only", mandatory(_ahead)),
    SignClass("straight or right", mandatory(_straight_or_right)),
    SignClass("straight or left", mandatory(_straight_or_right), True),
    SignClass("keep right", mandatory(_keep_right)),
    SignClass("keep left", mandatory(_keep_right), True),
    SignClass("roundabout", mandatory(_roundabout)),
    SignClass("end of no passing", end_of(_two_cars(GREY, GREY))),
    SignClass("end of no passing for trucks", end_of(_truck_and_car(GREY, GREY))),
]


def render_template(sign: SignClass) -> Image.Image:
    """One clean RGBA sign on a transparent T x T canvas, drawn big so that rotating and
    shrinking it later anti-aliases its edges."""
    img = Image.new("RGBA", (T, T), (0, 0, 0, 0))
    sign.paint(ImageDraw.Draw(img))
    return ImageOps.mirror(img) if sign.mirror else img
