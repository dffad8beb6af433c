// Real-browser tests of the reference web client (gateway/static: index.html, app.js and its
// modules, and streamline-client.js, the @streamline/client bundle).
//
// What runs: two private stacks (harness.mjs: redis-server, the ai-service and gateway
// binaries from STACK_BIN_DIR, default <repo>/target/debug, and a node TCP proxy in front of
// the gateway), and headless Chromium (/usr/bin/chromium, or CHROMIUM_PATH) driven by
// playwright-core:
//   - `stack`: the demo model. It obeys a first prompt line `!demo tokens=N rate=R` (R tokens/s,
//     0 = max; `fail_after=K`; `reasoning=N`: N reasoning tokens before the answer);
//   - `scripted`: the ai-service's real OpenAI provider in front of fake-openai.mjs, a scripted
//     model server speaking the OpenAI streaming wire format (for Markdown and hostile output).
// The page is loaded through the proxy, so its WebSocket goes through it and the proxy can drop
// it.
//
// Run:   cargo build -p gateway -p ai-service && tests/browser/run.sh
//   or:  cd tests/browser && npm ci && node --test
// Needs: redis-server and chromium on PATH (apt-get install -y redis-server chromium).
// Output: screenshots in tests/output/browser/*.png; service and browser-console logs in
//         tests/output/browser/logs/.
//
// Every test compares what the page shows with what the store holds
// (GET /v1/sessions/{session_id}/messages/{message_id} on the ai-service): they must be equal.
// Synchronisation is always on page state (waitForFunction / waitForSelector) or on events of
// the fake model, never sleeps. Tests of features the server does not have yet skip with
// `needs server support: …`, decided by server-support.mjs probing the gateway itself.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { startFakeOpenAi, tokenize } from './fake-openai.mjs';
import { OUTPUT_DIR, REPO_ROOT, startStack } from './harness.mjs';
import { needs, probeServer } from './server-support.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT_MS = 30_000;
const STATIC_DIR = path.join(REPO_ROOT, 'gateway', 'static');
/** What the gateway serves from gateway/static, and as what. */
const SERVED = [
  ['/', 'index.html', 'text/html'],
  [`/c/${crypto.randomUUID()}`, 'index.html', 'text/html'],
  ['/app.js', 'app.js', 'text/javascript'],
  ['/answer-view.js', 'answer-view.js', 'text/javascript'],
  ['/markdown.js', 'markdown.js', 'text/javascript'],
  ['/error-text.js', 'error-text.js', 'text/javascript'],
  ['/streamline-client.js', 'streamline-client.js', 'text/javascript'],
  ['/style.css', 'style.css', 'text/css'],
];
/** The elements markdown.js makes, and the attributes each may carry. Nothing else. */
const MARKDOWN_ELEMENTS = {
  P: [], H3: [], H4: [], H5: [], H6: [], UL: [], OL: ['start'], LI: [], PRE: ['data-lang', 'data-open'],
  CODE: [], STRONG: [], EM: [], DEL: [], BLOCKQUOTE: [], HR: [], A: ['href', 'rel', 'target'],
};

let stack;
let scripted;
let fakeModel;
let browser;
/** What the gateway under test supports (server-support.mjs). */
let support;

before(async () => {
  fs.mkdirSync(path.join(OUTPUT_DIR, 'logs'), { recursive: true });
  fakeModel = await startFakeOpenAi();
  stack = await startStack();
  try {
    scripted = await startStack({
      name: 'scripted',
      aiEnv: { PROVIDER: 'openai', OPENAI_BASE_URL: fakeModel.baseUrl, OPENAI_MODEL: 'fake-model' },
    });
    // The gateway embeds gateway/static at build time: make sure it serves what is on disk.
    for (const [url, file, type] of SERVED) {
      const r = await fetch(new URL(url, stack.gatewayUrl));
      const served = await r.text();
      const onDisk = fs.readFileSync(path.join(STATIC_DIR, file), 'utf8');
      assert.equal(r.status, 200, url);
      assert.equal(served, onDisk, `gateway serves a stale ${file} at ${url}: rebuild it (cargo build -p gateway)`);
      assert.ok(r.headers.get('content-type').startsWith(type), `${url}: ${r.headers.get('content-type')}`);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', url);
      if (type === 'text/html') {
        assert.match(r.headers.get('content-security-policy'), /script-src 'self'; /, `${url}: strict CSP`);
      }
    }
    assert.equal((await fetch(new URL('/c/not-a-session', stack.gatewayUrl))).status, 404);
    // A fresh temporary profile per context (playwright's default).
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const probe = await browser.newPage();
    await probe.goto(new URL('/healthz', stack.gatewayUrl).href);
    support = await probeServer(probe);
    await probe.close();
    console.log(`# server support: ${JSON.stringify(support)}`);
  } catch (e) {
    await scripted?.stop();
    await stack.stop();
    throw e;
  }
}, { timeout: 180_000 });

