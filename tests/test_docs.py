"""The README and docs/: every setting documented once, every link inside the repository working."""

import ast
import re
from pathlib import Path

import pytest

from tests.live import ROOT

CONFIGURATION = ROOT / "docs" / "configuration.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The helpers settings.py reads with (imago_site/environment.py); env_any reads each name given.
ENV_READERS = {"env", "envbool", "envint", "envlist", "envurl", "env_any"}
# [text](target): the target up to a space or the closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def settings_read(source: str) -> set[str]:
    """The environment variables imago_site/settings.py reads through its helpers."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        reader = getattr(node, "func", None)
        if isinstance(node, ast.Call) and getattr(reader, "id", None) in ENV_READERS:
            # env_any's defaults are keywords; the other helpers' second argument is a default.
            given = node.args if reader.id == "env_any" else node.args[:1]
            names |= {a.value for a in given if isinstance(a, ast.Constant)}
    return names


def environ_read(source: str) -> set[str]:
    """Variables read straight from os.environ (commands, metrics, gunicorn)."""
    return set(re.findall(r'os\.environ(?:\.get|\.setdefault)?[\[(]"([A-Z][A-Z0-9_]*)"', source))


def documented() -> set[str]:
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings in code
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, mailto: (the pages name the local server's URLs)
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    return broken


def test_every_setting_settings_py_reads_is_documented():
    source = (ROOT / "imago_site" / "settings.py").read_text()
    read = settings_read(source)

    assert {"DATABASE_URL", "SECRET_KEY", "S3_BUCKET", "AWS_STORAGE_BUCKET_NAME"} <= read
    assert {"BACKEND_UPLOAD_URL", "S3_ACCESS_KEY"} <= read
    assert sorted(read - documented()) == []


def test_every_variable_read_from_the_environment_elsewhere_is_documented():
    sources = [*ROOT.glob("imago_site/*.py"), *ROOT.glob("*/management/commands/*.py"),
               ROOT / "gunicorn.conf.py"]  # fmt: skip
    read = set().union(*(environ_read(p.read_text()) for p in sources))
    read -= {"DJANGO_SETTINGS_MODULE", "PATH"}  # Django's and the system's own

    assert {"IMAGO_DEMO_KEY", "PROMETHEUS_MULTIPROC_DIR"} <= read
    assert sorted(read - documented()) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_into_the_repository(page):
    assert broken_links(page) == []


def test_the_link_check_catches_what_it_should(tmp_path, monkeypatch):
    monkeypatch.setattr("tests.test_docs.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Some part, here\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#some-part-here) [web](https://example.org/x.md) "
        "[gone](docs/b.md) [heading](docs/a.md#nowhere) [out](../shared/docs/c.md)"
    )

    assert broken_links(page) == [
        "docs/b.md (no such file)",
        "docs/a.md#nowhere (no such heading)",
        "../shared/docs/c.md (outside the repository)",
    ]


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()

    assert len(readme.splitlines()) < 150
    assert "make run" in readme and "make test" in readme
    assert "screenshots/" in readme and "SCREENSHOTS_DIR" in readme
    assert "../shared" not in readme
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(readme)}
    assert {p.name for p in PAGES[1:]} <= linked  # every docs/ page
