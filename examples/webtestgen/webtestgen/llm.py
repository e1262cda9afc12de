"""The LLM: an Azure OpenAI deployment as the primary provider and any OpenAI-compatible
API as the fallback, with token and cost accounting per call.

A call goes to the primary; a retryable failure (429, 5xx, a connection error) is retried
WEBTESTGEN_LLM_RETRIES times with backoff (honouring Retry-After); a timeout is not
retried (a provider that hangs once is likely to hang again). Then the same with the
fallback. `LlmUnavailable` when both are gone: the agent decides what to do without it.
"""

import json
import random
import time

import httpx
import openai

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
# Loading the CA bundle costs more than a call to a nearby API: once per process, at import
# (before the agents are forked, so they share it).
TLS = httpx.create_ssl_context()


def preload():
    """Imports now what the SDK imports lazily on its first request (the Azure client, the
    connection pool, the chat resource and its response models), so that the agents forked
    after it do not each pay for it. The one request goes to the discard port on loopback
    and is refused at once; no socket stays open."""
    client = openai.AzureOpenAI(azure_endpoint="http://127.0.0.1:9", api_key="preload", api_version="2024-10-21",
                                max_retries=0, timeout=0.5, http_client=openai.DefaultHttpxClient(verify=TLS))
    try:
        client.chat.completions.create(model="preload", messages=[{"role": "user", "content": ""}])
    except openai.APIError:
        pass
    finally:
        client.close()
    openai.types.chat.ChatCompletion.model_validate(
        {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [{
            "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}"}}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


class LlmUnavailable(Exception):
    pass


def retry_after(headers):
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return min(float(headers.get(name, "")) / scale, 10.0)
        except (TypeError, ValueError):
            continue
    return None


class Usage:
    """Tokens and cost, per agent and per provider."""

    def __init__(self):
        self.calls = []

    def add(self, agent, provider, model, prompt, completion, prices):
        price_in, price_out = prices.get(model, (0.0, 0.0))
        cost = (prompt * price_in + completion * price_out) / 1_000_000
        self.calls.append({"agent": agent, "provider": provider, "model": model,
                           "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost})


class Llm:
    def __init__(self, config, agent):
        self.config, self.agent = config, agent
        headers = {"X-Agent-Role": agent}
        http = openai.DefaultHttpxClient(verify=TLS)
        self.providers = [("primary", config.azure_deployment, openai.AzureOpenAI(
            azure_endpoint=config.azure_endpoint, api_key=config.azure_key or "unset",
            api_version=config.azure_version, max_retries=0, timeout=config.llm_timeout,
            default_headers=headers, http_client=http))]
        if config.fallback_url and not config.fragile:
            self.providers.append(("fallback", config.fallback_model, openai.OpenAI(
                base_url=config.fallback_url, api_key=config.fallback_key or "unset", max_retries=0,
                timeout=config.llm_timeout, default_headers=headers, http_client=http)))
        self.usage = Usage()

    def ask(self, system, user, require):
        """(answer, provider): the JSON object the LLM answered, which has the key `require`."""
        messages = [{"role": "system", "content": f"You are the {self.agent} agent. {system} "
                     "Answer with one JSON object."},
                    {"role": "user", "content": json.dumps(user, sort_keys=True)}]
        problems = []
        for provider, model, client in self.providers:
            try:
                return self._ask(provider, model, client, messages, require), provider
            except LlmUnavailable as e:
                problems.append(f"{provider}: {e}")
        suffix = " (fragile mode: no retries, no fallback provider)" if self.config.fragile else ""
        raise LlmUnavailable("; ".join(problems) + suffix)

    def _ask(self, provider, model, client, messages, require):
        delay = self.config.backoff
        retries = 0 if self.config.fragile else self.config.llm_retries
        for attempt in range(retries + 1):
            wait = None
            try:
                response = client.chat.completions.create(model=model, messages=messages)
            except openai.APITimeoutError:
                raise LlmUnavailable(f"no answer within {self.config.llm_timeout:g}s")
            except openai.APIStatusError as e:
                if e.status_code not in RETRYABLE_STATUS:
                    raise LlmUnavailable(f"answered {e.status_code}")
                problem, wait = f"answered {e.status_code}", retry_after(e.response.headers)
            except openai.APIConnectionError:
                problem = "could not be reached"
            else:
                if response.usage:
                    self.usage.add(self.agent, provider, model, response.usage.prompt_tokens,
                                   response.usage.completion_tokens, self.config.prices)
                try:
                    answer = json.loads(response.choices[0].message.content or "")
                except json.JSONDecodeError:
                    answer = None
                if isinstance(answer, dict) and isinstance(answer.get(require), str if require == "summary" else list):
                    return answer
                problem = f"answered something that is not a JSON object with `{require}`"
            if attempt == retries:
                raise LlmUnavailable(problem + (f", still after {retries} retries" if retries else ""))
            time.sleep(wait if wait is not None else delay * (1 + random.random() * 0.2))
            delay *= 2
