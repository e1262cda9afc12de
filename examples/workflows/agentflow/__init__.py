"""agentflow: an agent-workflow platform, written the way such platforms usually are.

Agents (pure calculations and LLM-backed ones, see `agents.py`) are composed into
workflows: stages run in sequence, the agents of a stage in parallel; each agent gets the
results and citations of the stages before it, and the run's citations are aggregated
without duplicates. Four workflows are built in (carbon_audit, decarbonisation,
energy_optimisation, predictive_maintenance); a request may also compose its own:
`{"agents": ["emissions", "advisor"], "mode": "sequential" | "parallel"}`.

Every step's result is written to the results store — Redis when REDIS_URL is set (one
hash per run, a rollback deletes the run's fields in one MULTI/EXEC transaction, and the
run reads its records back at the end to check they are all there), else an HTTP records
API (POST {STORE_URL}/records, rollback with POST {STORE_URL}/rollback) — every step is
checkpointed on disk, and the report is written to the artifact store (a directory).

Configuration, from the environment:

    OPENAI_BASE_URL, OPENAI_API_KEY   the LLM API
    AGENTFLOW_MODEL                   model (default gpt-4o-mini)
    REDIS_URL                         the results store, when it is Redis (redis://HOST:PORT/DB)
    STORE_URL                         the results store, when it is the HTTP API
    AGENTFLOW_STATE_DIR               checkpoints (default ./state)
    AGENTFLOW_ARTIFACT_DIR            artifacts (default ./artifacts)
    AGENTFLOW_CACHE_DIR               the LLM answer cache (default ./cache)
    AGENTFLOW_RETRIES                 retries of a failed call (default 3)
    AGENTFLOW_BACKOFF                 first backoff in seconds, doubled per retry (0.5)
    AGENTFLOW_LLM_TIMEOUT             seconds per LLM call (default 30)
    AGENTFLOW_STORE_TIMEOUT           seconds per store call (default 5)
    AGENTFLOW_BREAKER_FAILURES        LLM failures in a row that open the breaker (3)
    AGENTFLOW_BREAKER_RESET           seconds the breaker stays open (default 30)
    AGENTFLOW_FRAGILE                 1: no resilience (see below)

Resilience: retries with exponential backoff and jitter (honouring Retry-After) for LLM
and store calls; a circuit breaker that opens after 3 LLM failures in a row and answers
from the cache of earlier answers (then the bundled fallback answers) while open; a
checkpoint after every step, so a run started again with the same `run_id` resumes
after the last finished step; rollback of the run's records when a critical step fails;
optional steps (benchmark, forecast) skipped when they fail; a streaming re-run of a
calculation that ran out of memory; an artifact store that fails gracefully when the
disk is full. AGENTFLOW_FRAGILE=1 removes all of it: the first failure is final and the
error names what was missing, `(fragile mode: ...)`.

Use it as a command: `python3 -m agentflow < request.json` prints one JSON document.
Exit codes: 0 completed or degraded, 1 failed, 2 invalid request, 3 internal error.
"""

import hashlib
import json
import os
import random
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai

from agentflow.agents import CALCULATION, LLM, OPTIONAL, WORKFLOWS, trend

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
FALLBACK_ANSWERS = Path(__file__).with_name("fallback_answers.json")
# One TLS context for every client of the process: loading the CA bundle costs more than a
# whole run against a nearby service, so it is done once, at import (no sockets are opened).
TLS = httpx.create_ssl_context()
FRAGILE_BANNER = ("agentflow: fragile mode: no retries, no circuit breaker, no checkpoints, "
                  "no rollback, no degraded completion")
DEFAULT_FACILITY = {"fuel_litres": 12000, "electricity_kwh": 240000, "floor_area_m2": 2500}


def _preload():
    """Imports now what the SDKs import lazily on their first request (connection pool,
    HTTP/1.1 parser, the chat resource): a server that preloads the app, or a worker that
    forks a child per run, then pays for it once rather than on every run's first call.
    The one request goes to the discard port on loopback and is refused at once."""
    client = openai.OpenAI(api_key="preload", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=0.5,
                           http_client=openai.DefaultHttpxClient(verify=TLS))
    try:
        client.chat.completions.create(model="preload", messages=[{"role": "user", "content": ""}])
    except openai.APIError:
        pass
    finally:
        client.close()


