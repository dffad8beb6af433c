// @ts-check
// The client's pure parts, without a server: the sequencer (repeats, gaps, merged ranges,
// bounds), reconnect delays, JWT expiry, the close-code policy, and storage records.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Sequencer } from '../dist/sequencer.js';
import { DEFAULT_BACKOFF, reconnectDelay } from '../dist/backoff.js';
import { jwtExpiry, refreshDelay } from '../dist/jwt.js';
import { afterClose } from '../dist/close-code.js';
import { SessionStore } from '../dist/session-store.js';
import { MemoryStorage, signJwt } from './support.mjs';

/** @param {number} first @param {number} last @param {string} delta @returns {import('../dist/sequencer.js').Piece} */
const piece = (first, last, delta, kind = /** @type {'text' | 'reasoning'} */ ('text')) => ({ first, last, kind, delta });

describe('sequencer', () => {
  test('in order: each piece applied once; repeats dropped', () => {
    const s = new Sequencer();
    assert.deepEqual(s.offer(piece(1, 1, 'a')), { kind: 'applied', pieces: [piece(1, 1, 'a')], gap: false });
    assert.deepEqual(s.offer(piece(1, 1, 'a')), { kind: 'repeat' });
    assert.equal(s.offer(piece(2, 2, 'b')).kind, 'applied');
    assert.equal(s.lastSeq, 2);
  });

  test('a gap is buffered and drains once filled', () => {
    const s = new Sequencer();
    s.offer(piece(1, 1, 'a'));
    assert.deepEqual(s.offer(piece(3, 3, 'c')), { kind: 'gap', dropped: false });
    assert.deepEqual(s.offer(piece(4, 4, 'd')), { kind: 'gap', dropped: false });
    assert.ok(s.hasGap);
    const r = s.offer(piece(2, 2, 'b'));
    assert.equal(r.kind, 'applied');
    assert.deepEqual(r.kind === 'applied' && r.pieces.map((p) => p.delta), ['b', 'c', 'd']);
    assert.equal(s.lastSeq, 4);
    assert.ok(!s.hasGap);
  });

  test('merged chunks cover their whole range', () => {
    const s = new Sequencer();
    assert.equal(s.offer(piece(1, 3, 'abc')).kind, 'applied');
    assert.equal(s.lastSeq, 3);
    assert.deepEqual(s.offer(piece(2, 3, 'bc')), { kind: 'repeat' });
    // A merged range past a gap waits; the gap's merged filler drains it.
    assert.equal(s.offer(piece(6, 8, 'fgh')).kind, 'gap');
    const r = s.offer(piece(4, 5, 'de'));
    assert.deepEqual(r.kind === 'applied' && r.pieces.map((p) => p.delta), ['de', 'fgh']);
    assert.equal(s.lastSeq, 8);
  });

  test('a merged chunk straddling what we have cannot be cut: dropped, a resume is needed', () => {
    const s = new Sequencer(3);
    assert.deepEqual(s.offer(piece(2, 5, 'bcde')), { kind: 'gap', dropped: true });
    assert.equal(s.lastSeq, 3);
  });

  test('reasoning and text pieces keep their kind and order', () => {
    const s = new Sequencer();
    s.offer(piece(2, 2, 'answer'));
    const r = s.offer(piece(1, 1, 'thinking', 'reasoning'));
    assert.deepEqual(r.kind === 'applied' && r.pieces.map((p) => p.kind), ['reasoning', 'text']);
  });

  test('the buffer past a gap is bounded', () => {
    const s = new Sequencer(0, { maxPieces: 2, maxChars: 100 });
    assert.deepEqual(s.offer(piece(3, 3, 'c')), { kind: 'gap', dropped: false });
    assert.deepEqual(s.offer(piece(4, 4, 'd')), { kind: 'gap', dropped: false });
    assert.deepEqual(s.offer(piece(5, 5, 'e')), { kind: 'gap', dropped: true });
    const big = new Sequencer(0, { maxPieces: 10, maxChars: 3 });
    assert.deepEqual(big.offer(piece(2, 2, 'toolong')), { kind: 'gap', dropped: true });
    s.clearAhead();
    assert.ok(!s.hasGap);
  });
});

