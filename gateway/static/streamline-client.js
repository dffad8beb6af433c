// @streamline/client, bundled for the reference web page (one ES module, no dependencies).
// GENERATED from clients/js/src by clients/js/scripts/bundle.mjs: do not edit; run
// `npm run bundle` in clients/js after changing the library and commit the result.
// esbuild 0.28.2.

// src/errors.ts
var StreamlineError = class extends Error {
  constructor(code, message, messageId) {
    super(message);
    this.code = code;
    this.messageId = messageId;
  }
  code;
  messageId;
  name = "StreamlineError";
};

// src/sequencer.ts
var DEFAULT_SEQUENCER_LIMITS = { maxPieces: 1e4, maxChars: 4 << 20 };
var Sequencer = class {
  constructor(lastSeq = 0, limits = DEFAULT_SEQUENCER_LIMITS) {
    this.lastSeq = lastSeq;
    this.limits = limits;
  }
  lastSeq;
  limits;
  /** Pieces past a gap, by their first seq. */
  ahead = /* @__PURE__ */ new Map();
  aheadChars = 0;
  /** Something past `lastSeq` is buffered: a gap is open. */
  get hasGap() {
    return this.ahead.size > 0;
  }
  offer(p) {
    if (p.last <= this.lastSeq) return { kind: "repeat" };
    if (p.first === this.lastSeq + 1) {
      const pieces = [p];
      this.lastSeq = p.last;
      for (let next = this.take(this.lastSeq + 1); next; next = this.take(this.lastSeq + 1)) {
        pieces.push(next);
        this.lastSeq = next.last;
      }
      this.dropStale();
      return { kind: "applied", pieces, gap: this.ahead.size > 0 };
    }
    if (p.first <= this.lastSeq) return { kind: "gap", dropped: true };
    const known = this.ahead.get(p.first);
    if (known && known.last >= p.last) return { kind: "gap", dropped: false };
    const chars = this.aheadChars - (known?.delta.length ?? 0) + p.delta.length;
    if (!known && (this.ahead.size >= this.limits.maxPieces || chars > this.limits.maxChars)) {
      return { kind: "gap", dropped: true };
    }
    this.ahead.set(p.first, p);
    this.aheadChars = chars;
    return { kind: "gap", dropped: false };
  }
  /** Forgets what is buffered (a resume from `lastSeq` re-delivers it). */
  clearAhead() {
    this.ahead.clear();
    this.aheadChars = 0;
  }
  take(first) {
    const p = this.ahead.get(first);
    if (p) {
      this.ahead.delete(first);
      this.aheadChars -= p.delta.length;
    }
    return p;
  }
  /** Buffered pieces that now start at or before `lastSeq` can never apply. */
  dropStale() {
    for (const [first, p] of this.ahead) {
      if (first <= this.lastSeq) {
        this.ahead.delete(first);
        this.aheadChars -= p.delta.length;
      }
    }
  }
};

// src/answer.ts
var Answer = class {
  /** @internal */
  constructor(messageId, content, origin, owner, startSeq = 0, initialParts = []) {
    this.messageId = messageId;
    this.content = content;
    this.origin = origin;
    this.owner = owner;
    this.seq = new Sequencer(startSeq);
    this.partList.push(...initialParts);
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {
    });
  }
  messageId;
  content;
  origin;
  owner;
  /** Resolves once the answer ended (never rejects, except after `client.close()`). */
  done;
  /** @internal */
  chat = "unsent";
  /** @internal */
  seq;
  /** @internal A `done` that arrived before all its chunks. */
  pendingDone;
  /** @internal One per `cancel()` call not yet answered; each has one cancel frame in flight. */
  cancelWaiters = [];
  /** @internal Cancel frames sent before the server knew the message (its `not_found` is early). */
  cancelsBeforeAck = 0;
  /** @internal Resend a cancel as soon as the `ack` arrives. */
  cancelOnAck = false;
  /** @internal Stop was pressed (persisted, re-sent after a reload). */
  cancelWanted = false;
  /** @internal A `resume` was sent and nothing of the message arrived since. */
  resumeOutstanding = false;
  /** @internal Transient errors (rate limited, service unavailable) retried so far. */
  retries = 0;
  /** @internal */
  gapTimer;
  /** @internal */
  gapTries = 0;
  /** @internal When the answer ended here (ms). */
  finishedAt = 0;
  partList = [];
  outcome;
  failure;
  wakers = /* @__PURE__ */ new Set();
  resolveDone;
  rejectDone;
  get status() {
    if (this.outcome) return this.outcome.status;
    return this.seq.lastSeq > 0 || this.partList.length > 0 ? "streaming" : "pending";
  }
  /** True once the answer ended (or the client was closed). */
  get finished() {
    return this.outcome !== void 0 || this.failure !== void 0;
  }
  /** The highest seq received without a gap. */
  get lastSeq() {
    return this.seq.lastSeq;
  }
  /** The answer text received so far (reasoning excluded). */
  get textSoFar() {
    return this.join("text");
  }
  /** The reasoning received so far. */
  get reasoningSoFar() {
    return this.join("reasoning");
  }
  /** The whole answer text once it ended (the partial text of a cancelled or failed answer). */
  async text() {
    await this.done;
    return this.textSoFar;
  }
  /**
   * Stop. Resolves with the server's `cancel_ack` status; a duplicate, or a cancel of an answer
   * that already ended, resolves too (`already_cancelled`, `already_completed`, `not_found`).
   * Rejects only after `client.close()`, or when the server kept refusing it (rate limited,
   * service unavailable) through every retry.
   */
  cancel() {
    return this.owner.cancel(this);
  }
  async *[Symbol.asyncIterator]() {
    let i = 0;
    for (; ; ) {
      while (i < this.partList.length) {
        const p = this.partList[i++];
        if (p) yield p;
      }
      if (this.failure) throw this.failure;
      if (this.outcome) return;
      await new Promise((r) => this.wakers.add(r));
    }
  }
  /** @internal */
  append(pieces) {
    for (const p of pieces) {
      if (p.delta !== "") this.partList.push({ kind: p.kind, delta: p.delta });
    }
    this.wake();
  }
  /** @internal Ends the answer; returns false if it had already ended. */
  finish(outcome) {
    if (this.finished) return false;
    this.outcome = outcome;
    this.finishedAt = Date.now();
    this.pendingDone = void 0;
    this.seq.clearAhead();
    this.stopGapTimer();
    this.resolveDone(outcome);
    this.wake();
    return true;
  }
  /** @internal The client was closed: whoever waits learns it. Storage keeps the answer. */
  abort(error) {
    if (this.finished) return;
    this.failure = error;
    this.stopGapTimer();
    this.rejectDone(error);
    this.wake();
  }
  /** @internal */
  stopGapTimer() {
    if (this.gapTimer !== void 0) clearTimeout(this.gapTimer);
    this.gapTimer = void 0;
    this.gapTries = 0;
  }
  /** @internal What storage keeps of an unfinished answer. */
  toStored() {
    const parts = [];
    for (const p of this.partList) {
      const last = parts[parts.length - 1];
      if (last && last[0] === p.kind) last[1] += p.delta;
      else parts.push([p.kind, p.delta]);
    }
    const s = { id: this.messageId, seq: this.seq.lastSeq, parts, chat: this.chat };
    if (this.content !== void 0) s.content = this.content;
    if (this.cancelWanted) s.cancel = true;
    return s;
  }
  join(kind) {
    let s = "";
    for (const p of this.partList) if (p.kind === kind) s += p.delta;
    return s;
  }
  wake() {
    const w = [...this.wakers];
    this.wakers.clear();
    for (const f of w) f();
  }
};

