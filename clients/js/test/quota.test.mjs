// @ts-check
// A stack with USER_TOKEN_BUDGET: an answer that spends its user's budget ends
// failed/quota_exceeded with its usage, and the next chat of that user is refused with
// `quota_exceeded` and `retry_after_s` (which the client does not retry by itself).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { demo, signJwt, useStack } from './support.mjs';

const SECRET = 'client-test-secret-0123456789';
const BUDGET = 30;

const ctx = useStack({ AUTH_SECRET: SECRET, USER_TOKEN_BUDGET: String(BUDGET) });

test('a spent budget ends the answer, then refuses the next chat with retry_after_s', async () => {
  const c = ctx.client({ token: () => signJwt(SECRET, { sub: 'erin', exp: Math.floor(Date.now() / 1000) + 600 }) });
  try {
    const first = await c.chat(demo(400, 200, 'a long one')).done;
    assert.equal(first.status, 'failed');
    assert.equal(first.error?.code, 'quota_exceeded');
    const used = first.usage?.completion_tokens ?? 0;
    assert.ok(used >= BUDGET && used < 400, `completion_tokens ${used}`);

    const second = await c.chat(demo(3, 0, 'one more')).done;
    assert.equal(second.status, 'failed');
    assert.equal(second.error?.code, 'quota_exceeded');
    const after = second.error?.retry_after_s ?? 0;
    assert.ok(after >= 1 && after <= 3600, `retry_after_s ${after}`);
  } finally {
    c.close();
  }
});
