"""The packages' shape (docs/architecture.md): imports run downward, no module too long to read in
one sitting, no room holding the bulk of the code.

Layers, floor to roof: kit < images < ai < annotations < imago_site. A module imports its own
layer or a lower one, at the top of the file or inside a function alike (dotted strings, as in
settings.py or importlib, are not imports here). Inside images the rooms are ordered too:
tenancy < library < detection < plates < compat, and the app's wiring (images/models.py, admin.py,
jobs.py, urls.py, apps.py and its management commands) stands above every room: a room imports
its own room, a lower room or kit; the wiring imports any room. A name imported from
images.models counts as an import of the room whose models.py defines it.
"""

import ast
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.live import ROOT

LAYERS = ["kit", "images", "ai", "annotations", "imago_site"]
ROOMS = ["tenancy", "library", "detection", "plates", "compat"]
WIRING = len(ROOMS)  # the rank of images' own modules, above every room
MODELS = "images.models"
MAX_LINES = 600


def sources() -> list[Path]:
    """Every module of the project's packages but migrations (bench/ and tests/ are not in them)."""
    return sorted(
        path
        for layer in LAYERS
        for path in (ROOT / layer).rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> tuple[int, int] | None:
    """(layer, room) of one of our modules, comparable: higher imports lower. None: not ours."""
    top, _, rest = module.partition(".")
    if top not in LAYERS:
        return None
    if top != "images":
        return LAYERS.index(top), 0
    room = rest.partition(".")[0]
    return LAYERS.index(top), ROOMS.index(room) if room in ROOMS else WIRING


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def models_rooms() -> dict[str, str]:
    """The module of each name that images/models.py gathers from the rooms."""
    tree = ast.parse((ROOT / "images" / "models.py").read_text())
    return {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def imported(tree: ast.AST, package: str, origins: dict[str, str]) -> list[tuple[int, str]]:
    """(line, module) of every import in the tree, wherever it stands."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *filter(None, [node.module])])
            for alias in node.names:
                if base == MODELS and alias.name in origins:
                    found.append((node.lineno, origins[alias.name]))
                elif is_module(f"{base}.{alias.name}"):
                    found.append((node.lineno, f"{base}.{alias.name}"))
                else:
                    found.append((node.lineno, base))
    return found


@dataclass
class Upward:
    path: str
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def upward_imports(path: Path, source: str, origins: dict[str, str]) -> list[Upward]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    own = rank(name)
    found: dict[tuple[int, str], Upward] = {}  # one per line and module
    for line, module in imported(ast.parse(source), package, origins):
        theirs = rank(module)
        if own is not None and theirs is not None and theirs > own:
            found[line, module] = Upward(str(path.relative_to(ROOT)), line, module)
    return sorted(found.values(), key=lambda upward: upward.line)


def test_imports_run_from_the_roof_to_the_floor():
    origins = models_rooms()
    upward = [u for path in sources() for u in upward_imports(path, path.read_text(), origins)]

    assert [str(u) for u in upward] == []


def test_the_import_check_catches_what_it_should():
    source = (
        "from ai import selectors\n"
        "from images.models import Detection, Image\n"
        "from kit.errors import DomainError\n"
        "def later():\n"
        "    import annotations.models\n"
        "    from images.plates import review\n"
        "    from images import jobs\n"
        "    from ..detection import services\n"
        "    from . import storage\n"
    )
    path = ROOT / "images" / "library" / "example.py"

    found = upward_imports(path, source, models_rooms())

    assert [str(u) for u in found] == [
        "images/library/example.py:1 imports ai.selectors",
        "images/library/example.py:2 imports images.detection.models",
        "images/library/example.py:5 imports annotations.models",
        "images/library/example.py:6 imports images.plates.review",
        "images/library/example.py:7 imports images.jobs",
        "images/library/example.py:8 imports images.detection.services",
    ]
    kit = upward_imports(ROOT / "kit" / "example.py", "from images import models\n", {})
    assert [str(u) for u in kit] == ["kit/example.py:1 imports images.models"]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_is_too_long_to_read_in_one_sitting():
    too_long = {str(p.relative_to(ROOT)) for p in sources() if lines(p) > MAX_LINES}

    assert too_long == set()


def room(path: Path) -> str:
    """kit, imago_site, ai, annotations, each images/<room>/, or images' own modules."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "images":
        return f"images/{parts[1]}" if parts[1] in ROOMS else "images (wiring)"
    return parts[0]


def test_no_app_or_room_holds_more_than_a_third_of_the_code():
    size = Counter()
    for path in sources():
        size[room(path)] += lines(path)
    total = sum(size.values())

    assert len(size) == len(LAYERS) - 1 + len(ROOMS) + 1
    assert {name: n for name, n in size.items() if n > total / 3} == {}
