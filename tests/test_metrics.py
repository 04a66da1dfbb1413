"""The comparison's metrics and label loaders on hand-made cases whose right answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.datasets import DatasetError, load_annotations, load_wider
from benchmarks.metrics import (
    HEIGHT_BUCKETS,
    average_precision,
    box_coverage,
    bucket_of,
    evaluate_image,
    match_detections,
    overpainting,
    precision_recall_curve,
    summarize,
)

FACES = np.array([[10, 10, 40, 40], [100, 10, 40, 40], [200, 10, 40, 40]], dtype=float)
EMPTY_MASK = np.zeros((300, 300), np.float32)


def evaluate(detections, scores, faces=FACES, ignore=(), mask=EMPTY_MASK):
    return summarize([evaluate_image("x", faces, np.array(ignore).reshape(-1, 4), detections, scores, mask, 0.1)])


def test_a_perfect_detector_scores_one_everywhere():
    figures = evaluate(FACES, [0.9, 0.8, 0.7])
    assert figures["precision"] == figures["recall"] == 100.0
    assert figures["ap"] == pytest.approx(1.0)


def test_missing_one_of_three_faces_costs_a_third_of_recall_and_ap():
    figures = evaluate(FACES[:2] + 2, [0.9, 0.8])
    assert figures["precision"] == 100.0
    assert figures["recall"] == pytest.approx(200 / 3)
    assert figures["ap"] == pytest.approx(2 / 3)


def test_a_false_positive_inside_an_ignore_region_is_not_counted():
    crowd = [150, 150, 120, 120]
    on_crowd = np.concatenate([FACES, [[160, 160, 20, 20]]])
    figures = evaluate(on_crowd, [0.9, 0.8, 0.7, 0.95], ignore=[crowd])
    assert figures["precision"] == 100.0
    assert figures["ap"] == pytest.approx(1.0)


def test_the_same_false_positive_elsewhere_lowers_precision():
    elsewhere = np.concatenate([FACES, [[20, 200, 20, 20]]])
    figures = evaluate(elsewhere, [0.9, 0.8, 0.7, 0.95], ignore=[[150, 150, 120, 120]])
    assert figures["precision"] == pytest.approx(75.0)
    assert figures["recall"] == 100.0


def test_a_second_box_on_a_found_face_is_a_false_positive():
    matching = match_detections(FACES[:1], np.empty((0, 4)), np.array([[10, 10, 40, 40], [12, 12, 40, 40]]), [0.5, 0.9])
    assert list(matching.hits) == [True, False]
    assert list(matching.scores) == [0.9, 0.5]


def test_a_box_overlapping_less_than_half_is_a_miss():
    matching = match_detections(FACES[:1], np.empty((0, 4)), np.array([[30, 10, 40, 40]]), [0.9])
    assert not matching.found.any()
    assert list(matching.hits) == [False]


def test_average_precision_interpolates_over_a_false_positive_ranked_in_between():
    # ranked hit, miss, hit over two faces: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    matching = match_detections(
        FACES[:2], np.empty((0, 4)), np.array([FACES[0], [0, 200, 40, 40], FACES[1]]), [0.9, 0.8, 0.7]
    )
    precision, recall = precision_recall_curve([matching])
    assert precision == pytest.approx([1, 1 / 2, 2 / 3])
    assert recall == pytest.approx([1 / 2, 1 / 2, 1])
    assert average_precision(precision, recall) == pytest.approx(1 / 2 + 1 / 2 * 2 / 3)


def test_no_detections_give_zero_recall_and_ap():
    figures = evaluate(np.empty((0, 4)), [])
    assert figures["recall"] == 0.0
    assert figures["ap"] == 0.0


@pytest.mark.parametrize(
    ("height", "bucket"),
    [
        (9.9, None),
        (10, "10-15"),
        (15.9, "10-15"),
        (16, "16-31"),
        (31, "16-31"),
        (32, "32-63"),
        (63, "32-63"),
        (64, "64-127"),
        (127, "64-127"),
        (128, "128+"),
        (4000, "128+"),
    ],
)
def test_height_buckets_have_the_published_edges(height, bucket):
    assert bucket_of(height) == bucket


def test_per_bucket_scores_ignore_faces_and_boxes_of_other_sizes():
    faces = np.array([[0, 0, 12, 12], [100, 100, 80, 80]], dtype=float)
    # finds the large face, misses the small one, and fires once on a 40 px patch of nothing
    detections = np.array([[100, 100, 80, 80], [200, 0, 40, 40]], dtype=float)
    figures = evaluate(detections, [0.9, 0.8], faces=faces)
    assert figures["recall@64-127"] == 100.0
    assert figures["precision@64-127"] == 100.0
    assert figures["recall@10-15"] == 0.0
    assert figures["precision@32-63"] == 0.0
    assert np.isnan(figures["recall@32-63"])
    assert figures["precision"] == pytest.approx(50.0)


@pytest.mark.parametrize(("painted_columns", "covered"), [(74, False), (75, True), (76, True)])
def test_a_face_is_covered_from_75_percent_of_its_box(painted_columns, covered):
    mask = np.zeros((100, 200), np.float32)
    mask[:, 20 : 20 + painted_columns] = 0.6  # above the 0.5 the filters treat as painted
    figures = evaluate(np.empty((0, 4)), [], faces=np.array([[20, 30, 100, 50]], float), mask=mask)
    assert figures["covered"] == (100.0 if covered else 0.0)


def test_a_faint_mask_does_not_count_as_painted():
    mask = np.full((100, 100), 0.49, np.float32)
    assert box_coverage(mask >= 0.5, np.array([[10, 10, 20, 20]])) == pytest.approx([0.0])


def test_a_box_partly_outside_the_image_is_measured_on_its_visible_part():
    painted = np.zeros((50, 50), bool)
    painted[:, :10] = True
    assert box_coverage(painted, np.array([[-10, 0, 20, 20]])) == pytest.approx([1.0])


def test_overpainting_is_the_painted_share_outside_the_faces_grown_by_a_quarter():
    mask = np.zeros((100, 100), np.float32)
    mask[30:90, 30:90] = 1.0  # 3,600 px painted around a 40 px face
    face = np.array([[40, 40, 40, 40]], float)  # grown by 1.25 about its centre: 35..85, 2,500 px
    assert overpainting(mask >= 0.5, face) == pytest.approx(1100 / 10_000)
    assert evaluate(np.empty((0, 4)), [], faces=face, mask=mask)["overpainting"] == pytest.approx(11.0)


def test_painting_an_ignore_region_is_not_overpainting():
    mask = np.zeros((100, 100), np.float32)
    mask[0:20, 0:20] = 1.0
    assert evaluate(np.empty((0, 4)), [], faces=np.empty((0, 4)), ignore=[[0, 0, 20, 20]], mask=mask)[
        "overpainting"
    ] == pytest.approx(0.0)


def test_only_faces_of_20_px_or_more_decide_full_anonymization():
    faces = np.array([[0, 0, 19, 19], [50, 50, 20, 20]], float)
    mask = np.zeros((100, 100), np.float32)
    assert evaluate(np.empty((0, 4)), [], faces=faces[:1], mask=mask)["fully_anonymized"] == 100.0
    mask[50:70, 50:70] = 1
    assert evaluate(np.empty((0, 4)), [], faces=faces, mask=mask)["fully_anonymized"] == 100.0
    assert evaluate(np.empty((0, 4)), [], faces=faces, mask=np.zeros_like(mask))["fully_anonymized"] == 0.0


def test_timing_reports_median_and_95th_percentile():
    results = [
        evaluate_image(str(i), np.empty((0, 4)), np.empty((0, 4)), np.empty((0, 4)), [], EMPTY_MASK, float(i))
        for i in range(1, 101)
    ]
    figures = summarize(results)
    assert figures["median_s"] == pytest.approx(50.5)
    assert figures["p95_s"] == pytest.approx(95.05)


# The official file ends every face line with a space; the parser must not mind.
WIDER_LINES = [
    "1--Handshaking/1_Handshaking_b_2.jpg",
    "4",
    "10 20 30 40 0 0 0 0 0 0",
    "100 20 8 9 2 0 0 0 0 0",
    "200 20 30 40 0 0 0 1 0 0",
    "300 20 0 0 0 0 0 0 0 0",
    "0--Parade/0_Parade_a_1.jpg",
    "0",
    "0 0 0 0 0 0 0 0 0 0",
    "0--Parade/0_Parade_a_0.jpg",
    "1",
    "5 6 11 12 1 0 1 0 2 1",
]
WIDER_GT = "".join(f"{line} \n" if " " in line else f"{line}\n" for line in WIDER_LINES)


@pytest.fixture
def wider_dir(tmp_path: Path) -> Path:
    """The official WIDER FACE val layout with three tiny records (no pixels needed to parse labels)."""
    (tmp_path / "wider_face_split").mkdir()
    (tmp_path / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text(WIDER_GT)
    (tmp_path / "WIDER_val" / "images").mkdir(parents=True)
    return tmp_path


def test_wider_faces_flagged_invalid_or_under_10_px_become_ignore_regions(wider_dir):
    samples = {s.name: s for s in load_wider(wider_dir)}
    handshake = samples["1--Handshaking/1_Handshaking_b_2.jpg"]
    assert handshake.faces.tolist() == [[10, 20, 30, 40]]
    assert handshake.ignore.tolist() == [[100, 20, 8, 9], [200, 20, 30, 40]]
    assert handshake.path == wider_dir / "WIDER_val" / "images" / "1--Handshaking/1_Handshaking_b_2.jpg"


def test_wider_images_without_faces_and_attributes_are_read(wider_dir):
    samples = load_wider(wider_dir)
    assert [s.name for s in samples] == sorted(s.name for s in samples)
    empty = next(s for s in samples if s.name.endswith("a_1.jpg"))
    assert empty.faces.shape == (0, 4) and empty.ignore.shape == (0, 4)
    one = next(s for s in samples if s.name.endswith("a_0.jpg"))
    assert one.attrs == [{"blur": 1, "expression": 0, "illumination": 1, "invalid": 0, "occlusion": 2, "pose": 1}]


def test_a_truncated_wider_file_is_one_clear_error(wider_dir):
    (wider_dir / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text("0--Parade/x.jpg\n3\n1 2 3 4\n")
    with pytest.raises(DatasetError, match=r"wider_face_val_bbx_gt\.txt"):
        load_wider(wider_dir)


def test_a_folder_without_wider_labels_says_what_it_looked_for(tmp_path):
    with pytest.raises(DatasetError, match=r"wider_face_val_bbx_gt\.txt"):
        load_wider(tmp_path)


def test_annotations_json_entries_become_sorted_samples(tmp_path):
    entries = [
        {"image": "images/b.jpg", "width": 10, "height": 10, "boxes": [[1, 2, 3, 4]], "ignore": []},
        {"image": "images/a.jpg", "width": 10, "height": 10, "boxes": [], "ignore": [[0, 0, 5, 5]]},
    ]
    (tmp_path / "annotations.json").write_text(json.dumps(entries))
    samples = load_annotations(tmp_path)
    assert [s.name for s in samples] == ["images/a.jpg", "images/b.jpg"]
    assert samples[1].faces.tolist() == [[1, 2, 3, 4]] and samples[1].path == tmp_path / "images/b.jpg"
    assert samples[0].ignore.tolist() == [[0, 0, 5, 5]]


def test_the_shared_eval_set_has_the_documented_face_heights(eval_dir):
    samples = load_annotations(eval_dir)
    heights = np.concatenate([s.faces[:, 3] for s in samples])
    counts = {name: int(((heights >= lo) & (heights < hi)).sum()) for name, lo, hi in HEIGHT_BUCKETS}
    assert len(samples) == 217 and len(heights) == 2822
    assert counts == {"10-15": 890, "16-31": 1009, "32-63": 551, "64-127": 237, "128+": 135}
    assert all(s.path.exists() for s in samples)


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_turned_photos_keep_their_labels_on_the_faces(quarter_turns):
    from benchmarks.variants import rotate_boxes
    from testing.images import composite, rotate_image_and_boxes

    image, boxes = composite((300, 200), [(10, 20, 40), (150, 60, 80)])
    turned, expected = rotate_image_and_boxes(image, boxes, quarter_turns)
    moved = rotate_boxes(np.array([[b.x, b.y, b.w, b.h] for b in boxes], float), image.shape[:2], quarter_turns)
    assert moved.tolist() == [[b.x, b.y, b.w, b.h] for b in expected]
    assert turned.shape[:2] == (image.shape[:2][::-1] if quarter_turns % 2 else image.shape[:2])
