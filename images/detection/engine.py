"""YOLO inference: ONNX Runtime with our own decoding.

Detectors return `Found` objects, in pixels of the image as given (callers pass images with the
EXIF orientation already applied). ultralytics, running the same ONNX files, is the reference our
decoder is tested against (`ultralytics_model`); it never loads a .pt in this process.
"""

import ast
import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
import PIL.Image

logger = logging.getLogger(__name__)

TASKS = ("detect", "segment", "obb")
LETTERBOX_FILL = 114  # ultralytics' grey: the model was trained with this padding
NMS_IOU = 0.7  # ultralytics' predict default
MAX_DETECTIONS = 300
MASK_ROI_MAX = 512  # masks are traced at most this many pixels across, then scaled to the box
# ultralytics replaces PIL.Image.open on import (to pip-install a HEIF plugin on failure), which
# would turn "not an image" into ModuleNotFoundError everywhere in the process. We keep Pillow's.
_PIL_OPEN = PIL.Image.open


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    task: str
    input_size: int
    class_names: tuple[str, ...]
    confidence: float = 0.25
    backend: str = "onnx"


@dataclass(frozen=True)
class Found:
    class_id: int
    class_name: str
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    polygon: tuple[tuple[float, float], ...] | None = None  # mask outline or OBB corners

    def normalised_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 / width, y1 / height, x2 / width, y2 / height)


class Detector(Protocol):
    spec: ModelSpec

    def predict(
        self,
        image: PIL.Image.Image,
        *,
        confidence: float | None = None,
        classes: Iterable[int] | None = None,
        size: int | None = None,
    ) -> list[Found]: ...


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    """Task, class names and input size from the metadata ultralytics writes into its exports."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = ast.literal_eval(meta.get("names", "{}"))  # a Python dict literal, not JSON
    shape = session.get_inputs()[0].shape
    return {
        "task": meta.get("task", "detect"),
        "class_names": [names[i] for i in sorted(names)],
        "input_size": int(shape[-1]) if isinstance(shape[-1], int) else 640,
    }


# Letterbox ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Letterbox:
    ratio: float
    pad_x: float
    pad_y: float

    def to_original(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (xs - self.pad_x) / self.ratio, (ys - self.pad_y) / self.ratio


def letterbox(
    rgb: np.ndarray, size: int, stride: int | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to size x size, exactly as ultralytics does.

    With a stride, pad only to the next multiple of it instead (ultralytics' `auto` letterbox,
    the rectangle it feeds PyTorch models): a 16:9 photo becomes 640x384, not 640x640.
    """
    height, width = rgb.shape[:2]
    ratio = min(size / height, size / width)
    new_w, new_h = round(width * ratio), round(height * ratio)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    if stride is not None:
        pad_x, pad_y = (size - new_w) % stride / 2, (size - new_h) % stride / 2
    if (new_w, new_h) != (width, height):
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(pad_y - 0.1), round(pad_y + 0.1)
    left, right = round(pad_x - 0.1), round(pad_x + 0.1)
    padded = cv2.copyMakeBorder(
        rgb, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(LETTERBOX_FILL,) * 3
    )
    return padded, Letterbox(ratio, left, top)


def to_tensor(padded: np.ndarray, dtype: np.dtype) -> np.ndarray:
    chw = padded.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0
    return np.ascontiguousarray(chw, dtype=dtype)


# Decoding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidates:
    """Rows that passed the confidence threshold, in letterboxed input coordinates."""

    xywh: np.ndarray  # (n, 4) centre x, centre y, width, height
    scores: np.ndarray  # (n,)
    class_ids: np.ndarray  # (n,)
    extra: np.ndarray  # (n, k): mask coefficients (segment), angle (obb), or empty


