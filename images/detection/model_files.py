"""Model files from outside: ONNX only, checked without being run.

A `.pt` is a pickle, and unpickling runs whatever code it names: no tenant file is ever given to
torch or ultralytics. Operators convert theirs with `manage.py register_model`, which unpickles in
a short-lived child process (`images/pt_export.py`) and hands the export back to these checks.
"""

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import onnx
from google.protobuf.message import Message

from images.detection.engine import TASKS
from kit.errors import DomainError

EXPORT_HINT = "export it to ONNX first: yolo export model=best.pt format=onnx"
# The standard operator set only: a custom domain names kernels from a library we do not load
# (at best the model fails later, at worst it asks for code we never reviewed).
ALLOWED_DOMAINS = {"", "ai.onnx"}
INPUT_SIDES = (32, 4096)  # the engine letterboxes photos into a square of this side
NAMES_MAX_CHARS = 256 * 1024  # ultralytics' COCO export: 1.2 KB
CHUNK = 1024 * 1024
FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)  # what OnnxDetector feeds


class ModelRefused(DomainError):
    STATUSES = {"invalid_model": 400, "model_too_large": 413, "unsupported_model_format": 415}

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, self.STATUSES[code])


def _invalid(detail: str) -> ModelRefused:
    return ModelRefused("invalid_model", detail)


def model_file_save(*, fp: IO[bytes], filename: str, path: Path, limit: int) -> None:
    """Copy an upload to `path`, refusing other formats than ONNX and files over `limit` bytes
    (counted while copying: a client can lie about the size). The caller removes `path` after
    a refusal."""
    if Path(filename).suffix.lower() != ".onnx":
        raise _unsupported(f"{filename!r} is not an .onnx file")
    written = 0
    with path.open("xb") as out:
        while chunk := fp.read(CHUNK):
            if written == 0 and _pickled(chunk):
                raise _unsupported("it is a PyTorch (pickle or zip) file, whatever its name")
            written += len(chunk)
            if written > limit:
                raise ModelRefused(
                    "model_too_large", f"A model file may have at most {limit} bytes."
                )
            out.write(chunk)


def _unsupported(why: str) -> ModelRefused:
    return ModelRefused(
        "unsupported_model_format", f"Only ONNX models are accepted: {why}; {EXPORT_HINT}."
    )


def _pickled(head: bytes) -> bool:
    # torch.save writes a zip since 1.6 and a bare pickle (protocol 2) before; ONNX is protobuf,
    # whose first byte is a small field tag, never one of these.
    return head.startswith(b"PK\x03\x04") or (len(head) > 1 and head[0] == 0x80 and head[1] <= 5)


