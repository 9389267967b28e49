"""Review in the admin: filters, counts per type, previews, answers as the staff user, keywords."""

import re
import uuid

import pytest
from django.test import Client as BrowserClient

from annotations.models import Insight, InsightImport, InsightKeyword
from images.models import Image, Thumbnail
from tests.annotations.support import EVIDENCE_BOX, an_image
from tests.factories import AnnotationVoteFactory, InsightFactory

CHANGELIST = "/admin/annotations/insight/"


@pytest.fixture
def reviewer(db, django_user_model) -> BrowserClient:
    user = django_user_model.objects.create_superuser("reviewer", "reviewer@localhost", "pw")
    browser = BrowserClient()
    browser.force_login(user)
    return browser


def stored_image(tenant) -> Image:
    image = Image(
        client=tenant.client,
        content_type="image/jpeg",
        format="JPEG",
        width=800,
        height=600,
        size_bytes=1000,
        sha256=f"sha-{Image.objects.count()}",
    )
    image.file = f"{image.storage_dir}/original.jpg"
    image.save()
    for size in (256, 1024):
        name = f"{image.storage_dir}/thumb_{size}.webp"
        Thumbnail.objects.create(
            image=image, size=size, file=name, width=size, height=size * 3 // 4, size_bytes=100
        )
    return image


def insight(tenant, type_: str, value: str, *, image=None, **fields) -> Insight:
    return InsightFactory(
        client=tenant.client,
        barcode=str(image.uuid) if image else fields.pop("barcode", "3017620422003"),
        image=image,
        type=type_,
        value=value,
        predictor=fields.pop("predictor", "imago-vision-local"),
        **fields,
    )


def listed(response) -> set[str]:
    """The insight ids in a changelist page."""
    return set(
        re.findall(r'name="_selected_action" value="([0-9a-f-]{36})"', response.content.decode())
    )


def type_counts(response) -> dict[str, list[int]]:
    rows = re.findall(r'<tr data-type="(\w+)">(.*?)</tr>', response.content.decode())
    return {t: [int(n) for n in re.findall(r"<td>(\d+)</td>", cells)] for t, cells in rows}


def test_the_list_filters_by_type_tenant_predictor_and_status(reviewer, owner, other):
    tag = insight(owner, "image_tag", "street")
    obj = insight(owner, "object", "car", predictor="imago-detection-coco")
    done = insight(owner, "label", "bio", value_tag="en:organic", annotation=1, username="x")
    rejected = insight(owner, "label", "vegan", annotation=0, username="x")
    skipped = insight(owner, "brand", "acme", annotation=-1)
    elsewhere = insight(other, "image_tag", "tree")

    def ids(query: str) -> set[str]:
        response = reviewer.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200
        return listed(response)

    assert ids("type=image_tag") == {str(tag.pk), str(elsewhere.pk)}
    assert ids(f"client__id__exact={other.client.pk}") == {str(elsewhere.pk)}
    assert ids("predictor=imago-detection-coco") == {str(obj.pk)}
    assert ids("status=open") == {str(tag.pk), str(obj.pk), str(elsewhere.pk)}
    assert ids("status=accepted") == {str(done.pk)}
    assert ids("status=rejected") == {str(rejected.pk)}
    assert ids("status=skipped") == {str(skipped.pk)}
    assert ids("q=en:organic") == {str(done.pk)}
    assert ids("q=3017620422003") == {str(i.pk) for i in Insight.objects.all()}
    assert ids("q=vegan") == {str(rejected.pk)}


def test_counts_per_type_follow_the_filters(reviewer, owner, other):
    for value in ("a", "b", "c"):
        insight(owner, "image_tag", value)
    insight(owner, "image_tag", "d", annotation=0)
    insight(owner, "object", "car", annotation=1)
    insight(other, "object", "dog", annotation=-1)

    everything = type_counts(reviewer.get(CHANGELIST))
    #                            open, accepted, rejected, skipped, total
    assert everything == {"image_tag": [3, 0, 1, 0, 4], "object": [0, 1, 0, 1, 2]}
    owners = type_counts(reviewer.get(f"{CHANGELIST}?client__id__exact={owner.client.pk}"))
    assert owners == {"image_tag": [3, 0, 1, 0, 4], "object": [0, 1, 0, 0, 1]}


