"""The six agents. Five do one step each of the chain

    observation → requirements → analysis → evolution → reporting

and the sixth, orchestration, drives it: it sends each step's task to that agent's inbox,
takes the result from its own, and sends the finished document to the run's result
stream. Every agent is a process of its own (see `supervisor.py`) that knows the others
only by the bus.

- observation: asks the browser service to observe each page (title, elements, forms).
- requirements, analysis, evolution, reporting: LLM-backed; when the LLM is gone they
  answer from a heuristic over what they were given, and say so.
- orchestration: keeps the run's state in the broker (a restarted orchestration agent
  carries on), applies the run's token and cost budgets, and stands in for an agent that
  does not answer within WEBTESTGEN_STEP_TIMEOUT: the optional steps (analysis,
  evolution, reporting) are done by the heuristic and the run is `degraded`; without an
  observation there is nothing to test, and the run fails.
"""

import os
import time

import httpx

from webtestgen.bus import BusError
from webtestgen.llm import TLS, Llm, LlmUnavailable

CHAIN = ("observation", "requirements", "analysis", "evolution", "reporting")
OPTIONAL = ("requirements", "analysis", "evolution", "reporting")
TASKS = {
    "requirements": ("From the observed pages of a web application, list its user-facing requirements "
                     'as {"requirements": [{"id", "text", "page"}]}.', "requirements"),
    "analysis": ("Rate the risk of each requirement failing in production "
                 'as {"risks": [{"requirement", "risk": "high|medium|low", "why"}]}.', "risks"),
    "evolution": ("Evolve the test suite: write end-to-end tests for the requirements, riskiest first, "
                  'keeping earlier tests that still apply, as {"tests": [{"name", "requirement", "steps"}]}.', "tests"),
    "reporting": ('Summarise the generated test suite for the team as {"summary", "highlights": []}.', "summary"),
}
# What each step is given, of everything the run has so far.
INPUTS = {
    "requirements": ("observation",),
    "analysis": ("requirements",),
    "evolution": ("requirements", "risks", "previous_tests"),
    "reporting": ("requirements", "risks", "tests"),
}


class StepFailed(Exception):
    pass


def observe(config, context):
    """The observation step: the browser service observes each page."""
    url = context["url"].rstrip("/")
    pages = []
    retries = 0 if config.fragile else 2
    with httpx.Client(verify=TLS, timeout=config.llm_timeout) as http:
        for page in context["pages"]:
            for attempt in range(retries + 1):
                try:
                    response = http.post(f"{config.browser_url}/observe", json={"url": url + page})
                    if response.status_code < 500:
                        break
                    problem = f"answered {response.status_code}"
                except httpx.HTTPError as e:
                    problem = f"could not be reached ({type(e).__name__})"
                if attempt == retries:
                    raise StepFailed(f"the browser service {problem} observing `{page}`"
                                     + (" (fragile mode: no retries)" if config.fragile else ""))
                time.sleep(config.backoff * 2 ** attempt)
            if response.status_code >= 400:
                raise StepFailed(f"the browser service answered {response.status_code} observing `{page}`")
            try:
                seen = response.json()
            except ValueError:
                raise StepFailed(f"the browser service's observation of `{page}` is not JSON")
            pages.append({"page": page, "title": str(seen.get("title", "")),
                          "elements": [str(e) for e in seen.get("elements", [])],
                          "forms": [str(f) for f in seen.get("forms", [])]})
    return {"observation": pages}