def onnx_describe(path: Path) -> dict[str, Any]:
    """Task, class names and input size of an ONNX detection model, once it passed every check:
    it parses, has no external data, uses standard operators only, passes ONNX's checker, takes
    one image batch and gives outputs our decoder reads for its task, and ONNX Runtime loads it."""
    try:
        # External data would be read from wherever the file says: never load it.
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise _invalid("Not an ONNX model: the file does not parse.") from exc
    _refuse_external_data(model)
    _refuse_custom_domains(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise _invalid(f"ONNX's checker refuses it: {_first_line(exc, path)}") from exc
    input_size = _input_side(model.graph)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    task = meta.get("task", "detect")
    if task not in TASKS:
        raise _invalid(f"Unsupported task {task[:40]!r}: one of {', '.join(TASKS)}.")
    class_names = _class_names(meta.get("names"))
    _check_outputs(model.graph, task, len(class_names))
    _check_loads(path)
    return {"task": task, "class_names": class_names, "input_size": input_size}


def _messages(root: Message) -> Iterator[Message]:
    """Every message nested in root (subgraphs, functions, attributes' tensors), without
    recursion: a hostile file may nest as deep as protobuf lets it."""
    stack = [root]
    while stack:
        message = stack.pop()
        yield message
        for field, value in message.ListFields():
            if field.type != field.TYPE_MESSAGE:
                continue
            if isinstance(value, Message):
                stack.append(value)
            else:  # a repeated field
                stack.extend(value)


def _refuse_external_data(model: onnx.ModelProto) -> None:
    for message in _messages(model):
        if isinstance(message, onnx.TensorProto) and (
            message.data_location == onnx.TensorProto.EXTERNAL or len(message.external_data)
        ):
            raise _invalid(
                "The model refers to external data files: export it with its weights inside."
            )


def _refuse_custom_domains(model: onnx.ModelProto) -> None:
    for message in _messages(model):
        if isinstance(message, onnx.NodeProto | onnx.OperatorSetIdProto) and (
            message.domain not in ALLOWED_DOMAINS
        ):
            raise _invalid(
                f"The model uses operators of the domain {message.domain[:60]!r}: "
                "only the standard ONNX operators are accepted."
            )


def _dims(value: onnx.ValueInfoProto) -> list[int | None] | None:
    """A tensor's dimensions (None where symbolic), or None when it is not a shaped tensor."""
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    return [
        dim.dim_value if dim.HasField("dim_value") else None
        for dim in value.type.tensor_type.shape.dim
    ]


def _input_side(graph: onnx.GraphProto) -> int:
    weights = {tensor.name for tensor in graph.initializer}  # listed as inputs before IR 4
    inputs = [value for value in graph.input if value.name not in weights]
    if len(inputs) != 1:
        raise _invalid(f"The model must take one input, a batch of images; it takes {len(inputs)}.")
    dims = _dims(inputs[0])
    if dims is None or len(dims) != 4 or dims[1] != 3:
        raise _invalid("The model's input must be RGB images: (batch, 3, height, width).")
    if inputs[0].type.tensor_type.elem_type not in FLOATS:
        raise _invalid("The model's input must be float32 or float16.")
    height, width = dims[2], dims[3]
    if height is not None and width is not None and height != width:
        raise _invalid(f"The model's input must be square; it is {height}x{width}.")
    side = width or height or 640  # ultralytics' default, as read_onnx_metadata assumes
    if not INPUT_SIDES[0] <= side <= INPUT_SIDES[1]:
        raise _invalid(f"The model's input side must be {INPUT_SIDES[0]} to {INPUT_SIDES[1]}.")
    return side


def _class_names(value: str | None) -> list[str]:
    """The `names` metadata ultralytics writes: a Python dict literal {0: 'person', ...}."""
    if not value:
        raise _invalid("The model has no class names (the 'names' metadata of an export).")
    if len(value) > NAMES_MAX_CHARS:
        raise _invalid("The model's class names are too long.")
    try:
        names = ast.literal_eval(value)
    except Exception as exc:  # SyntaxError, and RecursionError or MemoryError on odd input
        raise _invalid("The model's 'names' metadata is not a dict of class names.") from exc
    if (
        not isinstance(names, dict)
        or sorted(names) != list(range(len(names)))
        or not all(isinstance(name, str) for name in names.values())
        or not names
    ):
        raise _invalid("The model's 'names' must map 0, 1, 2... to class names.")
    return [names[i] for i in range(len(names))]


def _check_outputs(graph: onnx.GraphProto, task: str, n_classes: int) -> None:
    """A YOLOv8 head: (batch, 4 + classes + extra, anchors), and for segmentation the
    prototype masks (batch, masks, height, width) whose count is the extra."""
    shapes = [_dims(value) for value in graph.output]
    first = shapes[0] if shapes else None
    if first is None or len(first) != 3 or first[1] is None:
        raise _invalid("The model's first output must be (batch, 4 + classes + extra, anchors).")
    extra = 0
    if task == "obb":
        extra = 1  # the angle
    elif task == "segment":
        masks = shapes[1] if len(shapes) > 1 else None
        if masks is None or len(masks) != 4 or masks[1] is None:
            raise _invalid("A segmentation model's second output must be its prototype masks.")
        extra = masks[1]
    if first[1] != 4 + n_classes + extra:
        raise _invalid(
            f"The model's first output has {first[1]} channels; a {task} model with "
            f"{n_classes} classes has {4 + n_classes + extra}."
        )


def _check_loads(path: Path) -> None:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Loading only: optimisations would fold constants, that is run parts of the graph.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise _invalid(f"ONNX Runtime cannot load it: {_first_line(exc, path)}") from exc


def _first_line(exc: Exception, path: Path) -> str:
    # Messages name the file: the server's paths are not the tenant's business.
    lines = str(exc).replace(str(path), path.name).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
