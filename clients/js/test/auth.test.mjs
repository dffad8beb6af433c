// @ts-check
// A gateway with AUTH_SECRET: the token function is called on every (re)connect, and each
// connection presents the token it returned (HS256 JWTs signed here with node:crypto); before
// the token expires it is called again and the new token sent in-band (`auth`), and a
// connection whose token expired anyway (4003) comes back with a fresh one.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { collect, demo, nextState, online, signJwt, untilSeq, useStack } from './support.mjs';

const SECRET = 'client-test-secret-0123456789';

// A leeway of 1 s: a connection closes (4003) one second after its token's exp.
const ctx = useStack({ AUTH_SECRET: SECRET, JWT_LEEWAY: '1s' });

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

test('in-band token refresh: `auth` before exp keeps the socket, no reconnect', async () => {
  let calls = 0;
  const c = ctx.client({
    token: () => {
      calls += 1;
      return signJwt(SECRET, { sub: 'carol', exp: Math.floor(Date.now() / 1000) + 8 });
    },
  });
  try {
    let onlines = 0;
    c.on('state', (s) => {
      if (s === 'online') onlines += 1;
    });
    const a = c.chat(demo(600, 50, 'outlive the token'));
    await a.done;
    assert.ok(calls >= 2, 'the token function was called again before exp');
    assert.equal(onlines, 1, 'the socket was never replaced');
  } finally {
    c.close();
  }
});

test('a token that expires without a refresh: 4003, a fresh token, the answer resumed', async () => {
  // Until it expires, the first token is the only one there is: the refresh finds no newer
  // token and leaves it to the gateway's 4003; the reconnect after it gets a fresh one.
  const firstExp = Math.floor(Date.now() / 1000) + 3;
  const first = signJwt(SECRET, { sub: 'dave', exp: firstExp });
  /** @type {string[]} */
  const issued = [];
  const c = ctx.client({
    token: () => {
      const t = Date.now() < firstExp * 1000 ? first : signJwt(SECRET, { sub: 'dave', exp: Math.floor(Date.now() / 1000) + 600 });
      issued.push(t);
      return t;
    },
  });
  try {
    let onlines = 0;
    c.on('state', (s) => {
      if (s === 'online') onlines += 1;
    });
    const a = c.chat(demo(300, 50, 'past the token'));
    const got = collect(a);
    await online(c);
    const sessionId = c.sessionId;
    assert.equal((await a.done).status, 'completed');
    assert.equal(onlines, 2, 'reconnected once, after the 4003');
    assert.ok(issued.some((t) => t !== first), 'a fresh token for the reconnect');
    assert.equal(c.sessionId, sessionId, 'the same session, resumed');
    const stored = await ctx.stack.stored(c.sessionId ?? '', a.messageId);
    assert.equal((await got).text, stored.text);
  } finally {
    c.close();
  }
});