def candidates(
    output: np.ndarray,
    n_classes: int,
    confidence: float,
    classes: Iterable[int] | None = None,
) -> Candidates:
    """Split a YOLOv8 head output (1, 4 + classes + extra, anchors) and keep confident rows."""
    rows = output[0].T.astype(np.float32)
    class_scores = rows[:, 4 : 4 + n_classes]
    if classes is not None:
        class_scores = np.where(_class_mask(classes, n_classes), class_scores, 0.0)
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), class_ids]
    keep = scores > confidence
    return Candidates(rows[keep, :4], scores[keep], class_ids[keep], rows[keep, 4 + n_classes :])


@dataclass(frozen=True)
class HeadLayout:
    """How a YOLOv8 head's per-level maps read: each level's tensors, concatenated on channels,
    hold 4 x reg_max box-distance logits (DFL), then the class logits, then the extra channels
    (mask coefficients); levels are in anchor order, with their strides in input pixels."""

    reg_max: int
    n_classes: int
    strides: tuple[int, ...]
    tensors: tuple[tuple[str, ...], ...]  # per level, in channel order


def level_candidates(
    levels: list[list[np.ndarray]],
    layout: HeadLayout,
    confidence: float | None,
    classes: Iterable[int] | None = None,
) -> Candidates:
    """Decode a head's per-level maps (what the export's own tail does), keeping confident rows.

    Rows are picked on their class logits first (sigmoid(x) > c  <=>  x > logit(c)), so the box
    distributions are decoded for the few kept anchors only instead of for all of them. With
    confidence None every anchor is kept.
    """
    box_channels, n_classes = 4 * layout.reg_max, layout.n_classes
    threshold = -np.inf if confidence is None else _logit(confidence)
    allowed = None if classes is None else _class_mask(classes, n_classes)
    bins = np.arange(layout.reg_max, dtype=np.float32)
    parts = []
    for tensors, stride in zip(levels, layout.strides, strict=True):
        block = tensors[0][0] if len(tensors) == 1 else np.concatenate([t[0] for t in tensors])
        width = block.shape[2]
        flat = block.reshape(block.shape[0], -1)
        logits = flat[box_channels : box_channels + n_classes].astype(np.float32)
        if allowed is not None:
            logits = np.where(allowed[:, np.newaxis], logits, -np.inf)
        class_ids = logits.argmax(axis=0)
        best = np.take_along_axis(logits, class_ids[np.newaxis], axis=0)[0]
        keep = np.flatnonzero(best > threshold)
        rows = flat[:, keep].T.astype(np.float32)
        distribution = rows[:, :box_channels].reshape(-1, 4, layout.reg_max)
        distribution = np.exp(distribution - distribution.max(axis=2, keepdims=True))
        left, top, right, bottom = ((distribution @ bins) / distribution.sum(axis=2)).T
        ys, xs = np.divmod(keep, width)
        x1, y1 = xs + 0.5 - left, ys + 0.5 - top
        x2, y2 = xs + 0.5 + right, ys + 0.5 + bottom
        xywh = np.column_stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) * stride
        scores = 1 / (1 + np.exp(-best[keep]))
        parts.append((xywh, scores, class_ids[keep], rows[:, box_channels + n_classes :]))
    xywh, scores, class_ids, extra = (np.concatenate(column) for column in zip(*parts, strict=True))
    return Candidates(xywh.astype(np.float32), scores.astype(np.float32), class_ids, extra)


def _class_mask(classes: Iterable[int], n_classes: int) -> np.ndarray:
    allowed = np.zeros(n_classes, dtype=bool)
    allowed[[c for c in classes if 0 <= c < n_classes]] = True
    return allowed


def _logit(probability: float) -> float:
    if probability <= 0:
        return -np.inf
    if probability >= 1:
        return np.inf
    return float(np.log(probability / (1 - probability)))


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Class-aware NMS (OpenCV's batched NMS); indices by descending score."""
    if len(scores) == 0:
        return np.empty(0, dtype=int)
    xywh = np.column_stack([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]])
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), 0.0, NMS_IOU)
    keep = np.asarray(keep, dtype=int).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")][:MAX_DETECTIONS]


