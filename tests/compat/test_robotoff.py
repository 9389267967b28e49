"""Robotoff's browser clients against Imago (shared/docs/robotoff-compat.md).

The live tests run Robotoff's official Node client (`@openfoodfacts/openfoodfacts-nodejs`, the
one Hunger Games uses, pinned in robotoff_client/package-lock.json) against a live server and
worker: in Node, as a page on another origin would call (Origin, credentials), and in headless
Chromium, where the browser itself enforces CORS. The unit tests cover CORS's edges.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from annotations.models import Insight
from tests.annotations.support import make_public
from tests.annotations.test_question_page import browser  # noqa: F401 (a fixture)
from tests.factories import InsightFactory
from tests.helpers import Tenant, make_tenant
from tests.live import free_port, live_server, live_worker

CLIENT = Path(__file__).resolve().parent / "robotoff_client"
ORIGIN = "https://hungergames.example"
SCOPES = ["insights:read", "insights:annotate", "insights:write"]

# --- CORS, through Django's test client


@pytest.fixture
def cors(settings) -> None:
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN, "http://localhost:5173"]


@pytest.fixture
def anonymous(db) -> APIClient:
    return APIClient()


def an_open_question(tenant: Tenant) -> Insight:
    return InsightFactory(client=tenant.client, barcode="3017620422003", value_tag="en:organic")


def preflight(api, path: str, origin: str = ORIGIN, method: str = "POST"):
    return api.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,user-agent,x-api-key",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/insights/annotate",
        "/api/v1/questions",
        "/api/v1/questions/3017620422003/",
        "/api/v1/questions/unanswered",
        "/api/v1/insights",
        "/api/v1/insights/detail/00000000-0000-0000-0000-000000000000",
        "/api/v1/users/statistics/alice",
    ],
)
def test_a_listed_origin_gets_a_preflight_naming_it_with_credentials(cors, anonymous, path):
    response = preflight(anonymous, path)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert {"GET", "POST"} <= set(response["Access-Control-Allow-Methods"].split(", "))
    allowed = set(response["Access-Control-Allow-Headers"].split(", "))
    assert {"content-type", "user-agent", "x-api-key"} <= allowed


def test_answers_name_the_origin_and_vary_on_it(cors, owner, anonymous):
    make_public(owner)
    an_open_question(owner)

    response = anonymous.get("/api/v1/questions?page=1", HTTP_ORIGIN=ORIGIN)

    assert response.json()["status"] == "found"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "origin" in response["Vary"].lower()


def test_error_answers_carry_the_cors_headers_too(cors, anonymous):
    """A page must be able to read why it was refused."""
    refused = anonymous.get("/api/v1/questions?page=0", HTTP_ORIGIN=ORIGIN)
    malformed = anonymous.post("/api/v1/insights/annotate", {}, HTTP_ORIGIN=ORIGIN)

    for response in (refused, malformed):
        assert response.status_code == 400
        assert response["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://hungergames.example",  # another scheme
        "https://hungergames.example:8443",  # another port
        "https://hungergames.example.evil.example",
        "https://evilhungergames.example",
        "https://hungergames.example@evil.example",
        f"{ORIGIN}\r\nX-Injected: 1",
        "https://HUNGERGAMES.EXAMPLE.evil",
        "*",
        "",
    ],
)
def test_an_unlisted_origin_gets_no_cors_headers(cors, owner, anonymous, origin):
    make_public(owner)
    an_open_question(owner)

    answers = [
        preflight(anonymous, "/api/v1/insights/annotate", origin),
        anonymous.get("/api/v1/questions", HTTP_ORIGIN=origin),
    ]

    for response in answers:
        assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_no_origin_is_allowed_by_default(anonymous):
    response = preflight(anonymous, "/api/v1/questions")

    assert "Access-Control-Allow-Origin" not in response


def test_imagos_other_routes_get_no_cors_headers_unless_asked(cors, owner):
    response = owner.api.get("/api/v1/images/", HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Origin" not in preflight(owner.api, "/api/v1/images/")
    assert "Access-Control-Allow-Origin" not in preflight(owner.api, "/admin/login/")


def settings_from(**env: str) -> dict[str, Any]:
    """CORS settings as a fresh process reads them from its environment."""
    script = (
        "import json; from imago_site import settings as s; "
        "print(json.dumps({'origins': s.CORS_ALLOWED_ORIGINS, 'urls': s.CORS_URLS_REGEX}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "CORS_WHOLE_API": "", "CORS_ALLOWED_ORIGINS": "", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_cors_whole_api_widens_the_routes_to_every_api_route(cors, owner, settings):
    narrow = settings_from(CORS_ALLOWED_ORIGINS=f" {ORIGIN} ,http://localhost:5173,")
    whole = settings_from(CORS_WHOLE_API="true")
    settings.CORS_URLS_REGEX = whole["urls"]

    response = owner.api.get("/api/v1/images/", HTTP_ORIGIN=ORIGIN)

    assert narrow["origins"] == [ORIGIN, "http://localhost:5173"]
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Origin" not in preflight(owner.api, "/admin/login/")
    assert narrow["urls"] != whole["urls"]


# --- The official client, live


def install_key(lock: bytes) -> str:
    return hashlib.sha256(lock).hexdigest()[:16]


@pytest.fixture(scope="session")
def official_client() -> Path:
    """The pinned client installed with `npm ci` in a cache folder, with our scripts beside it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run Robotoff's official client")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imago"
    folder = cache / f"robotoff-client-{install_key((CLIENT / 'package-lock.json').read_bytes())}"
    if not (folder / "node_modules" / "@openfoodfacts" / "openfoodfacts-nodejs").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(CLIENT / name, folder / name)
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=folder,
            check=True,
            timeout=300,
        )
    for name in ("flow.mjs", "page.html"):
        shutil.copy(CLIENT / name, folder / name)
    return folder


