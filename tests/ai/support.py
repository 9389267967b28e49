"""Support for the ai tests: text drawn into images, and a scripted HTTP server on 127.0.0.1."""

import http.server
import io
import json
import threading
import time
from dataclasses import dataclass, field

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Invoice number 4821 is due on the first of May.",
    "Please send the payment to the bank account below.",
]
FRENCH = [
    "Le renard brun saute par-dessus le chien paresseux.",
    "La facture est à payer pour le premier mai.",
    "Merci d'envoyer le paiement sur le compte ci-dessous.",
]


def text_image_bytes(
    lines: list[str], *, size: int = 28, rotate: int = 0, fmt: str = "PNG"
) -> bytes:
    """Black text on white, drawn with Pillow's own font, optionally turned (degrees, clockwise)."""
    font = PIL.ImageFont.load_default(size=size)
    image = PIL.Image.new("RGB", (960, 60 + 2 * size * len(lines)), "white")
    draw = PIL.ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((30, 30 + 2 * size * n), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.rotate(-rotate, expand=True, fillcolor="white").save(buffer, fmt)
    return buffer.getvalue()


@dataclass
class Reply:
    """What a FakeServer answers: a status, a JSON (dict) or raw body, headers, a delay.

    A header set to None is left out (Content-Length: None sends a body ended by closing).
    """

    status: int = 200
    body: object = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class FakeServer:
    """An HTTP server on 127.0.0.1 in a thread, answering scripted replies.

    `route(path, reply)` always answers that path; `queue(*replies)` answers the next requests to
    any other path in turn (404 when none is left). Every request is kept in `received`.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def route(self, path: str, reply: Reply) -> None:
        self.routes[path] = reply

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, path: str) -> Reply:
        if path in self.routes:
            return self.routes[path]
        return self.replies.pop(0) if self.replies else Reply(404, b"no reply scripted")

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.received.append(Received(self.command, self.path, headers, body))
                reply = fake._next(self.path.split("?")[0])
                time.sleep(reply.delay)
                data, headers = reply.body, dict(reply.headers)
                if isinstance(data, dict | list):
                    data = json.dumps(data).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(data, str):
                    data = data.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        if value is not None:  # None: leave the header out
                            self.send_header(name, value)
                    if "Content-Length" not in headers:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: a timeout test

            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def gemini_reply(answer: dict | str, *, status: int = 200, delay: float = 0.0) -> Reply:
    """A generateContent answer whose text is the given JSON (or raw text), with token counts."""
    if status != 200:
        return Reply(status, {"error": {"code": status, "message": "busy", "status": "X"}})
    text = answer if isinstance(answer, str) else json.dumps(answer)
    body = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {
            "promptTokenCount": 120,
            "candidatesTokenCount": 30,
            "totalTokenCount": 150,
        },
        "modelVersion": "gemini-test-001",
    }
    return Reply(200, body, delay=delay)


def openrouter_reply(answer: dict | str, *, status: int = 200, delay: float = 0.0) -> Reply:
    """A chat completion whose message content is the given JSON (or raw text)."""
    if status != 200:
        return Reply(
            status, {"error": {"code": status, "message": "busy"}}, {"retry-after-ms": "10"}
        )
    text = answer if isinstance(answer, str) else json.dumps(answer)
    body = {
        "id": "gen-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "vendor/vision-test",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": text},
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }
    return Reply(200, body, delay=delay)
