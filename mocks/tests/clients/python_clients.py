"""Drives the LLM stub with the official Python clients of every API it serves. One family
per run; prints one JSON line per check and exits non-zero at the first mismatch (exit 3:
the client is not installed).

Usage: python3 python_clients.py FAMILY STUB_URI   (FAMILY: openai, anthropic, gemini,
langchain, agents; STUB_URI: http://127.0.0.1:PORT)

The stub's rules (tests/integration/clients.rs) answer by agent, recognised from the system
prompt in each API's own place: `messages[0]`, `instructions`, `system`,
`systemInstruction`.
"""

import json
import sys
import time

FAMILY, URI = sys.argv[1], sys.argv[2]
PLAN = {"subtasks": ["blade", "hilt"]}
VERDICT = "The sword is well balanced; the grip needs a leather wrap."


def report(check, **fields):
    print(json.dumps({"check": check, **fields}), flush=True)


def need(module, spec):
    try:
        return __import__(module)
    except ImportError:
        print(
            f"the `{spec}` package is not installed for this python3 "
            f"(hint: python3 -m pip install '{spec}'; .ci/run does this)",
            file=sys.stderr,
        )
        sys.exit(3)


def openai_family():
    openai = need("openai", "openai")
    import pydantic

    client = openai.OpenAI(base_url=f"{URI}/v1", api_key="sk-stub", max_retries=0)
    planner = [
        {"role": "system", "content": "You are the planner agent."},
        {"role": "user", "content": "Plan a sword"},
    ]

    chat = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=planner)
    completion = chat.parse()
    assert json.loads(completion.choices[0].message.content) == PLAN, completion
    assert completion._request_id and completion._request_id.startswith("req_"), completion._request_id
    report("chat", request_id=completion._request_id)

    class Plan(pydantic.BaseModel):
        subtasks: list[str]

    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=planner, response_format=Plan)
    assert parsed.choices[0].message.parsed == Plan(subtasks=["blade", "hilt"]), parsed
    report("parse")

    response = client.responses.create(model="gpt-4o", instructions="You are the critic agent.", input="Rate the sword")
    assert response.output_text == VERDICT, response
    assert response.status == "completed" and response.usage.total_tokens > 0, response
    report("responses", id=response.id)

    events = []
    text = ""
    for event in client.responses.create(
        model="gpt-4o", input=[{"role": "system", "content": "You are the critic agent."}, {"role": "user", "content": "Rate"}], stream=True
    ):
        events.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        assert event.sequence_number == len(events) - 1, (event, len(events))
    assert text == VERDICT, text
    assert events[0] == "response.created" and events[-1] == "response.completed", events
    report("responses_stream", events=len(events))

    with client.responses.stream(model="gpt-4o", instructions="You are the critic agent.", input="Rate") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == VERDICT, final
    report("responses_stream_helper")

    tool = client.responses.create(
        model="gpt-4o",
        instructions="You are the coder agent.",
        input="Write add",
        tools=[{"type": "function", "name": "write_code", "parameters": {"type": "object", "properties": {"code": {"type": "string"}}}}],
    )
    call = tool.output[0]
    assert call.type == "function_call" and call.name == "write_code", tool.output
    assert json.loads(call.arguments)["code"].startswith("def add"), call
    report("responses_tool_call", call_id=call.call_id)

    embeddings = client.embeddings.create(model="text-embedding-3-small", input=["sword", "shield"], dimensions=8)
    vectors = [item.embedding for item in embeddings.data]
    assert [len(v) for v in vectors] == [8, 8] and vectors[0] != vectors[1], vectors
    again = client.embeddings.create(model="text-embedding-3-small", input="sword", dimensions=8, encoding_format="float")
    assert all(abs(a - b) < 1e-6 for a, b in zip(again.data[0].embedding, vectors[0])), (again, vectors[0])
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
    report("embeddings", dims=len(vectors[0]))

    model = client.models.retrieve("gpt-4o-mini")
    assert model.id == "gpt-4o-mini", model
    report("model")

    # a 429 with retry-after-ms 400 then a reply: the SDK waits as told and retries
    retrying = openai.OpenAI(base_url=f"{URI}/v1", api_key="sk-stub", max_retries=2)
    started = time.monotonic()
    recovered = retrying.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are the limited agent."}, {"role": "user", "content": "go"}],
    )
    waited = time.monotonic() - started
    assert recovered.choices[0].message.content == "recovered", recovered
    assert waited >= 0.4, f"the SDK retried after {waited:.3f}s, before the 400 ms it was told"
    report("retry_after", waited=round(waited, 3))

    azure = openai.AzureOpenAI(azure_endpoint=URI, api_key="azure-key", api_version="2024-10-21", max_retries=0)
    deployed = azure.chat.completions.create(model="gpt4o-prod", messages=planner)
    assert json.loads(deployed.choices[0].message.content) == PLAN, deployed
    vectors = azure.embeddings.create(model="embeddings-prod", input="sword", dimensions=8)
    assert len(vectors.data[0].embedding) == 8
    report("azure")


