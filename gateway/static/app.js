// The reference web client: a thin UI over @streamline/client (./streamline-client.js, the
// library bundled by clients/js/scripts/bundle.mjs). The library does the protocol:
// reconnect with backoff, resume of every unfinished answer, repeats and gaps, Stop before
// the ack, merged chunks (caps=merge), and what a reload needs, kept in localStorage. This file
// only draws it.
//
// Addresses:
//   /            starts a new conversation; once welcomed the address becomes /c/<session_id>
//                (history.replaceState), so a reload or another tab of this browser joins it
//   /c/<id>      joins that session with the resume token the library keeps in localStorage;
//                a session this browser has no token for starts a new one, and says so
//   "New chat"   a new session (the address moves with history.pushState; Back returns)
// A login JWT (gateways with AUTH_SECRET) comes from the address: #token=<jwt> or ?token=<jwt>;
// it stays in the address when the path changes.
//
// A reload redraws the conversation: the unfinished answers at once from storage, then every
// turn from `client.conversation()` (answers with their final status; running ones go on).
//
// Test hooks (stable, used by tests/browser):
//   body[data-session-id]        the session id, once welcomed
//   body[data-conn]              connecting | online | reconnecting | offline
//   body[data-connects]          `welcome`s of this conversation's client (2 after one reconnect)
//   body[data-cancel-acks]       Stop presses answered (each `cancel()` that resolved)
//   body[data-last-cancel-status] the latest answer's status (cancelling, already_cancelled, …)
//   body[data-history]           loaded | unsupported: whether client.conversation() answered
//   answer elements: see answer-view.js; [data-testid=error]: any error shown to the user;
//   [data-testid=notice]: a polite note that is not an error.

import { connect, KEY_PREFIX } from './streamline-client.js';
import { AnswerView } from './answer-view.js';
import { errorText } from './error-text.js';

/** A Stop this soon after the last answer ended is still sent (the server says already_*). */
const CANCEL_GRACE_MS = 3_000;
const SESSION_PATH = /^\/c\/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\/?$/;
/** The library's record of the session the last client used (clients/js README, "Storage"). */
const CURRENT_KEY = `${KEY_PREFIX}current`;

