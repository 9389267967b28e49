"""The box an object insight points at: read from the insight, and sent with its question.

The admin draws it: tests/annotations/test_admin.py; the pages in Chromium: test_question_page.py
and tests/ui/test_browser.py.
"""

import pytest

from annotations.models import Insight
from annotations.selectors import evidence_box
from tests.annotations.support import EVIDENCE_BOX


@pytest.mark.parametrize(
    ("bounding_box", "data"),
    [
        (EVIDENCE_BOX, {}),
        (None, {"bounding_box": EVIDENCE_BOX}),  # Robotoff's object predictions: in the data
        ([0.25, 0.1, 0.75, 0.6], {"bounding_box": [0, 0, 1, 1]}),  # the field wins
        ((0.25, 0.1, 0.75, 0.6), None),
    ],
)
def test_it_reads_a_box_from_the_field_or_the_data(make_insight, owner, bounding_box, data):
    insight = make_insight(owner, type="object", bounding_box=bounding_box, data=data or {})

    assert evidence_box(insight) == EVIDENCE_BOX


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        "0.25,0.1,0.75,0.6",
        [0.25, 0.1, 0.75],  # too short
        [0.25, 0.1, 0.75, 0.6, 0.9],  # too long
        [0.25, 0.1, 0.75, "0.6"],  # text
        [True, 0.1, 0.75, 0.6],  # a bool is no number
        [0.25, 0.1, 0.75, None],
        [[0.25], 0.1, 0.75, 0.6],
        [12, 40, 300, 420],  # pixels: the picture's size is not known here
        [-0.1, 0.1, 0.75, 0.6],
        [0.75, 0.1, 0.25, 0.6],  # upside down
        [0.25, 0.6, 0.75, 0.6],  # no width
        [1e309, 0.1, 0.75, 0.6],  # infinity
        [float("nan"), 0.1, 0.75, 0.6],
        {"y_min": 0.25, "x_min": 0.1, "y_max": 0.75, "x_max": 0.6},
        list(range(100_000)),
    ],
)
def test_it_ignores_anything_but_four_ordered_fractions(hostile):
    # Unsaved: NaN and infinity cannot even be stored (JSON has neither), a crafted row aside.
    assert evidence_box(Insight(type="object", bounding_box=hostile)) is None
    assert evidence_box(Insight(type="object", data={"bounding_box": hostile})) is None


@pytest.mark.parametrize("data", [[EVIDENCE_BOX], "text", 7, None])
def test_it_ignores_data_that_is_not_an_object(data):
    assert evidence_box(Insight(type="object", data=data)) is None


def test_a_question_carries_its_box(owner, make_insight):
    make_insight(owner, type="object", value="car", bounding_box=EVIDENCE_BOX)

    question = owner.api.get("/api/v1/questions").json()["questions"][0]

    assert question["bounding_box"] == EVIDENCE_BOX


def test_a_question_without_a_usable_box_has_none(owner, make_insight):
    make_insight(owner, type="object", value="car", bounding_box=[12, 40, 300, 420])

    question = owner.api.get("/api/v1/questions").json()["questions"][0]

    assert "bounding_box" not in question
