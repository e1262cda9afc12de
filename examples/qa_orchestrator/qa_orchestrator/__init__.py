"""qa_orchestrator: a QA-automation orchestrator on LangChain, written the way such
orchestrators usually are.

Four agents turn a feature description and a codebase into reviewed tests:

    scenario_builder -> reviewer    (BDD scenarios, re-written until the review scores them
                                     at or above the BDD threshold)
    test_coder -> code_reviewer     (pytest code, re-written until the review scores it at
                                     or above the quality threshold)

Each loop re-iterates with the reviewer's feedback up to QA_MAX_ITERATIONS attempts; a run
whose scores are still below a threshold then fails (`below_threshold`). The agents talk to
OpenAI (`langchain-openai`) or Anthropic (`langchain-anthropic`), each over its own wire API.

Configuration, from the environment:

    QA_PROVIDER                  openai | anthropic (default openai)
    OPENAI_API_KEY, OPENAI_BASE_URL         for openai
    ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL   for anthropic
    QA_MODEL                     model (default gpt-4o-mini / claude-3-5-haiku-latest)
    QA_BDD_THRESHOLD             lowest accepted BDD review score (default 8.0)
    QA_QUALITY_THRESHOLD         lowest accepted code review score (default 7.0)
    QA_MAX_ITERATIONS            attempts per loop (default 3)
    QA_AGENT_TIMEOUT             seconds per agent call (default 60)
    QA_RETRIES                   retries of a failed agent call (default 2)
    QA_BACKOFF                   first backoff in seconds, doubled per retry (default 1)
    QA_FRAGILE                   1: no resilience (see below)

The request (JSON on stdin): `{"feature": "...", "codebase": "path/to/dir"}` (the codebase
is optional; its Python files are summarised for the agents: names, classes, functions).

Resilience: each agent call has a timeout and is retried with exponential backoff on 429,
5xx (Anthropic's 529 too), timeouts and connection errors, honouring Retry-After; a reply
that is not the JSON asked for is asked once more. QA_FRAGILE=1 removes all of it and the
error names what was missing, `(fragile mode: ...)`.

Use it as a command: `python3 -m qa_orchestrator < request.json` prints one JSON document.
Exit codes: 0 completed, 1 failed (below a threshold after the budget, or an agent failed
for good), 2 invalid configuration or request, 3 internal error.
"""

import ast
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

import anthropic
import httpx
import openai
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
PROVIDERS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}
# One TLS context for the process's OpenAI clients: loading the CA bundle is costly, so it is
# done once, at import (no sockets are opened).
TLS = httpx.create_ssl_context()
FRAGILE_BANNER = "qa_orchestrator: fragile mode: no retries, no agent timeout, no re-ask"
MAX_CODEBASE_FILES = 200


