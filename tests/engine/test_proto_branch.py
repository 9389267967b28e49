"""Segmentation exports cut in two: prototypes computed on a crop match the whole network's."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from images.detection.engine import OnnxDetector, ordered_map
from images.detection.engine.graph import proto_branch
from tests.engine.test_models import photos, spec

RNG = np.random.default_rng(7)


def _conv(name: str, source: str, channels: tuple[int, int], kernel: int, **attrs) -> list:
    weight = numpy_helper.from_array(
        RNG.normal(0, 0.3, (channels[1], channels[0], kernel, kernel)).astype(np.float32),
        f"{name}.w",
    )
    pad = kernel // 2
    conv = helper.make_node(
        "Conv",
        [source, f"{name}.w"],
        [f"{name}.conv"],
        kernel_shape=[kernel, kernel],
        pads=[pad] * 4,
        **attrs,
    )
    sigmoid = helper.make_node("Sigmoid", [f"{name}.conv"], [f"{name}.sig"])
    silu = helper.make_node("Mul", [f"{name}.conv", f"{name}.sig"], [name])
    return [weight, conv, sigmoid, silu]


def _seg_model(path: Path, *, branch_stride: int = 1) -> None:
    """A tiny YOLOv8-seg-shaped network: a stem, a head output, and a prototype branch
    (3x3 conv, 2x transposed conv, 3x3 conv, 1x1 conv) like ultralytics' Proto module."""
    parts = [
        *_conv("stem", "images", (3, 8), 3, strides=[4, 4]),
        *_conv("output0", "stem", (8, 6), 1),
        *_conv("cv1", "stem", (8, 8), 3, strides=[branch_stride] * 2),
        numpy_helper.from_array(RNG.normal(0, 0.3, (8, 8, 2, 2)).astype(np.float32), "up.w"),
        helper.make_node(
            "ConvTranspose", ["cv1", "up.w"], ["up"], kernel_shape=[2, 2], strides=[2, 2]
        ),
        *_conv("cv2", "up", (8, 8), 3),
        *_conv("output1", "cv2", (8, 4), 1),  # ultralytics names the last SiLU's output
    ]
    nodes = [p for p in parts if isinstance(p, onnx.NodeProto)]
    weights = [p for p in parts if isinstance(p, onnx.TensorProto)]
    grid = 64 // 4 * 2 // branch_stride
    graph = helper.make_graph(
        nodes,
        "tiny-seg",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [
            helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 16, 16]),
            helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, 4, grid, grid]),
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def _session(model: bytes | str) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


def test_the_branch_on_a_crop_gives_the_whole_networks_prototypes_inside_it(tmp_path):
    path = tmp_path / "tiny.onnx"
    _seg_model(path)
    branch = proto_branch(path)
    assert branch is not None and branch.margin == 3
    image = RNG.random((1, 3, 64, 64), dtype=np.float32)
    whole = _session(str(path)).run(None, {"images": image})
    head_output, feature = _session(branch.head).run(None, {"images": image})
    np.testing.assert_array_equal(head_output, whole[0])
    y0, y1, x0, x1 = 3, 11, 2, 9  # a crop of the 16x16 feature map
    crop = _session(branch.branch).run(
        None, {branch.feature: np.ascontiguousarray(feature[:, :, y0:y1, x0:x1])}
    )[0]
    assert crop.shape == (1, 4, 16, 14)
    inside = crop[:, :, 3:-3, 3:-3]  # the margin's cells, at twice the feature map's resolution
    expected = whole[1][:, :, 2 * y0 + 3 : 2 * y1 - 3, 2 * x0 + 3 : 2 * x1 - 3]
    np.testing.assert_allclose(inside, expected, rtol=1e-5, atol=1e-6)


def test_a_branch_that_strides_is_left_whole(tmp_path):
    path = tmp_path / "strided.onnx"
    _seg_model(path, branch_stride=2)
    assert proto_branch(path) is None


def test_a_detection_model_has_no_branch():
    assert proto_branch(spec("coco").path) is None


@pytest.mark.slow
def test_platedet_cut_in_two_finds_the_same_plates_and_outlines_as_the_whole_model():
    plates = spec("plates")
    cut = OnnxDetector(plates, threads=1)
    assert cut.branch is not None
    whole = OnnxDetector(plates, threads=1, branch=False)
    assert whole.branch is None and whole.layout == cut.layout
    compared = 0
    for picture, _ in photos("us", every=4):
        found_cut, found_whole = cut.predict(picture), whole.predict(picture)
        assert found_cut == found_whole
        compared += sum(1 for item in found_cut if item.polygon)
    assert compared >= 3


def test_ordered_map_keeps_the_order_and_few_items_in_flight():
    started: list[int] = []

    def slow_square(n: int) -> int:
        started.append(n)
        return n * n

    results = ordered_map(slow_square, iter(range(20)), workers=2)
    assert next(results) == 0
    assert len(started) <= 3  # the first result is out before the fourth item is taken
    assert list(results) == [n * n for n in range(1, 20)]


def test_ordered_map_raises_what_the_function_raised():
    def fails_on_three(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n

    with pytest.raises(ValueError, match="three"):
        list(ordered_map(fails_on_three, range(6), workers=2))