def test_the_list_and_the_page_preview_the_image_by_signed_link(reviewer, owner):
    image = stored_image(owner)
    linked = insight(owner, "object", "car", image=image)
    imported = insight(owner, "label", "bio", source_image="/301/762/042/2003/1.jpg")

    changelist = reviewer.get(CHANGELIST).content.decode()
    assert changelist.count("/files/signed/") == 1
    page = reviewer.get(f"{CHANGELIST}{linked.pk}/change/").content.decode()
    assert "/files/signed/" in page
    assert "max-width:480px" in page
    imported_page = reviewer.get(f"{CHANGELIST}{imported.pk}/change/").content.decode()
    assert "/301/762/042/2003/1.jpg" in imported_page


def test_the_page_lists_the_votes_read_only(reviewer, owner):
    voted = insight(owner, "label", "bio", n_votes=2)
    AnnotationVoteFactory(insight=voted, device_id="phone-1")
    AnnotationVoteFactory(insight=voted, value=0, device_id="phone-2", username="ann")
    page = reviewer.get(f"{CHANGELIST}{voted.pk}/change/").content.decode()
    assert "phone-1" in page and "phone-2" in page and "ann" in page
    assert 'name="votes-0-value"' not in page  # shown, not editable
    assert reviewer.get("/admin/annotations/insight/add/").status_code == 403


def test_keyword_lists_are_edited_per_tenant(reviewer, owner, other):
    mine = InsightKeyword.objects.create(
        client=owner.client, kind="label", keyword="bio", value_tag="en:organic"
    )
    InsightKeyword.objects.create(
        client=other.client, kind="brand", keyword="acme", value_tag="acme"
    )
    page = reviewer.get(f"/admin/annotations/insightkeyword/?client__id__exact={owner.client.pk}")
    assert "bio" in page.content.decode() and "acme" not in page.content.decode()

    response = reviewer.post(
        f"/admin/annotations/insightkeyword/?client__id__exact={owner.client.pk}",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(mine.pk),
            "form-0-value_tag": "en:organic-farming",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.value_tag, mine.is_active) == ("en:organic-farming", False)

    added = reviewer.post(
        "/admin/annotations/insightkeyword/add/",
        {
            "client": owner.client.pk,
            "kind": "brand",
            "keyword": "Évian",
            "value_tag": "evian",
            "is_active": "on",
        },
    )
    assert added.status_code == 302
    assert owner.client.insight_keywords.count() == 2


def test_import_runs_are_shown_read_only_with_counts_and_bad_lines(reviewer, owner):
    run = InsightImport.objects.create(
        client=owner.client,
        file="x.jsonl",
        original_filename="predictions.jsonl",
        status="done",
        lines_read=66,
        created=60,
        bad=6,
        errors=[{"line": 7, "reason": "not JSON"}, {"line": 12, "reason": "missing barcode"}],
    )
    changelist = reviewer.get("/admin/annotations/insightimport/").content.decode()
    assert "predictions.jsonl" in changelist and "66" in changelist
    page = reviewer.get(f"/admin/annotations/insightimport/{run.pk}/change/").content.decode()
    assert "missing barcode" in page and "<td>12</td>" in page
    assert 'name="status"' not in page  # nothing to edit
    response = reviewer.post(f"/admin/annotations/insightimport/{run.pk}/change/", {"bad": 0})
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.bad == 6


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_the_actions_answer_as_the_staff_user(reviewer, owner):
    image = stored_image(owner)
    car = insight(owner, "object", "car", image=image)
    dog = insight(owner, "object", "dog", image=image)
    blurry = insight(owner, "image_tag", "blurry", image=image)

    def act(action: str, *chosen: Insight):
        selected = [str(i.pk) for i in chosen]
        return reviewer.post(
            CHANGELIST, {"action": action, "_selected_action": selected}, follow=True
        )

    assert messages_of(act("accept", car)) == ["updated: 1"]
    assert messages_of(act("reject", dog)) == ["saved: 1"]
    assert messages_of(act("skip", blurry)) == ["vote_saved: 1"]

    car.refresh_from_db()
    dog.refresh_from_db()
    blurry.refresh_from_db()
    assert (car.annotation, car.username) == (1, "reviewer")
    assert (dog.annotation, dog.username) == (0, "reviewer")
    assert car.completed_at is not None
    # An accepted insight about an image becomes one of its tags; a rejected one does not.
    assert set(image.tags.values_list("name", flat=True)) == {"car"}
    # A skip is a vote, even from staff: the question stays open for others.
    assert (blurry.annotation, blurry.n_votes) == (None, 1)
    assert blurry.votes.get().username == "reviewer"