def import_predictions(api: str, tenant: Tenant, records: list[dict[str, Any]]) -> None:
    """Load Robotoff predictions with Imago's import route: the live worker runs the import."""
    headers = {"X-API-Key": tenant.key}
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    started = httpx.post(
        f"{api}/api/v1/insights/import",
        headers=headers,
        files={"file": ("predictions.jsonl", body)},
        timeout=30,
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 60
    while (run := httpx.get(started.json()["status_url"], headers=headers).json())["status"] in (
        "pending",
        "running",
    ):
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert (run["status"], run["created"]) == ("done", len(records)), run


def robotoff_prediction(barcode: str, value_tag: str, insight_type: str = "label") -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": insight_type,
        "barcode": barcode,
        "value": None,
        "value_tag": value_tag,
        "data": {},
        "automatic_processing": False,
        "predictor": "flashtext",
        "predictor_version": "1",
        "timestamp": "2026-02-22T15:55:36",
        "source_image": f"/{barcode}/1.jpg",
        "confidence": 0.8,
        "server_type": "off",
    }


def insight_of(api: str, tenant: Tenant, barcode: str) -> str:
    body = httpx.get(f"{api}/api/v1/insights/{barcode}", headers={"X-API-Key": tenant.key})
    (insight,) = body.json()["insights"]
    return insight["id"]


