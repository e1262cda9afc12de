// Drives the LLM stub with the official `openai` Node SDK: a chat completion, a Responses
// call and a streamed Responses call. Prints one JSON line per check; exits non-zero at
// the first mismatch. Usage: node clients.mjs STUB_URI
import assert from "node:assert/strict";
import OpenAI from "openai";

const uri = process.argv[2];
const verdict = "The sword is well balanced; the grip needs a leather wrap.";
const client = new OpenAI({ baseURL: `${uri}/v1`, apiKey: "sk-stub", maxRetries: 0 });
const report = (check, fields = {}) => console.log(JSON.stringify({ check, ...fields }));

const chat = await client.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "You are the planner agent." },
    { role: "user", content: "Plan a sword" },
  ],
});
assert.deepEqual(JSON.parse(chat.choices[0].message.content), { subtasks: ["blade", "hilt"] });
assert.match(chat._request_id, /^req_/);
report("chat", { request_id: chat._request_id });

const response = await client.responses.create({ model: "gpt-4o", instructions: "You are the critic agent.", input: "Rate" });
assert.equal(response.output_text, verdict);
report("responses");

let text = "";
const types = [];
const stream = await client.responses.create({ model: "gpt-4o", instructions: "You are the critic agent.", input: "Rate", stream: true });
for await (const event of stream) {
  assert.equal(event.sequence_number, types.length);
  types.push(event.type);
  if (event.type === "response.output_text.delta") text += event.delta;
}
assert.equal(text, verdict);
assert.equal(types.at(-1), "response.completed");
report("responses_stream", { events: types.length });
