"""Running the models: ONNX Runtime sessions (`OnnxDetector`) on the chosen device, one per model
file and thread count in a process (`get_detector`), and ultralytics as the reference."""

import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import PIL.Image

from images.detection.engine.decoding import (
    Candidates,
    HeadLayout,
    ProtoGrid,
    boxes_to_original,
    candidates,
    level_candidates,
    mask_polygon,
    nms,
    nms_rotated,
    xywh_to_xyxy,
)
from images.detection.engine.detector import Detector, Found, ModelSpec
from images.detection.engine.graph import LevelCut, level_cut, proto_branch
from images.detection.engine.letterbox import Letterbox, letterbox, to_tensor

logger = logging.getLogger(__name__)

# ultralytics replaces PIL.Image.open on import (to pip-install a HEIF plugin on failure), which
# would turn "not an image" into ModuleNotFoundError everywhere in the process. We keep Pillow's.
_PIL_OPEN = PIL.Image.open


@dataclass(frozen=True)
class BranchSession:
    session: Any  # onnxruntime.InferenceSession
    feature: str
    margin: int


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
