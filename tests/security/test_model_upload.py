"""A tenant's model file is data, never code: ONNX only, checked without being run.

The attacker owns a tenant key and sends model files; the server must neither unpickle them nor
read other files of its disk through them, and a refusal leaves nothing behind.
"""

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from onnx import TensorProto, helper, numpy_helper

from images.models import DetectorModel
from tests.helpers import image_bytes, upload_file

SIDE = 64  # a tiny "YOLO": one 8x8 strided convolution, 4 box channels and one class


class Payload:
    """What a hostile .pt holds: unpickling it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def crafted_pickle(marker: Path, protocol: int = pickle.DEFAULT_PROTOCOL) -> bytes:
    return pickle.dumps(Payload(marker), protocol=protocol)


def crafted_torch_zip(marker: Path) -> bytes:
    """torch.save's format since 1.6: a zip whose data.pkl is the pickle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", crafted_pickle(marker, protocol=2))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def tiny_yolo(
    *,
    weights: TensorProto | None = None,
    input_shape: tuple = (1, 3, SIDE, SIDE),
    extra_nodes: list | None = None,
    opsets: tuple = (("", 17),),
    names: str = "{0: 'thing'}",
) -> bytes:
    """A detection export as ultralytics shapes it: images (1, 3, 64, 64) -> output0
    (1, 4 + 1 class, 64 anchors), with its `task` and `names` metadata. Odd input shapes are
    reshaped into planes first, so that ONNX Runtime still runs the model."""
    channels = int(np.prod(input_shape)) // SIDE // SIDE
    if weights is None:
        kernel = np.random.default_rng(0).normal(size=(5, channels, 8, 8)).astype(np.float32)
        weights = numpy_helper.from_array(kernel, "W")
    planes = numpy_helper.from_array(np.array([1, channels, SIDE, SIDE], dtype=np.int64), "planes")
    anchors = numpy_helper.from_array(np.array([1, 5, 64], dtype=np.int64), "anchors")
    nodes = [
        helper.make_node("Reshape", ["images", "planes"], ["pixels"]),
        helper.make_node("Conv", ["pixels", "W"], ["conv"], strides=[8, 8], kernel_shape=[8, 8]),
        helper.make_node("Reshape", ["conv", "anchors"], ["output0"]),
        *(extra_nodes or []),
    ]
    outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 64])]
    outputs += [
        helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)
        for node in extra_nodes or []
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        outputs,
        initializer=[weights, planes, anchors],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(domain, v) for domain, v in opsets]
    )
    model.ir_version = 8
    helper.set_model_props(model, {"task": "detect", "names": names})
    return model.SerializeToString()


def send(tenant, filename: str, data: bytes, name: str = "mine"):
    return tenant.api.post(
        "/api/v1/detect/models",
        {"name": name, "file": upload_file(filename, data)},
        format="multipart",
    )


def assert_nothing_left(settings) -> None:
    tenants = Path(settings.MODELS_DIR) / "tenants"
    assert not [path for path in tenants.rglob("*") if path.is_file()]
    assert not DetectorModel.objects.filter(client__isnull=False).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("make", [crafted_pickle, crafted_torch_zip], ids=["pickle", "torch-zip"])
def test_a_crafted_pt_is_refused_unread(owner, tmp_path, settings, make):
    marker = tmp_path / "pwned"
    response = send(owner, "best.pt", make(marker))
    assert not marker.exists(), "the tenant's pickle ran on the server"
    assert response.status_code == 415, response.content
    assert response.json()["code"] == "unsupported_model_format"
    assert "format=onnx" in response.json()["detail"]
    assert_nothing_left(settings)


