// @ts-check
// End to end against the real stack (test/support.mjs): streaming, cuts of the socket
// mid-answer, Stop, and reloads. Every answer is compared with what the store holds
// (GET /v1/sessions/{sid}/messages/{mid} on the ai-service).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { connect } from '@streamline/client';

import { MemoryStorage, WebSocket, collect, demo, nextState, online, untilSeq, useStack, wsUrl } from './support.mjs';

const ctx = useStack({});
const client = ctx.client;

/** Asserts the answer, as collected, equals the store's record of it. */
async function assertStored(/** @type {import('@streamline/client').Client} */ c, /** @type {import('@streamline/client').Answer} */ a, /** @type {string} */ collected) {
  const sid = c.sessionId;
  assert.ok(sid, 'client has a session');
  const stored = await ctx.stack.stored(sid, a.messageId);
  assert.equal(collected, stored.text, 'parts, concatenated, equal the stored text');
  assert.equal(await a.text(), stored.text, 'text() equals the stored text');
  assert.equal(a.lastSeq, stored.last_seq, 'the answer ends at the stored last seq');
  return stored;
}

/**
 * Cuts every socket `cuts` times while `answers` stream: each cut waits until every unfinished
 * answer made progress since the last reconnect, so every cut lands mid-answer.
 * @param {import('@streamline/client').Client} c
 * @param {import('@streamline/client').Answer[]} answers
 * @param {number} cuts
 */
async function cutRepeatedly(c, answers, cuts, step = 3) {
  let made = 0;
  while (made < cuts) {
    const live = answers.filter((a) => !a.finished);
    if (live.length === 0) break;
    await Promise.all(live.map((a) => untilSeq(a, a.lastSeq + step).catch(() => {})));
    if (answers.every((a) => a.finished)) break;
    await online(c);
    const back = nextState(c, 'online');
    if (ctx.stack.proxy.dropAll() === 0) continue;
    made += 1;
    await back;
  }
  return made;
}

describe('streaming', () => {
  test('Node without storage: a chat streams, text() equals the stored text', async () => {
    assert.equal(/** @type {{localStorage?: unknown}} */ (globalThis).localStorage, undefined);
    const c = client();
    /** @type {string[]} */
    const states = [];
    c.on('state', (s) => states.push(s));
    const a = c.chat(demo(20, 0, 'first'));
    assert.match(a.messageId, /^[0-9a-f-]{36}$/);
    const got = collect(a);
    const outcome = await a.done;
    // Every end carries usage; the demo model reports none, so it is counted (estimated).
    assert.equal(outcome.status, 'completed');
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.usage?.completion_tokens, 20);
    assert.equal(outcome.usage?.estimated, true);
    const stored = await assertStored(c, a, (await got).text);
    assert.equal(stored.state, 'completed');
    assert.ok(stored.text.length > 0);
    assert.equal(a.status, 'completed');
    assert.deepEqual(states, ['online']);
    assert.deepEqual(c.answers(), [a]);
  });

  test('a chat with a caller-chosen messageId keeps it', async () => {
    const c = client();
    const id = crypto.randomUUID();
    const a = c.chat(demo(5, 0), { messageId: id });
    assert.equal(a.messageId, id);
    assert.equal(c.chat('again', { messageId: id }), a, 'the same id is the same answer');
    await assertStored(c, a, (await collect(a)).text);
  });

  test('five cuts during one long answer: every part once, in order', async () => {
    const c = client();
    const a = c.chat(demo(400, 60, 'a long one'));
    const got = collect(a);
    await online(c);
    const cuts = await cutRepeatedly(c, [a], 5);
    assert.equal(cuts, 5, 'five cuts landed mid-answer');
    assert.equal((await a.done).status, 'completed');
    await assertStored(c, a, (await got).text);
  });

  test('five cuts during three concurrent answers: each intact', async () => {
    const c = client();
    const answers = ['one', 'two', 'three'].map((t) => c.chat(demo(300, 50, t)));
    const got = answers.map((a) => collect(a));
    await online(c);
    const cuts = await cutRepeatedly(c, answers, 5);
    assert.equal(cuts, 5);
    for (const [i, a] of answers.entries()) {
      assert.equal((await a.done).status, 'completed');
      await assertStored(c, a, (await got[i]).text);
    }
  });

  test('a chat made while offline is sent once the client is online', async () => {
    const c = client();
    await online(c);
    const back = nextState(c, 'online');
    ctx.stack.proxy.dropAll();
    const a = c.chat(demo(10, 0, 'queued'));
    await back;
    await assertStored(c, a, (await collect(a)).text);
  });
});

