//! Integration tests of the stubs: real HTTP from a plain client against running stubs.
//! Each test starts its own stub; nothing sleeps to synchronise (a journal entry exists by
//! the time its response arrives).

// shared helpers: a client, request bodies, rule builders
mod support;

// LLM stub: agent recognition by header and by system prompt
mod llm_agents;
// LLM stub: scripted errors, Retry-After, invalid request bodies
mod llm_errors;
// LLM stub: chaos faults armed on the stub, schedules, determinism per seed
mod llm_faults;
// LLM stub: reply shapes, sequences, providers, the models endpoint
mod llm_replies;
// LLM stub: the chat-completions wire output, pinned byte for byte (goldens)
mod llm_goldens;
// LLM stub: every API's dialect: errors, request ids, when.api, quotas, models, embeddings
mod llm_dialects;
// LLM stub: SSE framing of streamed completions
mod llm_stream;
// LLM stub: unmatched requests, closest rule, journal
mod llm_unmatched;
// LLM stub: reset, truncated body, hang, seen by a raw TCP client and reqwest
mod llm_wire_faults;
// LLM stub: stream pace, stall and cut, timed by a client reading the SSE body
mod llm_stream_faults;
// LLM stub: random delays replay per seed, time-windowed schedules (via the journal)
mod llm_schedules;
// LLM stub: 20k requests over keep-alive, capped journal, exact counters and histograms
mod llm_load;
// both stubs: service time, time to first token, gaps between tokens; their histograms
mod timing;

// the official openai Python SDK against the stub (plain, stream, tool call, 429)
mod openai_sdk;
// the official clients of every API served: openai (Python, Node), anthropic,
// google-genai, langchain-openai (Responses), openai-agents
mod clients;

// executor stubs: outcomes, sequences, unmatched calls, delays
mod executor;
// executor stubs: faults wiremock can inject honestly; the rest refused at start
mod executor_faults;
