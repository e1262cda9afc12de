"""execapi: a code-execution API, written the way such services usually are.

A client submits a task; the service asks the LLM (the coder agent) for code and tests,
screens the code, asks a human to approve risky steps, runs the code and its tests in a
sandbox (an HTTP executor), and keeps the cost of each execution. Clients poll the
execution's status.

    POST /executions              {"task", "language"?, "max_cost"?, "run_tests"?}
                                  -> 202 {"id", "status": "queued", ...}
    GET  /executions/{id}         -> 200 the execution (below); 404 if unknown
    POST /executions/{id}/approve {"approved": true|false, "by": "name"}
                                  -> 200 the execution; 409 if nothing waits for approval
    GET  /health                  -> 200 {"status": "ok"} (no token needed)

Every other request needs `Authorization: Bearer <token>` (401 without it or with a wrong
one); a client sees only its own executions (another client's id is a 404). Submissions are
rate limited per client (429 naming the limit, with `Retry-After`). A body that is not JSON
is a 400; a body that is JSON but not a valid request is a 422 naming the field.

An execution moves through `queued` -> `generating` (the LLM writes code and tests) ->
screening -> `waiting_approval` (only when a step is risky: it installs packages or deletes
files; `pending_approvals` lists what waits) -> `running` (the sandbox runs the code, then
the tests) -> `completed`, or ends `failed`, `rejected` (refused by the screening, a
reviewer or the budget) or `blocked` (the sandbox stopped an escape attempt). Code that
tries to leave the sandbox (spawn processes, open sockets, read the host's files, load
native code) is refused before it runs and reported in `security_events`, as is a
violation the sandbox reports.

The execution document: id, status, task, created_at, started_at, finished_at, started, finished,
steps (generate, approve, execute, test: each pending | done | skipped), code, tests,
dependencies, pending_approvals, approvals, artifacts, logs, test_results, usage,
cost {llm, sandbox}, total_cost, max_cost, security_events, protections, resumed, error.

State lives in SQLite: every execution is written after each step, so a service that is
killed and started again resumes the executions it had in flight from their last finished
step (the code is not generated twice) and keeps those waiting for approval.

Configuration, from the environment:

    EXECAPI_TOKENS           client=token pairs, comma-separated (required)
    EXECAPI_DB               the SQLite file (default ./execapi.sqlite3)
    EXECAPI_RATE_LIMIT       submissions per client: N/WINDOW, e.g. `20/10s` (default 20/10s)
    EXECAPI_BUDGET           the default max_cost of an execution, USD (default 0.05)
    EXECAPI_PRICE_PER_1K     USD per 1000 LLM tokens (default 0.002)
    EXECAPI_SANDBOX_PRICE    USD per sandbox second (default 0.0001)
    EXECAPI_WORKERS          executions run at once (default 8)
    EXECAPI_RETRIES          retries of a failed LLM or sandbox call (default 3)
    EXECAPI_BACKOFF          first backoff of a sandbox retry in seconds, doubled (0.2)
    EXECAPI_LLM_TIMEOUT      seconds per LLM call (default 30)
    EXECAPI_SANDBOX_TIMEOUT  seconds per sandbox call (default 30)
    EXECAPI_MODEL            model (default gpt-4o-mini)
    OPENAI_BASE_URL, OPENAI_API_KEY   the LLM API
    SANDBOX_URL              the sandbox executor
    EXECAPI_FRAGILE          1: no resilience (see below)

Resilience: LLM and sandbox calls are retried with backoff (the SDK's, honouring
Retry-After, for the LLM); state is persisted; submissions are rate limited; code is
screened before it runs. EXECAPI_FRAGILE=1 removes all of it — no retries, state in memory
only, no rate limit, no screening — and says so: errors end `(fragile mode: ...)` and the
document's `protections` read `off (fragile mode: ...)`.

Run: `python3 -m execapi [--port N]`; it prints `listening on http://127.0.0.1:PORT` once it
accepts connections, and listens on loopback only.
"""

import hmac
import json
import os
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai

TERMINAL = ("completed", "failed", "rejected", "blocked")
IN_FLIGHT = ("queued", "generating", "running")
STEPS = ("generate", "approve", "execute", "test")
MAX_TASK = 8000
REQUEST_FIELDS = {"task", "language", "max_cost", "run_tests"}
SYSTEM_PROMPT = (
    "You are the coder agent of a code-execution service. Write Python code for the task "
    "and unit tests for it. Answer with one JSON object: "
    '{"code": "...", "tests": "...", "dependencies": ["package", ...]}.'
)