_preload()


class FlowError(Exception):
    """A step or the run failed for good; `code` is the machine-readable reason."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Config:
    def __init__(self, env):
        def number(name, default, kind=float):
            raw = env.get(name, "")
            try:
                return kind(raw) if raw.strip() else default
            except ValueError:
                raise FlowError("invalid_config", f"`{name}` is not a number: `{raw}`")

        self.model = env.get("AGENTFLOW_MODEL", "gpt-4o-mini")
        self.store_url = env.get("STORE_URL", "http://127.0.0.1:8070").rstrip("/")
        self.redis_url = env.get("REDIS_URL") or None
        self.state_dir = Path(env.get("AGENTFLOW_STATE_DIR", "state"))
        self.artifact_dir = Path(env.get("AGENTFLOW_ARTIFACT_DIR", "artifacts"))
        self.cache_dir = Path(env.get("AGENTFLOW_CACHE_DIR", "cache"))
        self.retries = number("AGENTFLOW_RETRIES", 3, int)
        self.backoff = number("AGENTFLOW_BACKOFF", 0.5)
        self.llm_timeout = number("AGENTFLOW_LLM_TIMEOUT", 30.0)
        self.store_timeout = number("AGENTFLOW_STORE_TIMEOUT", 5.0)
        self.breaker_failures = number("AGENTFLOW_BREAKER_FAILURES", 3, int)
        self.breaker_reset = number("AGENTFLOW_BREAKER_RESET", 30.0)
        self.fragile = env.get("AGENTFLOW_FRAGILE", "0").lower() in ("1", "true", "yes", "on")


class Transient(Exception):
    def __init__(self, message, wait=None):
        super().__init__(message)
        self.wait = wait


def retry_after(headers):
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return min(float(headers.get(name, "")) / scale, 60.0)
        except (TypeError, ValueError):
            continue
    return None


def with_retries(config, what, attempt, on_failure=None):
    delay = config.backoff
    for n in range(config.retries + 1):
        try:
            return attempt()
        except Transient as e:
            if on_failure:
                on_failure()
            if config.fragile:
                raise FlowError("unavailable", f"{what}: {e} (fragile mode: no retries)")
            if n == config.retries:
                raise FlowError("unavailable", f"{what}: {e}, still after {config.retries} retries")
            time.sleep(e.wait if e.wait is not None else delay * (1 + random.random() * 0.2))
            delay *= 2


class Breaker:
    """Opens after `failures` LLM failures in a row; stays open `reset` seconds."""

    def __init__(self, config):
        self.limit, self.reset = config.breaker_failures, config.breaker_reset
        self.enabled = not config.fragile
        self.failures, self.opened = 0, None
        self.lock = threading.Lock()

    def is_open(self):
        with self.lock:
            if self.opened is None:
                return False
            if time.monotonic() - self.opened >= self.reset:
                self.opened, self.failures = None, self.limit - 1  # half-open: one more try
                return False
            return True

    def failed(self):
        with self.lock:
            self.failures += 1
            if self.enabled and self.failures >= self.limit and self.opened is None:
                self.opened = time.monotonic()

    def succeeded(self):
        with self.lock:
            self.failures, self.opened = 0, None


class Llm:
    def __init__(self, config):
        self.config = config
        self.client = openai.OpenAI(max_retries=0, timeout=config.llm_timeout,
                                    http_client=openai.DefaultHttpxClient(verify=TLS))
        self.breaker = Breaker(config)
        self.tokens = 0
        self.lock = threading.Lock()

    def ask(self, agent, task, context):
        """(answer, source): the agent's JSON answer from the LLM, or from the cache while
        the breaker is open."""
        messages = [{"role": "system", "content": f"You are the {agent} agent. Answer with one JSON object "
                     "with your answer and a `citations` list of the sources you used."},
                    {"role": "user", "content": f"{task}\n\nResults so far:\n{json.dumps(context, sort_keys=True)}"}]
        key = hashlib.sha256(json.dumps([agent, context], sort_keys=True).encode()).hexdigest()[:16]
        if self.breaker.is_open():
            return self.cached(agent, key), "cache"

        def attempt():
            if self.breaker.is_open():
                raise FlowError("breaker_open", "open")
            try:
                response = self.client.chat.completions.create(
                    model=self.config.model, messages=messages, extra_headers={"X-Agent-Role": agent})
            except openai.APIStatusError as e:
                if e.status_code not in RETRYABLE_STATUS:
                    raise FlowError("llm_error", f"{agent}: the LLM API answered {e.status_code}")
                raise Transient(f"the LLM API answered {e.status_code}", retry_after(e.response.headers))
            except openai.APITimeoutError:
                raise Transient(f"no answer within {self.config.llm_timeout:g}s")
            except openai.APIConnectionError:
                raise Transient("the LLM API could not be reached")
            try:
                answer = json.loads(response.choices[0].message.content or "")
            except json.JSONDecodeError:
                raise Transient("the reply is not JSON")
            if not isinstance(answer, dict):
                raise Transient("the reply is not a JSON object")
            with self.lock:
                self.tokens += response.usage.total_tokens if response.usage else 0
            return answer

        try:
            answer = with_retries(self.config, agent, attempt, self.breaker.failed)
        except FlowError as e:
            if e.code in ("breaker_open", "unavailable") and self.breaker.is_open():
                return self.cached(agent, key), "cache"
            raise
        self.breaker.succeeded()
        self.remember(agent, key, answer)
        return answer, "llm"

    def remember(self, agent, key, answer):
        try:
            self.config.cache_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(self.config.cache_dir / f"{agent}.json", {"key": key, "answer": answer})
        except OSError:
            pass  # a cache that cannot be written is only a colder cache

    def cached(self, agent, key):
        try:
            return json.loads((self.config.cache_dir / f"{agent}.json").read_text())["answer"]
        except (OSError, ValueError, KeyError):
            return json.loads(FALLBACK_ANSWERS.read_text())[agent]


def write_atomically(path, document):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(document, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Store:
    """The results store: one record per step; a rollback removes a run's records."""

    def __init__(self, config, http):
        self.config, self.http = config, http

    def _post(self, path, body):
        def attempt():
            try:
                response = self.http.post(f"{self.config.store_url}{path}", json=body, timeout=self.config.store_timeout)
            except httpx.HTTPError as e:
                raise Transient(f"the store could not be reached ({type(e).__name__})")
            if response.status_code in RETRYABLE_STATUS:
                raise Transient(f"the store answered {response.status_code}", retry_after(response.headers))
            if response.status_code >= 400:
                raise FlowError("store_error", f"store: {path} answered {response.status_code}")
            try:
                return response.json()
            except ValueError:
                raise Transient("the store's answer is not JSON")

        return with_retries(self.config, f"store {path}", attempt)

    def write(self, run_id, agent, result):
        answer = self._post("/records", {"run_id": run_id, "agent": agent, "result": result})
        return str(answer.get("id") or f"{run_id}/{agent}")

    def rollback(self, run_id, ids):
        self._post("/rollback", {"run_id": run_id, "ids": ids})

    def verify(self, run_id, ids):
        return None