after(async () => {
  await browser?.close().catch(() => {});
  await scripted?.stop();
  await stack?.stop();
  await fakeModel?.close();
});

// ------------------------------------------------------------------ helpers

/** Collects a page's console lines and page errors; `pageErrors()` returns the latter. */
function watchConsole(page, lines) {
  page.on('console', (m) => lines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`[pageerror] ${e.stack || e}`));
}

/** Waits until the page is online with a session. */
async function waitOnline(page) {
  await page.waitForFunction(
    () => document.body.dataset.conn === 'online' && !!document.body.dataset.sessionId,
    null, { timeout: WAIT_MS });
}

/** Records every connection-indicator state the page goes through (window.__connHistory). */
async function recordConnStates(page) {
  await page.evaluate(() => {
    window.__connHistory = [document.body.dataset.conn];
    new MutationObserver(() => {
      const s = document.body.dataset.conn;
      if (window.__connHistory.at(-1) !== s) window.__connHistory.push(s);
    }).observe(document.body, { attributes: true, attributeFilter: ['data-conn'] });
  });
}

/**
 * Opens the client in a fresh context (a fresh browser profile) and waits until it is online
 * with a session. `at`: the stack to load it from, and a path (default `/`).
 */
async function openClient(name, { viewport = { width: 1024, height: 768 }, on = stack, path: at = '/' } = {}) {
  const context = await browser.newContext({ viewport });
  const consoleLines = [];
  const pages = [];
  /** Another tab of the same profile (same localStorage), loaded at `url`. */
  const newTab = async (url) => {
    const page = await context.newPage();
    watchConsole(page, consoleLines);
    pages.push(page);
    await page.goto(url);
    await waitOnline(page);
    await recordConnStates(page);
    return page;
  };
  const close = async () => {
    fs.writeFileSync(path.join(OUTPUT_DIR, 'logs', `console-${name}.log`), `${consoleLines.join('\n')}\n`);
    await context.close();
  };
  let page;
  try {
    page = await newTab(new URL(at, on.origin).href);
  } catch (e) {
    await close();
    throw e;
  }
  const pageErrors = () => consoleLines.filter((l) => l.startsWith('[pageerror]'));
  return { page, context, newTab, close, pageErrors };
}

/** Types a prompt the way a user does (Shift+Enter between lines, Enter to send). */
async function sendPrompt(page, text) {
  const before = await page.locator('.msg-assistant').count();
  await page.locator('[data-testid=input]').focus();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) await page.keyboard.press('Shift+Enter');
    await page.keyboard.type(lines[i]);
  }
  await page.keyboard.press('Enter');
  const answer = page.locator('.msg-assistant').nth(before);
  await answer.waitFor({ timeout: WAIT_MS });
  const id = await answer.getAttribute('data-message-id');
  assert.match(id, /^[0-9a-f-]{36}$/, 'each answer carries its message id');
  assert.equal(await answer.getAttribute('data-testid'), 'answer');
  return id;
}

/** Sends a prompt without typing it (for prompts with characters a keyboard would mangle). */
async function sendText(page, text) {
  const before = await page.locator('.msg-assistant').count();
  await page.locator('[data-testid=input]').fill(text);
  await page.locator('[data-testid=send]').click();
  const answer = page.locator('.msg-assistant').nth(before);
  await answer.waitFor({ timeout: WAIT_MS });
  return answer.getAttribute('data-message-id');
}

const sel = (id) => `[data-testid=answer][data-message-id="${id}"]`;

function waitForStatus(page, id, status) {
  return page.waitForFunction(
    ([s, want]) => document.querySelector(s)?.dataset.status === want,
    [sel(id), status], { timeout: WAIT_MS });
}

function waitForSeq(page, id, atLeast) {
  return page.waitForFunction(
    ([s, n]) => Number(document.querySelector(s)?.dataset.lastSeq) >= n,
    [sel(id), atLeast], { timeout: WAIT_MS });
}