describe('reconnect delay', () => {
  test('full jitter: within [0, min(max, base * 2^n))', () => {
    assert.equal(reconnectDelay(0, false, DEFAULT_BACKOFF, () => 0), 0);
    assert.equal(reconnectDelay(0, false, DEFAULT_BACKOFF, () => 0.999), 499);
    assert.equal(reconnectDelay(3, false, DEFAULT_BACKOFF, () => 0.5), 2000);
    assert.equal(reconnectDelay(40, false, DEFAULT_BACKOFF, () => 0.5), 7500, 'capped at maxMs');
  });

  test('after a drain the first retry is spread over drainSpreadMs', () => {
    assert.equal(reconnectDelay(0, true, DEFAULT_BACKOFF, () => 0.5), 2500);
    assert.equal(reconnectDelay(0, true, DEFAULT_BACKOFF, () => 0), 0);
  });
});

describe('close codes', () => {
  test('each code has its plan', () => {
    assert.deepEqual(afterClose(1001), { kind: 'spread' });
    assert.deepEqual(afterClose(4001), { kind: 'stay_offline' });
    assert.deepEqual(afterClose(4003), { kind: 'now' });
    assert.deepEqual(afterClose(4000), { kind: 'now' });
    assert.deepEqual(afterClose(4008), { kind: 'backoff' });
    assert.deepEqual(afterClose(1006), { kind: 'backoff' });
  });
});

describe('jwt', () => {
  test('exp is read without verifying', () => {
    assert.equal(jwtExpiry(signJwt('k', { sub: 'a', exp: 1893456000 })), 1893456000);
    assert.equal(jwtExpiry(signJwt('k', { sub: 'a' })), undefined);
    assert.equal(jwtExpiry('not a jwt'), undefined);
    assert.equal(jwtExpiry('a.!!!.c'), undefined);
  });

  test('refresh comes shortly before exp', () => {
    const now = 1_000_000_000_000;
    assert.equal(refreshDelay(now / 1000 + 3600, now), 3540_000, 'an hour: a minute early');
    assert.equal(refreshDelay(now / 1000 + 100, now), 80_000, 'short: a fifth early');
    assert.equal(refreshDelay(now / 1000 + 3, now), 0, 'almost expired: now');
  });
});

describe('session store', () => {
  test('round trip, broken values read as absent, old sessions forgotten', () => {
    const storage = new MemoryStorage();
    /** @type {unknown[]} */
    const errors = [];
    const store = new SessionStore(storage, (e) => errors.push(e));
    /** @type {import('../dist/session-store.js').StoredSession} */
    const rec = {
      v: 1,
      sessionId: 's1',
      resumeToken: 't',
      answers: [{ id: 'm', content: 'hi', seq: 2, parts: [['text', 'ab']], chat: 'acked' }],
    };
    store.save(rec);
    assert.equal(store.current(), 's1');
    assert.deepEqual(store.load('s1'), rec);
    storage.setItem('streamline:session:s2', '{not json');
    assert.equal(store.load('s2'), undefined);
    for (let i = 0; i < 20; i++) store.save({ ...rec, sessionId: `x${i}`, answers: [] });
    assert.equal(store.load('s1'), undefined, 'the oldest sessions are dropped');
    assert.ok(store.load('x19'));
    assert.deepEqual(errors, []);
  });

  test('a storage that throws is reported, not fatal', () => {
    /** @type {unknown[]} */
    const errors = [];
    const store = new SessionStore(
      {
        getItem: () => null,
        setItem: () => {
          throw new Error('QuotaExceededError');
        },
        removeItem: () => {},
      },
      (e) => errors.push(e),
    );
    store.save({ v: 1, sessionId: 's', resumeToken: 't', answers: [] });
    assert.ok(errors.length > 0);
  });
});
