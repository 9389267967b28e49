"""Exports cut before their decoding tail: rectangular inputs, our decoding of the head's maps."""

import logging

import numpy as np
import onnx
import onnxruntime
import pytest

from images.detection.engine import OnnxDetector, backends
from images.detection.engine.decoding import HeadLayout, candidates, level_candidates
from images.detection.engine.graph import LevelCut, level_cut
from images.detection.engine.letterbox import letterbox, to_tensor
from tests.engine.test_models import iou, photos, spec


def test_the_rectangular_letterbox_pads_to_the_stride_like_ultralytics_auto():
    padded, box = letterbox(np.zeros((720, 1280, 3), dtype=np.uint8), 640, 32)
    assert padded.shape == (384, 640, 3)  # 360 rows of photo, 12 of grey above and below
    assert (box.ratio, box.pad_x, box.pad_y) == (0.5, 0, 12)
    assert padded[11, 0].tolist() == [114, 114, 114] and padded[12, 0].tolist() == [0, 0, 0]
    padded, box = letterbox(np.zeros((1000, 750, 3), dtype=np.uint8), 640, 32)
    assert padded.shape == (640, 480, 3) and (box.pad_x, box.pad_y) == (0, 0)
    padded, box = letterbox(np.zeros((100, 330, 3), dtype=np.uint8), 640, 32)
    assert padded.shape == (224, 640, 3) and box.pad_y == 15  # 194 rows and 30 of padding


def _map(depth: int, height: int, width: int) -> np.ndarray:
    return np.full((1, depth, height, width), -20.0, dtype=np.float32)


def test_level_decoding_reads_distributions_strides_and_class_logits():
    layout = HeadLayout(reg_max=4, n_classes=2, strides=(8, 16), tensors=(("a", "b"),) * 2)
    fine_box, fine_classes = _map(16, 4, 6), _map(2, 4, 6)
    coarse_box, coarse_classes = _map(16, 2, 3), _map(2, 2, 3)
    # Fine level, cell (row 1, column 2): left 1, top 2, right 3 bins for sure; bottom half
    # between bins 1 and 2 (1.5); class 1 at logit 2.
    for side, bins in enumerate([[1], [2], [3], [1, 2]]):
        for b in bins:
            fine_box[0, side * 4 + b, 1, 2] = 20.0
    fine_classes[0, 1, 1, 2] = 2.0
    # Coarse level, cell (row 0, column 1): every distance 1; class 0 at logit 0.5.
    for side in range(4):
        coarse_box[0, side * 4 + 1, 0, 1] = 20.0
    coarse_classes[0, 0, 0, 1] = 0.5
    levels = [[fine_box, fine_classes], [coarse_box, coarse_classes]]

    found = level_candidates(levels, layout, 0.25)
    # Fine anchor centre (2.5, 1.5): x1 = 1.5, y1 = -0.5, x2 = 5.5, y2 = 3.0 cells, stride 8.
    np.testing.assert_allclose(found.xywh[0], [28.0, 10.0, 32.0, 28.0], atol=1e-3)
    # Coarse anchor centre (1.5, 0.5) +-1 cell, stride 16.
    np.testing.assert_allclose(found.xywh[1], [24.0, 8.0, 32.0, 32.0], atol=1e-3)
    np.testing.assert_allclose(found.scores, 1 / (1 + np.exp([-2.0, -0.5])), rtol=1e-6)
    assert found.class_ids.tolist() == [1, 0] and found.extra.shape == (2, 0)
    assert level_candidates(levels, layout, 0.7).class_ids.tolist() == [1]  # sigmoid(0.5) = 0.62
    assert level_candidates(levels, layout, 0.25, classes=[0]).class_ids.tolist() == [0]
    assert len(level_candidates(levels, layout, None).scores) == 4 * 6 + 2 * 3


@pytest.mark.parametrize("name", ["coco", "plates"])
def test_the_cut_heads_decode_like_the_exports_own_tail(name):
    """On a square photo, where the whole export runs too, both decodings give the same rows."""
    model = spec(name)
    detector = OnnxDetector(model, threads=1, branch=False)
    assert detector.layout is not None and detector.layout.strides == (8, 16, 32)
    picture, _ = photos("us")[0]
    padded, _ = letterbox(np.asarray(picture), model.input_size)
    tensor = to_tensor(padded, detector.dtype)
    whole = onnxruntime.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    output = whole.run(None, {whole.get_inputs()[0].name: tensor})[0]
    theirs = candidates(output, len(model.class_names), 0.1)
    maps = detector.session.run(None, {detector.input_name: tensor})
    levels, _ = detector._levels(maps, detector.layout)
    ours = level_candidates(levels, detector.layout, 0.1)
    assert len(theirs.scores) >= 5
    assert len(ours.scores) == len(theirs.scores)
    np.testing.assert_allclose(ours.xywh, theirs.xywh, atol=0.5, rtol=2e-3)  # fp16 platedet
    np.testing.assert_allclose(ours.scores, theirs.scores, atol=2e-3)
    np.testing.assert_array_equal(ours.class_ids, theirs.class_ids)
    np.testing.assert_allclose(ours.extra, theirs.extra, atol=1e-2, rtol=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["coco", "plates"])
def test_rectangular_and_square_inputs_agree_on_what_is_clear(name):
    """What one finds with confidence >= 0.5 the other finds too, in the same place, nearly
    always.

    Borderline detections differ, as they do between ultralytics' rectangular (PyTorch) and
    square (static export) inputs: the padding is not the same. Recall on the plate photos is
    the same either way (bench/README.md).
    """
    rect, square = OnnxDetector(spec(name), threads=1), OnnxDetector(spec(name), rect=False)
    assert rect.layout is not None and square.layout is None
    matched = []
    for picture, _ in photos("us", every=3):
        a, b = rect.predict(picture), square.predict(picture)
        for mine, others in ((a, b), (b, a)):
            for found in (f for f in mine if f.confidence >= 0.5):
                same_class = [o.box for o in others if o.class_id == found.class_id]
                matched.append(max((iou(found.box, box) for box in same_class), default=0) >= 0.85)
    assert len(matched) >= 10
    assert sum(matched) / len(matched) >= 0.9, f"{sum(matched)}/{len(matched)}"


def test_a_head_that_does_not_read_like_yolov8_is_not_cut():
    coco = onnx.load(str(spec("coco").path))
    assert level_cut(coco, 80) is not None
    # With 64 classes, class and box maps have the same depth: which is which is not known.
    assert level_cut(coco, 64) is None
    # 79 classes leave maps of a depth that no role has.
    assert level_cut(coco, 79) is None


def test_a_cut_that_decodes_differently_runs_the_whole_export(monkeypatch, caplog):
    """The layout read from the graph is checked against the export's own output on load."""
    read = level_cut

    def swapped(model: onnx.ModelProto, n_classes: int) -> LevelCut | None:
        cut = read(model, n_classes)
        assert cut is not None
        layout = cut.layout
        wrong = HeadLayout(layout.reg_max, n_classes, layout.strides[::-1], layout.tensors)
        return LevelCut(cut.network, cut.tail, wrong)

    monkeypatch.setattr(backends, "level_cut", swapped)
    with caplog.at_level(logging.WARNING, logger=backends.__name__):
        detector = OnnxDetector(spec("coco"), threads=1)
    assert detector.layout is None
    assert "decodes differently" in caplog.text
    picture, _ = photos("us")[0]
    assert detector.predict(picture) == OnnxDetector(spec("coco"), rect=False).predict(picture)