class RedisStore:
    """The results store on Redis: hash `agentflow:run:RUN_ID`, one field per step. Every
    command is retried on a lost or refused connection (a restarted server, a partition);
    `reconnects` counts the attempts that failed."""

    def __init__(self, config):
        import redis

        self.config, self.redis = config, redis
        self.client = redis.Redis.from_url(config.redis_url, socket_timeout=config.store_timeout,
                                           socket_connect_timeout=config.store_timeout)
        self.reconnects = 0

    def _call(self, what, command):
        def attempt():
            try:
                return command()
            except (self.redis.ConnectionError, self.redis.TimeoutError) as e:
                self.reconnects += 1
                self.client.connection_pool.disconnect()
                raise Transient(f"redis could not be reached ({type(e).__name__})")
            except self.redis.RedisError as e:
                raise FlowError("store_error", f"redis: {what}: {e}")

        return with_retries(self.config, f"store {what}", attempt)

    @staticmethod
    def key(run_id):
        return f"agentflow:run:{run_id}"

    def write(self, run_id, agent, result):
        self._call("HSET", lambda: self.client.hset(self.key(run_id), agent, json.dumps(result)))
        return f"{run_id}/{agent}"

    def rollback(self, run_id, ids):
        fields = [i.split("/", 1)[1] for i in ids]

        def transaction():
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(self.key(run_id), *fields)
            return pipe.execute()

        self._call("rollback", transaction)

    def verify(self, run_id, ids):
        """How many of `ids` the store holds, read back (consistency after failures)."""
        fields = [i.split("/", 1)[1] for i in ids]
        if not fields:
            return {"backend": "redis", "verified": 0, "reconnects": self.reconnects}
        values = self._call("HMGET", lambda: self.client.hmget(self.key(run_id), fields))
        return {"backend": "redis", "verified": sum(v is not None for v in values),
                "reconnects": self.reconnects}


