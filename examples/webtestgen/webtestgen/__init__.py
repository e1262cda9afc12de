"""webtestgen: a web-application test generator of six agents on a Redis Streams bus.

observation → requirements → analysis → evolution → reporting, driven by orchestration
(see `agents.py`); each agent a process of its own (`supervisor.py`), the only link
between them the broker (`bus.py`); the LLM an Azure OpenAI deployment with an
OpenAI-compatible fallback (`llm.py`).

Use it as a command: `python3 -m webtestgen < request.json` starts the agents, hands them
the request, prints the one JSON document they produce, and stops them.

    {"url": "https://shop.example", "pages": ["/", "/login", "/cart"],
     "previous_tests": [ … ]}                        (optional: the suite to evolve)

Configuration, from the environment:

    REDIS_URL                        the broker (default redis://127.0.0.1:6379/0)
    BROWSER_URL                      the browser service the observation agent asks
    AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY, OPENAI_API_VERSION
    AZURE_OPENAI_DEPLOYMENT          the primary LLM (default deployment gpt-4o)
    FALLBACK_BASE_URL, FALLBACK_API_KEY, FALLBACK_MODEL
                                     the OpenAI-compatible fallback (default model gpt-4o-mini)
    WEBTESTGEN_AGENTS                the agents this deployment runs (default all six)
    WEBTESTGEN_LLM_TIMEOUT           seconds per LLM call (default 20)
    WEBTESTGEN_LLM_RETRIES           retries per provider of a failed LLM call (default 1)
    WEBTESTGEN_BACKOFF               first backoff in seconds, doubled per retry (default 0.2)
    WEBTESTGEN_BUS_TIMEOUT           seconds per broker call (default 2)
    WEBTESTGEN_BUS_RECOVERY          seconds of broker outage to ride out (default 5)
    WEBTESTGEN_STEP_TIMEOUT          seconds an agent has for its step (default 30)
    WEBTESTGEN_RUN_TIMEOUT           seconds for the whole run (default 120)
    WEBTESTGEN_TOKEN_BUDGET          tokens per run; then the LLM steps left use heuristics
    WEBTESTGEN_COST_BUDGET           the same in USD
    WEBTESTGEN_PRICES                JSON {"model": [prompt, completion]} USD per 1M tokens
    WEBTESTGEN_FRAGILE               1: no resilience (see below)

Resilience: broker calls retried on a fresh connection through an outage of up to
WEBTESTGEN_BUS_RECOVERY seconds; unacknowledged messages delivered again to a restarted
agent; agents that die started again; LLM calls retried, then sent to the fallback
provider; LLM steps answered by heuristics when both providers are gone; an agent that
does not answer stood in for. The run's status is then `degraded`, and `degraded` says
why. WEBTESTGEN_FRAGILE=1 removes all of it: the first failure is final, and the error
says what was missing, `(fragile mode: …)`.

Output: status (completed | degraded | failed), error, requirements, risks, tests, report,
steps (agent, source, provider, seconds), degraded, usage (tokens by agent and provider),
cost (USD by agent), agents (restarts), bus (broker errors, recoveries, longest outage).
Exit codes: 0 completed or degraded, 1 failed, 2 invalid request or configuration,
3 internal error.
"""

import json
import os
import sys
import time
import traceback
import uuid

from webtestgen.bus import Bus, BusError
from webtestgen.config import Config, ConfigError
from webtestgen.llm import preload
from webtestgen.supervisor import AgentDied, Supervisor

MAX_PAGES = 50


class InvalidRequest(Exception):
    pass


def validate(request):
    if not isinstance(request, dict):
        raise InvalidRequest("the request must be a JSON object")
    url = request.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"`url` must be an http(s) URL, got `{url}`")
    pages = request.get("pages")
    if (not isinstance(pages, list) or not pages or len(pages) > MAX_PAGES
            or not all(isinstance(p, str) and p.startswith("/") for p in pages)):
        raise InvalidRequest(f"`pages` must list 1 to {MAX_PAGES} paths starting with `/`")
    previous = request.get("previous_tests", [])
    if not isinstance(previous, list):
        raise InvalidRequest("`previous_tests` must be a list")
    return {"url": url, "pages": pages, "previous_tests": previous}


def merge_bus(by_process):
    total = {"errors": 0, "recoveries": 0, "longest_outage_s": 0.0, "by_process": by_process}
    for s in by_process.values():
        total["errors"] += s.get("errors", 0)
        total["recoveries"] += s.get("recoveries", 0)
        total["longest_outage_s"] = max(total["longest_outage_s"], s.get("longest_outage_s", 0.0))
    return total


def run(request, config):
    """(document, exit code) of one run."""
    started = time.monotonic()
    preload()
    run_id = uuid.uuid4().hex[:12]
    supervisor = Supervisor(config, run_id)
    bus = Bus(config, run_id, "front")
    document = None
    try:
        for agent in config.agents:
            bus.create_group(agent)
        for agent in config.agents:
            supervisor.start(agent)
        bus.send("orchestration", {"kind": "job", "input": request})
        deadline = started + config.run_timeout
        while document is None:
            supervisor.check()
            if time.monotonic() > deadline:
                raise BusError(f"no result within {config.run_timeout:g}s")
            document = bus.wait_result(250)
    except (BusError, AgentDied) as e:
        document = {"status": "failed", "error": str(e)}
    finally:
        supervisor.stop()
    by_process = {**document.pop("bus_by_agent", {}), **bus.all_stats()}
    bus.forget_run()
    bus.close()
    document.update(run_id=run_id, duration_s=round(time.monotonic() - started, 3),
                    agents={"deployed": config.agents, "restarts": sum(supervisor.restarts.values()),
                            "restarted": supervisor.restarts},
                    bus=merge_bus(by_process))
    if document["status"] == "failed":
        print(f"webtestgen: {document['error']}", file=sys.stderr)
    return document, 1 if document["status"] == "failed" else 0


def main():
    """The command line: the request as JSON on stdin, the result as JSON on stdout."""
    try:
        request = validate(json.load(sys.stdin))
        config = Config(os.environ)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        print(json.dumps({"status": "failed", "error": f"the request is not JSON: {e}"}))
        return 2
    except (InvalidRequest, ConfigError) as e:
        print(json.dumps({"status": "failed", "error": str(e)}))
        return 2
    if config.fragile:
        print("webtestgen: fragile mode: no broker reconnects, no agent supervision, no retries, "
              "no fallback provider, no degraded completion", file=sys.stderr)
    try:
        document, code = run(request, config)
    except Exception as e:  # an internal error is reported, with its traceback, not hidden
        traceback.print_exc()
        print(json.dumps({"status": "failed", "error": f"internal: {type(e).__name__}: {e}"}))
        return 3
    print(json.dumps(document, ensure_ascii=False))
    return code