@pytest.mark.django_db
@pytest.mark.parametrize("make", [crafted_pickle, crafted_torch_zip], ids=["pickle", "torch-zip"])
def test_a_crafted_pt_renamed_onnx_is_still_refused_as_pytorch(owner, tmp_path, settings, make):
    marker = tmp_path / "pwned"
    response = send(owner, "best.onnx", make(marker))
    assert response.status_code == 415, response.content
    assert response.json()["code"] == "unsupported_model_format"
    assert not marker.exists()
    assert_nothing_left(settings)


@pytest.mark.django_db
def test_a_text_pickle_named_onnx_is_just_an_invalid_model(owner, tmp_path, settings):
    # Protocol 0 has no header to recognise: it fails as what it claims to be, unread.
    marker = tmp_path / "pwned"
    response = send(owner, "best.onnx", crafted_pickle(marker, protocol=0))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_model"
    assert not marker.exists()
    assert_nothing_left(settings)


@pytest.mark.django_db
def test_a_non_standard_operator_domain_is_refused(owner, settings):
    # com.microsoft's Gelu: ONNX Runtime runs it, but only the standard operators are accepted.
    gelu = helper.make_node("Gelu", ["output0"], ["gelu"], domain="com.microsoft")
    data = tiny_yolo(extra_nodes=[gelu], opsets=(("", 17), ("com.microsoft", 1)))
    response = send(owner, "custom.onnx", data)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_model"
    assert "com.microsoft" in response.json()["detail"]
    assert_nothing_left(settings)


@pytest.mark.django_db
def test_an_external_data_tensor_is_refused_without_reading_the_file(owner, settings):
    secret = Path(settings.MODELS_DIR) / "secret.bin"
    secret.write_bytes(b"SECRET_KEY=hunter2;" * 200)
    weights = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[5, 3, 8, 8])
    weights.data_location = TensorProto.EXTERNAL
    for key, value in {"location": "../../secret.bin", "length": str(5 * 3 * 8 * 8 * 4)}.items():
        weights.external_data.add(key=key, value=value)
    response = send(owner, "leak.onnx", tiny_yolo(weights=weights))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_model"
    assert "external data" in body["detail"]
    assert str(settings.MODELS_DIR) not in body["detail"]  # nor where the server keeps files
    assert_nothing_left(settings)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "shape", [(1, 3 * SIDE * SIDE), (1, 1, SIDE, SIDE)], ids=["rank-2", "one-channel"]
)
def test_an_input_that_is_not_a_batch_of_rgb_images_is_refused(owner, settings, shape):
    response = send(owner, "odd.onnx", tiny_yolo(input_shape=shape))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_model"
    assert "(batch, 3, height, width)" in response.json()["detail"]
    assert_nothing_left(settings)


@pytest.mark.django_db
def test_outputs_that_do_not_match_the_class_names_are_refused(owner, settings):
    # Two classes named, but the head has room for one: the decoder would read past it.
    response = send(owner, "odd.onnx", tiny_yolo(names="{0: 'thing', 1: 'other'}"))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_model"
    assert "5 channels" in response.json()["detail"]
    assert_nothing_left(settings)


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_while_written(owner, settings):
    data = tiny_yolo()
    settings.DETECTION_MODEL_MAX_BYTES = len(data) - 1
    response = send(owner, "big.onnx", data)
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "model_too_large"
    assert_nothing_left(settings)


@pytest.mark.django_db
def test_the_size_is_checked_as_the_upload_arrives_before_anything_else(owner, settings):
    data = tiny_yolo()
    settings.DETECTION_MODEL_MAX_BYTES = len(data) - 1
    # An invalid name would be refused once the form is read; the file never gets that far.
    response = send(owner, "big.onnx", data, name="not a slug!")
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "model_too_large"
    assert_nothing_left(settings)