def nms_rotated(xywha: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Class-aware rotated NMS: OpenCV's rotated-rectangle NMS, one class at a time."""
    kept: list[int] = []
    for class_id in np.unique(class_ids):
        index = np.flatnonzero(class_ids == class_id)
        rects = [
            ((float(cx), float(cy)), (float(w), float(h)), float(np.degrees(a)))
            for cx, cy, w, h, a in xywha[index]
        ]
        keep = cv2.dnn.NMSBoxesRotated(rects, scores[index].tolist(), 0.0, NMS_IOU)
        kept.extend(index[np.asarray(keep, dtype=int).reshape(-1)].tolist())
    order = np.asarray(kept, dtype=int)
    return order[np.argsort(-scores[order], kind="stable")][:MAX_DETECTIONS]


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    half = xywh[:, 2:4] / 2
    return np.column_stack([xywh[:, :2] - half, xywh[:, :2] + half])


def boxes_to_original(boxes: np.ndarray, box: Letterbox, width: int, height: int) -> np.ndarray:
    xs, ys = box.to_original(boxes[:, [0, 2]], boxes[:, [1, 3]])
    xs, ys = np.clip(xs, 0, width), np.clip(ys, 0, height)
    return np.column_stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]])


@dataclass(frozen=True)
class ProtoGrid:
    """Where a block of prototype-mask logits lies: the grid's stride in input pixels, and the
    block's first column and row in the full grid (not zero when only a crop was computed)."""

    stride: float
    x0: float = 0.0
    y0: float = 0.0