// src/close-code.ts
var CloseCode = {
  Normal: 1e3,
  GoingAway: 1001,
  ProtocolError: 1002,
  /** Not sent by the gateway: a socket that ended without a close frame (TCP cut). */
  Abnormal: 1006,
  InvalidPayload: 1007,
  TooBig: 1009,
  InternalError: 1011,
  ClientTimeout: 4e3,
  SessionReplaced: 4001,
  /** The connection's JWT expired (plus the gateway's leeway) without an in-band `auth`. */
  TokenExpired: 4003,
  SlowConsumer: 4008
};
function afterClose(code) {
  switch (code) {
    case CloseCode.GoingAway:
      return { kind: "spread" };
    case CloseCode.SessionReplaced:
      return { kind: "stay_offline" };
    case CloseCode.TokenExpired:
    case CloseCode.ClientTimeout:
      return { kind: "now" };
    default:
      return { kind: "backoff" };
  }
}

// src/emitter.ts
var Emitter = class {
  listeners = /* @__PURE__ */ new Map();
  on(event, listener) {
    let set = this.listeners.get(event);
    if (!set) {
      set = /* @__PURE__ */ new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }
  off(event, listener) {
    this.listeners.get(event)?.delete(listener);
  }
  emit(event, ...args) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (e) {
        setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }
};

// src/incoming.ts
var isSeq = (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
var isStr = (v) => typeof v === "string";
function readFrame(text) {
  let f;
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return void 0;
    f = v;
  } catch {
    return void 0;
  }
  const ok = (() => {
    switch (f.type) {
      case "welcome":
        return isStr(f.session_id) && isStr(f.resume_token) && (f.active === void 0 || Array.isArray(f.active));
      case "ack":
        return isStr(f.message_id);
      case "chunk":
        return isStr(f.message_id) && isSeq(f.seq) && f.seq >= 1 && isStr(f.delta) && (f.first_seq === void 0 || isSeq(f.first_seq) && f.first_seq >= 1 && f.first_seq <= f.seq) && (f.kind === void 0 || f.kind === "text" || f.kind === "reasoning");
      case "done":
        return isStr(f.message_id) && isSeq(f.seq) && isStr(f.status);
      case "cancel_ack":
        return isStr(f.message_id) && isStr(f.status);
      case "error":
        return isStr(f.code) && (f.message_id === void 0 || f.message_id === null || isStr(f.message_id));
      case "heartbeat_ack":
        return true;
      case "conversation":
        return Array.isArray(f.messages);
      case "started":
        return isStr(f.message_id) && isStr(f.content);
      case "auth_ack":
        return typeof f.exp === "number";
      default:
        return false;
    }
  })();
  return ok ? f : void 0;
}

// src/jwt.ts
function jwtExpiry(token) {
  const payload = token.split(".")[1];
  if (payload === void 0) return void 0;
  try {
    const b64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - b64.length % 4) % 4);
    const claims = JSON.parse(atob(padded));
    if (typeof claims !== "object" || claims === null) return void 0;
    const exp = claims.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : void 0;
  } catch {
    return void 0;
  }
}
function refreshDelay(expSec, nowMs) {
  const left = expSec * 1e3 - nowMs;
  const lead = Math.min(6e4, Math.max(5e3, left / 5));
  return Math.max(0, left - lead);
}

