// A scripted OpenAI-compatible model server for the browser tests: the one allowed stand-in
// (the upstream model), speaking the real streaming wire format of Chat Completions, so the
// ai-service's real OpenAI provider (PROVIDER=openai, OPENAI_BASE_URL=<this>/v1) runs
// unchanged. The same shape as the Rust suites' fake (tests/src/upstream.rs):
//
//   POST /v1/chat/completions {stream: true, messages, stream_options?}
//   200 text/event-stream, chunked, one `data:` event per chunk of the body:
//     a role-only first delta · `reasoning_content` deltas · one `content` delta per token ·
//     a delta with `finish_reason: "stop"` · a usage chunk (`choices: []`) when asked for ·
//     `data: [DONE]`
//
// What it answers is chosen by the last user message: `script(prompt, reply)` registers a
// reply; any other prompt gets the single token "unscripted". A reply may hold after its
// `holdAfter`-th token until the test calls `release(prompt)`, so a test can look at the
// page mid-answer by waiting for an event (`held(prompt)`), never for time.

import http from 'node:http';

const MODEL = 'fake-model';

/**
 * @typedef {{ tokens: string[], reasoning?: string[], holdAfter?: number }} Reply
 */

function chunk(delta, finishReason = null) {
  return {
    id: 'chatcmpl-fake0123456789',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: MODEL,
    system_fingerprint: 'fp_fake',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

/** A deferred: a promise with its resolve. */
function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

export async function startFakeOpenAi() {
  /** @type {Map<string, Reply>} */
  const replies = new Map();
  /** @type {Map<string, { reached: ReturnType<typeof deferred>, go: ReturnType<typeof deferred> }>} */
  const holds = new Map();
  const hold = (prompt) => {
    if (!holds.has(prompt)) holds.set(prompt, { reached: deferred(), go: deferred() });
    return holds.get(prompt);
  };
  let requests = 0;

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', async () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
        return;
      }
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'invalid JSON', type: 'invalid_request_error' } }));
        return;
      }
      requests += 1;
      const prompt = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user')?.content ?? '';
      const reply = replies.get(prompt) ?? { tokens: ['unscripted'] };
      const usage = body.stream_options?.include_usage === true;
      let open = true;
      res.on('close', () => { open = false; });
      const send = (payload) => {
        if (!open) return;
        const event = typeof payload === 'string' ? payload : JSON.stringify(usage ? { ...payload, usage: null } : payload);
        res.write(`data: ${event}\n\n`);
      };
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      send(chunk({ role: 'assistant', content: '' }));
      for (const thought of reply.reasoning ?? []) send(chunk({ reasoning_content: thought }));
      for (let i = 0; i < reply.tokens.length; i++) {
        if (reply.holdAfter === i) {
          const h = hold(prompt);
          h.reached.resolve();
          await h.go.promise;
        }
        send(chunk({ content: reply.tokens[i] }));
      }
      send(chunk({}, 'stop'));
      if (usage) {
        const completion = reply.tokens.length;
        send(JSON.stringify({
          ...chunk({}),
          choices: [],
          usage: { prompt_tokens: 7, completion_tokens: completion, total_tokens: 7 + completion },
        }));
      }
      send('[DONE]');
      if (open) res.end();
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    /** The OPENAI_BASE_URL of this server. */
    baseUrl: `http://127.0.0.1:${port}/v1`,
    get requests() { return requests; },
    /** Answers `prompt` (the whole user message) with `reply`. @param {string} prompt @param {Reply} reply */
    script(prompt, reply) {
      replies.set(prompt, reply);
    },
    /** Resolves once the answer to `prompt` reached its hold point. */
    held(prompt) {
      return hold(prompt).reached.promise;
    },
    /** Lets the answer to `prompt` go on past its hold point. */
    release(prompt) {
      hold(prompt).go.resolve();
    },
    close() {
      for (const h of holds.values()) h.go.resolve();
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Splits text into model-like tokens: a few characters each, so Markdown arrives in pieces. */
export function tokenize(text, size = 3) {
  const tokens = [];
  for (let i = 0; i < text.length; i += size) tokens.push(text.slice(i, i + size));
  return tokens;
}