def open_store(config, http):
    return RedisStore(config) if config.redis_url else Store(config, http)


def stages_of(request):
    """The workflow's name and stages, from a built-in name or an ad-hoc composition."""
    if "workflow" in request:
        name = request["workflow"]
        if name not in WORKFLOWS:
            raise FlowError("invalid_request", f"unknown workflow `{name}` (hint: one of {', '.join(sorted(WORKFLOWS))})")
        return name, WORKFLOWS[name]
    agents, mode = request.get("agents"), request.get("mode", "sequential")
    known = set(CALCULATION) | set(LLM)
    if not isinstance(agents, list) or not agents or not all(a in known for a in agents):
        raise FlowError("invalid_request", f"`agents` must list known agents (hint: {', '.join(sorted(known))})")
    if mode not in ("sequential", "parallel"):
        raise FlowError("invalid_request", f"`mode` must be `sequential` or `parallel`, got `{mode}`")
    return "+".join(agents), ([[a] for a in agents] if mode == "sequential" else [list(agents)])


def run_step(agent, facility, context, llm, config):
    """(result, citations, source) of one agent."""
    if agent in CALCULATION:
        try:
            result, citations = CALCULATION[agent](facility, context)
            return result, citations, "calc"
        except MemoryError:
            if config.fragile or agent != "forecast":
                raise FlowError("out_of_memory", f"{agent}: out of memory"
                                + (" (fragile mode: no streaming re-run)" if config.fragile else ""))
            result, citations = trend(facility, streaming=True)
            return result, citations, "calc-streaming"
    answer, source = llm.ask(agent, LLM[agent], context)
    citations = [str(c) for c in answer.pop("citations", []) if isinstance(c, (str, int, float))]
    return answer, citations, source