@pytest.mark.django_db
def test_a_valid_small_export_registers_and_detects(owner, settings):
    settings.DETECTION_MODEL_MAX_BYTES = len(tiny_yolo())
    response = send(owner, "tiny.onnx", tiny_yolo(), name="tiny")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["task"], body["class_names"], body["input_size"]) == ("detect", ["thing"], SIDE)
    assert body["backend"] == "onnx"
    run = owner.api.post(
        "/api/v1/detect/image",
        {"file": upload_file("a.png", image_bytes("PNG")), "model": "tiny"},
        format="multipart",
    )
    assert run.status_code == 200, run.content
    files = [p.name for p in (Path(settings.MODELS_DIR) / "tenants").rglob("*") if p.is_file()]
    assert files == ["tiny.onnx"]  # no partial file beside it


@pytest.mark.django_db
def test_a_pt_model_left_from_before_is_never_loaded(owner, tmp_path, settings):
    """Rows registered when tenants could still send .pt files are refused, not unpickled."""
    marker = tmp_path / "pwned"
    folder = Path(settings.MODELS_DIR) / "tenants" / str(owner.client.pk)
    folder.mkdir(parents=True)
    (folder / "old.pt").write_bytes(crafted_pickle(marker))
    DetectorModel.objects.create(
        client=owner.client,
        name="old",
        task="detect",
        file=f"tenants/{owner.client.pk}/old.pt",
        class_names=["thing"],
        backend=DetectorModel.Backend.ULTRALYTICS,
    )
    run = owner.api.post(
        "/api/v1/detect/image",
        {"file": upload_file("a.png", image_bytes("PNG")), "model": "old"},
        format="multipart",
    )
    assert run.status_code == 503, run.content
    assert run.json()["code"] == "model_unavailable"
    assert "register it again as ONNX" in run.json()["detail"]
    assert not marker.exists()


# Operators: register_model --------------------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_registers_an_onnx_model_for_every_tenant(owner, tmp_path, capsys):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_yolo())
    call_command("register_model", str(path), "--confidence", "0.4")
    assert "Registered tiny" in capsys.readouterr().out
    model = DetectorModel.objects.get(name="tiny", client=None)
    assert (model.file, model.default_confidence) == ("registered/tiny.onnx", 0.4)
    assert owner.api.get("/api/v1/detect/models").json()[-1]["name"] == "tiny"


@pytest.mark.django_db
def test_register_model_applies_the_same_checks(owner, tmp_path, settings):
    path = tmp_path / "odd.onnx"
    path.write_bytes(tiny_yolo(input_shape=(1, 3 * SIDE * SIDE)))
    with pytest.raises(CommandError, match="batch, 3, height, width"):
        call_command("register_model", str(path), "--client", owner.client.slug)
    assert not DetectorModel.objects.filter(name="odd").exists()
    assert not list((Path(settings.MODELS_DIR) / "tenants").glob("*/*"))


@pytest.mark.django_db
def test_register_model_refuses_a_pt_that_does_not_export(owner, tmp_path, settings):
    """The child process fails (on a file that is no model, or without the [yolo] extra, which
    it names): nothing is registered."""
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a pickle")
    with pytest.raises(CommandError, match="could not be exported"):
        call_command("register_model", str(path), "--client", str(owner.client.pk))
    assert not DetectorModel.objects.filter(name="broken").exists()
    assert not list((Path(settings.MODELS_DIR) / "tenants").glob("*/*"))


@pytest.mark.yolo
@pytest.mark.django_db
def test_register_model_exports_a_pt_in_a_child_process(owner, tmp_path):
    path = tmp_path / "untrained.pt"
    # An untrained network built from its YAML: a real .pt without downloading any weights,
    # made in another process so that this one never imports torch.
    script = f"from ultralytics import YOLO; YOLO('yolov8n.yaml').save({str(path)!r})"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=600)
    call_command("register_model", str(path), "--client", str(owner.client.pk))
    model = DetectorModel.objects.get(client=owner.client, name="untrained")
    assert (model.backend, model.file) == ("onnx", f"tenants/{owner.client.pk}/untrained.onnx")
    assert len(model.class_names) == 80
    assert "torch" not in sys.modules and "ultralytics" not in sys.modules
