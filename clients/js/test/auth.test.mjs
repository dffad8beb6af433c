// @ts-check
// A gateway with AUTH_SECRET: the token function is called on every (re)connect, and each
// connection presents the token it returned (HS256 JWTs signed here with node:crypto).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { collect, demo, nextState, online, signJwt, untilSeq, useStack } from './support.mjs';

const SECRET = 'client-test-secret-0123456789';

const ctx = useStack({ AUTH_SECRET: SECRET });

test('a token function that changes value is called on every reconnect', async () => {
  /** @type {string[]} */
  const issued = [];
  const token = async () => {
    const t = signJwt(SECRET, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600, jti: `t${issued.length}` });
    issued.push(t);
    return t;
  };
  const c = ctx.client({ token });
  let onlines = 0;
  c.on('state', (s) => {
    if (s === 'online') onlines += 1;
  });
  try {
    const a = c.chat(demo(300, 50, 'with a login'));
    const got = collect(a);
    await online(c);
    const sessionId = c.sessionId;
    for (let cut = 0; cut < 3; cut++) {
      await untilSeq(a, a.lastSeq + 3);
      const back = nextState(c, 'online');
      ctx.stack.proxy.dropAll();
      await back;
    }
    assert.equal(onlines, 4);
    assert.equal(issued.length, 4, 'one token per connection');
    assert.equal(new Set(issued).size, 4, 'each a different value');
    assert.equal(c.sessionId, sessionId, 'the session (a v2 resume token bound to sub) survived');
    assert.equal((await a.done).status, 'completed');
    const stored = await ctx.stack.stored(c.sessionId ?? '', a.messageId);
    assert.equal((await got).text, stored.text);
  } finally {
    c.close();
  }
});

test('without a valid token the client never gets online and keeps the answer queued', async () => {
  let calls = 0;
  /** @type {() => void} */
  let thirdCall = () => {};
  const third = new Promise((r) => (thirdCall = () => r(undefined)));
  const c = ctx.client({
    token: () => {
      calls += 1;
      if (calls === 3) thirdCall();
      return signJwt('another-secret-0123456789', { sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 });
    },
    reconnect: { baseMs: 20, maxMs: 40 },
  });
  try {
    const a = c.chat(demo(3, 0));
    // Three refused attempts, each with a fresh call of the token function.
    await third;
    assert.notEqual(c.state, 'online');
    assert.equal(a.status, 'pending');
  } finally {
    c.close();
  }
});