def anthropic_family():
    anthropic = need("anthropic", "anthropic")
    client = anthropic.Anthropic(base_url=URI, api_key="sk-ant-stub", max_retries=0)

    message = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=256, system="You are the critic agent.", messages=[{"role": "user", "content": "Rate"}]
    )
    assert message.content[0].type == "text" and message.content[0].text == VERDICT, message
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0, message
    assert message._request_id and message._request_id.startswith("req_"), message._request_id
    report("create", request_id=message._request_id)

    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=256, system="You are the critic agent.", messages=[{"role": "user", "content": "Rate"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == VERDICT and len(pieces) > 1, pieces
    assert final.stop_reason == "end_turn", final
    report("stream", pieces=len(pieces))

    tool = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=256,
        system=[{"type": "text", "text": "You are the coder agent."}],
        messages=[{"role": "user", "content": "Write add"}],
        tools=[{"name": "write_code", "input_schema": {"type": "object", "properties": {"code": {"type": "string"}}}}],
    )
    block = tool.content[0]
    assert block.type == "tool_use" and block.name == "write_code", tool
    assert block.input["code"].startswith("def add") and tool.stop_reason == "tool_use", tool
    report("tool_use", id=block.id)

    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=256, system="You are the coder agent.", messages=[{"role": "user", "content": "Write add"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input["code"].startswith("def add"), final
    report("tool_use_stream")

    # a 429 then a 529 (overloaded_error), then a reply: the SDK retries both
    retrying = anthropic.Anthropic(base_url=URI, api_key="sk-ant-stub", max_retries=2)
    started = time.monotonic()
    recovered = retrying.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, system="You are the overloaded agent.", messages=[{"role": "user", "content": "go"}]
    )
    waited = time.monotonic() - started
    assert recovered.content[0].text == "recovered", recovered
    report("retried_429_529", waited=round(waited, 3))

    try:
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=64, system="You are the busy agent.", messages=[{"role": "user", "content": "go"}]
        )
        raise AssertionError("a 529 must raise")
    except anthropic.APIStatusError as error:
        assert error.status_code == 529 and error.body["error"]["type"] == "overloaded_error", error.body
    report("overloaded_error")


def gemini_family():
    need("google.genai", "google-genai")
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="stub-key", http_options=types.HttpOptions(base_url=URI))
    config = types.GenerateContentConfig(system_instruction="You are the critic agent.")

    response = client.models.generate_content(model="gemini-2.0-flash", contents="Rate the sword", config=config)
    assert response.text == VERDICT, response
    assert response.usage_metadata.total_token_count > 0, response
    report("generate")

    pieces = [chunk.text for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="Rate", config=config)]
    assert "".join(pieces) == VERDICT and len(pieces) > 1, pieces
    report("stream", pieces=len(pieces))

    tool = client.models.generate_content(
        model="gemini-2.0-flash",
        contents="Write add",
        config=types.GenerateContentConfig(
            system_instruction="You are the coder agent.",
            tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="write_code", description="writes code")])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    calls = tool.function_calls
    assert calls and calls[0].name == "write_code" and calls[0].args["code"].startswith("def add"), tool
    report("function_call")

    try:
        client.models.generate_content(
            model="gemini-2.0-flash", contents="go", config=types.GenerateContentConfig(system_instruction="You are the busy agent.")
        )
        raise AssertionError("a 429 must raise")
    except genai.errors.ClientError as error:
        assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED", (error.code, error.status)
    report("resource_exhausted")


def langchain_family():
    need("langchain_openai", "langchain-openai")
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-4o", base_url=f"{URI}/v1", api_key="sk-stub", use_responses_api=True, max_retries=0)
    message = llm.invoke([("system", "You are the critic agent."), ("human", "Rate the sword")])
    text = message.text() if callable(message.text) else message.text
    assert text == VERDICT, message
    report("responses_invoke")
    streamed = ""
    for chunk in llm.stream([("system", "You are the critic agent."), ("human", "Rate the sword")]):
        piece = chunk.text() if callable(chunk.text) else chunk.text
        streamed += piece
    assert streamed == VERDICT, streamed
    report("responses_stream")


def agents_family():
    need("agents", "openai-agents")
    import openai
    from agents import Agent, Runner, set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)
    set_default_openai_client(openai.AsyncOpenAI(base_url=f"{URI}/v1", api_key="sk-stub", max_retries=0), use_for_tracing=False)
    agent = Agent(name="critic", instructions="You are the critic agent. Rate what you are given.")
    result = Runner.run_sync(agent, "Rate the sword")
    assert result.final_output == VERDICT, result
    report("default_model_run")


{
    "openai": openai_family,
    "anthropic": anthropic_family,
    "gemini": gemini_family,
    "langchain": langchain_family,
    "agents": agents_family,
}[FAMILY]()
