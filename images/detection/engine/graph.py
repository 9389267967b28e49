"""ONNX graph cuts made on load: a segmentation export's prototype branch apart, and a head
without its decoding tail (for inputs of any size)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from images.detection.engine.decoding import HeadLayout

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