def test_a_bulk_answer_leaves_answered_insights_alone(reviewer, owner):
    open_ones = [insight(owner, "label", f"l{n}", barcode=f"b{n}") for n in range(3)]
    rejected = insight(owner, "label", "old", annotation=0, username="someone")
    selected = [str(i.pk) for i in [*open_ones, rejected]]
    response = reviewer.post(
        CHANGELIST, {"action": "accept", "_selected_action": selected}, follow=True
    )
    # Not linked to an image and no downstream store: saved, nothing sent anywhere.
    assert messages_of(response) == ["error_already_annotated: 1, saved: 3"]
    assert Insight.objects.filter(annotation=1, username="reviewer").count() == 3
    rejected.refresh_from_db()
    assert (rejected.annotation, rejected.username) == (0, "someone")


def test_the_page_has_accept_reject_and_skip_buttons(reviewer, owner):
    image = stored_image(owner)
    bus = insight(owner, "object", "bus", image=image)
    page = reviewer.get(f"{CHANGELIST}{bus.pk}/change/").content.decode()
    answer_url = f"{CHANGELIST}{bus.pk}/answer/"
    assert page.count(f'formaction="{answer_url}"') == 3
    assert 'name="_save"' not in page  # nothing to save: every field is read-only

    response = reviewer.post(answer_url, {"annotation": "1"}, follow=True)
    assert messages_of(response) == ["updated: 1"]
    bus.refresh_from_db()
    assert (bus.annotation, bus.username) == (1, "reviewer")
    assert list(image.tags.values_list("name", flat=True)) == ["bus"]
    assert 'id="insight-answer"' not in response.content.decode()  # answered: no more buttons

    again = reviewer.post(answer_url, {"annotation": "0"}, follow=True)
    assert messages_of(again) == ["error_already_annotated: 1"]
    assert reviewer.post(answer_url, {"annotation": "7"}).status_code == 400
    assert reviewer.get(answer_url).status_code == 405


def test_staff_who_may_only_view_cannot_answer(owner, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_insight"))
    browser = BrowserClient()
    browser.force_login(viewer)
    pending = insight(owner, "label", "bio")

    page = browser.get(CHANGELIST).content.decode()
    assert str(pending.pk) in page and 'value="accept"' not in page
    assert browser.post(f"{CHANGELIST}{pending.pk}/answer/", {"annotation": "1"}).status_code == 403
    pending.refresh_from_db()
    assert pending.annotation is None


def test_the_page_names_the_import_run_that_created_the_insight(reviewer, owner):
    run = uuid.uuid4()
    made = insight(owner, "label", "bio", import_run=run)
    page = reviewer.get(f"{CHANGELIST}{made.pk}/change/").content.decode()
    assert str(run) in page


def test_the_admin_draws_the_box_on_the_insights_picture(reviewer, owner, make_insight):
    insight = make_insight(
        owner, type="object", value="car", image=an_image(owner), bounding_box=EVIDENCE_BOX
    )

    page = reviewer.get(f"/admin/annotations/insight/{insight.pk}/change/").content.decode()

    assert '<svg class="evidence-box"' in page
    assert '<rect x="0.1" y="0.25" width="0.5" height="0.5"' in page
    assert "/files/signed/" in page


def test_the_admin_draws_the_box_on_an_imported_picture(reviewer, owner, make_insight):
    insight = make_insight(owner, type="object", value="car", data={"bounding_box": EVIDENCE_BOX})

    page = reviewer.get(f"/admin/annotations/insight/{insight.pk}/change/").content.decode()

    assert "images.openfoodfacts.org/images/products/301/762/042/2003/1.jpg" in page
    assert '<rect x="0.1" y="0.25" width="0.5" height="0.5"' in page


def test_the_admin_draws_no_box_without_one(reviewer, owner, make_insight):
    insight = make_insight(owner, type="object", value="car", bounding_box=[0.75, 0.1, 0.25, 0.6])

    page = reviewer.get(f"/admin/annotations/insight/{insight.pk}/change/").content.decode()

    assert "evidence-box" not in page
    assert "images.openfoodfacts.org" in page  # the picture still
