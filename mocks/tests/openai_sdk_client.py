"""Drives the LLM stub with the official `openai` Python SDK: a plain call, a streamed call
with usage, a tool call, a 429, and a stream the stub cuts mid-event. Prints one JSON line
per call; exits non-zero on any mismatch.

Usage: python3 openai_sdk_client.py BASE_URL   (e.g. http://127.0.0.1:PORT/v1)
"""

import json
import sys

try:
    import openai
except ImportError:
    print(
        "the `openai` package is not installed for this python3 "
        "(hint: python3 -m pip install 'openai>=1.40,<4'; .ci/run does this)",
        file=sys.stderr,
    )
    sys.exit(3)

client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-agent-harness-stub", max_retries=0)

# A plain call: the planner's JSON plan comes back as the message content.
plain = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[
        {"role": "system", "content": "You are the planner agent."},
        {"role": "user", "content": "Plan a sword"},
    ],
)
plan = json.loads(plain.choices[0].message.content)
assert plan == {"subtasks": ["blade", "hilt"]}, plan
assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens
print(json.dumps({"call": "plain", "content": plan, "usage": plain.usage.total_tokens}))

# A streamed call with usage in the last chunk.
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[
        {"role": "system", "content": "You are the critic agent."},
        {"role": "user", "content": "Judge this"},
    ],
    stream=True,
    stream_options={"include_usage": True},
)
pieces, usage, chunks = [], None, 0
for chunk in stream:
    chunks += 1
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage is not None:
        usage = chunk.usage
verdict = json.loads("".join(pieces))
assert verdict["needs_refinement"] is False, verdict
assert usage is not None and usage.completion_tokens > 0, usage
assert chunks > 2, chunks
print(json.dumps({"call": "stream", "content": verdict, "chunks": chunks, "usage": usage.total_tokens}))

# A tool call: the coder answers with write_code.
tools = [{
    "type": "function",
    "function": {
        "name": "write_code",
        "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
    },
}]
called = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[
        {"role": "system", "content": "You are the coder agent."},
        {"role": "user", "content": "Write add()"},
    ],
    tools=tools,
)
choice = called.choices[0]
assert choice.finish_reason == "tool_calls", choice.finish_reason
call = choice.message.tool_calls[0]
assert call.function.name == "write_code", call
args = json.loads(call.function.arguments)
assert args["code"].startswith("def add"), args
print(json.dumps({"call": "tool", "name": call.function.name, "arguments": args}))

# A scripted 429 surfaces as the SDK's RateLimitError.
try:
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are the limited agent."}],
    )
    raise AssertionError("expected a RateLimitError")
except openai.RateLimitError as e:
    assert e.response.headers.get("retry-after") == "2", dict(e.response.headers)
    print(json.dumps({"call": "rate_limited", "status": e.status_code}))

# A stream cut mid-event by a chaos fault: the SDK raises instead of ending quietly.
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "system", "content": "You are the cut agent."}],
    stream=True,
)
pieces = []
try:
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
except AssertionError:
    raise
except Exception as e:  # httpx.RemoteProtocolError: incomplete chunked read
    print(json.dumps({"call": "cut_stream", "error": type(e).__name__, "pieces": len(pieces)}))
else:
    raise AssertionError(f"expected the cut stream to raise, got {pieces!r}")
