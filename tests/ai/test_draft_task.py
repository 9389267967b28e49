"""POST /api/v1/ai/draft-task/: a structured task from a description, validated by a schema."""

from ai.providers import TaskDraft
from tests.ai.support import gemini_reply

DESCRIPTION = """Customers on Safari cannot upload photos since the last release.
- Reproduce the failure on Safari 17
- Find the change that broke the upload form
- Fix it and add a browser test"""


def draft(tenant, description: str, context: str = ""):
    payload = {"description": description, "context": context}
    return tenant.api.post("/api/v1/ai/draft-task/", payload, format="json")


def test_the_local_provider_drafts_a_deterministic_task(owner):
    first = draft(owner, DESCRIPTION, "Web front end")
    assert first.status_code == 200, first.content
    body = first.json()
    task = TaskDraft.model_validate(body["task"])  # the schema holds
    assert task.title == "Customers on Safari cannot upload photos since the last release"
    assert task.steps == [
        "Reproduce the failure on Safari 17",
        "Find the change that broke the upload form",
        "Fix it and add a browser test",
    ]
    assert len(task.acceptance_criteria) == 4  # one per step, and the context
    assert (task.priority, task.estimate) == ("high", "s")  # "Customers" and a failure
    assert body["provider"] == "local" and body["model"] is None
    assert draft(owner, DESCRIPTION, "Web front end").json() == body


def test_priorities_follow_the_words_of_the_request(owner):
    assert draft(owner, "Security hole in login, fix asap.").json()["task"]["priority"] == "urgent"
    assert draft(owner, "Nice to have: a darker theme.").json()["task"]["priority"] == "low"
    assert draft(owner, "Add a download button.").json()["task"]["priority"] == "medium"


def test_the_provider_drafts_a_task_in_the_schema(owner, gemini):
    task = {
        "title": "Fix uploads on Safari",
        "summary": "Uploads fail on Safari.",
        "steps": ["Reproduce", "Fix"],
        "acceptance_criteria": ["Uploads work on Safari 17"],
        "priority": "high",
        "estimate": "m",
    }
    gemini.queue(gemini_reply(task))
    response = draft(owner, DESCRIPTION)
    assert response.status_code == 200
    assert response.json()["task"] == task
    schema = gemini.received[0].json()["generationConfig"]["responseSchema"]
    assert set(schema["required"]) == set(task)


def test_an_answer_outside_the_schema_is_a_provider_error(owner, gemini):
    gemini.queue(gemini_reply({"title": "Fix", "priority": "whenever"}))
    response = draft(owner, DESCRIPTION)
    assert (response.status_code, response.json()["code"]) == (502, "provider_error")


def test_a_description_is_required(owner):
    response = draft(owner, "")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "description" in response.json()["errors"]