# What code may not do in the sandbox: refused before it runs.
ESCAPES = [
    ("process spawn", re.compile(r"\b(subprocess|os\.system|os\.popen|os\.exec\w*|os\.fork|pty\.spawn)\b")),
    ("network access", re.compile(r"\b(socket|urllib\.request|http\.client|requests\.(get|post))\b")),
    ("host filesystem", re.compile(r"(/etc/|/proc/|/root/|/home/|\.\./)")),
    ("native code", re.compile(r"\b(ctypes|cffi)\b")),
    ("dynamic import", re.compile(r"(__import__|\bimportlib\b|\b__builtins__\b)")),
]
# What a human must approve first.
RISKY = [
    ("deletes files", re.compile(r"\b(shutil\.rmtree|os\.remove|os\.unlink|Path\([^)]*\)\.unlink)")),
]


class ApiError(Exception):
    def __init__(self, status, message, headers=None, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra
        self.headers = headers or {}


class Config:
    def __init__(self, env):
        def number(name, default, kind=float):
            raw = env.get(name, "")
            try:
                value = kind(raw) if raw.strip() else default
            except ValueError:
                raise SystemExit(f"execapi: `{name}` is not a number: `{raw}`")
            if value < 0:
                raise SystemExit(f"execapi: `{name}` must not be negative: `{raw}`")
            return value

        self.fragile = env.get("EXECAPI_FRAGILE", "0").lower() in ("1", "true", "yes", "on")
        self.tokens = {}
        for pair in filter(None, (p.strip() for p in env.get("EXECAPI_TOKENS", "").split(","))):
            client, sep, token = pair.partition("=")
            if not sep or not client.strip() or not token.strip():
                raise SystemExit(f"execapi: `EXECAPI_TOKENS` entry `{pair}` is not client=token")
            self.tokens[token.strip()] = client.strip()
        if not self.tokens:
            raise SystemExit("execapi: `EXECAPI_TOKENS` is empty (hint: EXECAPI_TOKENS=alice=secret)")
        self.db = env.get("EXECAPI_DB", "execapi.sqlite3")
        self.rate, self.window = parse_rate(env.get("EXECAPI_RATE_LIMIT", "20/10s"))
        self.budget = number("EXECAPI_BUDGET", 0.05)
        self.price_per_1k = number("EXECAPI_PRICE_PER_1K", 0.002)
        self.sandbox_price = number("EXECAPI_SANDBOX_PRICE", 0.0001)
        self.workers = max(1, number("EXECAPI_WORKERS", 8, int))
        self.retries = number("EXECAPI_RETRIES", 3, int)
        self.backoff = number("EXECAPI_BACKOFF", 0.2)
        self.llm_timeout = number("EXECAPI_LLM_TIMEOUT", 30.0)
        self.sandbox_timeout = number("EXECAPI_SANDBOX_TIMEOUT", 30.0)
        self.model = env.get("EXECAPI_MODEL", "gpt-4o-mini")
        self.llm_url = env.get("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
        self.llm_key = env.get("OPENAI_API_KEY", "")
        self.sandbox_url = env.get("SANDBOX_URL", "http://127.0.0.1:8090").rstrip("/")


def parse_rate(text):
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not m or int(m.group(1)) < 1:
        raise SystemExit(f"execapi: `EXECAPI_RATE_LIMIT` is `{text}`, expected N/WINDOW such as `20/10s`")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(3)]
    return int(m.group(1)), float(m.group(2)) * scale


def now():
    return round(time.time(), 3)


def log(message):
    print(f"execapi: {message}", file=sys.stderr, flush=True)


class Store:
    """Executions in SQLite, one JSON document per row; in fragile mode, in memory only."""

    def __init__(self, path, fragile):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(":memory:" if fragile else path, check_same_thread=False)
        if not fragile:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS executions ("
            " id TEXT PRIMARY KEY, client TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL)"
        )
        self.db.commit()

    def put(self, doc):
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO executions (id, client, status, doc) VALUES (?, ?, ?, ?)",
                (doc["id"], doc["client"], doc["status"], json.dumps(doc)),
            )
            self.db.commit()

    def get(self, execution_id):
        with self.lock:
            row = self.db.execute("SELECT doc FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def in_flight(self):
        marks = ",".join("?" * len(IN_FLIGHT))
        with self.lock:
            rows = self.db.execute(
                f"SELECT doc FROM executions WHERE status IN ({marks})", IN_FLIGHT
            ).fetchall()
        return [json.loads(r[0]) for r in rows]


class RateLimiter:
    """A sliding window of submissions per client."""

    def __init__(self, rate, window):
        self.rate, self.window = rate, window
        self.seen = {}
        self.lock = threading.Lock()

    def admit(self, client):
        """None when admitted; else the seconds until the next submission would be."""
        t = time.monotonic()
        with self.lock:
            q = self.seen.setdefault(client, deque())
            while q and q[0] <= t - self.window:
                q.popleft()
            if len(q) >= self.rate:
                return max(q[0] + self.window - t, 0.001)
            q.append(t)
            return None

    def describe(self):
        return f"{self.rate} executions per {self.window:g}s per client"


class Failed(Exception):
    """An execution ends here: `status` and the reason."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Service:
    def __init__(self, config):
        self.config = config
        self.store = Store(config.db, config.fragile)
        self.limiter = RateLimiter(config.rate, config.window)
        self.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="execution")
        self.locks = {}
        self.locks_lock = threading.Lock()
        self.llm = openai.OpenAI(
            base_url=config.llm_url,
            api_key=config.llm_key,
            max_retries=0 if config.fragile else config.retries,
            timeout=config.llm_timeout,
            default_headers={"X-Agent-Role": "coder"},
        )
        self.http = httpx.Client(timeout=config.sandbox_timeout)

    def protections(self):
        off = "off (fragile mode: {})"
        c = self.config
        return {
            "rate_limit": off.format("no rate limit") if c.fragile else self.limiter.describe(),
            "screening": off.format("code is not screened") if c.fragile else "on",
            "retries": off.format("no retries") if c.fragile else "on",
            "persistence": off.format("state is kept in memory only") if c.fragile else "sqlite",
        }

    def lock_of(self, execution_id):
        with self.locks_lock:
            return self.locks.setdefault(execution_id, threading.Lock())

    # --- the API ---------------------------------------------------------------------

    def submit(self, client, body):
        request = validate(body, self.config)
        if not self.config.fragile:
            wait = self.limiter.admit(client)
            if wait is not None:
                seconds = max(1, int(wait + 0.999))
                raise ApiError(
                    429,
                    f"rate limit exceeded: at most {self.limiter.describe()} "
                    f"(hint: retry after {seconds}s)",
                    headers={
                        "Retry-After": str(seconds),
                        "X-RateLimit-Limit": str(self.config.rate),
                        "X-RateLimit-Remaining": "0",
                    },
                    limit=self.limiter.describe(),
                )
        doc = {
            "id": "ex-" + uuid.uuid4().hex[:16],
            "status": "queued",
            "client": client,
            "task": request["task"],
            "language": request["language"],
            "run_tests": request["run_tests"],
            "max_cost": request["max_cost"],
            "created_at": now(),
            "started_at": None,
            "finished_at": None,
            "started": False,
            "finished": False,
            "steps": {name: "pending" for name in STEPS},
            "code": None,
            "tests": None,
            "dependencies": [],
            "pending_approvals": [],
            "approvals": [],
            "artifacts": [],
            "logs": "",
            "test_results": None,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "cost": {"llm": 0.0, "sandbox": 0.0},
            "total_cost": 0.0,
            "security_events": [],
            "protections": self.protections(),
            "resumed": False,
            "error": None,
        }
        self.store.put(doc)
        self.pool.submit(self.advance, doc["id"])
        return {"id": doc["id"], "status": "queued", "created_at": doc["created_at"],
                "protections": doc["protections"], "poll": f"/executions/{doc['id']}"}

    def get(self, client, execution_id):
        doc = self.store.get(execution_id)
        # Another client's execution is as unknown as one that never existed.
        if doc is None or not hmac.compare_digest(doc["client"], client):
            why = " (fragile mode: state is kept in memory only and lost on restart)" if self.config.fragile else ""
            raise ApiError(404, f"no execution `{execution_id}`{why}")
        return doc

    def approve(self, client, execution_id, body):
        if not isinstance(body, dict):
            raise ApiError(422, "the body must be a JSON object", field="body")
        unknown = sorted(set(body) - {"approved", "by", "comment"})
        if unknown:
            raise ApiError(422, f"unknown field `{unknown[0]}`", field=unknown[0])
        if not isinstance(body.get("approved"), bool):
            raise ApiError(422, "`approved` must be true or false", field="approved")
        by = body.get("by")
        if not isinstance(by, str) or not by.strip():
            raise ApiError(422, "`by` must name the reviewer", field="by")
        with self.lock_of(execution_id):
            doc = self.get(client, execution_id)
            if doc["status"] != "waiting_approval":
                raise ApiError(409, f"execution `{execution_id}` is {doc['status']}, not waiting for approval")
            for pending in doc["pending_approvals"]:
                doc["approvals"].append(dict(pending, approved=body["approved"], by=by, at=now()))
            doc["pending_approvals"] = []
            if body["approved"]:
                doc["steps"]["approve"] = "done"
                doc["status"] = "running"
            else:
                doc["steps"]["approve"] = "done"
                finish(doc, "rejected", f"rejected by reviewer `{by}`")
            self.store.put(doc)
        if body["approved"]:
            self.pool.submit(self.advance, execution_id)
        return doc

    # --- the workflow -----------------------------------------------------------------

    def resume_in_flight(self):
        """After a restart: the executions that were in flight go on from their last step."""
        for doc in self.store.in_flight():
            doc["resumed"] = True
            self.store.put(doc)
            log(f"resuming execution {doc['id']} ({doc['status']}, steps {doc['steps']})")
            self.pool.submit(self.advance, doc["id"])

    def advance(self, execution_id):
        doc = None
        try:
            with self.lock_of(execution_id):
                doc = self.store.get(execution_id)
                if doc is None or doc["status"] in TERMINAL or doc["status"] == "waiting_approval":
                    return
                if not doc["started"]:
                    doc["started"], doc["started_at"] = True, now()
                    self.store.put(doc)
            self.run_steps(doc)
        except Failed as e:
            finish(doc, e.status, str(e))
            self.store.put(doc)
        except Exception as e:  # a bug must not take the worker thread down silently
            log(f"execution {execution_id}: internal error: {e!r}")
            if doc is not None:
                finish(doc, "failed", f"internal error: {e}")
                self.store.put(doc)

    def run_steps(self, doc):
        steps = doc["steps"]
        if steps["generate"] == "pending":
            doc["status"] = "generating"
            self.store.put(doc)
            self.generate(doc)
            steps["generate"] = "done"
            self.check_budget(doc)
            self.store.put(doc)
        if steps["approve"] == "pending":
            self.screen(doc)
            risky = [(what, m.group(0)) for what, rx in RISKY if (m := rx.search(doc["code"]))]
            if doc["dependencies"]:
                risky.insert(0, ("installs packages", ", ".join(doc["dependencies"])))
            if risky:
                doc["status"] = "waiting_approval"
                doc["pending_approvals"] = [
                    {"id": f"ap-{i + 1}", "step": "execute", "reason": f"{what}: {detail}"}
                    for i, (what, detail) in enumerate(risky)
                ]
                self.store.put(doc)
                log(f"execution {doc['id']} waits for approval: {doc['pending_approvals']}")
                return
            steps["approve"] = "skipped"
        doc["status"] = "running"
        self.store.put(doc)
        if steps["execute"] == "pending":
            result = self.sandbox(doc, "/execute", {
                "code": doc["code"],
                "language": doc["language"],
                "dependencies": doc["dependencies"],
                "limits": {"cpu_seconds": 10, "memory_mb": 256, "network": bool(doc["dependencies"])},
            })
            doc["artifacts"] = list(result.get("artifacts") or [])
            doc["logs"] = str(result.get("logs") or "")
            if not result.get("success", False):
                raise Failed("failed", "the code failed in the sandbox: "
                             + "; ".join(map(str, result.get("errors") or ["no reason given"])))
            steps["execute"] = "done"
            self.check_budget(doc)
            self.store.put(doc)
        if steps["test"] == "pending":
            if not doc["run_tests"] or not doc["tests"]:
                steps["test"] = "skipped"
            else:
                result = self.sandbox(doc, "/test", {"code": doc["code"], "tests": doc["tests"]})
                passed, failed = int(result.get("passed") or 0), int(result.get("failed") or 0)
                doc["test_results"] = {"passed": passed, "failed": failed,
                                       "success": bool(result.get("success")) and failed == 0}
                steps["test"] = "done"
                self.check_budget(doc)
        finish(doc, "completed", None)
        self.store.put(doc)

    def generate(self, doc):
        try:
            reply = self.llm.chat.completions.create(
                model=self.config.model,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": doc["task"]},
                ],
                response_format={"type": "json_object"},
            )
        except openai.APIError as e:
            raise Failed("failed", f"the coder agent failed: {e}{self.no_retries()}")
        if reply.usage is not None:
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                doc["usage"][key] += getattr(reply.usage, key, 0) or 0
            doc["cost"]["llm"] = round(doc["usage"]["total_tokens"] * self.config.price_per_1k / 1000, 8)
            total(doc)
        content = (reply.choices[0].message.content or "") if reply.choices else ""
        content = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", content)
        try:
            plan = json.loads(content)
        except ValueError:
            raise Failed("failed", f"the coder agent's reply is not JSON: {content[:120]!r}")
        if not isinstance(plan, dict) or not isinstance(plan.get("code"), str) or not plan["code"].strip():
            raise Failed("failed", "the coder agent's reply has no `code`")
        deps = plan.get("dependencies") or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise Failed("failed", "the coder agent's `dependencies` is not a list of names")
        doc["code"] = plan["code"]
        doc["tests"] = plan.get("tests") if isinstance(plan.get("tests"), str) else None
        doc["dependencies"] = deps

    def screen(self, doc):
        if self.config.fragile:
            return
        events = []
        for what in ("code", "tests"):
            text = doc.get(what) or ""
            for kind, rx in ESCAPES:
                m = rx.search(text)
                if m:
                    line = text.count("\n", 0, m.start()) + 1
                    events.append({"kind": "escape_attempt", "what": kind, "in": what,
                                   "line": line, "match": m.group(0), "action": "refused"})
        if events:
            doc["security_events"].extend(events)
            log(f"security: execution {doc['id']} refused: {events}")
            raise Failed("rejected", "the code tries to leave the sandbox: "
                         + ", ".join(sorted({e['what'] for e in events})))

    def sandbox(self, doc, path, body):
        attempts = 1 if self.config.fragile else self.config.retries + 1
        delay = self.config.backoff
        started = time.monotonic()
        last = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                response = self.http.post(self.config.sandbox_url + path, json=body,
                                          headers={"X-Execution-Id": doc["id"]})
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if response.status_code in (429, 500, 502, 503, 504):
                last = f"status {response.status_code}"
                continue
            try:
                result = response.json()
            except ValueError:
                last = "the sandbox's answer is not JSON"
                continue
            if not isinstance(result, dict):
                last = "the sandbox's answer is not an object"
                continue
            seconds = result.get("execution_time")
            seconds = seconds if isinstance(seconds, (int, float)) and seconds >= 0 else time.monotonic() - started
            doc["cost"]["sandbox"] = round(doc["cost"]["sandbox"] + seconds * self.config.sandbox_price, 8)
            total(doc)
            violations = result.get("violations") or []
            if violations:
                doc["security_events"].extend(
                    {"kind": "sandbox_violation", "what": str(v), "in": path.strip("/"), "action": "blocked"}
                    for v in violations
                )
                log(f"security: execution {doc['id']}: the sandbox blocked {violations}")
                raise Failed("blocked", "the sandbox stopped the code: " + "; ".join(map(str, violations)))
            return result
        raise Failed("failed", f"the sandbox is unavailable ({path}): {last}{self.no_retries()}")

    def check_budget(self, doc):
        if doc["total_cost"] > doc["max_cost"]:
            raise Failed("rejected", f"over budget: cost {doc['total_cost']:.6f} exceeds max_cost {doc['max_cost']}")

    def no_retries(self):
        return " (fragile mode: no retries)" if self.config.fragile else ""


def total(doc):
    doc["total_cost"] = round(doc["cost"]["llm"] + doc["cost"]["sandbox"], 8)


def finish(doc, status, error):
    doc["status"] = status
    doc["error"] = error
    doc["finished_at"] = now()
    doc["finished"] = True
    doc["pending_approvals"] = [] if status != "waiting_approval" else doc["pending_approvals"]


def validate(body, config):
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object", field="body")
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        raise ApiError(422, f"unknown field `{unknown[0]}` (expected: {', '.join(sorted(REQUEST_FIELDS))})",
                       field=unknown[0])
    task = body.get("task")
    if not isinstance(task, str) or not task.strip():
        raise ApiError(422, "`task` is required: a non-empty string", field="task")
    if len(task) > MAX_TASK:
        raise ApiError(422, f"`task` is {len(task)} characters, at most {MAX_TASK}", field="task")
    language = body.get("language", "python")
    if language != "python":
        raise ApiError(422, f"`language` `{language}` is not supported (only `python`)", field="language")
    max_cost = body.get("max_cost", config.budget)
    if isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or max_cost < 0:
        raise ApiError(422, "`max_cost` must be a number >= 0", field="max_cost")
    run_tests = body.get("run_tests", True)
    if not isinstance(run_tests, bool):
        raise ApiError(422, "`run_tests` must be true or false", field="run_tests")
    return {"task": task, "language": language, "max_cost": max_cost, "run_tests": run_tests}


ROUTE = re.compile(r"^/executions/([A-Za-z0-9_-]{1,64})(/approve)?$")


def handler_for(service):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, doc, headers=None):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def client(self):
            header = self.headers.get("Authorization") or ""
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "missing bearer token (hint: send `Authorization: Bearer <token>`)",
                               headers={"WWW-Authenticate": 'Bearer realm="execapi"'})
            for known, client in service.config.tokens.items():
                if hmac.compare_digest(known.encode(), token.strip().encode()):
                    return client
            log("security: a request with a wrong bearer token was refused")
            raise ApiError(401, "invalid bearer token",
                           headers={"WWW-Authenticate": 'Bearer realm="execapi", error="invalid_token"'})

        def read_body(self):
            """Reads the whole body first, whatever the answer will be: on a kept-alive
            connection, a body left unread would be taken for the next request."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "`Content-Length` is not a number")
            if length > 1 << 20:
                self.close_connection = True
                raise ApiError(413, "the body is over 1 MiB")
            self.raw = self.rfile.read(length) if length > 0 else b""

        def body(self):
            try:
                return json.loads(self.raw or b"null")
            except ValueError as e:
                raise ApiError(400, f"malformed JSON: {e}")

        def handle_api(self, method):
            try:
                self.read_body()
                path = self.path.split("?", 1)[0]
                if path == "/health" and method == "GET":
                    return self.reply(200, {"status": "ok"})
                client = self.client()
                if path == "/executions" and method == "POST":
                    return self.reply(202, service.submit(client, self.body()))
                m = ROUTE.match(path)
                if m and not m.group(2) and method == "GET":
                    return self.reply(200, service.get(client, m.group(1)))
                if m and m.group(2) and method == "POST":
                    return self.reply(200, service.approve(client, m.group(1), self.body()))
                if path == "/executions" or m:
                    raise ApiError(405, f"`{method}` is not allowed on `{path}`")
                raise ApiError(404, f"no route `{method} {path}`")
            except ApiError as e:
                self.reply(e.status, {"error": str(e), **e.extra}, e.headers)
            except Exception as e:  # a bug is a 500 with its reason, and the server goes on
                log(f"internal error on {method} {self.path}: {e!r}")
                self.reply(500, {"error": f"internal error: {e}"})

        def do_GET(self):
            self.handle_api("GET")

        def do_POST(self):
            self.handle_api("POST")

        def do_PUT(self):
            self.handle_api("PUT")

        def do_DELETE(self):
            self.handle_api("DELETE")

    return Handler


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    port = 0
    if argv[:1] == ["--port"] and len(argv) == 2 and argv[1].isdigit():
        port = int(argv[1])
    elif argv:
        print("usage: python3 -m execapi [--port N]", file=sys.stderr)
        return 2
    service = Service(Config(os.environ))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(service))
    server.daemon_threads = True
    if service.config.fragile:
        log("EXECAPI_FRAGILE is set: no retries, state in memory only, no rate limit, no screening")
    service.resume_in_flight()
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
