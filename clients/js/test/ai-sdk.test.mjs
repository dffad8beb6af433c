// @ts-check
// The AI SDK adapter (@streamline/client/ai-sdk) with the real `ai` package (v7): the
// transport driven directly, and through a Chat (AbstractChat with an in-memory state, as the
// framework packages build theirs), against the real stack.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { AbstractChat } from 'ai';
import { StreamlineChatTransport } from '@streamline/client/ai-sdk';

import { MemoryStorage, demo, untilSeq, useStack } from './support.mjs';

const ctx = useStack({});
const client = ctx.client;

/**
 * The chat state the framework packages (React, Vue, Svelte) keep (ChatState); here plain arrays.
 */
class MemoryChatState {
  /** @type {import('ai').ChatStatus} */
  status = 'ready';
  /** @type {Error | undefined} */
  error = undefined;
  /** @type {import('ai').UIMessage[]} */
  messages = [];
  /** @param {import('ai').UIMessage} m */
  pushMessage = (m) => {
    this.messages = [...this.messages, m];
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  /** @param {number} i @param {import('ai').UIMessage} m */
  replaceMessage = (i, m) => {
    this.messages = this.messages.map((x, j) => (j === i ? m : x));
  };
  /** @template T @param {T} thing @returns {T} */
  snapshot = (thing) => structuredClone(thing);
}

/** @extends {AbstractChat<import('ai').UIMessage>} */
class Chat extends AbstractChat {
  /** @param {import('ai').ChatTransport<import('ai').UIMessage>} transport @param {string} [id] */
  constructor(transport, id) {
    super({ transport, state: new MemoryChatState(), ...(id ? { id } : {}) });
  }
}

/** @param {import('ai').UIMessage | undefined} m */
const textOf = (m) => (m?.parts ?? []).map((p) => (p.type === 'text' ? p.text : '')).join('');

/** @param {ReadableStream<import('ai').UIMessageChunk>} stream */
async function readAll(stream) {
  /** @type {import('ai').UIMessageChunk[]} */
  const chunks = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    chunks.push(value);
  }
}

describe('StreamlineChatTransport', () => {
  test('sendMessages streams the answer as UI message chunks', async () => {
    const c = client();
    const transport = new StreamlineChatTransport({ client: c });
    const stream = await transport.sendMessages({
      trigger: 'submit-message',
      chatId: 'chat-1',
      messageId: undefined,
      messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: demo(30, 0, 'direct') }] }],
      abortSignal: undefined,
    });
    const chunks = await readAll(stream);
    const [answer] = c.answers();
    assert.ok(answer);
    const types = chunks.map((ch) => ch.type);
    assert.deepEqual(types.slice(0, 2), ['start', 'text-start']);
    assert.deepEqual(types.slice(-2), ['text-end', 'finish']);
    assert.deepEqual(chunks[0], { type: 'start', messageId: answer.messageId });
    const text = chunks.map((ch) => (ch.type === 'text-delta' ? ch.delta : '')).join('');
    const stored = await ctx.stack.stored(c.sessionId ?? '', answer.messageId);
    assert.equal(text, stored.text);
  });

  test('through Chat: sendMessage, the assistant message equals the stored text', async () => {
    const c = client();
    const chat = new Chat(new StreamlineChatTransport({ client: c }));
    await chat.sendMessage({ text: demo(40, 200, 'through chat') });
    assert.equal(chat.status, 'ready');
    const last = chat.messages.at(-1);
    assert.equal(last?.role, 'assistant');
    const [answer] = c.answers();
    assert.ok(answer);
    assert.equal(last?.id, answer.messageId);
    const stored = await ctx.stack.stored(c.sessionId ?? '', answer.messageId);
    assert.equal(textOf(last), stored.text);
  });

  test('chat.stop() cancels the answer on the server', async () => {
    const c = client();
    const transport = new StreamlineChatTransport({ client: c });
    /** @type {Promise<import('@streamline/client').Answer>} */
    const started = new Promise((resolve) => {
      const send = transport.sendMessages.bind(transport);
      transport.sendMessages = async (o) => {
        const stream = await send(o);
        const a = c.answers().at(-1);
        if (a) resolve(a);
        return stream;
      };
    });
    const chat = new Chat(transport);
    const sending = chat.sendMessage({ text: demo(500, 20, 'stop through chat') });
    const answer = await started;
    await untilSeq(answer, 2);
    await chat.stop();
    await sending;
    assert.equal((await answer.done).status, 'cancelled');
    const stored = await ctx.stack.stored(c.sessionId ?? '', answer.messageId);
    assert.equal(stored.state, 'cancelled');
  });

  test('resumeStream after a reload replays the unfinished answer to its end', async () => {
    const storage = new MemoryStorage();
    const first = client({ storage });
    const a = first.chat(demo(200, 50, 'resume through chat'));
    await untilSeq(a, 5);
    await storage.untilStored(a.messageId, 1);
    const left = storage.snapshot();
    first.close();

    const second = client({ storage: left });
    const chat = new Chat(new StreamlineChatTransport({ client: second }), 'chat-reloaded');
    await chat.resumeStream();
    const last = chat.messages.at(-1);
    assert.equal(last?.role, 'assistant');
    assert.equal(last?.id, a.messageId);
    const stored = await ctx.stack.stored(second.sessionId ?? '', a.messageId);
    assert.equal(stored.state, 'completed');
    assert.equal(textOf(last), stored.text);
  });

  test('reconnectToStream answers null when nothing runs', async () => {
    const c = client();
    const transport = new StreamlineChatTransport({ client: c });
    assert.equal(await transport.reconnectToStream({ chatId: 'none' }), null);
  });
});