class QaError(Exception):
    """A run failed for good; `code` is the machine-readable reason."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Config:
    def __init__(self, env):
        def number(name, default, kind=float, low=None):
            raw = env.get(name, "")
            try:
                value = kind(raw) if raw.strip() else default
            except ValueError:
                raise QaError("invalid_config", f"`{name}` must be a number, got `{raw}`")
            if low is not None and value < low:
                raise QaError("invalid_config", f"`{name}` must be at least {low}, got `{raw}`")
            return value

        self.provider = env.get("QA_PROVIDER", "openai").strip().lower()
        if self.provider not in PROVIDERS:
            raise QaError("invalid_config", f"unknown provider `{self.provider}` in `QA_PROVIDER` "
                          f"(hint: one of {', '.join(sorted(PROVIDERS))})")
        key_name = f"{self.provider.upper()}_API_KEY"
        self.api_key = env.get(key_name, "").strip()
        if not self.api_key:
            raise QaError("invalid_config", f"`{key_name}` is not set; the {self.provider} provider needs it")
        self.base_url = env.get(f"{self.provider.upper()}_BASE_URL") or None
        self.model = env.get("QA_MODEL") or PROVIDERS[self.provider]
        self.bdd_threshold = number("QA_BDD_THRESHOLD", 8.0)
        self.quality_threshold = number("QA_QUALITY_THRESHOLD", 7.0)
        self.max_iterations = number("QA_MAX_ITERATIONS", 3, int, low=1)
        self.timeout = number("QA_AGENT_TIMEOUT", 60.0, low=0.001)
        self.retries = number("QA_RETRIES", 2, int, low=0)
        self.backoff = number("QA_BACKOFF", 1.0, low=0)
        self.fragile = env.get("QA_FRAGILE", "0").lower() in ("1", "true", "yes", "on")


def chat_model(config, role):
    """The LangChain chat model of one agent; the orchestrator retries, not the SDK."""
    headers = {"X-Agent-Role": role}
    # Fragile mode keeps the SDK's own, very long default timeout.
    timeout = None if config.fragile else config.timeout
    if config.provider == "anthropic":
        kwargs = {"base_url": config.base_url} if config.base_url else {}
        return ChatAnthropic(model=config.model, api_key=config.api_key, max_retries=0, timeout=timeout,
                             default_headers=headers, max_tokens=2048, **kwargs)
    kwargs = {"base_url": config.base_url} if config.base_url else {}
    return ChatOpenAI(model=config.model, api_key=config.api_key, max_retries=0, timeout=timeout,
                      default_headers=headers, http_client=httpx.Client(verify=TLS, timeout=timeout), **kwargs)


def transient(error):
    """(retryable, seconds the server asked to wait) for an SDK error."""
    status_errors = (openai.APIStatusError, anthropic.APIStatusError)
    if isinstance(error, (openai.APITimeoutError, anthropic.APITimeoutError)):
        return True, None
    if isinstance(error, (openai.APIConnectionError, anthropic.APIConnectionError)):
        return True, None
    if isinstance(error, status_errors):
        if error.status_code not in RETRYABLE_STATUS:
            return False, None
        headers = error.response.headers
        for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            try:
                return True, min(float(headers.get(name, "")) / scale, 60.0)
            except (TypeError, ValueError):
                pass
        return True, None
    return False, None


def describe(error, config):
    """What went wrong with a call, in a few words."""
    if isinstance(error, (openai.APITimeoutError, anthropic.APITimeoutError)):
        return f"no answer within {config.timeout:g}s"
    if isinstance(error, (openai.APIConnectionError, anthropic.APIConnectionError)):
        return f"could not reach the {config.provider} API"
    return f"the {config.provider} API answered {getattr(error, 'status_code', '?')}"


class Agents:
    def __init__(self, config):
        self.config = config
        self.models = {}
        self.order = []
        self.tokens = 0

    def _invoke(self, role, messages):
        model = self.models.get(role) or self.models.setdefault(role, chat_model(self.config, role))
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            self.order.append(role)
            try:
                reply = model.invoke(messages)
                usage = getattr(reply, "usage_metadata", None) or {}
                self.tokens += usage.get("total_tokens", 0)
                assert isinstance(reply, AIMessage)
                return reply.content if isinstance(reply.content, str) else "".join(
                    part.get("text", "") for part in reply.content if isinstance(part, dict))
            except Exception as e:  # the SDKs' errors, sorted by `transient`
                retryable, wait = transient(e)
                if not retryable:
                    if getattr(e, "status_code", None) is None:
                        raise
                    raise QaError("agent_failed", f"{role}: the {self.config.provider} API answered "
                                  f"{e.status_code}: {getattr(e, 'message', e)}")
                if self.config.fragile:
                    raise QaError("agent_failed", f"{role}: {describe(e, self.config)} (fragile mode: no retries)")
                if attempt == self.config.retries:
                    raise QaError("agent_failed", f"{role}: {describe(e, self.config)}, still after {self.config.retries} retries")
                time.sleep(wait if wait is not None else delay * (1 + random.random() * 0.2))
                delay *= 2

    def ask(self, role, task, check):
        """The agent's JSON answer, accepted by `check`; one re-ask when it is not."""
        messages = [SystemMessage(f"You are the {role} agent. Answer with one JSON object."), HumanMessage(task)]
        for attempt in range(2):
            text = self._invoke(role, messages)
            try:
                answer = json.loads(text)
                problem = check(answer) if isinstance(answer, dict) else "not a JSON object"
            except json.JSONDecodeError:
                problem = "not JSON"
            if problem is None:
                return answer
            if self.config.fragile:
                raise QaError("bad_reply", f"{role}: the reply is {problem} (fragile mode: no re-ask)")
            if attempt == 1:
                raise QaError("bad_reply", f"{role}: the reply is {problem}, twice in a row")
            messages += [AIMessage(text), HumanMessage(f"That reply is {problem}. Answer with the JSON object asked for.")]