def heuristic(step, context):
    """What a step comes to without the LLM: plain, and complete."""
    pages = context.get("observation", [])
    requirements = context.get("requirements") or []
    if step == "requirements":
        out = []
        for p in pages:
            for form in p["forms"]:
                out.append({"id": f"R{len(out) + 1}", "text": f"a user can submit the {form} form", "page": p["page"]})
            out.append({"id": f"R{len(out) + 1}", "text": f"{p['page']} shows {p['title'] or 'its content'}",
                        "page": p["page"]})
        return {"requirements": out}
    if step == "analysis":
        return {"risks": [{"requirement": r.get("id"), "why": "heuristic: forms change state",
                           "risk": "high" if "form" in str(r.get("text")) else "medium"} for r in requirements]}
    if step == "evolution":
        return {"tests": [{"name": f"smoke: {r.get('text')}", "requirement": r.get("id"),
                           "steps": [f"open {r.get('page')}", f"check that {r.get('text')}"]} for r in requirements]}
    return {"summary": f"{len(context.get('tests') or [])} tests for {len(requirements)} requirements over "
                       f"{len(pages)} pages (written without the LLM)", "highlights": []}


def work(name, config, llm, context):
    """(output, source, provider, degraded reason) of one step."""
    if name == "observation":
        return observe(config, context), "browser", None, None
    system, key = TASKS[name]
    given = {k: context[k] for k in INPUTS[name] if context.get(k) is not None}
    try:
        answer, provider = llm.ask(system, given, key)
    except LlmUnavailable as e:
        if config.fragile:
            raise StepFailed(f"the LLM is unavailable: {e}")
        return heuristic(name, context), "heuristic", None, f"{name}: the LLM is unavailable ({e}); answered by the heuristic"
    if name == "reporting":
        return {"summary": answer["summary"], "highlights": answer.get("highlights", [])}, "llm", provider, None
    return {key: answer[key]}, "llm", provider, None


def serve(name, config, bus, parent):
    """An agent's loop: its unacknowledged messages first (it may be a replacement), then new ones."""
    if name == "orchestration":
        return Orchestrator(config, bus, parent).serve()
    llm = Llm(config, name) if name in TASKS else None
    pending, errors = True, 0
    while os.getppid() == parent:
        # after a broker error, the unacknowledged messages first: one the broker delivered
        # on a connection that broke before the answer arrived is pending, and only there
        pending, errors = pending or bus.stats["errors"] != errors, bus.stats["errors"]
        entries = bus.receive(name, pending, 250)
        if pending and not entries:
            pending = False
            continue
        for entry_id, message in entries:
            if not bus.was_done(name, message["id"]):
                started = time.monotonic()
                reply = {"kind": "result", "step": name, "task": message["id"], "redelivered": pending}
                try:
                    output, source, provider, degraded = work(name, config, llm, message["context"])
                    reply.update(output=output, source=source, provider=provider, degraded=degraded)
                except StepFailed as e:
                    reply.update(kind="error", message=str(e))
                if llm:
                    reply["usage"], llm.usage.calls = llm.usage.calls, []
                reply["seconds"] = round(time.monotonic() - started, 3)
                reply["bus"] = bus.stats
                bus.send("orchestration", reply)
                bus.mark_done(name, message["id"])
            bus.ack(name, entry_id)