// src/backoff.ts
var DEFAULT_BACKOFF = {
  baseMs: 500,
  maxMs: 15e3,
  drainSpreadMs: 5e3
};
function reconnectDelay(failures, spread, options, random = Math.random) {
  const exp = options.baseMs * 2 ** Math.min(failures, 30);
  let cap = Math.min(options.maxMs, exp);
  if (spread) cap = Math.max(cap, options.drainSpreadMs);
  return Math.floor(random() * cap);
}

// src/link.ts
var OPEN = 1;
var DEFAULT_HEARTBEAT_MS = 15e3;
var OFFLINE_AFTER_FAILURES = 5;
var STALE_SESSION_AFTER_FAILURES = 3;
var CONNECT_TIMEOUT_MS = 15e3;
var Link = class {
  constructor(Ws, hooks, readyzUrl2, backoff = {}) {
    this.Ws = Ws;
    this.hooks = hooks;
    this.readyzUrl = readyzUrl2;
    this.backoff = { ...DEFAULT_BACKOFF, ...backoff };
    globalThis.addEventListener?.(
      "online",
      this.onOnline
    );
  }
  Ws;
  hooks;
  readyzUrl;
  ws;
  welcomed = false;
  everOnline = false;
  failures = 0;
  closed = false;
  attemptNo = 0;
  current = "connecting";
  lastFrameAt = 0;
  reconnectTimer;
  connectTimer;
  heartbeatTimer;
  watchdogTimer;
  backoff;
  onOnline = () => {
    if (this.reconnectTimer !== void 0) this.attempt();
  };
  get state() {
    return this.current;
  }
  get isOnline() {
    return this.welcomed && this.ws?.readyState === OPEN;
  }
  start() {
    this.attempt();
  }
  /** Sends a frame if online (welcomed); false otherwise (the client re-sends at welcome). */
  send(frame) {
    const ws = this.ws;
    if (!this.welcomed || !ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }
  /** The client read `welcome`: the link is online. */
  markWelcomed(heartbeatMs) {
    this.welcomed = true;
    this.everOnline = true;
    this.failures = 0;
    this.clearTimer("connect");
    this.startHeartbeat(heartbeatMs > 0 ? heartbeatMs : DEFAULT_HEARTBEAT_MS);
    this.setState("online");
  }
  /** Drops the socket (if any) and connects again at once, with a fresh token. */
  reconnectNow() {
    if (this.closed) return;
    const ws = this.ws;
    if (ws) {
      const wasWelcomed = this.welcomed;
      this.forgetSocket();
      try {
        ws.close(CloseCode.Normal, "reconnect");
      } catch {
      }
      this.hooks.onClosed(CloseCode.Normal, wasWelcomed);
    }
    this.attempt();
  }
  close() {
    if (this.closed) return;
    this.closed = true;
    const ws = this.ws;
    this.forgetSocket();
    this.clearTimer("reconnect");
    globalThis.removeEventListener?.(
      "online",
      this.onOnline
    );
    if (ws) {
      try {
        ws.close(CloseCode.Normal, "bye");
      } catch {
      }
    }
    this.setState("offline");
  }
  async attempt() {
    this.clearTimer("reconnect");
    if (this.closed || this.ws) return;
    const no = ++this.attemptNo;
    const waiting = this.failures >= OFFLINE_AFTER_FAILURES;
    this.setState(waiting ? "offline" : this.everOnline ? "reconnecting" : "connecting");
    let token;
    try {
      token = await this.hooks.token();
    } catch (e) {
      this.hooks.onError(new StreamlineError("token_failed", `the token function failed: ${String(e)}`));
      if (no === this.attemptNo) this.failed();
      return;
    }
    if (this.closed || no !== this.attemptNo || this.ws) return;
    let ws;
    try {
      ws = new this.Ws(this.hooks.url(), token ? ["streamline.v1", `bearer.${token}`] : []);
    } catch (e) {
      this.hooks.onError(new StreamlineError("connect_failed", `cannot open a WebSocket: ${String(e)}`));
      this.failed();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    this.lastFrameAt = Date.now();
    this.connectTimer = setTimeout(() => this.abandon(), CONNECT_TIMEOUT_MS);
    ws.addEventListener("message", (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      if (typeof ev.data === "string") this.hooks.onFrame(ev.data);
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws === ws) this.dropped(ev.code);
    });
    ws.addEventListener("error", () => {
    });
  }
  /** The socket went away (close event, or abandoned by the watchdog). */
  dropped(code) {
    const wasWelcomed = this.welcomed;
    this.forgetSocket();
    if (!wasWelcomed) this.failures += 1;
    this.hooks.onClosed(code, wasWelcomed);
    if (this.closed) return;
    const plan = afterClose(code);
    switch (plan.kind) {
      case "stay_offline":
        this.setState("offline");
        return;
      case "now":
        if (wasWelcomed) {
          this.attempt();
          return;
        }
        this.schedule(false);
        return;
      case "spread":
        this.schedule(true);
        return;
      case "backoff":
        this.schedule(false);
        return;
    }
  }
  failed() {
    this.failures += 1;
    this.schedule(false);
  }
  schedule(spread) {
    if (this.closed || this.reconnectTimer !== void 0) return;
    const waiting = this.failures >= OFFLINE_AFTER_FAILURES;
    this.setState(waiting ? "offline" : this.everOnline ? "reconnecting" : "connecting");
    const delay = reconnectDelay(this.failures, spread, this.backoff);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = void 0;
      void this.beforeAttempt().then(() => this.attempt());
    }, delay);
  }
  /**
   * After several refused attempts with a resume token, ask the gateway's /readyz: if it is
   * ready, the refusal is our session (an anonymous gateway restarted, or the session is
   * another user's), and a new one is needed. A browser cannot see the handshake's 401.
   */
  async beforeAttempt() {
    if (this.failures < STALE_SESSION_AFTER_FAILURES || !this.hooks.resuming() || !this.readyzUrl) return;
    try {
      const r = await fetch(this.readyzUrl, { cache: "no-store" });
      if (r.ok) this.hooks.onStaleSession();
    } catch {
    }
  }
  abandon() {
    const ws = this.ws;
    if (!ws) return;
    this.dropped(CloseCode.Abnormal);
    try {
      ws.close();
    } catch {
    }
  }
  forgetSocket() {
    this.ws = void 0;
    this.welcomed = false;
    this.clearTimer("connect");
    this.clearTimer("heartbeat");
  }
  startHeartbeat(ms) {
    this.clearTimer("heartbeat");
    this.heartbeatTimer = setInterval(() => this.send({ type: "heartbeat" }), ms);
    this.watchdogTimer = setInterval(() => {
      if (Date.now() - this.lastFrameAt > ms * 2.5 + 1e3) this.abandon();
    }, Math.max(1e3, Math.floor(ms / 2)));
  }
  clearTimer(which) {
    switch (which) {
      case "reconnect":
        if (this.reconnectTimer !== void 0) clearTimeout(this.reconnectTimer);
        this.reconnectTimer = void 0;
        return;
      case "connect":
        if (this.connectTimer !== void 0) clearTimeout(this.connectTimer);
        this.connectTimer = void 0;
        return;
      case "heartbeat":
        if (this.heartbeatTimer !== void 0) clearInterval(this.heartbeatTimer);
        if (this.watchdogTimer !== void 0) clearInterval(this.watchdogTimer);
        this.heartbeatTimer = this.watchdogTimer = void 0;
        return;
    }
  }
  setState(s) {
    if (this.current === s) return;
    this.current = s;
    this.hooks.onState(s);
  }
};

