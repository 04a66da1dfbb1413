"""The user's last word on a photo: faces numbered in reading order, faces kept, regions added, remembered faces
painted again without a detector, and every choice that does not fit refused with a clear message."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import anonymizer
from anonymizer import Options, anonymize, anonymize_media, detect, reading_order
from anonymizer.errors import ChoiceError
from detectors import Detection
from filters import Region
from testing.images import Box, astronaut_bgr, composite, png
from testing.media import make_clip, make_gif

# Three heads in one row, rising to the right: a detector's order (SCRFD's is by score) or a sort by height would
# not number them left to right.
THREE_FACES, THREE_BOXES = composite((960, 400), [(40, 70, 100), (340, 55, 100), (640, 40, 100)])
# A patch of the astronaut photo with no face: the mission patch on her suit.
NO_FACE = Region(130, 340, 80, 80)


def face(x: int, y: int, w: int = 40, h: int = 40) -> Detection:
    return Detection(x, y, w, h, score=0.9, detector="drawn")


def as_face(box: Box | Region) -> Detection:
    return face(box.x, box.y, box.w, box.h)


def decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def pixels(image: np.ndarray, box: Box | Region | Detection) -> np.ndarray:
    return image[box.y : box.y + box.h, box.x : box.x + box.w].astype(int)


def changed(before: np.ndarray, after: np.ndarray, box: Box | Region | Detection) -> float:
    return float(np.abs(pixels(after, box) - pixels(before, box)).mean())


def painted_area(result: anonymizer.Result, options: Options, covered: list) -> np.ndarray:
    return anonymizer.face_filter(options).mask((result.height, result.width), covered) > 0


# --- reading order ---------------------------------------------------------------------------------------------


def test_reading_order_is_rows_top_to_bottom_and_left_to_right_within_each() -> None:
    top_left, top_right = face(10, 10), face(200, 14)
    bottom_left, bottom_middle, bottom_right = face(5, 120), face(100, 118), face(300, 125)
    found = [bottom_right, top_right, bottom_left, top_left, bottom_middle]
    assert reading_order(found) == [top_left, top_right, bottom_left, bottom_middle, bottom_right]


def test_a_slightly_higher_face_further_right_does_not_jump_ahead() -> None:
    left, right = face(10, 100), face(100, 88)
    assert reading_order([right, left]) == [left, right]


def test_a_small_face_beside_a_large_one_shares_its_row() -> None:
    """The small face's centre is within the large one's height, not the other way round, and it is the higher."""
    large, small = face(20, 50, 150, 200), face(300, 100, 30, 30)
    assert reading_order([small, large]) == [large, small]


def test_a_staircase_of_faces_is_not_chained_into_one_row() -> None:
    """Each step overlaps the next, but the third is a row below the first: it comes after both, though leftmost."""
    first, second, third = face(200, 0, 100, 100), face(400, 40, 100, 100), face(0, 80, 100, 100)
    assert reading_order([third, second, first]) == [first, second, third]


def test_detect_and_anonymize_number_the_faces_in_reading_order() -> None:
    faces, _, _ = detect(png(THREE_FACES))
    result = anonymize(png(THREE_FACES), Options(filter="solid"))
    assert len(faces) == 3 and result.detections == faces
    for found, truth in zip(faces, THREE_BOXES, strict=True):
        assert found.iou(as_face(truth)) > 0.6


# --- keeping faces and adding regions --------------------------------------------------------------------------


def test_a_kept_face_stays_as_it_was_and_the_others_are_covered() -> None:
    options = Options(keep=frozenset({2}))
    result = anonymize(png(THREE_FACES), options)

    output = decoded(result.data)
    first, second, third = result.detections
    assert result.kept == {2}
    assert np.array_equal(pixels(output, second), pixels(THREE_FACES, second))
    assert changed(THREE_FACES, output, first) > 30 and changed(THREE_FACES, output, third) > 30
    outside = ~painted_area(result, options, [first, third])
    assert np.array_equal(output[outside], THREE_FACES[outside])


def test_an_added_region_is_covered_where_no_face_was_found() -> None:
    original = astronaut_bgr()
    options = Options(filter="pixelate", add=(NO_FACE,))
    result = anonymize(png(original), options)

    output = decoded(result.data)
    assert len(result.detections) == 1 and result.detections[0].iou(as_face(NO_FACE)) == 0
    assert changed(original, output, NO_FACE) > 15
    outside = ~painted_area(result, options, [*result.detections, NO_FACE])
    assert np.array_equal(output[outside], original[outside])


@pytest.mark.parametrize(("mask", "shape"), [("ellipse", "box"), ("box", "ellipse")])
def test_an_added_region_is_painted_in_its_own_shape_whatever_the_mask(mask: str, shape: str) -> None:
    """Just inside the corner of the grown region: the box paints it, the ellipse does not."""
    original = astronaut_bgr()
    region = Region(NO_FACE.x, NO_FACE.y, NO_FACE.w, NO_FACE.h, shape=shape)
    result = anonymize(png(original), Options(filter="solid", mask=mask, margin=0.3, add=(region,)), faces=[])
    output = decoded(result.data)
    top, left = region.y - round(0.3 * region.h) + 1, region.x - round(0.3 * region.w) + 1
    corner = (slice(top, top + 2), slice(left, left + 2))
    assert np.array_equal(output[corner], original[corner]) is (shape == "ellipse")
    assert changed(original, output, region) > 15


# --- painting remembered faces ---------------------------------------------------------------------------------


def test_remembered_faces_are_painted_without_any_detector_exactly_as_a_first_run() -> None:
    """The detector named cannot be built: a run that tried to detect would fail (the first assertion shows it)."""
    data = png(THREE_FACES)
    cannot_detect = Options(detector="nobody", filter="pixelate", keep=frozenset({2}))
    with pytest.raises(ValueError, match="unknown detector 'nobody'"):
        anonymize(data, cannot_detect)
    first = anonymize(data, Options(filter="pixelate", keep=frozenset({2})))

    again = anonymize(data, cannot_detect, faces=first.detections)

    assert again.data == first.data
    assert (again.detections, again.kept) == (first.detections, first.kept)
    assert set(again.timings) == set(first.timings)


def test_remembered_faces_keep_the_numbers_they_were_given() -> None:
    """Face 1 is whatever the caller remembered first, even where reading order would say otherwise."""
    data = png(THREE_FACES)
    truth = [as_face(box) for box in THREE_BOXES]
    remembered = [truth[2], truth[0], truth[1]]
    result = anonymize(data, Options(detector="nobody", keep=frozenset({1})), faces=remembered)
    output = decoded(result.data)
    assert result.detections == remembered
    assert np.array_equal(pixels(output, truth[2]), pixels(THREE_FACES, truth[2]))
    assert changed(THREE_FACES, output, truth[0]) > 30 and changed(THREE_FACES, output, truth[1]) > 30


# --- choices that do not fit -----------------------------------------------------------------------------------

THREE_REMEMBERED = [face(40, 40), face(140, 40), face(240, 40)]


@pytest.mark.parametrize(
    ("faces", "keep", "message"),
    [
        (THREE_REMEMBERED, {4}, "There is no face 4: this picture has 3 faces, numbered 1 to 3."),
        (THREE_REMEMBERED, {0, 2, 9}, "There is no face 0, 9: this picture has 3 faces, numbered 1 to 3."),
        (THREE_REMEMBERED[:1], {2}, "There is no face 2: this picture has one face, number 1."),
        ([], {1}, "There is no face 1: no face was found in this picture."),
    ],
)
def test_a_face_number_the_picture_does_not_have_is_refused(
    faces: list[Detection], keep: set[int], message: str
) -> None:
    with pytest.raises(ChoiceError) as refused:
        anonymize(png(THREE_FACES), Options(detector="nobody", keep=frozenset(keep)), faces=faces)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (Region(900, 300, 61, 50), "The region at 900,300 of 61 x 50 px does not lie inside the 960 x 400 px picture."),
        (Region(-1, 0, 10, 10), "does not lie inside"),
        (Region(0, 360, 10, 41), "does not lie inside"),
        (Region(10, 10, 0, 20), "The region at 10,10 of 0 x 20 px has no area"),
        (Region(10, 10, 20, -5), "has no area"),
    ],
)
def test_a_region_outside_the_picture_or_without_area_is_refused(region: Region, message: str) -> None:
    with pytest.raises(ChoiceError, match=message):
        anonymize(png(THREE_FACES), Options(detector="nobody", add=(region,)), faces=[])


def test_a_region_that_reaches_the_edges_is_inside() -> None:
    result = anonymize(png(THREE_FACES), Options(detector="nobody", add=(Region(0, 0, 960, 400),)), faces=[])
    assert (result.width, result.height) == (960, 400)


@pytest.mark.parametrize("make", [make_gif, make_clip], ids=["gif", "video"])
@pytest.mark.parametrize(
    "choice",
    [{"keep": frozenset({1})}, {"add": (Region(0, 0, 10, 10),)}, {"outline": True}],
    ids=["keep", "add", "outline"],
)
def test_gifs_and_videos_refuse_a_choice(make, choice: dict) -> None:
    with pytest.raises(ChoiceError, match="photos only"):
        anonymize_media(make(), Options(**choice))


def test_a_preview_outlines_every_face_on_top_of_the_paint_and_nothing_else() -> None:
    """The chooser's preview: each face still covered, and marked (outline and number) so it can be picked."""
    faces = [as_face(box) for box in THREE_BOXES]
    painted_only = decoded(anonymize(png(THREE_FACES), Options(filter="solid"), faces=faces).data)
    preview = decoded(anonymize(png(THREE_FACES), Options(filter="solid", outline=True), faces=faces).data)

    marked = np.any(preview != painted_only, axis=2)
    for box in faces:
        border = np.zeros_like(marked)
        border[box.y : box.y + box.h, box.x : box.x + box.w] = True
        border[box.y + 8 : box.y + box.h - 8, box.x + 8 : box.x + box.w - 8] = False
        assert marked[border].mean() > 0.3, "a face is not outlined"
    far = np.ones_like(marked)
    for box in faces:
        far[max(0, box.y - 10) : box.y + box.h + 10, max(0, box.x - 10) : box.x + box.w + 10] = False
    assert not marked[far].any(), "the preview marks more than the faces"


def test_a_region_shape_is_ellipse_box_or_none() -> None:
    with pytest.raises(ValueError, match="ellipse, box"):
        Region(0, 0, 10, 10, shape="circle")


def test_options_hold_a_choice_immutably_whatever_collection_it_came_in() -> None:
    from_a_chat = Options(keep={2, 3}, add=[NO_FACE])
    assert from_a_chat == Options(keep=frozenset({2, 3}), add=(NO_FACE,))
    assert hash(from_a_chat) == hash(Options(keep=frozenset({2, 3}), add=(NO_FACE,)))
