"""pypipe: a small multi-agent pipeline, written the way such pipelines usually are.

A planner splits the request into subtasks, a coder writes code for them, an executor
service runs the code, and a critic reviews the result; while the critic asks for a
refinement and the iteration budget lasts, the coder tries again with the critic's
issues. The agents call an OpenAI-compatible API through the official `openai` package;
the executor is reached over HTTP with `httpx`.

Configuration comes from the environment:

    OPENAI_BASE_URL, OPENAI_API_KEY   the LLM API
    EXECUTOR_URL                      the executor service (POST {EXECUTOR_URL}/execute)
    PYPIPE_MODEL                      model name (default gpt-4o-mini)
    PYPIPE_MAX_ITERATIONS             refinement budget (default 2)
    PYPIPE_RETRIES                    retries of a failed call (default 3)
    PYPIPE_BACKOFF                    first backoff in seconds, doubled per retry (0.5)
    PYPIPE_TIMEOUT                    per-call timeout in seconds (default 30)
    PYPIPE_MAX_PROMPT                 longest prompt accepted, in characters (4000)

Use it as a command: `python3 -m pypipe < request.json` prints one JSON document and
exits 0 (completed or degraded), 1 (failed) or 2 (invalid request).
"""

import json
import os
import sys
import time

import httpx
import openai

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class PipelineError(Exception):
    """A step failed for good."""


class Config:
    def __init__(self, env):
        self.model = env.get("PYPIPE_MODEL", "gpt-4o-mini")
        self.max_iterations = int(env.get("PYPIPE_MAX_ITERATIONS", "2"))
        self.retries = int(env.get("PYPIPE_RETRIES", "3"))
        self.backoff = float(env.get("PYPIPE_BACKOFF", "0.5"))
        self.timeout = float(env.get("PYPIPE_TIMEOUT", "30"))
        self.max_prompt = int(env.get("PYPIPE_MAX_PROMPT", "4000"))
        self.executor_url = env.get("EXECUTOR_URL", "http://127.0.0.1:8081").rstrip("/")


class Agents:
    """The LLM side: one chat completion per agent step, JSON in the reply."""

    def __init__(self, config):
        self.config = config
        # The pipeline retries itself (with its own backoff), so the SDK does not.
        self.client = openai.OpenAI(max_retries=0, timeout=config.timeout)
        self.tokens = 0

    def ask(self, role, content):
        """The agent's JSON answer; one re-ask when the reply is not JSON."""
        messages = [
            {"role": "system", "content": f"You are the {role} agent. Answer with one JSON object."},
            {"role": "user", "content": content},
        ]
        for attempt in range(2):
            reply = self._complete(role, messages)
            try:
                return json.loads(strip_fence(reply))
            except json.JSONDecodeError:
                if attempt == 1:
                    raise PipelineError(f"{role}: the reply is not JSON twice in a row")
                messages.append({"role": "assistant", "content": reply})
                messages.append({"role": "user", "content": "That was not valid JSON. Answer again with one JSON object only."})

    def _complete(self, role, messages):
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            try:
                response = self.client.chat.completions.create(
                    model=self.config.model,
                    messages=messages,
                    extra_headers={"X-Agent-Role": role},
                )
                if response.usage is not None:
                    self.tokens += response.usage.total_tokens
                return response.choices[0].message.content or ""
            except openai.APIStatusError as e:
                if e.status_code not in RETRYABLE_STATUS or attempt == self.config.retries:
                    raise PipelineError(f"{role}: the LLM API answered {e.status_code}") from e
                wait = retry_after(e.response) or delay
            except (openai.APIConnectionError, openai.APITimeoutError) as e:
                if attempt == self.config.retries:
                    raise PipelineError(f"{role}: the LLM API could not be reached ({type(e).__name__})") from e
                wait = delay
            time.sleep(wait)
            delay *= 2
        raise PipelineError(f"{role}: out of retries")


def strip_fence(text):
    """The payload of a reply wrapped in a Markdown code fence (```json … ```), as models
    often send JSON; any other text as it is."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        first_line, _, rest = body.partition("\n")
        # A language tag (```json) is the rest of the opening line.
        return rest if first_line.strip().isalnum() or not first_line.strip() else body
    return text


def retry_after(response):
    try:
        return min(float(response.headers.get("retry-after", "")), 30.0)
    except (TypeError, ValueError):
        return None


def execute(config, http, code):
    """Runs the code on the executor service; its JSON answer."""
    delay = config.backoff
    for attempt in range(config.retries + 1):
        try:
            response = http.post(f"{config.executor_url}/execute", json={"code": code, "language": "python"})
            if response.status_code < 500:
                response.raise_for_status()
                return response.json()
            problem = f"the executor answered {response.status_code}"
        except httpx.HTTPStatusError as e:
            raise PipelineError(f"executor: {e.response.status_code}") from e
        except httpx.HTTPError as e:
            problem = f"the executor could not be reached ({type(e).__name__})"
        if attempt == config.retries:
            raise PipelineError(f"executor: {problem}")
        time.sleep(delay)
        delay *= 2
    raise PipelineError("executor: out of retries")


def run(request):
    """One pipeline run: the result document and the exit code."""
    config = Config(os.environ)
    prompt = str(request.get("prompt", "")).strip()
    if not prompt:
        return {"status": "failed", "error": "the prompt is empty"}, 2
    if len(prompt) > config.max_prompt:
        return {"status": "failed", "error": f"the prompt is longer than {config.max_prompt} characters"}, 2

    agents = Agents(config)
    result = {"status": "completed", "refinement_iterations": 0}
    try:
        with httpx.Client(timeout=config.timeout) as http:
            plan = agents.ask("planner", prompt)
            result["subtasks"] = list(plan.get("subtasks", []))
            if not result["subtasks"]:
                raise PipelineError("planner: no subtasks")
            issues = []
            while True:
                ask = "Write code for: " + "; ".join(result["subtasks"])
                if issues:
                    ask += "\nFix these issues: " + "; ".join(issues)
                result["code"] = agents.ask("coder", ask).get("code", "")
                result["execution"] = execute(config, http, result["code"])
                try:
                    verdict = agents.ask("critic", json.dumps({"code": result["code"], "execution": result["execution"]}))
                except PipelineError as e:
                    # Without a critic the result stands, marked as unreviewed.
                    result["status"] = "degraded"
                    result["degraded_reason"] = f"critic unavailable: {e}"
                    break
                result["critic"] = verdict
                if not verdict.get("needs_refinement") or result["refinement_iterations"] >= config.max_iterations:
                    break
                issues = list(verdict.get("issues", []))
                result["refinement_iterations"] += 1
    except PipelineError as e:
        result["status"] = "failed"
        result["error"] = str(e)
    result["usage"] = {"total_tokens": agents.tokens}
    return result, 0 if result["status"] != "failed" else 1


def main():
    """The command line: the request as JSON on stdin, the result as JSON on stdout."""
    try:
        request = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(json.dumps({"status": "failed", "error": f"the request is not JSON: {e}"}))
        return 2
    result, code = run(request)
    print(json.dumps(result))
    return code