// src/protocol-next.ts
var CLIENT_CAPS = ["merge"];

// src/session-store.ts
var KEY_PREFIX = "streamline:";
var CURRENT = `${KEY_PREFIX}current`;
var INDEX = `${KEY_PREFIX}sessions`;
var sessionKey = (id) => `${KEY_PREFIX}session:${id}`;
var MAX_SESSIONS = 16;
var SessionStore = class {
  constructor(storage, onError) {
    this.storage = storage;
    this.onError = onError;
  }
  storage;
  onError;
  /** The session the last client of this storage used. */
  current() {
    return this.read(CURRENT) ?? void 0;
  }
  load(sessionId) {
    const raw = this.read(sessionKey(sessionId));
    if (raw === null) return void 0;
    try {
      const v = JSON.parse(raw);
      if (v?.v !== 1 || v.sessionId !== sessionId || typeof v.resumeToken !== "string") return void 0;
      return { ...v, answers: Array.isArray(v.answers) ? v.answers.filter(validAnswer) : [] };
    } catch {
      return void 0;
    }
  }
  /** Writes the session and makes it current. */
  save(s) {
    this.write(sessionKey(s.sessionId), JSON.stringify(s));
    this.write(CURRENT, s.sessionId);
    const index = this.index().filter((id) => id !== s.sessionId);
    index.push(s.sessionId);
    while (index.length > MAX_SESSIONS) {
      const old = index.shift();
      if (old !== void 0) this.remove(sessionKey(old));
    }
    this.write(INDEX, JSON.stringify(index));
  }
  /** Drops a session the server no longer knows. */
  forget(sessionId) {
    this.remove(sessionKey(sessionId));
    this.write(INDEX, JSON.stringify(this.index().filter((id) => id !== sessionId)));
    if (this.current() === sessionId) this.remove(CURRENT);
  }
  index() {
    try {
      const v = JSON.parse(this.read(INDEX) ?? "[]");
      return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
    } catch {
      return [];
    }
  }
  read(key) {
    try {
      return this.storage.getItem(key);
    } catch (e) {
      this.onError(e);
      return null;
    }
  }
  write(key, value) {
    try {
      this.storage.setItem(key, value);
    } catch (e) {
      this.onError(e);
    }
  }
  remove(key) {
    try {
      this.storage.removeItem(key);
    } catch (e) {
      this.onError(e);
    }
  }
};
function validAnswer(a) {
  if (typeof a !== "object" || a === null) return false;
  const x = a;
  return typeof x.id === "string" && Number.isInteger(x.seq) && x.seq >= 0 && Array.isArray(x.parts) && x.parts.every((p) => Array.isArray(p) && (p[0] === "text" || p[0] === "reasoning") && typeof p[1] === "string") && (x.chat === "unsent" || x.chat === "sent" || x.chat === "acked");
}
function defaultStorage() {
  try {
    const ls = globalThis.localStorage;
    return ls ?? void 0;
  } catch {
    return void 0;
  }
}

// src/uuid.ts
var UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function isUuid(s) {
  return UUID_RE.test(s);
}
function uuidV4() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] ?? 0) & 15 | 64;
  b[8] = (b[8] ?? 0) & 63 | 128;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// src/client.ts