def check_scenarios(answer):
    items = answer.get("scenarios")
    if not isinstance(items, list) or not items or not all(isinstance(s, str) and s.strip() for s in items):
        return "without a list of scenarios"
    return None


def check_code(answer):
    return None if isinstance(answer.get("code"), str) and answer["code"].strip() else "without code"


def check_review(answer):
    score = answer.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 10:
        return "without a score from 0 to 10"
    return None


def summarise_codebase(path):
    """The Python files under `path`: each file's classes and functions, one line each."""
    root = Path(path)
    if not root.is_dir():
        raise QaError("invalid_request", f"codebase `{path}` is not a directory")
    files = sorted(p for p in root.rglob("*.py") if p.is_file())[:MAX_CODEBASE_FILES]
    lines = []
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError) as e:
            lines.append(f"{file.relative_to(root)}: unreadable ({type(e).__name__})")
            continue
        names = [f"{'class' if isinstance(n, ast.ClassDef) else 'def'} {n.name}" for n in ast.walk(tree)
                 if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
        lines.append(f"{file.relative_to(root)}: {', '.join(names) or 'no definitions'}")
    return lines


def refine(agents, maker, reviewer, threshold, config, make_task, review_task, check):
    """One write-review loop: (artefact, review, attempts); raises below_threshold."""
    feedback, review = [], None
    for attempt in range(1, config.max_iterations + 1):
        artefact = agents.ask(maker, make_task(feedback), check)
        review = agents.ask(reviewer, review_task(artefact), check_review)
        if review["score"] >= threshold:
            return artefact, review, attempt
        feedback = [str(f) for f in review.get("feedback") or []] or [f"raise the score to {threshold}"]
    raise QaError("below_threshold", f"{reviewer}: score {review['score']} is below the threshold {threshold} "
                  f"after {config.max_iterations} iterations")


def run(request, env=None):
    """One orchestration: the result document and the exit code."""
    started = time.monotonic()
    result = {"status": "failed", "error": None}
    try:
        config = Config(os.environ if env is None else env)
        if not isinstance(request, dict):
            raise QaError("invalid_request", "the request must be a JSON object")
        feature = request.get("feature")
        if not isinstance(feature, str) or not feature.strip():
            raise QaError("invalid_request", "`feature` must be a non-empty string")
        codebase = summarise_codebase(request["codebase"]) if request.get("codebase") else []
    except QaError as e:
        result["error"] = {"code": e.code, "message": str(e)}
        return result, 2
    if config.fragile:
        print(FRAGILE_BANNER, file=sys.stderr)
    result.update(provider=config.provider, model=config.model, codebase_files=len(codebase))
    agents = Agents(config)
    context = f"Feature: {feature.strip()}\n" + "".join(f"  {line}\n" for line in codebase)
    try:
        scenarios, bdd_review, bdd_attempts = refine(
            agents, "scenario_builder", "reviewer", config.bdd_threshold, config,
            lambda fb: f"Write Gherkin scenarios for:\n{context}" + (f"Reviewer feedback: {'; '.join(fb)}\n" if fb else ""),
            lambda s: "Review these BDD scenarios, score 0-10:\n" + "\n".join(s["scenarios"]),
            check_scenarios)
        result["bdd"] = {"scenarios": scenarios["scenarios"], "score": bdd_review["score"], "iterations": bdd_attempts}
        tests, code_review, code_attempts = refine(
            agents, "test_coder", "code_reviewer", config.quality_threshold, config,
            lambda fb: "Write pytest tests for these scenarios:\n" + "\n".join(scenarios["scenarios"])
            + (f"\nCode review feedback: {'; '.join(fb)}" if fb else ""),
            lambda t: f"Review this test code, score 0-10:\n{t['code']}",
            check_code)
        result["tests"] = {"code": tests["code"], "score": code_review["score"], "iterations": code_attempts}
        result["status"] = "completed"
        code = 0
    except QaError as e:
        result["error"] = {"code": e.code, "message": str(e)}
        print(f"qa_orchestrator: {e}", file=sys.stderr)
        code = 1
    result["agents"] = agents.order
    result["usage"] = {"total_tokens": agents.tokens}
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
