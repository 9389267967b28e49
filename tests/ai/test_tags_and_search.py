"""GET /api/v1/images/tags/ (the tenant's tags with counts) and GET /api/v1/images/?q= search."""

from images.library.services import image_add_tags
from images.models import Image
from tests.factories import OcrResultFactory, VisionResultFactory
from tests.helpers import image_bytes, upload


def stored(tenant, name: str, color: tuple) -> Image:
    response = upload(tenant.api, (name, image_bytes(color=color)))
    return Image.objects.get(pk=response.json()["images"][0]["id"])


def describe(image: Image, *, text: str = "", description: str | None = None) -> None:
    OcrResultFactory(image=image, text=text, confidence=0.9, ocr_languages="eng+fra")
    VisionResultFactory(image=image, description=description)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(image["id"] for image in response.json()["results"])


def test_tags_are_counted_per_tenant(owner, other):
    a, b = stored(owner, "a.jpg", (1, 2, 3)), stored(owner, "b.jpg", (4, 5, 6))
    image_add_tags(image=a, names=["car", "Street"], source="ai")
    image_add_tags(image=b, names=["car"], source="user")
    image_add_tags(image=stored(other, "c.jpg", (7, 8, 9)), names=["secret"], source="ai")
    response = owner.api.get("/api/v1/images/tags/")
    assert response.status_code == 200
    assert response.json() == [{"name": "car", "count": 2}, {"name": "street", "count": 1}]


def test_search_finds_ocr_text_descriptions_and_tags(owner, other):
    invoice = stored(owner, "invoice.jpg", (1, 1, 1))
    describe(invoice, text="Invoice 4821\nPlease pay before May")
    beach = stored(owner, "beach.jpg", (2, 2, 2))
    describe(beach, description="Children building a sandcastle on the beach.")
    car = stored(owner, "car.jpg", (3, 3, 3))
    image_add_tags(image=car, names=["convertible"], source="ai")
    foreign = stored(other, "invoice.jpg", (4, 4, 4))
    describe(foreign, text="Invoice 9999")

    assert ids(owner.api.get("/api/v1/images/?q=invoice")) == [invoice.pk]
    assert ids(owner.api.get("/api/v1/images/?q=sandcastle")) == [beach.pk]
    assert ids(owner.api.get("/api/v1/images/?q=convertible")) == [car.pk]
    assert ids(owner.api.get("/api/v1/images/?q=invoice may")) == [invoice.pk]
    assert ids(owner.api.get("/api/v1/images/?q=invoice beach")) == []
    assert ids(owner.api.get("/api/v1/images/?q=")) == sorted([invoice.pk, beach.pk, car.pk])
    assert ids(other.api.get("/api/v1/images/?q=invoice")) == [foreign.pk]
