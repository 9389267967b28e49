"""YOLOv8 output decoding and NMS on crafted tensors: no model file needed."""

import numpy as np
import pytest

from images.detection.engine.decoding import (
    ProtoGrid,
    boxes_to_original,
    candidates,
    mask_polygon,
    nms,
    nms_rotated,
    xywh_to_xyxy,
)
from images.detection.engine.letterbox import Letterbox, letterbox


def _head(rows: list[tuple], n_classes: int, extra: int = 0) -> np.ndarray:
    """A (1, 4 + classes + extra, anchors) head from (cx, cy, w, h, class, score, *extra)."""
    output = np.zeros((1, 4 + n_classes + extra, len(rows)), dtype=np.float32)
    for i, (cx, cy, w, h, cls, score, *more) in enumerate(rows):
        output[0, :4, i] = (cx, cy, w, h)
        output[0, 4 + cls, i] = score
        output[0, 4 + n_classes :, i] = more
    return output


def test_it_keeps_rows_above_the_confidence_threshold():
    found = candidates(_head([(10, 10, 4, 4, 0, 0.9), (50, 50, 4, 4, 1, 0.2)], 2), 2, 0.25)
    assert found.scores.tolist() == pytest.approx([0.9])
    assert found.class_ids.tolist() == [0]


def test_the_class_filter_ignores_other_classes():
    head = _head([(10, 10, 4, 4, 0, 0.9), (50, 50, 4, 4, 1, 0.8)], 2)
    found = candidates(head, 2, 0.25, classes=[1])
    assert found.class_ids.tolist() == [1]


def test_nms_drops_an_overlapping_box_of_the_same_class_only():
    head = _head(
        [
            (100, 100, 50, 50, 0, 0.9),
            (102, 101, 50, 50, 0, 0.8),  # same class, IoU ≈ 0.9: suppressed
            (101, 100, 50, 50, 1, 0.7),  # other class at the same place: kept
            (300, 300, 50, 50, 0, 0.6),  # same class, elsewhere: kept
        ],
        2,
    )
    found = candidates(head, 2, 0.25)
    boxes = xywh_to_xyxy(found.xywh)
    keep = nms(boxes, found.scores, found.class_ids)
    assert found.scores[keep].tolist() == pytest.approx([0.9, 0.7, 0.6])


def test_nms_of_nothing_is_nothing():
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int)).size == 0


def test_rotated_nms_uses_the_rotated_overlap():
    # Two thin boxes crossing at 90°: their axis-aligned boxes overlap fully, the real ones barely.
    xywha = np.array(
        [
            [100, 100, 100, 10, 0.0],
            [100, 100, 100, 10, np.pi / 2],
            [100, 100, 100, 10, 0.02],  # nearly the first one: suppressed
        ],
        dtype=np.float32,
    )
    keep = nms_rotated(xywha, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))
    assert sorted(keep.tolist()) == [0, 1]


def test_letterbox_pads_like_ultralytics_and_maps_back():
    rgb = np.zeros((720, 1280, 3), dtype=np.uint8)
    padded, box = letterbox(rgb, 640)
    assert padded.shape == (640, 640, 3)
    assert (box.ratio, box.pad_x, box.pad_y) == (0.5, 0, 140)
    assert padded[0, 0].tolist() == [114, 114, 114]
    original = boxes_to_original(np.array([[100.0, 240.0, 200.0, 340.0]]), box, 1280, 720)
    assert original.tolist() == [[200.0, 200.0, 400.0, 400.0]]


def test_boxes_are_clipped_to_the_image():
    box = Letterbox(ratio=1.0, pad_x=0, pad_y=0)
    original = boxes_to_original(np.array([[-5.0, -5.0, 700.0, 500.0]]), box, 640, 480)
    assert original.tolist() == [[0.0, 0.0, 640.0, 480.0]]


def test_a_mask_is_traced_into_a_polygon_in_original_pixels():
    # A 160x160 prototype grid for a 640 input (stride 4); the mask is positive over input
    # pixels x 200..440, y 280..360, i.e. original pixels x 400..880, y 280..440 (ratio 0.5,
    # pad_y 140).
    logits = np.full((160, 160), -8.0, dtype=np.float32)
    logits[70:90, 50:110] = 8.0
    box = Letterbox(ratio=0.5, pad_x=0, pad_y=140)
    polygon = mask_polygon(logits, np.array([380.0, 260.0, 900.0, 460.0]), box, ProtoGrid(4.0))
    xs = [x for x, _ in polygon]
    ys = [y for _, y in polygon]
    assert min(xs) == pytest.approx(400, abs=10)
    assert max(xs) == pytest.approx(880, abs=10)
    assert min(ys) == pytest.approx(280, abs=10)
    assert max(ys) == pytest.approx(440, abs=10)


def test_a_crop_of_the_prototype_grid_traces_the_same_polygon_as_the_whole_grid():
    logits = np.full((160, 160), -8.0, dtype=np.float32)
    logits[70:90, 50:110] = 8.0
    box = Letterbox(ratio=0.5, pad_x=0, pad_y=140)
    outline = np.array([380.0, 260.0, 900.0, 460.0])
    whole = mask_polygon(logits, outline, box, ProtoGrid(4.0))
    crop = logits[60:100, 40:120]  # rows from 60, columns from 40
    assert mask_polygon(crop, outline, box, ProtoGrid(4.0, x0=40, y0=60)) == whole


def test_an_empty_mask_has_no_polygon():
    logits = np.full((160, 160), -8.0, dtype=np.float32)
    box = Letterbox(ratio=1.0, pad_x=0, pad_y=0)
    assert mask_polygon(logits, np.array([10.0, 10.0, 50.0, 50.0]), box, ProtoGrid(4.0)) is None