@pytest.mark.slow
def test_robotoffs_official_client_works_from_another_origin(
    transactional_db, collected, tmp_path, official_client
):
    tenant = make_tenant("Hunger Co", scopes=SCOPES)
    make_public(tenant)
    predictions = [
        robotoff_prediction("3017620422003", "en:organic"),
        robotoff_prediction("5449000000996", "en:organic"),
        robotoff_prediction("7622210449283", "en:fair-trade"),
        robotoff_prediction("7622210449283", "ferrero", "brand"),
    ]
    with (
        live_server(collected, tmp_path, CORS_ALLOWED_ORIGINS=ORIGIN) as api,
        live_worker(collected, tmp_path),
    ):
        import_predictions(api, tenant, predictions)
        env = {
            "API": api,
            "ORIGIN": ORIGIN,
            "OTHER_ORIGIN": "https://evil.example",
            "API_KEY": tenant.key,
            "BARCODE": "3017620422003",
            "INSIGHT_ID": insight_of(api, tenant, "3017620422003"),
            "KEYED_INSIGHT_ID": insight_of(api, tenant, "5449000000996"),
            "USERNAME": tenant.client.slug,
        }
        flow = subprocess.run(
            ["node", str(official_client / "flow.mjs")],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert flow.returncode == 0, flow.stderr
    seen = json.loads(flow.stdout)
    check_cors(seen)
    check_reads(seen, env)
    check_annotations(seen, env)


def check_cors(seen: dict[str, Any]) -> None:
    for name in ("preflightAnnotate", "preflightKeyed"):
        assert seen[name]["status"] == 200
        assert (seen[name]["allowOrigin"], seen[name]["allowCredentials"]) == (ORIGIN, "true")
    assert "POST" in seen["preflightAnnotate"]["allowMethods"]
    assert "x-api-key" in seen["preflightKeyed"]["allowHeaders"]
    assert seen["preflightStranger"]["allowOrigin"] is None
    for name, call in seen.items():
        if name.startswith("preflight"):
            continue
        expected = (None, None) if name == "strangerQuestions" else (ORIGIN, "true")
        assert (call["allowOrigin"], call["allowCredentials"]) == expected, name


def check_reads(seen: dict[str, Any], env: dict[str, str]) -> None:
    # The client's default page=0 is refused, as Robotoff refuses it.
    assert seen["questionsDefaultPage"]["status"] == 400
    questions = seen["questions"]["body"]
    assert (questions["status"], questions["count"]) == ("found", 3)
    assert {q["insight_type"] for q in questions["questions"]} == {"label"}
    assert all(q["type"] == "add-binary" for q in questions["questions"])
    by_barcode = seen["questionsOfBarcode"]["body"]
    assert [q["insight_id"] for q in by_barcode["questions"]] == [env["INSIGHT_ID"]]
    assert by_barcode["questions"][0]["question"] == "Does the product have this label?"
    insights = seen["insights"]["body"]
    assert (insights["status"], insights["count"], len(insights["insights"])) == ("found", 4, 4)
    assert [i["id"] for i in seen["insightsOfBarcode"]["body"]["insights"]] == [env["INSIGHT_ID"]]
    assert seen["unanswered"]["body"] == {
        "count": 2,
        "questions": [["en:organic", 2], ["en:fair-trade", 1]],
        "status": "found",
    }
    detail = seen["detail"]["body"]
    assert (detail["id"], detail["value_tag"], detail["annotation"]) == (
        env["INSIGHT_ID"],
        "en:organic",
        None,
    )


def check_annotations(seen: dict[str, Any], env: dict[str, str]) -> None:
    assert seen["vote"]["body"]["status"] == "vote_saved"
    assert (seen["notAUuid"]["status"], seen["notAUuid"]["body"]) == (
        200,
        {"status_code": 6, "status": "error_unknown_insight", "description": "unknown insight ID"},
    )
    assert seen["keyedAnnotation"]["body"]["status"] == "saved"
    assert seen["againAnnotated"]["body"]["status"] == "error_already_annotated"
    assert seen["statistics"]["body"] == {"count": {"annotations": 1}}
    keyed = Insight.objects.get(pk=env["KEYED_INSIGHT_ID"])
    assert (keyed.annotation, keyed.username) == (1, env["USERNAME"])


# --- The official client in Chromium, which enforces CORS itself


@pytest.fixture
def page_server(official_client) -> Iterator[int]:
    """A static server for the web app's page and the client's files: origin A."""

    class Files(SimpleHTTPRequestHandler):
        extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript"}

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", free_port()), partial(Files, directory=str(official_client))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_page(driver: WebDriver, url: str) -> dict[str, Any]:
    driver.get(url)
    results = WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.body && document.body.dataset.results"),
        "the page did not finish its calls",
    )
    return json.loads(results)


@pytest.mark.slow
def test_the_official_client_in_chromium_reads_answers_only_from_a_listed_origin(
    transactional_db,
    collected,
    tmp_path,
    browser: WebDriver,  # noqa: F811 (the fixture imported above)
    page_server: int,
):
    tenant = make_tenant("Hunger Co", scopes=SCOPES)
    make_public(tenant)
    insights = [
        InsightFactory(client=tenant.client, barcode=str(n), value_tag="a") for n in range(2)
    ]
    listed = f"http://127.0.0.1:{page_server}"
    # The same page from another origin (localhost is not 127.0.0.1 to a browser).
    unlisted = f"http://localhost:{page_server}"
    with live_server(collected, tmp_path, CORS_ALLOWED_ORIGINS=listed) as api:
        allowed = run_page(browser, f"{listed}/page.html?api={api}&insight={insights[0].id}")
        refused = run_page(browser, f"{unlisted}/page.html?api={api}&insight={insights[1].id}")

    assert allowed["questions"]["body"]["count"] == 2
    assert allowed["insights"]["body"]["count"] == 2
    assert allowed["vote"]["body"]["status"] == "vote_saved"
    assert allowed["notAUuid"] == {
        "status": 200,
        "body": {
            "status_code": 6,
            "status": "error_unknown_insight",
            "description": "unknown insight ID",
        },
    }
    assert all("failed" in call for call in refused.values()), refused
    # The refused page's vote is a simple request: the server stored it, the page cannot know.
    # What CORS protects is the answer, which it never read.
    assert Insight.objects.get(pk=insights[0].id).n_votes == 1