def mask_polygon(
    logits: np.ndarray,
    box_xyxy: np.ndarray,
    box: Letterbox,
    grid: ProtoGrid,
) -> tuple[tuple[float, float], ...] | None:
    """Trace a prototype mask (mh x mw logits) inside its box, in original pixels.

    Rather than upsampling the whole mask to the photo's size (megapixels per plate), the box is
    sampled directly from the prototype grid with bilinear interpolation, which is what
    ultralytics' upsample-then-crop computes.
    """
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    scale = min(1.0, MASK_ROI_MAX / max(x2 - x1, y2 - y1))
    roi_w, roi_h = max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale))
    xs = x1 + (np.arange(roi_w, dtype=np.float32) + 0.5) / scale
    ys = y1 + (np.arange(roi_h, dtype=np.float32) + 0.5) / scale
    grid_x = (xs * box.ratio + box.pad_x) / grid.stride - 0.5 - grid.x0
    grid_y = (ys * box.ratio + box.pad_y) / grid.stride - 0.5 - grid.y0
    map_x = grid_x[np.newaxis, :].repeat(roi_h, axis=0)
    map_y = grid_y[:, np.newaxis].repeat(roi_w, axis=1)
    sampled = cv2.remap(logits.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
    binary = (sampled > 0).astype(np.uint8)  # sigmoid(x) > 0.5  ⇔  x > 0
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    points = outline / scale + (x1, y1)
    return tuple((round(x, 1), round(y, 1)) for x, y in points)


# Segmentation models cut in two ---------------------------------------------------------------

# Operators that compute each output pixel from a small neighbourhood of the same place in their
# input: a branch made only of them can run on a crop of its input and give the same values
# away from the crop's edges.
_LOCAL_OPS = {"Conv", "ConvTranspose", "Sigmoid", "Mul", "Add", "Relu", "LeakyRelu", "Cast"}


@dataclass(frozen=True)
class ProtoBranch:
    """A YOLOv8-seg export's mask-prototype branch, cut off the rest of the network.

    The head model returns the feature map the branch starts from instead of the prototypes;
    the branch then runs on a crop of it around the found boxes only. In YOLOv8s-seg the branch
    (two 3x3 convolutions, one at 160x160) is about a quarter of the network's work, and a plate
    covers a few cells of the grid, so cutting it saves most of that on every photo. The values
    inside the crop are the ones the whole network computes (tested), as long as the crop keeps
    `margin` cells of context around the boxes.
    """

    head: bytes
    branch: bytes
    feature: str  # the branch's input tensor
    margin: int  # feature-map cells of context the branch needs around a region


@dataclass(frozen=True)
class BranchSession:
    session: Any  # onnxruntime.InferenceSession
    feature: str
    margin: int


def _ints(node: Any, name: str, default: list[int]) -> list[int]:
    found = [a.ints for a in node.attribute if a.name == name]
    return list(found[0]) if found else default


def _reach(node: Any) -> int | None:
    """How many cells a convolution reads on each side, or None when not a plain 'same' one."""
    kernel = _ints(node, "kernel_shape", [1, 1])
    plain = (
        len(set(kernel)) == 1
        and kernel[0] % 2 == 1
        and set(_ints(node, "strides", [1])) == {1}
        and set(_ints(node, "dilations", [1])) == {1}
    )
    return kernel[0] // 2 if plain else None


def _doubles(node: Any) -> bool:
    return (
        _ints(node, "kernel_shape", []) == [2, 2]
        and _ints(node, "strides", []) == [2, 2]
        and not any(_ints(node, "pads", [0]))
    )


def proto_branch(path: Path) -> ProtoBranch | None:
    """Cut a segmentation export in two, or None when its prototype branch is not one we know.

    The branch is found from the second output up: element-wise operators and convolutions
    back through one 2x transposed convolution to the first convolution before it, whose input
    is the feature map. Anything else (strides, dilations, other operators, a branch that reads
    more than that one tensor) leaves the model whole.
    """
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(path))
    graph = model.graph
    if len(graph.output) != 2:
        return None
    producers = {name: node for node in graph.node for name in node.output}
    name, upsampled, radius, feature = graph.output[1].name, False, 0.0, None
    while feature is None:
        node = producers.get(name)
        if node is None or node.op_type not in _LOCAL_OPS:
            return None
        if node.op_type == "ConvTranspose":
            if upsampled or not _doubles(node):
                return None
            upsampled = True
        elif node.op_type == "Conv":
            reach = _reach(node)
            if reach is None:
                return None
            # Walking up: convolutions met before the upsampling run at twice the resolution
            # of the feature map, so they reach half as far in its cells.
            radius += reach if upsampled else reach / 2
            if upsampled:
                feature = node.input[0]
        name = node.input[0]
    # The extractor needs the type of every tensor it cuts at.
    extractor = Extractor(onnx.shape_inference.infer_shapes(model))
    head = extractor.extract_model([graph.input[0].name], [graph.output[0].name, feature])
    branch = extractor.extract_model([feature], [graph.output[1].name])
    try:
        # Fails when the branch reads a tensor other than the feature map.
        onnx.checker.check_model(branch)
    except onnx.checker.ValidationError:
        return None
    _free_spatial_dims(branch)
    # +1: the masks are sampled bilinearly, one cell beyond the box.
    margin = int(np.ceil(radius)) + 1
    return ProtoBranch(head.SerializeToString(), branch.SerializeToString(), feature, margin)


def _free_spatial_dims(model: Any) -> None:
    """Let a cut network take inputs of any size: the height and width of its inputs and
    outputs become symbolic."""
    for value in [*model.graph.input, *model.graph.output]:
        for dim, axis in zip(_dims(value)[2:], ("h", "w"), strict=True):
            dim.ClearField("dim_value")
            dim.dim_param = f"{value.name}_{axis}"
    del model.graph.value_info[:]  # inferred for the full size; ONNX Runtime infers them again


def _dims(value: Any) -> Any:
    return value.type.tensor_type.shape.dim


# Heads cut off their decoding tail, for inputs of any size -----------------------------------


