// Starts a private stack for the browser tests: redis-server, ai-service, gateway, and a TCP
// proxy in front of the gateway that can drop every connection on demand.
//
//   browser ──► proxy (node net) ──► gateway ──► ai-service
//                                       └──────────┴──► redis-server (own port, no persistence)
//
// Binaries come from STACK_BIN_DIR (default <repo>/target/debug). Process logs go to
// tests/output/browser/logs/. Everything started here is killed by stop(), and by an 'exit'
// hook if the test process dies first.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');
export const OUTPUT_DIR = path.join(REPO_ROOT, 'tests', 'output', 'browser');
const LOG_DIR = path.join(OUTPUT_DIR, 'logs');
const BIN_DIR = process.env.STACK_BIN_DIR || path.join(REPO_ROOT, 'target', 'debug');
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const READY_TIMEOUT_MS = Number(process.env.STACK_READY_TIMEOUT_MS || 60_000);

/** Every child still running, so an unexpected exit can still kill them. */
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
});

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Spawns a long-running child with stdout+stderr appended to logs/<name>.log. */
function startProcess(name, cmd, args, env) {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `${name}.log`);
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(cmd, args, {
    env: { RUST_LOG: 'info', NO_COLOR: '1', ...process.env, ...env },
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  const proc = { name, child, logFile, exited: null };
  children.add(child);
  proc.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      proc.exited = { code, signal };
      resolve(proc.exited);
    });
    child.on('error', (err) => {
      children.delete(child);
      proc.exited = { error: err.message };
      resolve(proc.exited);
    });
  });
  return proc;
}

async function stopProcess(proc, graceMs = 5000) {
  if (!proc || proc.exited) return;
  proc.child.kill('SIGTERM');
  const timedOut = await Promise.race([proc.exitPromise.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut && !proc.exited) {
    proc.child.kill('SIGKILL');
    await proc.exitPromise;
  }
}

/** Polls until `check()` resolves truthy; fails early if one of `procs` exits. */
async function waitFor(what, check, procs, timeoutMs = READY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const p of procs) {
      if (p.exited) {
        throw new Error(`${p.name} exited (${JSON.stringify(p.exited)}) before ${what}:\n${tail(p.logFile)}`);
      }
    }
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      const logs = procs.map((p) => `--- ${p.name} (${p.logFile})\n${tail(p.logFile)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logs}`);
    }
    await sleep(100);
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(1000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

async function httpOk(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await r.arrayBuffer();
  return r.status === 200;
}

/**
 * A TCP proxy in front of `targetPort`. dropAll() destroys every proxied connection at once
 * (both sides), which the browser sees as the server dropping the socket.
 */
export async function startProxy(targetPort) {
  const pairs = new Set();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted += 1;
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    get accepted() { return accepted; },
    get open() { return pairs.size; },
    /** Destroys every proxied connection; returns how many there were. */
    dropAll() {
      const n = pairs.size;
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      return n;
    },
    close() {
      this.dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Starts redis, ai-service, gateway and the proxy; resolves once both services are ready.
 * `aiEnv` / `gatewayEnv` are added to that process's environment (e.g. the ai-service's
 * `PROVIDER=openai` and `OPENAI_BASE_URL` for a scripted model); `name` prefixes the log files
 * when a test runs more than one stack.
 * @param {{ aiEnv?: Record<string, string>, gatewayEnv?: Record<string, string>, name?: string }} [options]
 */
export async function startStack({ aiEnv = {}, gatewayEnv = {}, name = '' } = {}) {
  const logName = (proc) => (name ? `${name}-${proc}` : proc);
  for (const bin of ['ai-service', 'gateway']) {
    const p = path.join(BIN_DIR, bin);
    if (!fs.existsSync(p)) {
      throw new Error(`missing binary ${p}: run \`cargo build -p gateway -p ai-service\` or set STACK_BIN_DIR`);
    }
  }
  const procs = [];
  const stack = {
    procs,
    proxy: null,
    async stop() {
      await stack.proxy?.close().catch(() => {});
      // Front to back, so nothing logs spurious errors about what is behind it.
      for (const p of [...procs].reverse()) await stopProcess(p);
    },
  };
  try {
    const redisPort = await freePort();
    const redis = startProcess(logName('redis'), REDIS_SERVER, [
      '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    ]);
    procs.push(redis);
    await waitFor('redis PING', () => redisPing(redisPort), [redis]);
    const redisUrl = `redis://127.0.0.1:${redisPort}`;

    // Each process also gets a free admin port (ADMIN_ADDR: /metrics, probes), so that stacks
    // never collide on its default.
    const aiPort = await freePort();
    const ai = startProcess(logName('ai-service'), path.join(BIN_DIR, 'ai-service'), [], {
      AI_ADDR: `127.0.0.1:${aiPort}`,
      ADMIN_ADDR: `127.0.0.1:${await freePort()}`,
      REDIS_URL: redisUrl,
      ...aiEnv,
    });
    procs.push(ai);
    const aiUrl = `http://127.0.0.1:${aiPort}`;

    const gwPort = await freePort();
    const gw = startProcess(logName('gateway'), path.join(BIN_DIR, 'gateway'), [], {
      GATEWAY_ADDR: `127.0.0.1:${gwPort}`,
      ADMIN_ADDR: `127.0.0.1:${await freePort()}`,
      REDIS_URL: redisUrl,
      AI_SERVICE_URL: aiUrl,
      ...gatewayEnv,
    });
    procs.push(gw);
    const gatewayUrl = `http://127.0.0.1:${gwPort}`;

    await waitFor('ai-service /readyz', () => httpOk(`${aiUrl}/readyz`), procs);
    await waitFor('gateway /readyz', () => httpOk(`${gatewayUrl}/readyz`), procs);

    stack.proxy = await startProxy(gwPort);
    Object.assign(stack, {
      redisUrl,
      aiUrl,
      gatewayUrl,
      /** The page is loaded through the proxy so its WebSocket goes through it too. */
      pageUrl: `http://127.0.0.1:${stack.proxy.port}/`,
      /** The page's origin (through the proxy), for addresses such as `/c/<session_id>`. */
      origin: `http://127.0.0.1:${stack.proxy.port}`,
      /** What the store holds for a message: {state, last_seq, text, ...}. */
      async stored(sessionId, messageId) {
        const r = await fetch(`${aiUrl}/v1/sessions/${sessionId}/messages/${messageId}`);
        const body = await r.text();
        if (r.status !== 200) throw new Error(`GET stored message: HTTP ${r.status}: ${body}`);
        return JSON.parse(body);
      },
    });
    return stack;
  } catch (e) {
    await stack.stop();
    throw e;
  }
}
