// Real-browser tests of the reference web client (gateway/static/{index.html,app.js,style.css}).
//
// What runs: a private redis-server, the ai-service and gateway binaries from STACK_BIN_DIR
// (default <repo>/target/debug), a node TCP proxy in front of the gateway, and headless
// Chromium (/usr/bin/chromium, or CHROMIUM_PATH) driven by playwright-core. The page is
// loaded through the proxy, so its WebSocket goes through it and the proxy can drop it.
//
// Run:   cargo build -p gateway -p ai-service && tests/browser/run.sh
//   or:  cd tests/browser && npm ci && node --test
// Needs: redis-server and chromium on PATH (apt-get install -y redis-server chromium).
// Output: screenshots in tests/output/browser/*.png; service and browser-console logs in
//         tests/output/browser/logs/.
//
// The demo model obeys a first prompt line `!demo tokens=N rate=R` (R tokens/s, 0 = max).
// Every test compares what the page shows with what the store holds
// (GET /v1/sessions/{session_id}/messages/{message_id} on the ai-service): they must be equal.
// Synchronisation is always on page state (waitForFunction / waitForSelector), never sleeps.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { OUTPUT_DIR, REPO_ROOT, startStack } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT_MS = 30_000;

let stack;
let browser;

before(async () => {
  fs.mkdirSync(path.join(OUTPUT_DIR, 'logs'), { recursive: true });
  stack = await startStack();
  try {
    // The gateway embeds gateway/static at build time: make sure it serves what is on disk.
    for (const [url, file] of [['/', 'index.html'], ['/app.js', 'app.js'], ['/style.css', 'style.css']]) {
      const served = await (await fetch(new URL(url, stack.gatewayUrl))).text();
      const onDisk = fs.readFileSync(path.join(REPO_ROOT, 'gateway', 'static', file), 'utf8');
      assert.equal(served, onDisk, `gateway serves a stale ${file}: rebuild it (cargo build -p gateway)`);
    }
    // A fresh temporary profile per launch (playwright's default).
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  } catch (e) {
    await stack.stop();
    throw e;
  }
}, { timeout: 120_000 });

after(async () => {
  await browser?.close().catch(() => {});
  await stack?.stop();
});

// ------------------------------------------------------------------ helpers

/** Opens the client in a fresh context and waits until it is online with a session. */
async function openClient(name, viewport = { width: 1024, height: 768 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.stack || e}`));
  const close = async () => {
    fs.writeFileSync(path.join(OUTPUT_DIR, 'logs', `console-${name}.log`), `${consoleLines.join('\n')}\n`);
    await context.close();
  };
  try {
    await page.goto(stack.pageUrl);
    await page.waitForFunction(
      () => document.body.dataset.conn === 'online' && !!document.body.dataset.sessionId,
      null, { timeout: WAIT_MS });
  } catch (e) {
    await close();
    throw e;
  }
  // Record every connection-indicator state the page goes through.
  await page.evaluate(() => {
    window.__connHistory = [document.body.dataset.conn];
    new MutationObserver(() => {
      const s = document.body.dataset.conn;
      if (window.__connHistory.at(-1) !== s) window.__connHistory.push(s);
    }).observe(document.body, { attributes: true, attributeFilter: ['data-conn'] });
  });
  const pageErrors = () => consoleLines.filter((l) => l.startsWith('[pageerror]'));
  return { page, close, pageErrors };
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
  return id;
}

const sel = (id) => `.msg-assistant[data-message-id="${id}"]`;

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
  return page.evaluate((s) => {
    const el = document.querySelector(s);
    return {
      status: el.dataset.status,
      lastSeq: Number(el.dataset.lastSeq),
      text: el.querySelector('[data-testid=answer-text]').textContent,
      elementsInText: el.querySelectorAll('[data-testid=answer-text] *').length,
      sessionId: document.body.dataset.sessionId,
    };
  }, sel(id));
}

async function errorCount(page) {
  return page.locator('[data-testid=error], [role=alert]').count();
}

async function screenshot(page, file) {
  const p = path.join(OUTPUT_DIR, file);
  await page.screenshot({ path: p, fullPage: false });
  assert.ok(fs.statSync(p).size > 0, `${p} written`);
}

/** The page's text for the answer equals the store's, and the states agree. */
async function assertMatchesStore(page, id, status) {
  const shown = await pageState(page, id);
  const stored = await stack.stored(shown.sessionId, id);
  assert.equal(shown.status, status, 'status shown by the page');
  assert.equal(stored.state, status, 'state in the store');
  assert.equal(shown.lastSeq, stored.last_seq, 'page rendered every chunk in the store');
  assert.equal(shown.text, stored.text, 'page text equals stored text (no loss, no duplicate)');
  assert.equal(shown.elementsInText, 0, 'model text is inserted as text, never as HTML');
  return { shown, stored };
}

// ------------------------------------------------------------------ tests

describe('reference web client', () => {
  test('a message streams, completes, and equals the stored text', { timeout: 90_000 }, async () => {
    const { page, close, pageErrors } = await openClient('send');
    try {
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
    const { page, close, pageErrors } = await openClient('phone', { width: 375, height: 740 });
    try {
      const id = await sendPrompt(page, '!demo tokens=40 rate=0\nshort answer please');
      await waitForStatus(page, id, 'completed');
      await assertMatchesStore(page, id, 'completed');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling at phone width (overflow ${overflow}px)`);
      for (const tid of ['input', 'send']) {
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