async function pageState(page, id) {
  return page.evaluate(([s, allowed]) => {
    const el = document.querySelector(s);
    const textEl = el.querySelector('[data-testid=answer-text]');
    const strays = [];
    for (const e of textEl.querySelectorAll('*')) {
      const attrs = allowed[e.tagName];
      if (!attrs) strays.push(e.tagName);
      else for (const a of e.getAttributeNames()) if (!attrs.includes(a)) strays.push(`${e.tagName}[${a}]`);
    }
    return {
      status: el.dataset.status,
      lastSeq: Number(el.dataset.lastSeq),
      text: textEl.textContent,
      html: textEl.innerHTML,
      strays,
      sessionId: document.body.dataset.sessionId,
    };
  }, [sel(id), MARKDOWN_ELEMENTS]);
}

async function errorCount(page) {
  return page.locator('[data-testid=error], [role=alert]').count();
}

async function screenshot(page, file) {
  const p = path.join(OUTPUT_DIR, file);
  await page.screenshot({ path: p, fullPage: false });
  assert.ok(fs.statSync(p).size > 0, `${p} written`);
}

/**
 * The page's answer equals the store's: the states agree, every chunk was drawn, and the
 * drawn text is the stored text. The demo model writes plain words, so its Markdown is the
 * text itself; `markdown: true` compares the drawing with markdown.js's own drawing of the
 * stored text instead (what the page shows is then exactly what the stored text renders to).
 * `redrawn: true`: a finished answer drawn from the conversation's text, not from chunks (it
 * has no seq to compare).
 */
async function assertMatchesStore(page, id, status, { on = stack, markdown = false, redrawn = false } = {}) {
  const shown = await pageState(page, id);
  const stored = await on.stored(shown.sessionId, id);
  assert.equal(shown.status, status, 'status shown by the page');
  assert.equal(stored.state, status, 'state in the store');
  if (redrawn) assert.ok(Number.isNaN(shown.lastSeq), 'a redrawn answer was not drawn from chunks');
  else assert.equal(shown.lastSeq, stored.last_seq, 'page rendered every chunk in the store');
  assert.deepEqual(shown.strays, [], 'model text is drawn as text: only the Markdown elements, none with other attributes');
  if (markdown) {
    assert.equal(shown.html, await renderInPage(page, stored.text), 'page shows exactly the stored text as Markdown');
  } else {
    assert.equal(shown.text, stored.text, 'page text equals stored text (no loss, no duplicate)');
  }
  return { shown, stored };
}

/** markdown.js's drawing of `source`, made in the page on a detached element. */
function renderInPage(page, source) {
  return page.evaluate(async (src) => {
    const { MarkdownView } = await import('/markdown.js');
    const div = document.createElement('div');
    new MarkdownView(div).update(src);
    return div.innerHTML;
  }, source);
}

function sessionFromUrl(page) {
  return /\/c\/([0-9a-f-]{36})$/.exec(new URL(page.url()).pathname)?.[1];
}

// ------------------------------------------------------------------ tests