@dataclass(frozen=True)
class LevelCut:
    """A YOLOv8 export whose outputs are its head's per-level maps instead of `output0`.

    A static export (the usual kind) decodes with anchors and shapes fixed for a square input,
    so it only takes 640x640. Without that tail every remaining operator takes any size, and the
    network runs on ultralytics' rectangular letterbox: a 16:9 photo costs 640x384, 60% of the
    square's work. `level_candidates` does the tail's decoding. The network's other outputs
    (prototypes, or the feature map of a cut prototype branch) follow the levels' tensors.
    `tail` is the export's own decoding, from the levels' maps at the square size to `output0`:
    what ours is checked against on load.
    """

    network: bytes
    tail: bytes
    layout: HeadLayout


def level_cut(model: Any, n_classes: int) -> LevelCut | None:
    """Cut a detect or segment export (an onnx.ModelProto) before its decoding tail, or None
    when its head does not read like a YOLOv8 one. The first output must be `output0`."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    shapes = {
        value.name: [d.dim_value if d.HasField("dim_value") else None for d in _dims(value)]
        for value in [*graph.input, *graph.value_info, *graph.output]
    }
    size = shapes[graph.input[0].name][2:]
    channels = shapes[graph.output[0].name][1]
    if None in size or size[0] != size[1] or channels is None:
        return None
    # Each level's maps are flattened to (1, C, H*W) before the levels are concatenated.
    maps: dict[tuple[int, int], list[tuple[str, int]]] = {}
    for node in graph.node:
        if node.op_type != "Reshape":
            continue
        shape = shapes.get(node.input[0], [])
        if len(shape) == 4 and None not in shape:
            _, depth, height, width = shape
            if shapes.get(node.output[0]) == [1, depth, height * width]:
                maps.setdefault((height, width), []).append((node.input[0], depth))
    extra = channels - 4 - n_classes
    levels = sorted(maps.items(), reverse=True)  # finest first: the anchors' order
    if len(levels) < 2 or extra < 0:
        return None
    box = sum(depth for _, depth in levels[0][1]) - n_classes - extra
    roles = {"box+classes": box + n_classes, "box": box, "classes": n_classes, "extra": extra}
    complete = [{"box+classes"}, {"box", "classes"}]
    if extra:
        complete = [roles | {"extra"} for roles in complete]
    tensors = []
    for (height, width), found in levels:
        ordered: dict[str, str] = {}
        for name, depth in found:
            role = [r for r, wanted in roles.items() if wanted == depth]
            if len(role) != 1 or role[0] in ordered:
                return None
            ordered[role[0]] = name
        if set(ordered) not in complete or size[0] % height or size[1] % width:
            return None
        tensors.append(tuple(ordered[r] for r in roles if r in ordered))
    if box % 4 or box <= 0:
        return None
    strides = tuple(size[0] // height for (height, _), _ in levels)
    maps = [name for level in tensors for name in level]
    kept = [output.name for output in graph.output[1:]]
    extractor = Extractor(model)
    network = extractor.extract_model([graph.input[0].name], maps + kept)
    tail = extractor.extract_model(maps, [graph.output[0].name])
    if [value.name for value in tail.graph.input] != maps:
        return None  # the tail reads more than the levels' maps
    _free_spatial_dims(network)
    layout = HeadLayout(box // 4, n_classes, strides, tuple(tensors))
    return LevelCut(network.SerializeToString(), tail.SerializeToString(), layout)


# Backends -------------------------------------------------------------------------------------


@functools.cache
def _register_shared_arena() -> None:
    import onnxruntime

    cpu = onnxruntime.OrtMemoryInfo(
        "Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, onnxruntime.OrtMemType.DEFAULT
    )
    # 0 and -1: no cap and ONNX Runtime's default growth, chunk and dead-bytes settings.
    onnxruntime.create_and_register_allocator(cpu, onnxruntime.OrtArenaCfg(0, -1, -1, -1))


@functools.cache
def execution_providers(device: str) -> tuple[str, ...]:
    """ONNX Runtime's providers for a device ("cpu" or "cuda"): CUDA's, then the CPU's for the
    operators it lacks, when asked and this onnxruntime build has it; else the CPU's alone, said
    once per process (the `onnxruntime` wheel has no CUDA; `onnxruntime-gpu` has)."""
    import onnxruntime

    if device == "cuda":
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return ("CUDAExecutionProvider", "CPUExecutionProvider")
        logger.warning(
            "DETECTION_DEVICE is cuda, but this onnxruntime offers only %s: detecting on the CPU "
            "(install onnxruntime-gpu for CUDA)",
            ", ".join(onnxruntime.get_available_providers()),
        )
    return ("CPUExecutionProvider",)


class OnnxDetector:
    """A model's ONNX Runtime sessions, loaded once per process and thread count; threads may
    share them.

    A detect or segment export runs cut before its decoding tail, on rectangular inputs
    (`level_cut`), and a segmentation export's prototype branch runs apart, around the found
    boxes only (`proto_branch`). `rect` and `branch` turn either off (tests and benchmarks
    compare with the export as it is).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        threads: int = 2,
        spin: bool = False,
        rect: bool = True,
        branch: bool = True,
        device: str = "cpu",
    ) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # One memory arena for all the process's sessions, instead of one each holding its own
        # peak: a worker keeps two sessions per model once batch jobs ran (bench/detect.py:
        # 756 -> 641 MB peak with both models).
        _register_shared_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
        if not spin:
            # Idle pool threads otherwise busy-wait for the next operator; on a small machine
            # shared with other workers that spinning takes the cores they need (measured on
            # 2 cores with a second worker busy: platedet 425 ms with spinning, 307 ms without).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.spec = spec
        providers = execution_providers(device)

        def session(model: bytes | str) -> Any:
            return onnxruntime.InferenceSession(model, options, providers=providers)

        split = proto_branch(spec.path) if spec.task == "segment" and branch else None
        network: bytes | str = split.head if split else str(spec.path)
        # The cuts' bytes are not kept: the sessions hold what they need.
        self.branch = (
            BranchSession(session(split.branch), split.feature, split.margin) if split else None
        )
        cut = self._level_cut(network) if spec.task != "obb" and rect else None
        self.layout: HeadLayout | None = None
        self.session = session(cut.network if cut else network)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        # platedet takes float16: feeding float32 would be refused.
        self.dtype = np.float16 if "float16" in model_input.type else np.float32
        if cut is not None:
            if self._decodes_like(cut):
                self.layout = cut.layout
            else:
                logger.warning("%s: the cut head decodes differently; run whole", spec.path)
                self.session = session(network)

    def _level_cut(self, network: bytes | str) -> LevelCut | None:
        import onnx

        model = onnx.load_from_string(network) if isinstance(network, bytes) else onnx.load(network)
        return level_cut(model, len(self.spec.class_names))

    def _decodes_like(self, cut: LevelCut) -> bool:
        """Whether our decoding of the head's maps gives the export's own output0, on a square
        input (a check of the layout read from the graph, once per load)."""
        import onnxruntime

        size, layout = self.spec.input_size, cut.layout
        sample = np.random.default_rng(0).random((1, 3, size, size)).astype(self.dtype)
        maps = self.session.run(None, {self.input_name: sample})
        tail = onnxruntime.InferenceSession(cut.tail, providers=["CPUExecutionProvider"])
        names = [name for level in layout.tensors for name in level]
        output = tail.run(None, dict(zip(names, maps, strict=False)))[0]
        mine = level_candidates(self._levels(maps, layout)[0], layout, None)
        rows = output[0].T.astype(np.float32)
        n_classes = layout.n_classes
        return (
            mine.xywh.shape[0] == rows.shape[0]
            and np.allclose(mine.xywh, rows[:, :4], rtol=1e-2, atol=0.5)
            and np.allclose(mine.scores, rows[:, 4 : 4 + n_classes].max(axis=1), atol=1e-2)
            and np.allclose(mine.extra, rows[:, 4 + n_classes :], rtol=1e-2, atol=1e-2)
        )

    @staticmethod
    def _levels(
        outputs: list[np.ndarray], layout: HeadLayout
    ) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
        """The cut network's outputs: its levels' maps, and the outputs after them."""
        levels, at = [], 0
        for names in layout.tensors:
            levels.append(outputs[at : at + len(names)])
            at += len(names)
        return levels, outputs[at:]

    def predict(
        self,
        image: PIL.Image.Image,
        *,
        confidence: float | None = None,
        classes: Iterable[int] | None = None,
        size: int | None = None,
    ) -> list[Found]:
        """`size`: the letterbox's side instead of the model's input size (rounded up to the
        head's largest stride); only the cut network takes other sizes, a whole export keeps
        its own."""
        # convert() copies even an RGB picture: a full-size copy the budget does not count.
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        height, width = rgb.shape[:2]
        threshold = self.spec.confidence if confidence is None else confidence
        stride = max(self.layout.strides) if self.layout else None
        side = self.spec.input_size
        if size and stride:
            side = -(-size // stride) * stride
        padded, box = letterbox(rgb, side, stride)
        outputs = self.session.run(None, {self.input_name: to_tensor(padded, self.dtype)})
        if self.layout:
            levels, rest = self._levels(outputs, self.layout)
            found = level_candidates(levels, self.layout, threshold, classes)
        else:
            found = candidates(outputs[0], len(self.spec.class_names), threshold, classes)
            rest = outputs[1:]
        if self.spec.task == "obb":
            return self._obb(found, box, width, height)
        boxes = xywh_to_xyxy(found.xywh)
        keep = nms(boxes, found.scores, found.class_ids)
        original = boxes_to_original(boxes[keep], box, width, height)
        polygons: list[tuple[tuple[float, float], ...] | None] = [None] * len(keep)
        if self.spec.task == "segment" and len(keep):
            protos, grid = self._prototypes(rest[0], boxes[keep], padded.shape[1])
            coefficients = found.extra[keep, : protos.shape[0]]
            logits = (coefficients @ protos.reshape(protos.shape[0], -1)).reshape(
                -1, *protos.shape[1:]
            )
            polygons = [mask_polygon(logits[i], original[i], box, grid) for i in range(len(keep))]
        return [
            self._found(found.class_ids[k], found.scores[k], original[i], polygons[i])
            for i, k in enumerate(keep)
        ]

    def _prototypes(
        self, second: np.ndarray, boxes: np.ndarray, input_width: int
    ) -> tuple[np.ndarray, ProtoGrid]:
        """The prototype masks (k, h, w) over the region of these boxes (input pixels).

        With the branch cut off, `second` is its feature map and the branch runs on the region
        alone; otherwise it holds the whole prototype grid and the region is cut out of it, so
        that the mask product below stays small either way.
        """
        height, width = second.shape[-2:]
        cell = input_width / width
        margin = self.branch.margin if self.branch else 1
        x0 = max(0, int(boxes[:, 0].min() / cell) - margin)
        y0 = max(0, int(boxes[:, 1].min() / cell) - margin)
        x1 = min(width, max(x0 + 1, int(np.ceil(boxes[:, 2].max() / cell)) + margin))
        y1 = min(height, max(y0 + 1, int(np.ceil(boxes[:, 3].max() / cell)) + margin))
        region = np.ascontiguousarray(second[:, :, y0:y1, x0:x1])
        if self.branch is None:
            return region[0].astype(np.float32), ProtoGrid(cell, x0, y0)
        protos = self.branch.session.run(None, {self.branch.feature: region})[0][0]
        scale = protos.shape[-1] / region.shape[-1]
        return protos.astype(np.float32), ProtoGrid(cell / scale, x0 * scale, y0 * scale)

    def _obb(self, found: Candidates, box: Letterbox, width: int, height: int) -> list[Found]:
        xywha = np.column_stack([found.xywh, found.extra[:, 0]])
        keep = nms_rotated(xywha, found.scores, found.class_ids)
        results = []
        for k in keep:
            cx, cy, w, h, angle = xywha[k]
            corners = cv2.boxPoints(((cx, cy), (w, h), float(np.degrees(angle))))
            xs, ys = box.to_original(corners[:, 0], corners[:, 1])
            xs, ys = np.clip(xs, 0, width), np.clip(ys, 0, height)
            quad = tuple(
                (round(float(x), 1), round(float(y), 1)) for x, y in zip(xs, ys, strict=True)
            )
            outline = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
            results.append(self._found(found.class_ids[k], found.scores[k], outline, quad))
        return results

    def _found(
        self,
        class_id: Any,
        score: Any,
        box: np.ndarray,
        polygon: tuple[tuple[float, float], ...] | None,
    ) -> Found:
        return Found(
            class_id=int(class_id),
            class_name=self.spec.class_names[int(class_id)],
            confidence=round(float(score), 4),
            box=tuple(round(float(v), 1) for v in box),  # type: ignore[arg-type]
            polygon=polygon,
        )


class BackendUnavailable(RuntimeError):
    pass


def ultralytics_model(path: Path, *, task: str | None = None) -> Any:
    """Load an ONNX model with ultralytics (the optional extra `[yolo]`), offline: the reference
    our decoder is tested and benchmarked against.

    Never a .pt: that is a pickle, which runs code when loaded. Only `register_model`'s child
    process (images/pt_export.py) loads one.
    """
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"{path.name}: only ONNX files are loaded in this process.")
    # Never let ultralytics pip-install packages or reach a hub from a worker.
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise BackendUnavailable(
            "The ultralytics backend needs the optional extra: pip install 'imago[yolo]'."
        ) from exc
    finally:
        PIL.Image.open = _PIL_OPEN  # HEIF is already registered through pillow-heif
    return YOLO(str(path), task=task)


