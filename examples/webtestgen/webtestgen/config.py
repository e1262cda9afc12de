"""The generator's configuration, read from the environment once per run."""

import json

AGENTS = ("observation", "requirements", "analysis", "evolution", "orchestration", "reporting")
# Per million tokens, in USD: (prompt, completion). WEBTESTGEN_PRICES overrides or adds models.
PRICES = {"gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60)}


class ConfigError(Exception):
    pass


class Config:
    def __init__(self, env):
        def number(name, default, kind=float, minimum=0):
            raw = env.get(name, "")
            try:
                value = kind(raw) if raw.strip() else default
            except ValueError:
                raise ConfigError(f"`{name}` is not a number: `{raw}`")
            if value is not None and value < minimum:
                raise ConfigError(f"`{name}` must be at least {minimum}, got `{raw}`")
            return value

        self.redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.browser_url = env.get("BROWSER_URL", "http://127.0.0.1:8090").rstrip("/")
        self.azure_endpoint = env.get("AZURE_OPENAI_ENDPOINT", "")
        self.azure_key = env.get("AZURE_OPENAI_API_KEY", "")
        self.azure_version = env.get("OPENAI_API_VERSION", "2024-10-21")
        self.azure_deployment = env.get("AZURE_OPENAI_DEPLOYMENT", "gpt-4o")
        self.fallback_url = env.get("FALLBACK_BASE_URL", "")
        self.fallback_key = env.get("FALLBACK_API_KEY", "")
        self.fallback_model = env.get("FALLBACK_MODEL", "gpt-4o-mini")
        self.llm_timeout = number("WEBTESTGEN_LLM_TIMEOUT", 20.0)
        self.llm_retries = number("WEBTESTGEN_LLM_RETRIES", 1, int)
        self.backoff = number("WEBTESTGEN_BACKOFF", 0.2)
        self.bus_timeout = number("WEBTESTGEN_BUS_TIMEOUT", 2.0)
        self.bus_recovery = number("WEBTESTGEN_BUS_RECOVERY", 5.0)
        self.step_timeout = number("WEBTESTGEN_STEP_TIMEOUT", 30.0)
        self.run_timeout = number("WEBTESTGEN_RUN_TIMEOUT", 120.0)
        self.token_budget = number("WEBTESTGEN_TOKEN_BUDGET", None, int)
        self.cost_budget = number("WEBTESTGEN_COST_BUDGET", None)
        self.fragile = env.get("WEBTESTGEN_FRAGILE", "0").lower() in ("1", "true", "yes", "on")
        agents = [a.strip() for a in env.get("WEBTESTGEN_AGENTS", ",".join(AGENTS)).split(",") if a.strip()]
        unknown = [a for a in agents if a not in AGENTS]
        if unknown:
            raise ConfigError(f"`WEBTESTGEN_AGENTS` names an unknown agent `{unknown[0]}` (hint: {', '.join(AGENTS)})")
        if "orchestration" not in agents:
            raise ConfigError("`WEBTESTGEN_AGENTS` must include `orchestration`: nothing runs without it")
        self.agents = agents
        self.prices = dict(PRICES)
        raw = env.get("WEBTESTGEN_PRICES", "")
        if raw.strip():
            try:
                extra = json.loads(raw)
                self.prices.update({str(k): (float(v[0]), float(v[1])) for k, v in extra.items()})
            except (ValueError, TypeError, IndexError, AttributeError):
                raise ConfigError('`WEBTESTGEN_PRICES` must be JSON like {"model": [prompt_usd, completion_usd]} per million tokens')
        if not self.azure_endpoint:
            raise ConfigError("`AZURE_OPENAI_ENDPOINT` is not set (hint: the Azure OpenAI resource, https://NAME.openai.azure.com)")
