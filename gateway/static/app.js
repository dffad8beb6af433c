// Reference web client for protocol v1 (see shared-proto/src/{client,server}.rs).
//
// One WebSocket to /ws on this origin. The page keeps, for every answer, the last chunk `seq`
// it rendered; that number is all it needs to survive a dropped socket: it reconnects with
// the session's resume token and sends `resume {message_id, after_seq}` for every answer that
// has not ended, so the server replays exactly what is missing.
//
// Model text is only ever inserted as text nodes, never parsed as HTML.
//
// Test hooks (stable, used by tests/browser):
//   body[data-session-id]      session id from the latest `welcome`
//   body[data-conn]            connecting | online | reconnecting | offline
//   body[data-connects]        number of `welcome` frames received (2 after one reconnect)
//   body[data-cancel-acks]     number of `cancel_ack` frames received
//   .msg-assistant[data-message-id][data-status]   status: streaming|completed|cancelled|failed
//   .msg-assistant[data-last-seq]                   last chunk seq rendered
//   .msg-assistant [data-testid=answer-text]        the answer's text, exactly as streamed
//   [data-testid=error]        any error shown to the user (absent when there is none)
'use strict';

(() => {
  const PROTOCOL_VERSION = 1;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15_000;
  const OFFLINE_AFTER_FAILURES = 5; // consecutive failed connects before we show "offline"
  const STALE_SESSION_AFTER_FAILURES = 3; // then ask /readyz whether our token is the problem
  const DEFAULT_HEARTBEAT_MS = 15_000;
  const CANCEL_GRACE_MS = 3_000; // a Stop/Esc this soon after an answer ended is still sent
  const MAX_BUFFERED_CHUNKS = 10_000; // out-of-order chunks kept while a gap is being filled
  const TRANSIENT_RETRIES = 3; // retries of a cancel/resume the server could not serve

  // Plain words for every code a user may see. Codes are protocol v1 (error_code.rs).
  const ERROR_TEXT = {
    upstream_error: 'The AI model ran into a problem and stopped answering.',
    upstream_auth: 'The AI model refused our credentials. Please tell the site operator.',
    upstream_rate_limited: 'The AI model is too busy right now. Please try again in a moment.',
    upstream_timeout: 'The AI model took too long to respond. Please try again.',
    worker_lost: 'The server writing this answer stopped unexpectedly. Please try again.',
    redis_unavailable: 'The service lost its storage while answering. Please try again.',
    store_unavailable: 'The service cannot reach its storage right now. Please try again shortly.',
    shutdown: 'The service restarted before the answer was finished. Please try again.',
    shutting_down: 'The service is restarting. Please try again in a moment.',
    internal: 'Something went wrong on the server. Please try again.',
    resume_unavailable: 'The connection dropped and the rest of this answer could not be recovered.',
    ai_service_unavailable: 'The AI service is unavailable right now. Please try again shortly.',
    rate_limited: 'You are sending messages too quickly. Please wait a moment.',
    too_many_generations: 'Too many answers are being written at once. Wait for one to finish or stop it.',
    content_too_long: 'That message is too long. Please shorten it.',
    empty_content: 'Please type a message first.',
    duplicate_message_id: 'This message was already sent.',
    invalid_json: 'The page sent something the server did not understand. Please reload.',
    unknown_type: 'The page sent something the server did not understand. Please reload.',
    invalid_frame: 'The page sent something the server did not understand. Please reload.',
    invalid_message_id: 'The page sent something the server did not understand. Please reload.',
    binary_not_supported: 'The page sent something the server did not understand. Please reload.',
  };

  const CONN_TEXT = {
    connecting: 'Connecting…',
    online: 'Online',
    reconnecting: 'Reconnecting…',
    offline: 'Offline',
  };

  // ---------------------------------------------------------------- DOM
  const $ = (sel) => document.querySelector(sel);
  const logEl = $('#log');
  const formEl = $('#composer');
  const inputEl = $('#input');
  const cancelBtn = $('#cancel');
  const connEl = $('#conn');
  const connTextEl = connEl.querySelector('.conn-text');
  const bannerEl = $('#banner');
  const body = document.body;

  // ---------------------------------------------------------------- state
  /**
   * @typedef {object} Answer
   * @property {string} id          message_id (chosen by this page)
   * @property {string} content     the prompt, kept to re-send if the chat never reached the server
   * @property {boolean} sent       a `chat` frame was written to some socket
   * @property {boolean} acked      the server knows the message (ack, chunk or done seen)
   * @property {number} lastSeq     last chunk seq rendered (0: none)
   * @property {Map<number,string>} ahead  chunks that arrived after a gap, by seq
   * @property {number|null} resyncFrom  after_seq of the resume sent because of a gap
   * @property {object|null} pendingDone a `done` that arrived before all its chunks
   * @property {boolean} cancelRequested
   * @property {boolean} final      a terminal status is shown; nothing changes any more
   * @property {string} status      streaming | completed | cancelled | failed
   * @property {number} finishedAt
   * @property {number} transientRetries
   */
  /** @type {Map<string, Answer>} */
  const answers = new Map();
  let lastAnswerId = null;

  const conn = {
    ws: null,
    welcomed: false,
    sessionId: null,
    resumeToken: null,
    heartbeatMs: DEFAULT_HEARTBEAT_MS,
    heartbeatTimer: null,
    watchdogTimer: null,
    reconnectTimer: null,
    lastFrameAt: 0,
    failures: 0, // consecutive connects that ended without a welcome
    everOnline: false,
    intentional: false,
    connects: 0,
  };
  let cancelAcks = 0;

  // ---------------------------------------------------------------- helpers
  function uuid() {
    if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    // Insecure contexts (plain http on a non-local host) lack randomUUID.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function errorText(code, fallback) {
    return ERROR_TEXT[code] || fallback || 'Something went wrong. Please try again.';
  }

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'className') node.className = v;
      else node.setAttribute(k, v);
    }
    node.append(...children); // strings become text nodes
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

  // ---------------------------------------------------------------- connection indicator
  function setConnState(state) {
    if (body.dataset.conn === state) return;
    connEl.dataset.state = state;
    connTextEl.textContent = CONN_TEXT[state];
    body.dataset.conn = state;
  }

  // ---------------------------------------------------------------- errors
  function showBanner(code, text) {
    const dismiss = el('button', { type: 'button', className: 'banner-close', 'aria-label': 'Dismiss' }, '×');
    const note = el('div', { className: 'error', role: 'alert', dataset: { testid: 'error', code } },
      el('span', {}, text), dismiss);
    dismiss.addEventListener('click', () => {
      note.remove();
      bannerEl.hidden = bannerEl.childElementCount === 0;
      inputEl.focus();
    });
    bannerEl.replaceChildren(note);
    bannerEl.hidden = false;
  }

  // ---------------------------------------------------------------- conversation view
  function addUserBubble(content) {
    $('#empty-hint')?.remove();
    logEl.append(el('article', { className: 'msg msg-user', 'aria-label': 'You said' },
      el('div', { className: 'msg-text' }, content)));
  }

  function addAnswer(id, content) {
    const textEl = el('div', { className: 'msg-text', dataset: { testid: 'answer-text' } });
    const statusEl = el('span', { className: 'msg-status', dataset: { testid: 'answer-status' } }, 'Writing…');
    const article = el('article', {
      className: 'msg msg-assistant',
      'aria-label': 'Answer',
      'aria-busy': 'true',
      dataset: { messageId: id, status: 'streaming', lastSeq: '0' },
    }, textEl, el('div', { className: 'msg-meta' }, statusEl));
    logEl.append(article);
    /** @type {Answer} */
    const a = {
      id, content, sent: false, acked: false, lastSeq: 0, ahead: new Map(), resyncFrom: null,
      pendingDone: null, cancelRequested: false, final: false, status: 'streaming', finishedAt: 0,
      transientRetries: 0, el: article, textEl, statusEl,
    };
    answers.set(id, a);
    lastAnswerId = id;
    scrollToEnd(true);
    updateControls();
    return a;
  }

  function finish(a, status, error) {
    if (a.final) return;
    a.final = true;
    a.status = status;
    a.finishedAt = Date.now();
    a.ahead.clear();
    a.pendingDone = null;
    a.textEl.normalize();
    a.el.dataset.status = status;
    a.el.setAttribute('aria-busy', 'false');
    a.statusEl.textContent = { completed: '', cancelled: 'Cancelled', failed: 'Failed' }[status] ?? status;
    if (status === 'failed') {
      const code = error?.code || 'internal';
      a.el.append(el('p', { className: 'msg-error', role: 'alert', dataset: { testid: 'error', code } },
        errorText(code, error?.message)));
    }
    scrollToEnd();
    updateControls();
  }

  function liveAnswers() {
    return [...answers.values()].filter((a) => !a.final);
  }

  function updateControls() {
    cancelBtn.hidden = liveAnswers().length === 0;
  }

  // ---------------------------------------------------------------- sending
  function send(frame) {
    const ws = conn.ws;
    if (!ws || !conn.welcomed || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function sendChat(a) {
    if (send({ type: 'chat', content: a.content, message_id: a.id })) a.sent = true;
  }

  function sendResume(a) {
    send({ type: 'resume', message_id: a.id, after_seq: a.lastSeq });
  }

  function submit() {
    const content = inputEl.value;
    if (!content.trim()) return;
    inputEl.value = '';
    autosize();
    addUserBubble(content);
    // Queued answers (offline) get their `chat` sent on the next welcome.
    sendChat(addAnswer(uuid(), content));
  }

  /** Stop / Esc. Every press is sent: the server answers each with a harmless cancel_ack. */
  function cancelPressed() {
    const live = liveAnswers();
    if (live.length === 0) {
      // A press just after the answer ended: still ask; the server says already_completed.
      const last = answers.get(lastAnswerId);
      if (last && Date.now() - last.finishedAt < CANCEL_GRACE_MS) send({ type: 'cancel', message_id: last.id });
      return;
    }
    for (const a of live) {
      if (!a.cancelRequested) {
        a.cancelRequested = true;
        a.statusEl.textContent = 'Stopping…';
      }
      if (a.sent || a.acked) send({ type: 'cancel', message_id: a.id });
      else finish(a, 'cancelled'); // it never reached the server
    }
  }

  // ---------------------------------------------------------------- receiving
  function onFrame(data) {
    conn.lastFrameAt = Date.now();
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      console.warn('ignoring a frame that is not JSON', data);
      return;
    }
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'ack': return onAck(f);
      case 'chunk': return onChunk(f);
      case 'done': return onDone(f);
      case 'cancel_ack': return onCancelAck(f);
      case 'heartbeat_ack': return;
      case 'error': return onError(f);
      default: console.warn('ignoring unknown frame type', f.type);
    }
  }

  function onWelcome(f) {
    if (f.protocol !== PROTOCOL_VERSION) {
      showBanner('protocol', 'This page is out of date. Please reload it.');
    }
    const resumed = conn.sessionId !== null && conn.sessionId === f.session_id;
    if (conn.sessionId !== null && !resumed) {
      // The server started a new session: answers in flight on the old one are gone.
      for (const a of liveAnswers()) {
        if (a.sent || a.acked) finish(a, 'failed', { code: 'resume_unavailable' });
      }
    }
    conn.sessionId = f.session_id;
    conn.resumeToken = f.resume_token;
    conn.welcomed = true;
    conn.failures = 0;
    conn.everOnline = true;
    conn.connects += 1;
    body.dataset.sessionId = f.session_id;
    body.dataset.connects = String(conn.connects);
    setConnState('online');
    startHeartbeat(Number(f.heartbeat_interval_ms) || DEFAULT_HEARTBEAT_MS);

    const active = new Set((f.active || []).map((m) => m.message_id));
    for (const a of liveAnswers()) {
      a.resyncFrom = null;
      a.ahead.clear();
      if (resumed && (a.acked || active.has(a.id))) {
        a.acked = true;
        a.resyncFrom = a.lastSeq;
        sendResume(a);
      } else {
        // Never reached the server (or we could not tell): the client-chosen id makes a
        // re-send safe; a `duplicate_message_id` answer turns into a resume.
        sendChat(a);
      }
      if (a.cancelRequested) send({ type: 'cancel', message_id: a.id });
    }
  }

  function onAck(f) {
    const a = answers.get(f.message_id);
    if (a) a.acked = true;
  }

  function onChunk(f) {
    const a = answers.get(f.message_id);
    if (!a || a.final) return;
    a.acked = true;
    const seq = Number(f.seq);
    if (seq <= a.lastSeq || a.ahead.has(seq)) return; // a repeat (e.g. replay overlap)
    if (seq !== a.lastSeq + 1) {
      // A gap: keep the chunk, ask for what is missing.
      if (a.ahead.size < MAX_BUFFERED_CHUNKS) a.ahead.set(seq, String(f.delta ?? ''));
      requestResync(a);
      return;
    }
    appendDelta(a, String(f.delta ?? ''));
    drain(a);
  }

  function appendDelta(a, delta) {
    a.lastSeq += 1;
    a.el.dataset.lastSeq = String(a.lastSeq);
    if (delta) a.textEl.append(document.createTextNode(delta));
    scrollToEnd();
  }

  /** Renders buffered chunks that became contiguous, and a `done` that was waiting for them. */
  function drain(a) {
    while (a.ahead.has(a.lastSeq + 1)) {
      const delta = a.ahead.get(a.lastSeq + 1);
      a.ahead.delete(a.lastSeq + 1);
      appendDelta(a, delta);
    }
    if (a.ahead.size === 0) a.resyncFrom = null;
    if (a.pendingDone && a.lastSeq >= a.pendingDone.seq) {
      const d = a.pendingDone;
      finish(a, d.status, d.error);
    }
  }

  function requestResync(a) {
    if (a.resyncFrom === a.lastSeq) return; // already asked from here
    a.resyncFrom = a.lastSeq;
    sendResume(a);
  }

  function onDone(f) {
    const a = answers.get(f.message_id);
    if (!a || a.final) return;
    a.acked = true;
    const seq = Number(f.seq);
    if (seq > a.lastSeq) {
      // Chunks are missing: wait for them (the resume replays them and this done again).
      a.pendingDone = { seq, status: f.status, error: f.error };
      requestResync(a);
      drain(a);
      return;
    }
    finish(a, f.status, f.error);
  }

  function onCancelAck(f) {
    // cancelling | already_cancelled | already_completed | not_found: all fine, none shown.
    // The `done` frame is what marks the answer.
    cancelAcks += 1;
    body.dataset.cancelAcks = String(cancelAcks);
    body.dataset.lastCancelStatus = String(f.status);
  }

  function onError(f) {
    const a = f.message_id ? answers.get(f.message_id) : undefined;
    if (!a || a.final) {
      showBanner(f.code, errorText(f.code, f.message));
      return;
    }
    if (f.code === 'duplicate_message_id' && a.sent) {
      // Our re-sent chat had reached the server before: pick the stream up instead.
      a.acked = true;
      a.resyncFrom = a.lastSeq;
      sendResume(a);
      return;
    }
    if (f.code === 'resume_unavailable' || !a.acked) {
      // The answer expired, or the chat itself was refused: this answer will not come.
      finish(a, 'failed', { code: f.code, message: f.message });
      return;
    }
    // The answer runs; what failed was our cancel or resume for it. Try again a few times.
    if (a.transientRetries < TRANSIENT_RETRIES) {
      a.transientRetries += 1;
      setTimeout(() => {
        if (a.final) return;
        if (a.cancelRequested) send({ type: 'cancel', message_id: a.id });
        else sendResume(a);
      }, 1000 * a.transientRetries);
      return;
    }
    if (a.cancelRequested) {
      showBanner(f.code, `The answer could not be stopped. ${errorText(f.code, f.message)}`);
    } else {
      finish(a, 'failed', { code: f.code, message: f.message });
    }
  }

  // ---------------------------------------------------------------- connection lifecycle
  function wsUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${scheme}//${location.host}/ws`;
    if (conn.sessionId && conn.resumeToken) {
      const q = new URLSearchParams({ session_id: conn.sessionId, resume_token: conn.resumeToken });
      url += `?${q}`;
    }
    return url;
  }

  /**
   * A login token (JWT) for gateways that require one (AUTH_SECRET set): taken from the page
   * address, `#token=…` (preferred: the fragment never reaches server logs) or `?token=…`.
   * It travels in the Sec-WebSocket-Protocol header, next to the protocol name.
   */
  function loginToken() {
    const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
    return fromHash || new URLSearchParams(location.search).get('token') || '';
  }

  function wsProtocols() {
    const token = loginToken();
    return token ? ['streamline.v1', `bearer.${token}`] : [];
  }

  function connect() {
    clearTimeout(conn.reconnectTimer);
    conn.reconnectTimer = null;
    if (conn.ws) return;
    conn.intentional = false;
    conn.welcomed = false;
    setConnState(conn.everOnline ? (conn.failures >= OFFLINE_AFTER_FAILURES ? 'offline' : 'reconnecting') : 'connecting');
    let ws;
    try {
      ws = new WebSocket(wsUrl(), wsProtocols());
    } catch (e) {
      console.error('cannot open WebSocket', e);
      conn.failures += 1;
      scheduleReconnect();
      return;
    }
    conn.ws = ws;
    conn.lastFrameAt = Date.now();
    ws.addEventListener('message', (ev) => { if (ws === conn.ws) onFrame(ev.data); });
    ws.addEventListener('close', (ev) => { if (ws === conn.ws) onDisconnected(ev.code, ev.reason); });
    // 'error' is always followed by 'close'; nothing to do there.
  }

  function onDisconnected(code, reason) {
    const hadWelcome = conn.welcomed;
    stopHeartbeat();
    conn.ws = null;
    conn.welcomed = false;
    if (conn.intentional) {
      setConnState('offline');
      return;
    }
    if (!hadWelcome) conn.failures += 1;
    console.info(`socket closed (${code}${reason ? ` ${reason}` : ''}); reconnecting`);
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (conn.reconnectTimer || conn.intentional) return;
    const offline = !navigator.onLine || conn.failures >= OFFLINE_AFTER_FAILURES;
    setConnState(offline ? 'offline' : conn.everOnline ? 'reconnecting' : 'connecting');
    // Exponential backoff with jitter: 50–100 % of min(max, base · 2^failures).
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** conn.failures);
    const delay = Math.round(cap * (0.5 + Math.random() * 0.5));
    conn.reconnectTimer = setTimeout(async () => {
      conn.reconnectTimer = null;
      if (conn.failures >= STALE_SESSION_AFTER_FAILURES && conn.resumeToken) await checkStaleSession();
      connect();
    }, delay);
  }

  /**
   * Connects keep failing while we present a resume token. If the gateway itself is up, it is
   * refusing our session (expired token): start a new session; answers that were in flight are
   * then reported as not recoverable (see onWelcome).
   */
  async function checkStaleSession() {
    try {
      const r = await fetch('/readyz', { cache: 'no-store' });
      if (r.ok) conn.resumeToken = null;
    } catch {
      // Gateway unreachable: keep the token and keep trying.
    }
  }

  function startHeartbeat(ms) {
    stopHeartbeat();
    conn.heartbeatMs = ms;
    conn.heartbeatTimer = setInterval(() => send({ type: 'heartbeat' }), ms);
    // A socket that silently died (no close event) is noticed by the missing heartbeat_acks.
    conn.watchdogTimer = setInterval(() => {
      if (Date.now() - conn.lastFrameAt > ms * 2.5 + 1000) abandonSocket('no frames from the server');
    }, Math.max(1000, Math.floor(ms / 2)));
  }

  function stopHeartbeat() {
    clearInterval(conn.heartbeatTimer);
    clearInterval(conn.watchdogTimer);
    conn.heartbeatTimer = conn.watchdogTimer = null;
  }

  function abandonSocket(why) {
    const ws = conn.ws;
    if (!ws) return;
    onDisconnected(0, why); // forgets ws first, so its late close event is ignored
    try { ws.close(); } catch { /* already closing */ }
  }

  function closeIntentionally() {
    conn.intentional = true;
    clearTimeout(conn.reconnectTimer);
    conn.reconnectTimer = null;
    const ws = conn.ws;
    stopHeartbeat();
    conn.ws = null;
    conn.welcomed = false;
    if (ws) try { ws.close(1000, 'bye'); } catch { /* ignore */ }
    setConnState('offline');
  }

  // ---------------------------------------------------------------- input
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

  window.addEventListener('online', () => { if (!conn.ws && !conn.intentional) connect(); });
  window.addEventListener('offline', () => { if (!conn.ws) setConnState('offline'); });
  window.addEventListener('pagehide', closeIntentionally);
  window.addEventListener('pageshow', (ev) => { if (ev.persisted) connect(); });

  body.dataset.conn = '';
  body.dataset.connects = '0';
  body.dataset.cancelAcks = '0';
  connect();
  inputEl.focus();
})();