Item = TypeVar("Item")
Result = TypeVar("Result")


def ordered_map(
    function: Callable[[Item], Result], items: Iterable[Item], *, workers: int
) -> Iterator[Result]:
    """function over items in `workers` threads, the results in the items' order.

    At most workers + 1 items are in flight, since each may hold a decoded photo. ONNX Runtime,
    OpenCV and Pillow's decoder release the GIL, so two images in flight keep 2 cores busy
    where one image alone leaves them idle between small operators and around the network
    (YOLOv8n: ~1.3x the images per second of one at a time; see bench/detect.py). Sessions are
    safe to share between threads. concurrent.futures' map would submit every item at once.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="detect") as pool:
        pending: deque[Future[Result]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_detectors: dict[tuple[ModelSpec, float, int, bool], Detector] = {}
_lock = threading.Lock()


def get_detector(
    spec: ModelSpec, *, threads: int = 2, spin: bool = False, device: str = "cpu"
) -> Detector:
    """The process's detector for this model file, loaded on first use."""
    # A replaced file is loaded again; batch jobs keep sessions with fewer threads beside.
    if spec.backend != "onnx":
        # Rows from when tenants could upload .pt files: loading one would unpickle it.
        raise BackendUnavailable(
            f"{spec.name} is a .pt model, which is no longer run: register it again as ONNX."
        )
    key = (spec, spec.path.stat().st_mtime, threads, spin, device)
    with _lock:
        if key not in _detectors:
            _detectors[key] = OnnxDetector(spec, threads=threads, spin=spin, device=device)
        return _detectors[key]