var PROTOCOL_VERSION = 1;
var TRANSIENT_CODES = /* @__PURE__ */ new Set(["rate_limited", "ai_service_unavailable", "shutting_down", "store_unavailable"]);
var TRANSIENT_RETRIES = 4;
var GAP_WAIT_MS = 250;
var GAP_WAIT_MAX_MS = 8e3;
var PERSIST_DELAY_MS = 200;
var KEEP_FINISHED = 200;
var MAX_TIMER_MS = 2 ** 31 - 1;
var MIN_AUTH_INTERVAL_MS = 5e3;
function connect(options) {
  return new Client(options);
}
var Client = class {
  /** The session id, once welcomed. */
  sessionId;
  events = new Emitter();
  link;
  store;
  baseUrl;
  tokenOption;
  maxFrameBytes;
  session;
  /** A session whose token the gateway refused: the next welcome replaces it. */
  staleSession;
  all = /* @__PURE__ */ new Map();
  conversations = [];
  /** Extension frames sent on this socket and not answered yet, in order (their
   * `error{unknown_type}` carries no message id). */
  extPending = [];
  token;
  authTimer;
  authUnsupported = false;
  lastAuthAt = 0;
  persistTimer;
  closed = false;
  onPageHide = () => this.persistNow();
  /** What the answers of this client call back into. */
  owner = { cancel: (a) => this.cancelAnswer(a) };
  constructor(options) {
    const Ws = options.WebSocket ?? globalThis.WebSocket;
    if (!Ws) throw new TypeError("no WebSocket here: pass options.WebSocket (in Node 20, the `ws` package)");
    this.baseUrl = wsUrl(options.url);
    this.tokenOption = options.token;
    this.maxFrameBytes = options.maxFrameBytes ?? 65536;
    const storage = options.storage === null ? void 0 : options.storage ?? defaultStorage();
    this.store = storage ? new SessionStore(storage, (e) => this.report(new StreamlineError("storage_failed", `storage failed: ${String(e)}`))) : void 0;
    this.restore(options.session);
    this.link = new Link(
      Ws,
      {
        url: () => this.url(),
        token: () => this.nextToken(),
        resuming: () => this.session !== void 0,
        onFrame: (text) => this.onFrame(text),
        onClosed: (code) => this.onClosed(code),
        onStaleSession: () => {
          this.staleSession = this.session?.id;
          this.session = void 0;
        },
        onState: (s) => this.events.emit("state", s),
        onError: (e) => this.report(e)
      },
      readyzUrl(this.baseUrl),
      options.reconnect
    );
    globalThis.addEventListener?.(
      "pagehide",
      this.onPageHide
    );
    this.link.start();
  }
  get state() {
    return this.link.state;
  }
  /**
   * The session's resume token, once welcomed: with the session id, what another client needs
   * to join this session (`connect({ session: { id, resumeToken } })`). A credential: treat it
   * like the session itself.
   */
  get resumeToken() {
    return this.sessionId !== void 0 ? this.session?.resumeToken : void 0;
  }
  on(event, listener) {
    return this.events.on(event, listener);
  }
  off(event, listener) {
    this.events.off(event, listener);
  }
  /** Sends a message; the answer streams into the returned object. */
  chat(content, options = {}) {
    if (this.closed) throw new StreamlineError("client_closed", "the client was closed");
    if (typeof content !== "string") throw new TypeError("content must be a string");
    const id = options.messageId ?? uuidV4();
    if (!isUuid(id)) throw new TypeError(`messageId must be a UUID, got ${JSON.stringify(id)}`);
    const known = this.all.get(id);
    if (known) return known;
    const a = this.add(new Answer(id, content, "chat", this.owner));
    if (content.trim() === "") {
      a.finish({ status: "failed", error: { code: "empty_content", message: "content is empty" } });
      return a;
    }
    const bytes = new TextEncoder().encode(JSON.stringify({ type: "chat", content, message_id: id })).length;
    if (bytes > this.maxFrameBytes) {
      a.finish({
        status: "failed",
        error: { code: "content_too_long", message: `the chat frame would be ${bytes} bytes (limit ${this.maxFrameBytes})` }
      });
      return a;
    }
    this.sendChat(a);
    this.persistNow();
    return a;
  }
  /** Every answer this client knows, oldest first: started here, restored from storage after
   * a reload, or learned from the server (running in another tab). */
  answers() {
    return [...this.all.values()];
  }
  answer(messageId) {
    return this.all.get(messageId);
  }
  /**
   * The session's messages, oldest first (needs server support: `conversation` frames; an
   * older gateway makes this reject with `unsupported`). Running ones are followed from then on.
   */
  conversation() {
    if (this.closed) return Promise.reject(new StreamlineError("client_closed", "the client was closed"));
    return new Promise((resolve, reject) => {
      this.conversations.push({ resolve, reject });
      if (this.link.send({ type: "conversation" })) this.extPending.push("conversation");
    });
  }
  /** Connects again now (e.g. after another tab took the session over: state `offline`). */
  reconnect() {
    if (!this.closed) this.link.reconnectNow();
  }
  /** Closes the socket for good. Unfinished answers stay in storage for the next page. */
  close() {
    if (this.closed) return;
    this.persistNow();
    this.closed = true;
    if (this.authTimer !== void 0) clearTimeout(this.authTimer);
    globalThis.removeEventListener?.(
      "pagehide",
      this.onPageHide
    );
    this.link.close();
    const err = new StreamlineError("client_closed", "the client was closed");
    for (const a of this.all.values()) {
      a.abort(err);
      for (const w of a.cancelWaiters.splice(0)) w.reject(err);
    }
    for (const c of this.conversations.splice(0)) c.reject(err);
  }
  cancelAnswer(a) {
    if (this.closed) return Promise.reject(new StreamlineError("client_closed", "the client was closed", a.messageId));
    return new Promise((resolve, reject) => {
      if (a.chat === "unsent") {
        if (a.finish({ status: "cancelled" })) {
          this.persistNow();
          resolve("cancelling");
        } else {
          resolve(a.status === "cancelled" ? "already_cancelled" : "already_completed");
        }
        return;
      }
      if (!a.finished) a.cancelWanted = true;
      a.cancelWaiters.push({ resolve, reject });
      this.sendCancel(a);
      this.persistSoon();
    });
  }
  // ------------------------------------------------------------------ session and storage
  restore(session) {
    let id;
    let token;
    if (typeof session === "string") {
      id = session;
    } else if (session) {
      id = session.id;
      token = session.resumeToken;
    } else {
      id = this.store?.current();
    }
    if (id === void 0) return;
    const rec = this.store?.load(id);
    token ??= rec?.resumeToken;
    if (token === void 0) {
      if (session === void 0) return;
      throw new StreamlineError("unknown_session", `no resume token for session ${id} in storage`);
    }
    this.session = { id, resumeToken: token };
    for (const s of rec?.answers ?? []) {
      const parts = s.parts.map(([kind, delta]) => ({ kind, delta }));
      const a = this.add(new Answer(s.id, s.content, "storage", this.owner, s.seq, parts));
      a.chat = s.chat;
      a.cancelWanted = s.cancel === true;
    }
  }
  persistSoon() {
    if (!this.store || this.persistTimer !== void 0 || this.closed) return;
    this.persistTimer = setTimeout(() => this.persistNow(), PERSIST_DELAY_MS);
  }
  persistNow() {
    if (this.persistTimer !== void 0) clearTimeout(this.persistTimer);
    this.persistTimer = void 0;
    if (!this.store || !this.session || this.closed) return;
    const answers = [...this.all.values()].filter((a) => !a.finished).map((a) => a.toStored());
    this.store.save({ v: 1, sessionId: this.session.id, resumeToken: this.session.resumeToken, answers });
  }
  // ------------------------------------------------------------------ connection
  url() {
    const u = new URL(this.baseUrl.href);
    u.searchParams.set("caps", CLIENT_CAPS.join(","));
    if (this.session) {
      u.searchParams.set("session_id", this.session.id);
      u.searchParams.set("resume_token", this.session.resumeToken);
    } else {
      u.searchParams.delete("session_id");
      u.searchParams.delete("resume_token");
    }
    return u.href;
  }
  async nextToken() {
    const t = this.tokenOption;
    if (t === void 0) return void 0;
    const v = typeof t === "function" ? await t() : t;
    if (typeof v !== "string") throw new TypeError("the token function did not return a string");
    this.token = v;
    return v;
  }
  onClosed(code) {
    this.extPending = [];
    if (this.authTimer !== void 0) clearTimeout(this.authTimer);
    this.authTimer = void 0;
    for (const a of this.all.values()) {
      a.stopGapTimer();
      a.resumeOutstanding = false;
      a.cancelsBeforeAck = 0;
      a.cancelOnAck = false;
    }
    if (code === CloseCode.TooBig) {
      for (const a of this.all.values()) {
        if (!a.finished && a.chat === "sent") {
          this.finishAnswer(a, { status: "failed", error: { code: "content_too_long", message: "the gateway refused the frame as too big (1009)" } });
        }
      }
    }
    if (code === CloseCode.SessionReplaced) {
      this.report(new StreamlineError("session_replaced", "another connection of this session took over (4001); call reconnect() to take it back"));
    }
  }
  onFrame(text) {
    const f = readFrame(text);
    if (!f) return;
    switch (f.type) {
      case "welcome":
        return this.onWelcome(f);
      case "ack": {
        const a = this.all.get(f.message_id);
        if (!a || a.chat === "acked") return;
        a.chat = "acked";
        a.retries = 0;
        if (a.cancelOnAck) {
          a.cancelOnAck = false;
          this.sendCancel(a);
        }
        this.persistSoon();
        return;
      }
      case "chunk":
        return this.onChunk(f);
      case "done":
        return this.onDone(f);
      case "cancel_ack":
        return this.onCancelAck(f.message_id, f.status);
      case "error":
        return this.onError(f);
      case "conversation":
        return this.onConversation(f.messages);
      case "started":
        return this.onStarted(f.message_id, f.content);
      case "auth_ack": {
        const i = this.extPending.indexOf("auth");
        if (i >= 0) this.extPending.splice(i, 1);
        this.scheduleAuth(f.exp);
        return;
      }
      case "heartbeat_ack":
        return;
    }
  }
  onWelcome(f) {
    if (f.protocol !== PROTOCOL_VERSION) {
      this.report(new StreamlineError("protocol_version", `the gateway speaks protocol ${f.protocol}, this client ${PROTOCOL_VERSION}`));
    }
    const previous = this.session?.id ?? this.staleSession;
    this.staleSession = void 0;
    if (previous !== void 0 && previous !== f.session_id) this.sessionLost(previous);
    this.session = { id: f.session_id, resumeToken: f.resume_token };
    const changed = this.sessionId !== f.session_id;
    this.sessionId = f.session_id;
    this.extPending = [];
    this.authUnsupported = false;
    this.link.markWelcomed(f.heartbeat_interval_ms);
    const active = new Set((f.active ?? []).map((m) => m.message_id));
    const learned = [];
    for (const id of active) {
      if (this.all.has(id)) continue;
      const a = this.add(new Answer(id, void 0, "active", this.owner));
      a.chat = "acked";
      learned.push(a);
    }
    for (const a of this.all.values()) {
      if (a.finished) {
        for (let i = 0; i < a.cancelWaiters.length; i++) this.sendCancel(a);
        continue;
      }
      a.seq.clearAhead();
      a.stopGapTimer();
      if (a.chat === "acked" || active.has(a.messageId)) {
        a.chat = "acked";
        this.sendResume(a);
      } else {
        this.sendChat(a);
      }
      const cancels = a.cancelWaiters.length || (a.cancelWanted ? 1 : 0);
      for (let i = 0; i < cancels; i++) this.sendCancel(a);
    }
    for (let i = 0; i < this.conversations.length; i++) {
      if (this.link.send({ type: "conversation" })) this.extPending.push("conversation");
    }
    this.persistNow();
    this.scheduleAuth(void 0);
    if (changed) this.events.emit("session", f.session_id);
    for (const a of learned) this.events.emit("message", a);
  }
  /** The gateway gave us a new session: answers in flight on the old one cannot come back. */
  sessionLost(previous) {
    for (const a of this.all.values()) {
      if (a.finished || a.chat === "unsent") continue;
      this.finishAnswer(a, {
        status: "failed",
        error: { code: "resume_unavailable", message: "the session was lost (the gateway refused its resume token)" }
      });
      for (const w of a.cancelWaiters.splice(0)) w.resolve("not_found");
    }
    this.store?.forget(previous);
  }
  // ------------------------------------------------------------------ answers
  onChunk(f) {
    const a = this.all.get(f.message_id);
    if (!a || a.finished) return;
    a.chat = "acked";
    a.resumeOutstanding = false;
    a.retries = 0;
    const r = a.seq.offer({ first: f.first_seq ?? f.seq, last: f.seq, kind: f.kind ?? "text", delta: f.delta });
    switch (r.kind) {
      case "repeat":
        return;
      case "applied":
        a.append(r.pieces);
        if (!r.gap && !a.pendingDone) a.stopGapTimer();
        this.settlePendingDone(a);
        if (r.gap) this.gap(a, false);
        this.persistSoon();
        return;
      case "gap":
        this.gap(a, r.dropped);
        return;
    }
  }
  onDone(f) {
    const a = this.all.get(f.message_id);
    if (!a || a.finished) return;
    a.chat = "acked";
    a.resumeOutstanding = false;
    const outcome = { status: f.status };
    if (f.error) outcome.error = f.error;
    if (f.usage) outcome.usage = f.usage;
    if (f.seq > a.lastSeq) {
      a.pendingDone = { seq: f.seq, outcome };
      this.gap(a, false);
      return;
    }
    this.finishAnswer(a, outcome);
  }
  settlePendingDone(a) {
    if (a.pendingDone && a.lastSeq >= a.pendingDone.seq) this.finishAnswer(a, a.pendingDone.outcome);
  }
  finishAnswer(a, outcome) {
    if (!a.finish(outcome)) return;
    a.cancelWanted = false;
    if (a.cancelOnAck) {
      a.cancelOnAck = false;
      this.sendCancel(a);
    }
    this.persistNow();
    this.trimFinished();
  }
  /**
   * Something is missing (a gap, or a done ahead of its chunks). Wait a little for it, then
   * ask for it with `resume` from the highest contiguous seq, and keep asking (further apart)
   * while it stays missing. `urgent`: a chunk had to be dropped, ask now.
   */
  gap(a, urgent) {
    if (a.gapTimer !== void 0) return;
    if (urgent) this.sendResume(a);
    const wait = Math.min(GAP_WAIT_MAX_MS, GAP_WAIT_MS * 2 ** a.gapTries);
    a.gapTimer = setTimeout(() => {
      a.gapTimer = void 0;
      if (a.finished || this.closed || !a.seq.hasGap && !a.pendingDone) return;
      a.gapTries += 1;
      this.sendResume(a);
      this.gap(a, false);
    }, wait);
  }
  onCancelAck(messageId, status) {
    const a = this.all.get(messageId);
    if (!a) return;
    a.retries = 0;
    if (a.cancelsBeforeAck > 0) {
      a.cancelsBeforeAck -= 1;
      if (status === "not_found" && !a.finished) {
        if (a.chat === "acked") this.sendCancel(a);
        else a.cancelOnAck = true;
        return;
      }
    }
    a.cancelWaiters.shift()?.resolve(status);
  }
  onError(f) {
    const err = new StreamlineError(f.code, f.message, f.message_id ?? void 0);
    if (!f.message_id) {
      if (f.code === "unknown_type" && this.extPending.length > 0) {
        const what = this.extPending.shift();
        if (what === "conversation") {
          this.conversations.shift()?.reject(new StreamlineError("unsupported", "this gateway does not answer `conversation`"));
        } else {
          this.authUnsupported = true;
        }
        return;
      }
      if (f.code === "unauthorized" && this.extPending[0] === "auth") this.extPending.shift();
      this.report(err);
      return;
    }
    const a = this.all.get(f.message_id);
    if (!a) {
      this.report(err);
      return;
    }
    if (f.code === "duplicate_message_id") {
      a.chat = "acked";
      this.sendResume(a);
      return;
    }
    if (f.code === "resume_unavailable") {
      this.finishAnswer(a, { status: "failed", error: { code: f.code, message: f.message } });
      return;
    }
    if (TRANSIENT_CODES.has(f.code)) {
      this.transient(a, f.code, f.message);
      return;
    }
    if (!a.finished && a.chat !== "acked") {
      const error = { code: f.code, message: f.message };
      if (f.retry_after_s != null) error.retry_after_s = f.retry_after_s;
      this.finishAnswer(a, { status: "failed", error });
      return;
    }
    this.report(err);
  }
  /**
   * The server could not serve a chat, cancel or resume of this answer right now. Which one is
   * not said (the error carries only the message id), and each is idempotent: after a
   * jittered delay, send again whatever is still outstanding.
   */
  transient(a, code, message) {
    a.retries += 1;
    if (a.retries > TRANSIENT_RETRIES) {
      a.retries = 0;
      const waiter = a.cancelWaiters.shift();
      if (waiter) waiter.reject(new StreamlineError(code, `the cancel could not be made: ${message}`, a.messageId));
      else if (!a.finished) this.finishAnswer(a, { status: "failed", error: { code, message } });
      return;
    }
    const delay = 500 * 2 ** (a.retries - 1) * (0.5 + Math.random() / 2);
    setTimeout(() => {
      if (this.closed || !this.link.isOnline) return;
      if (!a.finished && a.chat === "sent") this.sendChat(a);
      if (a.cancelWaiters.length > 0) this.sendCancel(a);
      if (!a.finished && a.resumeOutstanding) this.sendResume(a);
    }, delay);
  }
  onConversation(messages) {
    const i = this.extPending.indexOf("conversation");
    if (i >= 0) this.extPending.splice(i, 1);
    const learned = [];
    const entries = [];
    for (const m of messages) {
      if (typeof m?.message_id !== "string") continue;
      let a = this.all.get(m.message_id);
      const running = m.state === "queued" || m.state === "streaming";
      if (!a && running) {
        const parts = m.text ? [{ kind: "text", delta: m.text }] : [];
        a = this.add(new Answer(m.message_id, m.content, "conversation", this.owner, m.last_seq ?? 0, parts));
        a.chat = "acked";
        this.sendResume(a);
        learned.push(a);
      }
      const e = { messageId: m.message_id, content: m.content, state: m.state, text: m.text };
      if (m.status) e.status = m.status;
      if (a) e.answer = a;
      entries.push(e);
    }
    this.conversations.shift()?.resolve(entries);
    if (learned.length) this.persistSoon();
    for (const a of learned) this.events.emit("message", a);
  }
  onStarted(messageId, content) {
    if (this.all.has(messageId)) return;
    const a = this.add(new Answer(messageId, content, "started", this.owner));
    a.chat = "acked";
    this.persistSoon();
    this.events.emit("message", a);
  }
  // ------------------------------------------------------------------ in-band token refresh
  /** Plans the next `auth` shortly before the token expires (needs a token function). */
  scheduleAuth(expSec) {
    if (this.authTimer !== void 0) clearTimeout(this.authTimer);
    this.authTimer = void 0;
    if (typeof this.tokenOption !== "function" || this.authUnsupported || this.closed) return;
    const fromToken = this.token !== void 0 ? jwtExpiry(this.token) : void 0;
    const exp = expSec === void 0 ? fromToken : Math.max(expSec, fromToken ?? 0);
    if (exp === void 0) return;
    const now = Date.now();
    const delay = Math.min(MAX_TIMER_MS, Math.max(refreshDelay(exp, now), this.lastAuthAt + MIN_AUTH_INTERVAL_MS - now));
    this.authTimer = setTimeout(() => void this.refreshAuth(exp), delay);
  }
  async refreshAuth(oldExp) {
    this.authTimer = void 0;
    if (!this.link.isOnline || this.authUnsupported) return;
    let token;
    try {
      token = await this.nextToken();
    } catch (e) {
      this.report(new StreamlineError("token_failed", `the token function failed: ${String(e)}`));
      return;
    }
    if (token === void 0) return;
    const exp = jwtExpiry(token);
    if (exp !== void 0 && exp <= oldExp) return;
    if (this.link.send({ type: "auth", token })) {
      this.lastAuthAt = Date.now();
      this.extPending.push("auth");
    }
  }
  // ------------------------------------------------------------------ sending
  sendChat(a) {
    if (a.content === void 0) {
      this.sendResume(a);
      return;
    }
    if (this.link.send({ type: "chat", content: a.content, message_id: a.messageId }) && a.chat === "unsent") {
      a.chat = "sent";
    }
  }
  sendResume(a) {
    if (this.link.send({ type: "resume", message_id: a.messageId, after_seq: a.lastSeq })) a.resumeOutstanding = true;
  }
  sendCancel(a) {
    if (this.link.send({ type: "cancel", message_id: a.messageId }) && a.chat !== "acked") a.cancelsBeforeAck += 1;
  }
  // ------------------------------------------------------------------ bookkeeping
  add(a) {
    this.all.set(a.messageId, a);
    return a;
  }
  trimFinished() {
    let excess = this.all.size - KEEP_FINISHED;
    if (excess <= 0) return;
    for (const [id, a] of this.all) {
      if (excess <= 0) break;
      if (a.finished && a.cancelWaiters.length === 0) {
        this.all.delete(id);
        excess -= 1;
      }
    }
  }
  report(e) {
    this.events.emit("error", e);
  }
};
function wsUrl(url) {
  const base = globalThis.location?.href;
  const u = new URL(url, base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new TypeError(`not a WebSocket address: ${url}`);
  return u;
}
function readyzUrl(ws) {
  const u = new URL(ws.href);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  u.pathname = u.pathname.replace(/[^/]*\/?$/, "readyz");
  u.search = "";
  u.hash = "";
  return u.href;
}
export {
  Answer,
  Client,
  CloseCode,
  KEY_PREFIX,
  PROTOCOL_VERSION,
  StreamlineError,
  connect
};