const CONN_TEXT = {
  connecting: 'Connecting…',
  online: 'Online',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

const NOTICE_NOT_HERE = 'That conversation is not saved in this browser, so a new one was started.';
const NOTICE_LOST = 'That conversation could not be continued, so a new one was started.';

// ------------------------------------------------------------------ DOM

const $ = (sel) => document.querySelector(sel);
const logEl = $('#log');
const emptyHint = $('#empty-hint');
const formEl = $('#composer');
const inputEl = $('#input');
const cancelBtn = $('#cancel');
const newChatBtn = $('#new-chat');
const connEl = $('#conn');
const connTextEl = connEl.querySelector('.conn-text');
const bannerEl = $('#banner');
const noticeEl = $('#notice');
const body = document.body;

// ------------------------------------------------------------------ state

/** @type {import('./streamline-client.js').Client | null} */
let client = null;
/** @type {Array<() => void>} */
let listeners = [];
/** The turns on the page: the user's words and the answer to them, by message id. */
/** @type {Map<string, { user: HTMLElement | null, view: AnswerView }>} */
const turns = new Map();
let connects = 0;
let cancelAcks = 0;

// ------------------------------------------------------------------ helpers

/**
 * A login token (JWT) for gateways that require one, from the page address: `#token=…`
 * (preferred: a fragment never reaches server logs) or `?token=…`.
 */
function loginToken() {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  return fromHash || new URLSearchParams(location.search).get('token') || '';
}

/** Moves the address to `path`, keeping the query and fragment (the login token). */
function setPath(path, how) {
  if (location.pathname === path) return;
  const url = `${path}${location.search}${location.hash}`;
  if (how === 'push') history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

let scrollQueued = false;
let stickToBottom = true;
logEl.addEventListener('scroll', () => {
  stickToBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 40;
});
function scrollToEnd(force = false) {
  if (force) stickToBottom = true;
  if (scrollQueued || !stickToBottom) return;
  scrollQueued = true;
  requestAnimationFrame(() => {
    scrollQueued = false;
    logEl.scrollTop = logEl.scrollHeight;
  });
}

// ------------------------------------------------------------------ status, banner, notice

function setConnState(state) {
  connEl.dataset.state = state;
  connTextEl.textContent = CONN_TEXT[state] ?? state;
  body.dataset.conn = state;
}

/**
 * Shows an error that belongs to no answer. `action`: a button that fixes it.
 * @param {string} code @param {string} text @param {{ label: string, run: () => void }} [action]
 */
function showBanner(code, text, action) {
  const note = el('div', 'error');
  note.setAttribute('role', 'alert');
  note.dataset.testid = 'error';
  note.dataset.code = code;
  note.append(el('span', '', text));
  const dismissBanner = () => {
    note.remove();
    bannerEl.hidden = bannerEl.childElementCount === 0;
  };
  if (action) {
    const b = el('button', 'banner-action', action.label);
    b.type = 'button';
    b.addEventListener('click', () => {
      dismissBanner();
      action.run();
    });
    note.append(b);
  }
  const dismiss = el('button', 'banner-close', '×');
  dismiss.type = 'button';
  dismiss.setAttribute('aria-label', 'Dismiss');
  dismiss.addEventListener('click', () => {
    dismissBanner();
    inputEl.focus();
  });
  note.append(dismiss);
  bannerEl.replaceChildren(note);
  bannerEl.hidden = false;
}

function clearBanner() {
  bannerEl.replaceChildren();
  bannerEl.hidden = true;
}

/** @param {string | null} text */
function setNotice(text) {
  noticeEl.textContent = text ?? '';
  noticeEl.hidden = text === null;
}

// ------------------------------------------------------------------ the conversation view

function onViewChange() {
  scrollToEnd();
  updateControls();
}

function updateControls() {
  cancelBtn.hidden = ![...turns.values()].some((t) => t.view.live);
}

/** The turn of a message, made on first sight; the user's words are added once known. */
function ensureTurn(messageId, content) {
  let t = turns.get(messageId);
  if (!t) {
    t = { user: null, view: new AnswerView(messageId, onViewChange) };
    turns.set(messageId, t);
    emptyHint.remove();
    logEl.append(t.view.element);
  }
  if (!t.user && typeof content === 'string') {
    t.user = el('article', 'msg msg-user');
    t.user.setAttribute('aria-label', 'You said');
    t.user.dataset.testid = 'user-message';
    t.user.append(el('div', 'msg-text', content));
    t.view.element.before(t.user);
  }
  return t;
}

/** A live answer of the client, drawn and followed. */
function showAnswer(answer) {
  const t = ensureTurn(answer.messageId, answer.content);
  t.view.follow(answer);
  updateControls();
  return t;
}

/** Puts the turns in this order (messages the list does not name keep theirs, after it). */
function orderTurns(ids) {
  const listed = ids.filter((id) => turns.has(id));
  const named = new Set(listed);
  const want = [...listed, ...[...turns.keys()].filter((id) => !named.has(id))];
  const now = [...logEl.querySelectorAll('.msg-assistant')].map((e) => e.dataset.messageId);
  if (want.length === now.length && want.every((id, i) => id === now[i])) return;
  for (const id of want) {
    const t = turns.get(id);
    if (t.user) logEl.append(t.user);
    logEl.append(t.view.element);
  }
}

/**
 * Redraws the conversation from the server's list: every turn, finished answers with their
 * final status, running ones followed (the library resumes them).
 * @param {import('./streamline-client.js').ConversationEntry[]} entries
 */
function showConversation(entries, first) {
  for (const e of entries) {
    const t = ensureTurn(e.messageId, e.content);
    if (e.answer) t.view.follow(e.answer);
    else if (!t.view.live) t.view.showFinished(e);
  }
  orderTurns(entries.map((e) => e.messageId));
  updateControls();
  // The first drawing shows the latest turn; later ones (reconnects) keep the reader's place.
  scrollToEnd(first);
}

function refreshConversation() {
  const c = client;
  c.conversation().then(
    (entries) => {
      if (c !== client) return;
      const first = body.dataset.history !== 'loaded';
      body.dataset.history = 'loaded';
      showConversation(entries, first);
    },
    (e) => {
      if (c !== client) return;
      if (e?.code === 'unsupported') body.dataset.history = 'unsupported';
      else if (e?.code !== 'client_closed') console.warn('conversation', e);
    },
  );
}

// ------------------------------------------------------------------ the client

/**
 * Connects for the address the page is at: a new session at `/`, the named one at `/c/<id>`.
 */
function open() {
  teardown();
  const wanted = SESSION_PATH.exec(location.pathname)?.[1]?.toLowerCase();
  const token = loginToken();
  const options = { url: '/ws', token: token || undefined };
  let c = null;
  if (wanted) {
    try {
      c = connect({ ...options, session: wanted });
    } catch (e) {
      if (e?.code !== 'unknown_session') throw e;
      setNotice(NOTICE_NOT_HERE);
    }
  }
  if (!c) {
    // A new session: without this the library would rejoin the last one of this browser.
    try {
      localStorage.removeItem(CURRENT_KEY);
    } catch {
      /* no storage: nothing to rejoin anyway */
    }
    c = connect(options);
  }
  client = c;
  listeners = [
    c.on('state', (s) => {
      setConnState(s);
      if (s !== 'online') return;
      connects += 1;
      body.dataset.connects = String(connects);
      body.dataset.sessionId = c.sessionId;
      setPath(`/c/${c.sessionId}`, 'replace');
      refreshConversation();
    }),
    c.on('session', (id) => {
      body.dataset.sessionId = id;
      setPath(`/c/${id}`, 'replace');
      if (wanted && id !== wanted && noticeEl.hidden) setNotice(NOTICE_LOST);
    }),
    c.on('message', (answer) => showAnswer(answer)),
    c.on('error', (e) => {
      if (e.code === 'session_replaced') {
        showBanner(e.code, errorText(e.code), { label: 'Use it here', run: () => client?.reconnect() });
        return;
      }
      showBanner(e.code, errorText(e.code, e.message));
    }),
  ];
  setConnState(c.state);
  // A reload: the unfinished answers, with the text the previous page had, at once.
  for (const a of c.answers()) showAnswer(a);
}

/** Leaves the current conversation (its answers go on on the server; storage keeps them). */
function teardown() {
  for (const off of listeners) off();
  listeners = [];
  client?.close();
  client = null;
  for (const t of turns.values()) t.view.detach();
  turns.clear();
  logEl.replaceChildren(emptyHint);
  clearBanner();
  setNotice(null);
  connects = 0;
  body.dataset.connects = '0';
  delete body.dataset.sessionId;
  delete body.dataset.history;
  updateControls();
}

// ------------------------------------------------------------------ sending and stopping

function submit() {
  const content = inputEl.value;
  if (!content.trim() || !client) return;
  inputEl.value = '';
  autosize();
  // Offline, the library sends it at the next welcome.
  showAnswer(client.chat(content));
  scrollToEnd(true);
}

/** @param {AnswerView} view */
function sendCancel(view) {
  view.answer?.cancel().then(
    (status) => {
      cancelAcks += 1;
      body.dataset.cancelAcks = String(cancelAcks);
      body.dataset.lastCancelStatus = status;
    },
    (e) => {
      if (e?.code !== 'client_closed') {
        showBanner(e.code, `The answer could not be stopped. ${errorText(e.code, e.message)}`);
      }
    },
  );
}

/** Stop / Esc. Every press is sent: the server answers each with a harmless cancel_ack. */
function cancelPressed() {
  const live = [...turns.values()].filter((t) => t.view.live);
  if (live.length === 0) {
    // A press just after an answer ended: still ask; the server says already_*.
    let last = null;
    for (const { view } of turns.values()) {
      if (view.answer && view.endedAt > (last?.endedAt ?? 0)) last = view;
    }
    if (last && Date.now() - last.endedAt < CANCEL_GRACE_MS) sendCancel(last);
    return;
  }
  for (const t of live) {
    t.view.markStopping();
    sendCancel(t.view);
  }
}

// ------------------------------------------------------------------ input

function autosize() {
  inputEl.style.height = 'auto';
  inputEl.style.height = `${Math.min(inputEl.scrollHeight, 160)}px`;
}

formEl.addEventListener('submit', (ev) => {
  ev.preventDefault();
  submit();
  inputEl.focus();
});
inputEl.addEventListener('input', autosize);
inputEl.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
    ev.preventDefault();
    submit();
  }
});
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && !ev.isComposing) {
    ev.preventDefault();
    cancelPressed();
  }
});
cancelBtn.addEventListener('click', () => cancelPressed());
newChatBtn.addEventListener('click', () => {
  setPath('/', 'push');
  open();
  inputEl.focus();
});
window.addEventListener('popstate', () => open());
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted) client?.reconnect();
});

body.dataset.cancelAcks = '0';
open();
inputEl.focus();