class Orchestrator:
    def __init__(self, config, bus, parent):
        self.config, self.bus, self.parent = config, bus, parent

    def serve(self):
        pending, errors = True, 0
        while os.getppid() == self.parent:
            pending, errors = pending or self.bus.stats["errors"] != errors, self.bus.stats["errors"]
            entries = self.bus.receive("orchestration", pending, 250)
            if pending and not entries:
                pending = False
            for entry_id, message in entries:
                state = self.bus.load_state()
                if message["kind"] == "job" and state is None:
                    state = self.start(message)
                elif state and not state["done"] and message.get("task") == state.get("task"):
                    state = self.on_reply(state, message)
                if state:
                    self.bus.save_state(state)
                self.bus.ack("orchestration", entry_id)
            if not entries:
                state = self.bus.load_state()
                if state and not state["done"] and time.time() > state["deadline"]:
                    self.bus.save_state(self.on_timeout(state))

    def start(self, job):
        state = {"done": False, "index": 0, "context": dict(job["input"]), "steps": [], "degraded": [],
                 "usage": [], "bus": {}, "started": time.time(), "task": None, "deadline": 0}
        return self.dispatch(state)

    def dispatch(self, state):
        """Sends the next step's task, or finishes the run."""
        while state["index"] < len(CHAIN):
            step = CHAIN[state["index"]]
            over = self.over_budget(state)
            if step in TASKS and over:
                state["degraded"].append(f"{step}: {over}; answered by the heuristic")
                self.record(state, step, heuristic(step, state["context"]), "heuristic", None, 0.0)
                continue
            state["task"] = self.bus.send(step, {"kind": "task", "context": state["context"]})
            state["deadline"] = time.time() + self.config.step_timeout
            return state
        return self.finish(state, None)

    def over_budget(self, state):
        tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in state["usage"])
        cost = sum(c["cost_usd"] for c in state["usage"])
        if self.config.token_budget is not None and tokens >= self.config.token_budget:
            return f"the run's token budget ({self.config.token_budget}) is spent ({tokens} tokens)"
        if self.config.cost_budget is not None and cost >= self.config.cost_budget:
            return f"the run's cost budget (${self.config.cost_budget:g}) is spent (${cost:.6f})"
        return None

    def record(self, state, step, output, source, provider, seconds, redelivered=False):
        state["context"].update(output)
        state["steps"].append({"agent": step, "source": source, "provider": provider, "seconds": seconds,
                               "redelivered": redelivered})
        state["index"] += 1

    def on_reply(self, state, reply):
        step = reply["step"]
        state["usage"].extend(reply.get("usage", []))
        state["bus"][step] = reply.get("bus", {})
        if reply["kind"] == "error":
            return self.finish(state, f"{step}: {reply['message']}")
        if reply.get("degraded"):
            state["degraded"].append(reply["degraded"])
        self.record(state, step, reply["output"], reply["source"], reply["provider"], reply["seconds"],
                    reply.get("redelivered", False))
        return self.dispatch(state)

    def on_timeout(self, state):
        step = CHAIN[state["index"]]
        why = f"the {step} agent did not answer within {self.config.step_timeout:g}s"
        if self.config.fragile:
            return self.finish(state, f"{why} (fragile mode: no degraded completion)")
        if step not in OPTIONAL:
            return self.finish(state, f"{why}; there is nothing to test without it")
        state["degraded"].append(f"{why}; the orchestration agent answered by the heuristic")
        self.record(state, step, heuristic(step, state["context"]), "heuristic", None, self.config.step_timeout)
        return self.dispatch(state)

    def finish(self, state, error):
        context, calls = state["context"], state["usage"]
        by_agent, by_provider, cost_by_agent = {}, {}, {}
        for c in calls:
            tokens = c["prompt_tokens"] + c["completion_tokens"]
            by_agent[c["agent"]] = by_agent.get(c["agent"], 0) + tokens
            by_provider[c["provider"]] = by_provider.get(c["provider"], 0) + tokens
            cost_by_agent[c["agent"]] = cost_by_agent.get(c["agent"], 0.0) + c["cost_usd"]
        prompt = sum(c["prompt_tokens"] for c in calls)
        completion = sum(c["completion_tokens"] for c in calls)
        state["bus"]["orchestration"] = self.bus.stats
        document = {
            "status": "failed" if error else ("degraded" if state["degraded"] else "completed"),
            "error": error,
            "url": context.get("url"),
            "pages_observed": len(context.get("observation") or []),
            "requirements": context.get("requirements"),
            "risks": context.get("risks"),
            "tests": context.get("tests"),
            "report": {"summary": context.get("summary"), "highlights": context.get("highlights", [])},
            "steps": state["steps"],
            "degraded": state["degraded"],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "llm_calls": len(calls), "by_agent": by_agent, "by_provider": by_provider},
            "cost": {"total_usd": round(sum(cost_by_agent.values()), 8),
                     "by_agent": {a: round(v, 8) for a, v in cost_by_agent.items()}},
            "bus_by_agent": state["bus"],
        }
        self.bus.publish_result(document)
        state["done"] = True
        return state


__all__ = ["BusError", "CHAIN", "serve"]