def run(request, env=None):
    """One workflow run: the result document and the exit code."""
    started = time.monotonic()
    result = {"status": "failed", "error": None}
    try:
        config = Config(os.environ if env is None else env)
        if not isinstance(request, dict):
            raise FlowError("invalid_request", "the request must be a JSON object")
        name, stages = stages_of(request)
        run_id = str(request.get("run_id") or f"run-{os.getpid()}-{int(time.time() * 1000)}")
        if not run_id.replace("-", "").replace("_", "").isalnum():
            raise FlowError("invalid_request", f"`run_id` must be letters, digits, `-` and `_`, got `{run_id}`")
        facility = {**DEFAULT_FACILITY, **(request.get("facility") or {})}
        for key in DEFAULT_FACILITY:
            value = facility[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise FlowError("invalid_request", f"`facility.{key}` must be a number of at least 0, got `{value}`")
    except FlowError as e:
        result["error"] = {"code": e.code, "message": str(e)}
        return result, 2
    if config.fragile:
        print(FRAGILE_BANNER, file=sys.stderr)
    result.update(workflow=name, run_id=run_id, steps=[], executed=[], resumed_from=None, citations=[],
                  artifacts=[], records=[], rolled_back=False, degraded=[])
    llm = Llm(config)
    checkpoint_path = config.state_dir / f"{run_id}.json"
    done = {}
    if not config.fragile and checkpoint_path.exists():
        try:
            saved = json.loads(checkpoint_path.read_text())
            if saved.get("workflow") == name:
                done = {s["agent"]: s for s in saved["steps"]}
                result["resumed_from"] = len(done)
        except (OSError, ValueError, KeyError):
            result["degraded"].append("checkpoint unreadable: started over")
    context = {"facility": facility}
    try:
        with httpx.Client(verify=TLS) as http, ThreadPoolExecutor(max_workers=4) as pool:
            store = open_store(config, http)
            for stage in stages:
                todo = [a for a in stage if a not in done]
                futures = {a: pool.submit(run_step, a, facility, dict(context), llm, config) for a in todo}
                for agent in stage:
                    if agent in done:
                        step = {**done[agent], "source": "checkpoint"}
                    else:
                        try:
                            output, citations, source = futures[agent].result()
                        except FlowError as e:
                            if agent in OPTIONAL and not config.fragile:
                                result["steps"].append({"agent": agent, "status": "skipped", "error": str(e)})
                                result["degraded"].append(f"{agent} skipped: {e}")
                                continue
                            raise FlowError(e.code, f"critical step `{agent}` failed: {e}")
                        result["executed"].append(agent)
                        record = store.write(run_id, agent, output)
                        result["records"].append(record)
                        step = {"agent": agent, "status": "ok", "source": source, "result": output,
                                "citations": citations, "record": record}
                        if source == "cache":
                            result["degraded"].append(f"{agent}: the LLM circuit breaker is open; answered from the cache")
                        if source == "calc-streaming":
                            result["degraded"].append(f"{agent}: out of memory; recomputed streaming")
                    result["steps"].append(step)
                    context[agent] = step["result"]
                    for citation in step["citations"]:
                        if citation not in result["citations"]:
                            result["citations"].append(citation)
                if not config.fragile:
                    config.state_dir.mkdir(parents=True, exist_ok=True)
                    write_atomically(checkpoint_path, {"workflow": name, "steps": [
                        s for s in result["steps"] if s.get("status") == "ok"]})
            report = {"workflow": name, "run_id": run_id, "results": context, "citations": result["citations"]}
            try:
                config.artifact_dir.mkdir(parents=True, exist_ok=True)
                path = config.artifact_dir / f"{run_id}-{name.replace('+', '_')}.json"
                write_atomically(path, report)
                result["artifacts"].append(str(path))
            except OSError as e:
                if config.fragile:
                    raise FlowError("artifact_store", f"the report could not be stored: {e.strerror} (fragile mode: no degraded completion)")
                result["degraded"].append(f"artifact store: {e.strerror}; the report is only in this output")
            checked = store.verify(run_id, result["records"])
            if checked is not None:
                result["store"] = checked
        if not config.fragile:
            checkpoint_path.unlink(missing_ok=True)
        result["status"] = "degraded" if result["degraded"] else "completed"
        code = 0
    except FlowError as e:
        result["error"] = {"code": e.code, "message": str(e)}
        if result["records"]:
            if config.fragile:
                result["error"]["message"] += " (fragile mode: no rollback)"
            else:
                try:
                    with httpx.Client(verify=TLS) as http:
                        open_store(config, http).rollback(run_id, result["records"])
                    result["error"]["message"] += f"; its {len(result['records'])} records were rolled back"
                    result["rolled_back"], result["records"] = True, []
                except FlowError as rollback_error:
                    result["error"]["message"] += f"; the rollback failed too: {rollback_error}"
        print(f"agentflow: {result['error']['message']}", file=sys.stderr)
        code = 1
    result["usage"] = {"total_tokens": llm.tokens}
    result["duration_s"] = round(time.monotonic() - started, 3)
    return result, code


def main():
    """The command line: the request as JSON on stdin, the result as JSON on stdout."""
    try:
        request = json.load(sys.stdin)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        print(json.dumps({"status": "failed", "error": {"code": "invalid_request", "message": f"the request is not JSON: {e}"}}))
        return 2
    try:
        result, code = run(request)
    except Exception as e:  # an internal error is reported, with its traceback, not hidden
        traceback.print_exc()
        print(json.dumps({"status": "failed", "error": {"code": "internal", "message": f"{type(e).__name__}: {e}"}}))
        return 3
    print(json.dumps(result, ensure_ascii=False))
    return code