describe('stop', () => {
  test('a cancel in the same tick as its chat ends the answer cancelled', async () => {
    const c = client();
    await online(c);
    const a = c.chat(demo(500, 20, 'stop me at once'));
    const status = a.cancel();
    assert.equal(await status, 'cancelling');
    const outcome = await a.done;
    assert.equal(outcome.status, 'cancelled');
    const stored = await assertStored(c, a, (await collect(a)).text);
    assert.equal(stored.state, 'cancelled');
  });

  test('duplicate cancels all resolve: one cancelling, the others already_cancelled', async () => {
    const c = client();
    const a = c.chat(demo(500, 20, 'stop me five times'));
    await untilSeq(a, 2);
    const statuses = await Promise.all([1, 2, 3, 4, 5].map(() => a.cancel()));
    assert.equal(statuses.filter((s) => s === 'cancelling').length, 1, `statuses: ${statuses}`);
    assert.equal(statuses.filter((s) => s === 'already_cancelled').length, 4, `statuses: ${statuses}`);
    assert.equal((await a.done).status, 'cancelled');
    assert.equal(await a.cancel(), 'already_cancelled', 'a Stop after the end resolves too');
    const stored = await assertStored(c, a, (await collect(a)).text);
    assert.equal(stored.state, 'cancelled');
  });

  test('a cancel while the socket is down is sent after the reconnect', async () => {
    const c = client();
    const a = c.chat(demo(500, 20, 'stop me offline'));
    await untilSeq(a, 2);
    const back = nextState(c, 'online');
    ctx.stack.proxy.dropAll();
    const status = a.cancel();
    await back;
    assert.equal(await status, 'cancelling');
    assert.equal((await a.done).status, 'cancelled');
    await assertStored(c, a, (await collect(a)).text);
  });

  test('a cancel after the answer completed resolves already_completed', async () => {
    const c = client();
    const a = c.chat(demo(3, 0));
    await a.done;
    assert.equal(await a.cancel(), 'already_completed');
  });
});

describe('reload', () => {
  test('a client on the storage a dropped page left continues its answer to the end', async () => {
    const storage = new MemoryStorage();
    const first = client({ storage });
    const a = first.chat(demo(300, 50, 'survive a reload'));
    await untilSeq(a, 10);
    // Storage is written in batches: wait until it holds part of the answer (under load the
    // first ten chunks can all arrive before the first batch is written).
    await storage.untilStored(a.messageId, 1);
    // The page dies here: whatever storage holds now is all the next page gets.
    const left = storage.snapshot();
    ctx.stack.proxy.dropAll();
    first.close();
    await assert.rejects(a.done, { code: 'client_closed' });

    const second = client({ storage: left });
    const [b] = second.answers();
    assert.ok(b, 'the unfinished answer is back');
    assert.equal(b.messageId, a.messageId);
    assert.equal(b.origin, 'storage');
    assert.ok(b.lastSeq > 0 && b.lastSeq <= a.lastSeq, 'it resumes from the stored seq');
    assert.ok(a.textSoFar.startsWith(b.textSoFar), 'the stored text is what the page had');
    const got = collect(b);
    assert.equal((await b.done).status, 'completed');
    assert.equal(second.sessionId, first.sessionId, 'the same session was rejoined');
    await assertStored(second, b, (await got).text);
  });

  test('connect({ session }) joins a session whose token is in storage', async () => {
    const storage = new MemoryStorage();
    const first = client({ storage });
    const a = first.chat(demo(200, 50, 'join me'));
    await untilSeq(a, 5);
    await online(first);
    const sid = first.sessionId;
    assert.ok(sid);
    first.close();
    const second = client({ storage, session: sid });
    const b = second.answer(a.messageId);
    assert.ok(b);
    await online(second);
    assert.equal(second.sessionId, sid);
    await assertStored(second, b, (await collect(b)).text);
    assert.throws(() => connect({ url: wsUrl(ctx.stack), WebSocket, storage, session: crypto.randomUUID() }), {
      code: 'unknown_session',
    });
  });

  test('storage keeps only unfinished answers, under streamline: keys', async () => {
    const storage = new MemoryStorage();
    const c = client({ storage });
    const a = c.chat(demo(5, 0));
    await a.done;
    const keys = [...storage.map.keys()];
    assert.ok(keys.length > 0 && keys.every((k) => k.startsWith('streamline:')), `keys: ${keys}`);
    const rec = JSON.parse(storage.getItem(`streamline:session:${c.sessionId}`) ?? 'null');
    assert.equal(rec.sessionId, c.sessionId);
    assert.deepEqual(rec.answers, []);
  });
});
