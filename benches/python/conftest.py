"""Fixtures for the pytest suite of pypipe, written the way such suites usually are: the
pipeline called in process, the LLM API and the executor faked by one loopback HTTP server
(pytest-httpserver), each test setting the replies it needs."""

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "pypipe"))


@pytest.fixture(scope="session")
def make_httpserver():
    # Threaded, so a deliberately slow reply does not hold up the retry behind it.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


class Fake:
    """Replies per agent (the nth call gets the nth reply, the last repeats), failures
    for the first calls, and a count of calls."""

    def __init__(self, server, monkeypatch):
        self.server = server
        self.monkeypatch = monkeypatch
        self.replies = {}
        self.failures = {}
        self.calls = {}
        self.requests = {}
        self.executor = [{"success": True, "artifacts": ["sword.blend"]}]
        self.executor_failures = []
        self.lock = threading.Lock()
        server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(self.chat)
        server.expect_request("/execute", method="POST").respond_with_handler(self.execute)

    def env(self, **extra):
        env = {
            "OPENAI_BASE_URL": self.server.url_for("/v1"),
            "OPENAI_API_KEY": "sk-test",
            "EXECUTOR_URL": self.server.url_for("").rstrip("/"),
            "PYPIPE_BACKOFF": "0.01",
            "PYPIPE_TIMEOUT": "5",
        }
        env.update({k: str(v) for k, v in extra.items()})
        for k, v in env.items():
            self.monkeypatch.setenv(k, v)

    def reply(self, agent, *replies):
        self.replies[agent] = list(replies)

    def fail(self, agent, status, times, retry_after=None):
        self.failures[agent] = [(status, retry_after)] * times

    def count(self, agent):
        return self.calls.get(agent, 0)

    def chat(self, request):
        agent = request.headers.get("X-Agent-Role", "?")
        body = request.get_json()
        with self.lock:
            n = self.calls.get(agent, 0)
            self.calls[agent] = n + 1
            self.requests.setdefault(agent, []).append(body)
            failure = self.failures.get(agent, [])
            failing = failure.pop(0) if failure else None
        if failing:
            status, retry_after = failing
            headers = {"retry-after": str(retry_after)} if retry_after else {}
            return Response(json.dumps({"error": {"message": "injected", "type": "error"}}), status=status, headers=headers, content_type="application/json")
        replies = self.replies.get(agent)
        if not replies:
            return Response("{}", status=500, content_type="application/json")
        reply = replies[min(n, len(replies) - 1)]
        if isinstance(reply, tuple) and reply[0] == "error":
            return Response(json.dumps({"error": {"message": reply[2], "type": "error"}}), status=reply[1], content_type="application/json")
        if isinstance(reply, tuple) and reply[0] == "delay":
            time.sleep(reply[1])
            reply = reply[2]
        content = reply if isinstance(reply, str) else json.dumps(reply)
        return Response(json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }), content_type="application/json")

    def execute(self, request):
        with self.lock:
            n = self.calls.get("executor", 0)
            self.calls["executor"] = n + 1
            failing = self.executor_failures.pop(0) if self.executor_failures else None
        if failing:
            if failing[0] == "delay":
                time.sleep(failing[1])
            else:
                return Response(json.dumps({"error": "injected"}), status=failing[0], content_type="application/json")
        reply = self.executor[min(n, len(self.executor) - 1)]
        return Response(json.dumps(reply), content_type="application/json")


@pytest.fixture
def fake(httpserver, monkeypatch):
    return Fake(httpserver, monkeypatch)