describe('reference web client', () => {
  test('a message streams, completes, and equals the stored text', { timeout: 90_000 }, async () => {
    const { page, close, pageErrors } = await openClient('send');
    try {
      // Welcomed at /: the address names the new session.
      const sessionId = await page.evaluate(() => document.body.dataset.sessionId);
      assert.equal(sessionFromUrl(page), sessionId, 'the address moved to /c/<session_id>');
      const id = await sendPrompt(page, '!demo tokens=60 rate=30\nhello <b>not bold</b> & <img src=x>');

      // The user's own words are shown literally, as text.
      const user = page.locator('.msg-user').last();
      assert.equal(await user.locator('.msg-text').textContent(),
        '!demo tokens=60 rate=30\nhello <b>not bold</b> & <img src=x>');
      assert.equal(await page.locator('#log img, #log b').count(), 0, 'no HTML from user text');

      // Streaming: some chunks rendered, Stop visible, still streaming.
      await waitForSeq(page, id, 3);
      assert.equal((await pageState(page, id)).status, 'streaming');
      assert.ok(await page.locator('[data-testid=cancel]').isVisible(), 'Stop is visible while streaming');
      await screenshot(page, '01-streaming.png');

      await waitForStatus(page, id, 'completed');
      assert.equal(await page.locator('[data-testid=cancel]').isVisible(), false, 'Stop hidden after the answer');
      const { shown } = await assertMatchesStore(page, id, 'completed');
      assert.ok(shown.text.length > 0, 'the answer has text');
      assert.equal(await errorCount(page), 0, 'no error shown');
      await screenshot(page, '02-completed.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('Cancel pressed 10 times within 200 ms stops the answer without any error', { timeout: 90_000 }, async (t) => {
    const { page, close, pageErrors } = await openClient('cancel');
    try {
      const id = await sendPrompt(page, '!demo tokens=1000 rate=20\nplease write a long answer');
      await waitForSeq(page, id, 3);

      // Press 1 is a real click on Stop; presses 2-10 are Esc (Stop may already be gone).
      const stop = page.locator('[data-testid=cancel]');
      const box = await stop.boundingBox();
      assert.ok(box, 'Stop is visible while streaming');
      // When the page itself saw each press (capture phase, before the app's handlers).
      await page.evaluate(() => {
        window.__presses = [];
        const note = (ev) => {
          if (ev.type === 'click' || ev.key === 'Escape') window.__presses.push(performance.now());
        };
        window.addEventListener('click', note, true);
        window.addEventListener('keydown', note, true);
      });
      // Issued back to back without waiting for each round trip; the browser gets them in order.
      const t0 = performance.now();
      await Promise.all([
        page.mouse.click(box.x + box.width / 2, box.y + box.height / 2),
        ...Array.from({ length: 9 }, () => page.keyboard.press('Escape')),
      ]);
      const elapsed = performance.now() - t0;
      const presses = await page.evaluate(() => window.__presses);
      const span = presses.at(-1) - presses[0];
      t.diagnostic(`10 presses: ${span.toFixed(0)} ms apart in the page, ${elapsed.toFixed(0)} ms for the driver`);
      assert.equal(presses.length, 10, 'the page saw 10 presses');
      assert.ok(span < 200, `the 10 presses reached the page within ${span.toFixed(0)} ms`);

      await waitForStatus(page, id, 'cancelled');
      // Every press was sent and every one answered by a harmless cancel_ack.
      await page.waitForFunction(() => Number(document.body.dataset.cancelAcks) >= 10, null, { timeout: WAIT_MS });
      assert.equal(await errorCount(page), 0, 'no error shown after repeated cancels');
      const status = await page.locator(`${sel(id)} [data-testid=answer-status]`).textContent();
      assert.match(status, /cancel/i, 'the answer is marked cancelled');
      assert.equal(await stop.isVisible(), false, 'Stop hidden once the answer stopped');
      const { stored } = await assertMatchesStore(page, id, 'cancelled');
      assert.ok(stored.last_seq < 1000, 'the answer stopped early');

      // A press well after the end is also silent.
      await page.keyboard.press('Escape');
      assert.equal(await errorCount(page), 0);
      await screenshot(page, '03-cancelled.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('Enter then Esc within the same frame: the cancel wins and nothing streams on', { timeout: 90_000 }, async () => {
    const { page, close, pageErrors } = await openClient('enter-esc');
    try {
      const before = await page.locator('.msg-assistant').count();
      await page.locator('[data-testid=input]').fill('!demo tokens=6 rate=4\nslow');
      // Both key presses in one task of the page: the chat and its cancel leave together.
      await page.evaluate(() => {
        const input = document.querySelector('[data-testid=input]');
        const key = (target, k) => target.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
        key(input, 'Enter');
        key(document, 'Escape');
      });
      const answer = page.locator('.msg-assistant').nth(before);
      await answer.waitFor({ timeout: WAIT_MS });
      const id = await answer.getAttribute('data-message-id');
      await waitForStatus(page, id, 'cancelled');
      await page.waitForFunction(() => Number(document.body.dataset.cancelAcks) >= 1, null, { timeout: WAIT_MS });
      assert.equal(await page.evaluate(() => document.body.dataset.lastCancelStatus), 'cancelling',
        'the cancel met its message (never not_found)');
      const { stored } = await assertMatchesStore(page, id, 'cancelled');
      assert.ok(stored.last_seq <= 1, `at most one chunk before the cancel (${stored.last_seq})`);
      assert.equal(await errorCount(page), 0, 'no error shown');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('the server dropping the socket mid-answer: the page reconnects and the text is complete', { timeout: 90_000 }, async () => {
    const { page, close, pageErrors } = await openClient('reconnect');
    try {
      const sessionId = await page.evaluate(() => document.body.dataset.sessionId);
      const id = await sendPrompt(page, '!demo tokens=200 rate=40\ntell me a story');
      await waitForSeq(page, id, 5);

      const acceptedBefore = stack.proxy.accepted;
      const dropped = stack.proxy.dropAll();
      const seqAtDrop = (await pageState(page, id)).lastSeq;
      assert.ok(dropped >= 1, 'the proxy dropped the page socket');

      // Reconnects (second welcome), same session, and goes on streaming.
      await page.waitForFunction(
        () => Number(document.body.dataset.connects) >= 2 && document.body.dataset.conn === 'online',
        null, { timeout: WAIT_MS });
      assert.equal(await page.evaluate(() => document.body.dataset.sessionId), sessionId, 'same session resumed');
      assert.ok(stack.proxy.accepted > acceptedBefore, 'the new socket came through the proxy');
      const history = await page.evaluate(() => window.__connHistory);
      assert.ok(history.includes('reconnecting'), `indicator showed reconnecting: ${history}`);
      await screenshot(page, '04-reconnected.png');

      await waitForStatus(page, id, 'completed');
      const { stored } = await assertMatchesStore(page, id, 'completed');
      assert.ok(stored.last_seq > seqAtDrop, `the drop was mid-answer (seq ${seqAtDrop} of ${stored.last_seq})`);
      assert.equal(await errorCount(page), 0, 'a reconnect is not an error');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('a real failure is shown in plain words', { timeout: 90_000 }, async () => {
    const { page, close, pageErrors } = await openClient('failure');
    try {
      const id = await sendPrompt(page, '!demo tokens=50 rate=50 fail_after=5\nthis one breaks');
      await waitForStatus(page, id, 'failed');
      await assertMatchesStore(page, id, 'failed');
      const err = page.locator(`${sel(id)} [data-testid=error]`);
      assert.equal(await err.getAttribute('data-code'), 'upstream_error');
      assert.equal(await err.getAttribute('role'), 'alert');
      const words = await err.textContent();
      assert.ok(words.length > 10 && !/upstream_error|[{}]/.test(words), `plain words: ${words}`);
      assert.equal(await page.locator('[data-testid=error]').count(), 1, 'exactly one error shown');
      await screenshot(page, '06-failed.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('phone width: usable layout, answer completes', { timeout: 90_000 }, async () => {
    const { page, close, pageErrors } = await openClient('phone', { viewport: { width: 375, height: 740 } });
    try {
      const id = await sendPrompt(page, '!demo tokens=40 rate=0\nshort answer please');
      await waitForStatus(page, id, 'completed');
      await assertMatchesStore(page, id, 'completed');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling at phone width (overflow ${overflow}px)`);
      for (const tid of ['input', 'send', 'new-chat', 'connection']) {
        const b = await page.locator(`[data-testid=${tid}]`).boundingBox();
        assert.ok(b && b.x >= 0 && b.x + b.width <= 375, `${tid} fits the screen`);
      }
      await screenshot(page, '05-phone.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });
});

describe('conversations: reloads, tabs, addresses', () => {
  test('reload mid-answer: the same answer completes with identical text, and the earlier turns are redrawn', { timeout: 120_000 }, async (t) => {
    const { page, close, pageErrors } = await openClient('reload');
    try {
      const sessionId = sessionFromUrl(page);
      assert.ok(sessionId, `the address names the session: ${page.url()}`);
      const first = await sendPrompt(page, '!demo tokens=12 rate=0\nthe first turn');
      await waitForStatus(page, first, 'completed');
      const second = await sendPrompt(page, '!demo tokens=300 rate=25\nthe second turn, long');
      await waitForSeq(page, second, 5);
      const before = await pageState(page, second);

      await page.reload();
      await waitOnline(page);
      assert.equal(sessionFromUrl(page), sessionId, 'still the same address');
      assert.equal(await page.evaluate(() => document.body.dataset.sessionId), sessionId, 'the reload joined the session');
      // The unfinished answer is back at once with what the page had (storage), and goes on.
      const again = await pageState(page, second);
      assert.ok(again.text.startsWith(before.text.slice(0, 20)), 'the reloaded page shows the text it had');
      assert.notEqual(again.status, 'completed', 'the reload happened mid-answer');
      await screenshot(page, '07-reloaded.png');
      await waitForStatus(page, second, 'completed');
      const { stored } = await assertMatchesStore(page, second, 'completed');
      assert.ok(stored.last_seq > before.lastSeq, `reloaded mid-answer (seq ${before.lastSeq} of ${stored.last_seq})`);
      assert.equal(await page.locator(`${sel(second)}`).count(), 1, 'one element for the answer');
      assert.equal(await errorCount(page), 0, 'a reload is not an error');
      assert.deepEqual(pageErrors(), []);

      const skip = needs(support, 'conversation');
      if (skip) {
        t.skip(skip);
        return;
      }
      // The earlier turn, from the server's conversation: its words, its answer, in order.
      await page.waitForSelector(sel(first), { timeout: WAIT_MS });
      await assertMatchesStore(page, first, 'completed', { redrawn: true });
      const order = await page.evaluate(() => [...document.querySelectorAll('#log > .msg')].map((e) =>
        e.classList.contains('msg-user') ? `user:${e.textContent}` : `answer:${e.dataset.messageId}`));
      assert.deepEqual(order, [
        'user:!demo tokens=12 rate=0\nthe first turn', `answer:${first}`,
        'user:!demo tokens=300 rate=25\nthe second turn, long', `answer:${second}`,
      ]);
      await screenshot(page, '08-reload-redrawn.png');
    } finally {
      await close();
    }
  });

  test('two tabs on one /c/<id>: both show the same final text, and Stop in one stops both', { timeout: 120_000 }, async (t) => {
    const skip = needs(support, 'severalSockets');
    if (skip) {
      t.skip(skip);
      return;
    }
    const { page: a, newTab, close, pageErrors } = await openClient('two-tabs');
    try {
      const sessionId = sessionFromUrl(a);
      const b = await newTab(a.url());
      assert.equal(await b.evaluate(() => document.body.dataset.sessionId), sessionId, 'the second tab joined the session');

      // A message started in B appears in A; both end with the stored text.
      const done = await sendPrompt(b, '!demo tokens=30 rate=30\nfrom tab B');
      await waitForStatus(a, done, 'completed');
      await waitForStatus(b, done, 'completed');
      const inA = await assertMatchesStore(a, done, 'completed');
      const inB = await assertMatchesStore(b, done, 'completed');
      assert.equal(inA.shown.text, inB.shown.text, 'both tabs show the same text');
      assert.equal(await a.locator('.msg-user').last().textContent(), '!demo tokens=30 rate=30\nfrom tab B',
        "tab A shows tab B's words");

      // A long answer started in A, stopped in B: both end cancelled with the same text.
      const long = await sendPrompt(a, '!demo tokens=1000 rate=20\na long one from tab A');
      await waitForSeq(b, long, 3);
      await waitForSeq(a, long, 3);
      await b.locator('[data-testid=cancel]').click();
      await waitForStatus(b, long, 'cancelled');
      await waitForStatus(a, long, 'cancelled');
      const stoppedA = await assertMatchesStore(a, long, 'cancelled');
      const stoppedB = await assertMatchesStore(b, long, 'cancelled');
      assert.equal(stoppedA.shown.text, stoppedB.shown.text, 'both tabs stopped at the same text');
      assert.ok(stoppedA.stored.last_seq < 1000, 'the answer stopped early');
      for (const p of [a, b]) {
        assert.equal(await errorCount(p), 0, 'no error in either tab');
        assert.equal(await p.evaluate(() => document.body.dataset.conn), 'online', 'both tabs stay online');
      }
      await screenshot(a, '09-tab-a.png');
      await screenshot(b, '10-tab-b.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('/c/<id> this browser has no token for: a new session, said politely, no error', { timeout: 90_000 }, async () => {
    const unknown = crypto.randomUUID();
    const { page, close, pageErrors } = await openClient('unknown-session', { path: `/c/${unknown}` });
    try {
      const sessionId = await page.evaluate(() => document.body.dataset.sessionId);
      assert.notEqual(sessionId, unknown, 'a session of its own');
      assert.equal(sessionFromUrl(page), sessionId, 'the address names the new session');
      const notice = page.locator('[data-testid=notice]');
      assert.ok(await notice.isVisible(), 'a notice says what happened');
      assert.match(await notice.textContent(), /new one was started/);
      assert.equal(await errorCount(page), 0, 'no error page, no error');
      const id = await sendPrompt(page, '!demo tokens=10 rate=0\nworks');
      await waitForStatus(page, id, 'completed');
      await assertMatchesStore(page, id, 'completed');
      await screenshot(page, '11-unknown-session.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('"New chat" starts a new session and moves the address; Back returns to the first', { timeout: 90_000 }, async (t) => {
    const { page, close, pageErrors } = await openClient('new-chat');
    try {
      const firstSession = sessionFromUrl(page);
      const id = await sendPrompt(page, '!demo tokens=10 rate=0\nin the first chat');
      await waitForStatus(page, id, 'completed');

      await page.locator('[data-testid=new-chat]').click();
      await page.waitForFunction((old) => document.body.dataset.conn === 'online'
        && document.body.dataset.sessionId && document.body.dataset.sessionId !== old, firstSession, { timeout: WAIT_MS });
      const secondSession = await page.evaluate(() => document.body.dataset.sessionId);
      assert.equal(sessionFromUrl(page), secondSession, 'the address moved to the new session');
      assert.equal(await page.locator('[data-testid=answer]').count(), 0, 'the new chat is empty');
      const next = await sendPrompt(page, '!demo tokens=10 rate=0\nin the second chat');
      await waitForStatus(page, next, 'completed');
      await assertMatchesStore(page, next, 'completed');

      await page.goBack();
      await page.waitForFunction((old) => document.body.dataset.conn === 'online'
        && document.body.dataset.sessionId === old, firstSession, { timeout: WAIT_MS });
      assert.equal(sessionFromUrl(page), firstSession, 'Back: the first chat again');
      assert.equal(await page.locator(sel(next)).count(), 0, "the second chat's answer is not shown here");
      assert.equal(await errorCount(page), 0);
      assert.deepEqual(pageErrors(), []);
      const skip = needs(support, 'conversation');
      if (skip) {
        t.skip(skip);
        return;
      }
      await page.waitForSelector(sel(id), { timeout: WAIT_MS });
      await assertMatchesStore(page, id, 'completed', { redrawn: true });
    } finally {
      await close();
    }
  });
});

describe('model output', () => {
  test('Markdown renders: paragraphs, lists, code blocks (an unclosed fence as code while it streams)', { timeout: 90_000 }, async () => {
    const prompt = 'markdown please';
    const answer = [
      'Here is **the plan**, in *short*:',
      '',
      '- apples',
      '- pears, `ripe`',
      '  - nested item',
      '',
      '1. first',
      '2. second',
      '',
      '```js',
      'const ok = 1 < 2 && "<b>";',
      'console.log(ok);',
      '```',
      '',
      'Done.',
    ].join('\n');
    const tokens = tokenize(answer);
    // Hold the answer inside the code block: after "const ok" has been sent.
    const holdAfter = tokens.findIndex((_, i) => tokens.slice(0, i).join('').includes('const ok = 1'));
    fakeModel.script(prompt, { tokens, holdAfter });
    const { page, close, pageErrors } = await openClient('markdown', { on: scripted });
    try {
      const id = await sendText(page, prompt);
      await fakeModel.held(prompt);
      const text = page.locator(`${sel(id)} [data-testid=answer-text]`);
      // Mid-answer: the fence is open, and what came of it is already a code block.
      await page.waitForFunction((s) => document.querySelector(s)?.querySelector('pre[data-open] code')?.textContent.startsWith('const ok = 1'),
        `${sel(id)} [data-testid=answer-text]`, { timeout: WAIT_MS });
      assert.equal(await text.locator('ul > li').count(), 3, 'the bullet list so far (with its nested item)');
      await screenshot(page, '12-markdown-streaming.png');
      fakeModel.release(prompt);

      await waitForStatus(page, id, 'completed');
      const { stored } = await assertMatchesStore(page, id, 'completed', { on: scripted, markdown: true });
      assert.equal(stored.text, answer, 'the store holds the scripted answer');
      assert.equal(await text.locator('p').first().textContent(), 'Here is the plan, in short:');
      assert.equal(await text.locator('p strong').first().textContent(), 'the plan');
      assert.equal(await text.locator('p em').first().textContent(), 'short');
      assert.deepEqual(await text.locator(':scope > ul > li').evaluateAll((li) => li.map((e) => e.firstChild.textContent)),
        ['apples', 'pears, ']);
      assert.equal(await text.locator(':scope > ul > li code').textContent(), 'ripe');
      assert.equal(await text.locator(':scope > ul > li > ul > li').textContent(), 'nested item');
      assert.deepEqual(await text.locator(':scope > ol > li').allTextContents(), ['first', 'second']);
      assert.equal(await text.locator('pre').getAttribute('data-lang'), 'js');
      assert.equal(await text.locator('pre').getAttribute('data-open'), null, 'the fence closed');
      assert.equal(await text.locator('pre code').textContent(), 'const ok = 1 < 2 && "<b>";\nconsole.log(ok);');
      assert.equal(await text.locator('b').count(), 0, 'markup inside code is text');
      assert.equal(await text.locator(':scope > p').last().textContent(), 'Done.');
      await screenshot(page, '13-markdown.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('model output with <img onerror>, <script> and javascript: links renders inert', { timeout: 90_000 }, async () => {
    const prompt = 'hostile please';
    const answer = [
      'Look: <img src=x onerror="window.__pwned_img=1"> and <script>window.__pwned_script=1</script>',
      '<svg onload="window.__pwned_svg=1"></svg><iframe src="javascript:window.__pwned_iframe=1"></iframe>',
      '[click me](javascript:window.__pwned_link=1) <a href="javascript:window.__pwned_a=1">a</a> [safe](https://example.com/)',
      '',
      '- **<img src=x onerror="window.__pwned_bold=1">** `<script>window.__pwned_code=1</script>`',
      '',
      '```html',
      '<script>window.__pwned_fence=1</script><img src=x onerror="window.__pwned_fence_img=1">',
      '```',
    ].join('\n');
    // The reasoning, too (OpenAI `reasoning_content` deltas, forwarded as reasoning chunks).
    const reasoning = ['<img src=x onerror="window.__pwned_reasoning=1">', ' <script>window.__pwned_thought=1</script>'];
    fakeModel.script(prompt, { tokens: tokenize(answer, 5), reasoning });
    const { page, close, pageErrors } = await openClient('inert', { on: scripted });
    try {
      // Whatever ran, or was stopped by the CSP, would leave a trace here.
      await page.evaluate(() => {
        window.__violations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));
      });
      const id = await sendText(page, prompt);
      await waitForStatus(page, id, 'completed');
      await assertMatchesStore(page, id, 'completed', { on: scripted, markdown: true });
      const flags = await page.evaluate(() => Object.keys(window).filter((k) => k.startsWith('__pwned')));
      assert.deepEqual(flags, [], 'no payload ran');
      assert.deepEqual(await page.evaluate(() => window.__violations), [], 'nothing even tried to run');
      assert.equal(await page.locator('#log img, #log script, #log svg, #log iframe').count(), 0, 'no element from model markup');
      const hrefs = await page.locator('#log a').evaluateAll((as) => as.map((a) => [a.href, a.rel, a.target]));
      assert.deepEqual(hrefs, [['https://example.com/', 'noopener noreferrer', '_blank']], 'only the https link is a link');
      const onAttrs = await page.evaluate(() => [...document.querySelectorAll('#log *')]
        .flatMap((e) => e.getAttributeNames().filter((a) => a.startsWith('on'))));
      assert.deepEqual(onAttrs, [], 'no event handler attributes');
      const shown = await page.locator(`${sel(id)} [data-testid=answer-text]`).textContent();
      for (const literal of ['<img src=x onerror="window.__pwned_img=1">', '<script>window.__pwned_script=1</script>',
        '[click me](javascript:window.__pwned_link=1)', '<script>window.__pwned_fence=1</script>']) {
        assert.ok(shown.includes(literal), `shown as the characters it is: ${literal}`);
      }
      assert.equal(await page.locator(`${sel(id)} [data-testid=reasoning-text]`).textContent(), reasoning.join(''),
        'the reasoning, shown as the characters it is');
      await screenshot(page, '14-inert.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });

  test('reasoning shows while it streams ("Thinking…"), then collapses once the answer begins', { timeout: 90_000 }, async (t) => {
    const skip = needs(support, 'reasoning');
    if (skip) {
      t.skip(skip);
      return;
    }
    const { page, close, pageErrors } = await openClient('reasoning');
    try {
      const id = await sendPrompt(page, '!demo reasoning=40 tokens=30 rate=20\nthink first');
      const details = page.locator(`${sel(id)} [data-testid=reasoning]`);
      // While only reasoning has come: shown, open, saying Thinking…, and no answer text.
      await page.waitForFunction((s) => {
        const d = document.querySelector(s);
        return d && !d.hidden && d.open && d.querySelector('[data-testid=reasoning-text]').textContent.length > 0;
      }, `${sel(id)} [data-testid=reasoning]`, { timeout: WAIT_MS });
      const during = await page.evaluate((s) => ({
        text: document.querySelector(`${s} [data-testid=answer-text]`).textContent,
        summary: document.querySelector(`${s} [data-testid=reasoning] summary`).textContent,
      }), sel(id));
      assert.equal(during.text, '', 'no answer text yet');
      assert.equal(during.summary, 'Thinking…');
      await screenshot(page, '15-reasoning.png');

      // The answer text begins: the reasoning folds away.
      await page.waitForFunction((s) => document.querySelector(`${s} [data-testid=answer-text]`).textContent.length > 0, sel(id), { timeout: WAIT_MS });
      await page.waitForFunction((s) => !document.querySelector(`${s} [data-testid=reasoning]`).open, sel(id), { timeout: WAIT_MS });
      await waitForStatus(page, id, 'completed');
      assert.equal(await details.evaluate((d) => d.open), false, 'collapsed');
      assert.ok((await details.locator('[data-testid=reasoning-text]').textContent()).length > 0, 'the reasoning is kept');
      // The answer text excludes the reasoning, and is what the store holds.
      await assertMatchesStore(page, id, 'completed');
      await details.locator('summary').click();
      assert.equal(await details.evaluate((d) => d.open), true, 'the user can open it again');
      await screenshot(page, '16-reasoning-collapsed.png');
      assert.deepEqual(pageErrors(), []);
    } finally {
      await close();
    }
  });
});
