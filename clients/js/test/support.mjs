// @ts-check
// Shared pieces of the client's end-to-end tests. The stack itself (a private redis-server,
// target/debug/ai-service and target/debug/gateway, and a TCP proxy in front of the gateway
// that can cut every connection) is the browser tests' harness, imported, not copied:
// tests/browser/harness.mjs. Binaries come from STACK_BIN_DIR (default <repo>/target/debug).
//
// Everything here waits for events (parts of an answer, connection states), never for time.

import crypto from 'node:crypto';
import { after, before } from 'node:test';
import WebSocket from 'ws';
import { connect } from '@streamline/client';

// @ts-ignore -- plain JavaScript outside this package, used as it is (see test/tsconfig.json).
import { startStack } from '../../../tests/browser/harness.mjs';

export { WebSocket };

/**
 * @typedef {{
 *   aiUrl: string, gatewayUrl: string,
 *   proxy: { port: number, accepted: number, open: number, dropAll(): number },
 *   stored(sessionId: string, messageId: string): Promise<import('@streamline/client').MessageView>,
 *   stop(): Promise<void>,
 * }} Stack
 */

/**
 * Starts the stack; `gatewayEnv` is added to the environment of the processes it starts (the
 * harness passes process.env on), e.g. `{ AUTH_SECRET }`.
 * @param {Record<string, string>} [gatewayEnv]
 * @returns {Promise<Stack>}
 */
export async function startTestStack(gatewayEnv = {}) {
  const saved = Object.fromEntries(Object.keys(gatewayEnv).map((k) => [k, process.env[k]]));
  Object.assign(process.env, gatewayEnv);
  try {
    return /** @type {Stack} */ (/** @type {unknown} */ (await startStack()));
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * One stack for the test file (started before its tests, stopped after them), and a factory of
 * clients connected to it through the proxy, all closed at the end.
 * @param {Record<string, string>} [gatewayEnv] e.g. `{ AUTH_SECRET }`
 * @param {Partial<import('@streamline/client').ConnectOptions>} [defaults] options of every client
 */
export function useStack(gatewayEnv = {}, defaults = {}) {
  /** @type {import('@streamline/client').Client[]} */
  const clients = [];
  const ctx = {
    /** @type {Stack} */
    stack: /** @type {any} */ (undefined),
    /** @param {Partial<import('@streamline/client').ConnectOptions>} [extra] */
    client(extra = {}) {
      const c = connect({ url: wsUrl(ctx.stack), WebSocket, reconnect: { baseMs: 100, drainSpreadMs: 500 }, ...defaults, ...extra });
      clients.push(c);
      return c;
    },
  };
  before(async () => {
    ctx.stack = await startTestStack(gatewayEnv);
  }, { timeout: 120_000 });
  after(async () => {
    for (const c of clients) c.close();
    await ctx.stack?.stop();
  });
  return ctx;
}

/** The gateway's /ws through the proxy (so the test can cut the socket). @param {Stack} stack */
export function wsUrl(stack) {
  return `ws://127.0.0.1:${stack.proxy.port}/ws`;
}

/** A localStorage stand-in: the Web Storage API over a Map. */
export class MemoryStorage {
  /** @param {Map<string, string>} [entries] */
  constructor(entries) {
    /** @type {Map<string, string>} */
    this.map = new Map(entries);
    /** @type {Array<() => boolean>} */
    this.waiters = [];
  }
  /** @param {string} k */
  getItem(k) {
    return this.map.get(k) ?? null;
  }
  /** @param {string} k @param {string} v */
  setItem(k, v) {
    this.map.set(k, String(v));
    this.waiters = this.waiters.filter((w) => !w());
  }
  /** @param {string} k */
  removeItem(k) {
    this.map.delete(k);
  }
  /**
   * Resolves once the stored session holds answer `id` at a seq of at least `seq`: the client
   * writes storage in batches, so what a page leaves depends on when it dies. Checked now and
   * after every write.
   * @param {string} id @param {number} seq
   */
  untilStored(id, seq) {
    const stored = () => {
      for (const [k, v] of this.map) {
        if (!k.startsWith('streamline:session:')) continue;
        try {
          const a = JSON.parse(v).answers?.find((/** @type {{id: string}} */ x) => x.id === id);
          if (a && a.seq >= seq) return true;
        } catch {
          // not a session value
        }
      }
      return false;
    };
    if (stored()) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(() => {
        if (!stored()) return false;
        resolve(undefined);
        return true;
      });
    });
  }
  /** What a page that died right now would leave behind. */
  snapshot() {
    return new MemoryStorage(this.map);
  }
}

/**
 * Resolves once `answer` has received seq `n` (iterating it, so it wakes on every part);
 * rejects if the answer ends first.
 * @param {import('@streamline/client').Answer} answer @param {number} n
 */
export async function untilSeq(answer, n) {
  if (answer.lastSeq >= n) return;
  for await (const _ of answer) {
    if (answer.lastSeq >= n) return;
  }
  if (answer.lastSeq >= n) return;
  throw new Error(`answer ${answer.messageId} ended at seq ${answer.lastSeq} before seq ${n}`);
}

/**
 * Resolves at the client's next transition to `state`.
 * @param {import('@streamline/client').Client} client
 * @param {import('@streamline/client').ConnectionState} state
 */
export function nextState(client, state) {
  return new Promise((resolve) => {
    const off = client.on('state', (s) => {
      if (s === state) {
        off();
        resolve(undefined);
      }
    });
  });
}

/** Resolves when the client is online (now or later). @param {import('@streamline/client').Client} client */
export async function online(client) {
  if (client.state !== 'online') await nextState(client, 'online');
}

/**
 * Collects every part of an answer as a consumer would, checking each arrives once, in
 * order: the concatenation must equal the stored text (a repeat adds text, a loss removes it).
 * @param {import('@streamline/client').Answer} answer
 */
export async function collect(answer) {
  let text = '';
  let reasoning = '';
  let parts = 0;
  for await (const p of answer) {
    parts += 1;
    if (p.kind === 'text') text += p.delta;
    else reasoning += p.delta;
  }
  return { text, reasoning, parts };
}

/**
 * An HS256 JWT signed with node:crypto, as whatever logs users in would issue.
 * @param {string} secret @param {Record<string, unknown>} claims
 */
export function signJwt(secret, claims) {
  const b64 = (/** @type {object} */ o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = crypto.createHmac('sha256', secret).update(head).digest('base64url');
  return `${head}.${sig}`;
}

/** A demo-model prompt: `tokens` tokens at `rate` per second (0: as fast as possible). */
export function demo(/** @type {number} */ tokens, /** @type {number} */ rate, text = 'hello') {
  return `!demo tokens=${tokens} rate=${rate}\n${text}`;
}
