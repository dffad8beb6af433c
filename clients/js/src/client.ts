/**
 * Client: a streamline session as an application uses it. `connect()` makes one; it stays
 * connected (Link), and keeps every answer it knows exact across reconnects and reloads:
 *
 * - after every `welcome` it re-establishes each unfinished answer: `resume` from the highest
 *   seq it holds once the server knew the message, else the `chat` again (idempotent: the
 *   message id is chosen here), and every Stop not yet answered;
 * - chunks go through each answer's Sequencer (repeats dropped, gaps buffered and, if they do
 *   not fill, re-requested with `resume`);
 * - a cancel is sent at once, even before the `ack` (a `not_found` that was only early is
 *   followed by another cancel once the message exists), and retried on transient errors;
 * - with `storage`, the session's resume token and every unfinished answer (content, highest
 *   seq, text so far) are kept there, so a new client after a reload continues them all.
 *
 * Frames of protocol v1 come from the generated `wire/` types; the coming additions
 * (`conversation`, `started`, reasoning and merged chunks) from protocol-next.ts; the in-band
 * token refresh (`auth`, `auth_ack`, close 4003) is protocol v1.
 */
import { Answer, type AnswerOwner, type Outcome } from './answer.js';
import type { BackoffOptions } from './backoff.js';
import { CloseCode } from './close-code.js';
import { Emitter } from './emitter.js';
import { StreamlineError } from './errors.js';
import { readFrame, type Incoming } from './incoming.js';
import { jwtExpiry, refreshDelay } from './jwt.js';
import { Link, type ConnectionState, type WebSocketConstructor } from './link.js';
import { CLIENT_CAPS, type ConversationMessage, type UsageNext } from './protocol-next.js';
import { defaultStorage, SessionStore, type StorageLike } from './session-store.js';
import { isUuid, uuidV4 } from './uuid.js';
import type { CancelStatus, ErrorBody, FinalStatus, MessageState } from './wire/index.js';

/** The browser protocol version this client speaks (`welcome.protocol`). */
export const PROTOCOL_VERSION = 1;

export interface ConnectOptions {
  /** The gateway's WebSocket address, `ws(s)://host/ws` (http(s) and, in browsers, relative
   * addresses are accepted too). */
  url: string;
  /** Login JWT for gateways with AUTH_SECRET: a string, or a function called on every
   * (re)connect and shortly before the current token expires. */
  token?: string | (() => string | Promise<string>);
  /** Where to keep what a reload needs. Default: `localStorage` in browsers, none in Node;
   * `null`: none. */
  storage?: StorageLike | null;
  /** Join this session: its id (its resume token must be in `storage`), or id and token. */
  session?: string | { id: string; resumeToken: string };
  /** A WebSocket constructor; needed in Node 20 (e.g. `import WebSocket from 'ws'`). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff. */
  reconnect?: BackoffOptions;
  /** Frames above this many bytes are not sent (the gateway's MAX_FRAME_BYTES would close the
   * socket with 1009); such a chat fails with `content_too_long`. Default 65 536. */
  maxFrameBytes?: number;
}

export interface ChatOptions {
  /** A UUID chosen by the caller; default: a fresh UUID v4. */
  messageId?: string;
}

/** One message of `client.conversation()`, oldest first. */
export interface ConversationEntry {
  messageId: string;
  content: string;
  state: MessageState;
  text: string;
  status?: FinalStatus;
  error?: ErrorBody;
  usage?: UsageNext;
  /** The live answer, for running messages and those this client knows. */
  answer?: Answer;
}

export interface ClientEvents {
  state: (state: ConnectionState) => void;
  /** An answer this client did not start (another tab or device, or found at reconnect). */
  message: (answer: Answer) => void;
  /** Something went wrong that concerns no single answer. */
  error: (error: StreamlineError) => void;
  /** The session id, at the first welcome and whenever it changes. */
  session: (sessionId: string) => void;
}

const TRANSIENT_CODES = new Set(['rate_limited', 'ai_service_unavailable', 'shutting_down', 'store_unavailable']);
/** Retries of a chat, cancel or resume the server could not serve right now. */
const TRANSIENT_RETRIES = 4;
/** How long a gap may stay open before it is re-requested. */
const GAP_WAIT_MS = 250;
const GAP_WAIT_MAX_MS = 8_000;
/** Chunk progress is written to storage at most this often. */
const PERSIST_DELAY_MS = 200;
/** Finished answers kept in memory (`answers()`). */
const KEEP_FINISHED = 200;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** In-band token refreshes are at least this far apart, whatever the tokens' lifetimes. */
const MIN_AUTH_INTERVAL_MS = 5_000;

export function connect(options: ConnectOptions): Client {
  return new Client(options);
}

export class Client {
  /** The session id, once welcomed. */
  sessionId: string | undefined;

  private readonly events = new Emitter<ClientEvents>();
  private readonly link: Link;
  private readonly store: SessionStore | undefined;
  private readonly baseUrl: URL;
  private readonly tokenOption: ConnectOptions['token'];
  private readonly maxFrameBytes: number;
  private session: { id: string; resumeToken: string } | undefined;
  /** A session whose token the gateway refused: the next welcome replaces it. */
  private staleSession: string | undefined;
  private readonly all = new Map<string, Answer>();
  private readonly conversations: Array<{ resolve(e: ConversationEntry[]): void; reject(e: StreamlineError): void }> = [];
  /** Extension frames sent on this socket and not answered yet, in order (their
   * `error{unknown_type}` carries no message id). */
  private extPending: Array<'conversation' | 'auth'> = [];
  private token: string | undefined;
  private authTimer: ReturnType<typeof setTimeout> | undefined;
  private authUnsupported = false;
  private lastAuthAt = 0;
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly onPageHide = () => this.persistNow();
  /** What the answers of this client call back into. */
  private readonly owner: AnswerOwner = { cancel: (a) => this.cancelAnswer(a) };

  constructor(options: ConnectOptions) {
    const Ws = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ws) throw new TypeError('no WebSocket here: pass options.WebSocket (in Node 20, the `ws` package)');
    this.baseUrl = wsUrl(options.url);
    this.tokenOption = options.token;
    this.maxFrameBytes = options.maxFrameBytes ?? 65_536;
    const storage = options.storage === null ? undefined : (options.storage ?? defaultStorage());
    this.store = storage
      ? new SessionStore(storage, (e) => this.report(new StreamlineError('storage_failed', `storage failed: ${String(e)}`)))
      : undefined;
    this.restore(options.session);
    this.link = new Link(
      Ws,
      {
        url: () => this.url(),
        token: () => this.nextToken(),
        resuming: () => this.session !== undefined,
        onFrame: (text) => this.onFrame(text),
        onClosed: (code) => this.onClosed(code),
        onStaleSession: () => {
          this.staleSession = this.session?.id;
          this.session = undefined;
        },
        onState: (s) => this.events.emit('state', s),
        onError: (e) => this.report(e),
      },
      readyzUrl(this.baseUrl),
      options.reconnect,
    );
    (globalThis as { addEventListener?: (t: string, f: () => void) => void }).addEventListener?.(
      'pagehide',
      this.onPageHide,
    );
    this.link.start();
  }

  get state(): ConnectionState {
    return this.link.state;
  }

  /**
   * The session's resume token, once welcomed: with the session id, what another client needs
   * to join this session (`connect({ session: { id, resumeToken } })`). A credential: treat it
   * like the session itself.
   */
  get resumeToken(): string | undefined {
    return this.sessionId !== undefined ? this.session?.resumeToken : undefined;
  }

  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  off<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): void {
    this.events.off(event, listener);
  }

  /** Sends a message; the answer streams into the returned object. */
  chat(content: string, options: ChatOptions = {}): Answer {
    if (this.closed) throw new StreamlineError('client_closed', 'the client was closed');
    if (typeof content !== 'string') throw new TypeError('content must be a string');
    const id = options.messageId ?? uuidV4();
    if (!isUuid(id)) throw new TypeError(`messageId must be a UUID, got ${JSON.stringify(id)}`);
    const known = this.all.get(id);
    if (known) return known;
    const a = this.add(new Answer(id, content, 'chat', this.owner));
    if (content.trim() === '') {
      a.finish({ status: 'failed', error: { code: 'empty_content', message: 'content is empty' } });
      return a;
    }
    const bytes = new TextEncoder().encode(JSON.stringify({ type: 'chat', content, message_id: id })).length;
    if (bytes > this.maxFrameBytes) {
      a.finish({
        status: 'failed',
        error: { code: 'content_too_long', message: `the chat frame would be ${bytes} bytes (limit ${this.maxFrameBytes})` },
      });
      return a;
    }
    this.sendChat(a);
    this.persistNow();
    return a;
  }

  /** Every answer this client knows, oldest first: started here, restored from storage after
   * a reload, or learned from the server (running in another tab). */
  answers(): Answer[] {
    return [...this.all.values()];
  }

  answer(messageId: string): Answer | undefined {
    return this.all.get(messageId);
  }

  /**
   * The session's messages, oldest first (needs server support: `conversation` frames; an
   * older gateway makes this reject with `unsupported`). Running ones are followed from then on.
   */
  conversation(): Promise<ConversationEntry[]> {
    if (this.closed) return Promise.reject(new StreamlineError('client_closed', 'the client was closed'));
    return new Promise((resolve, reject) => {
      this.conversations.push({ resolve, reject });
      if (this.link.send({ type: 'conversation' })) this.extPending.push('conversation');
    });
  }

  /** Connects again now (e.g. after another tab took the session over: state `offline`). */
  reconnect(): void {
    if (!this.closed) this.link.reconnectNow();
  }

  /** Closes the socket for good. Unfinished answers stay in storage for the next page. */
  close(): void {
    if (this.closed) return;
    this.persistNow();
    this.closed = true;
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    (globalThis as { removeEventListener?: (t: string, f: () => void) => void }).removeEventListener?.(
      'pagehide',
      this.onPageHide,
    );
    this.link.close();
    const err = new StreamlineError('client_closed', 'the client was closed');
    for (const a of this.all.values()) {
      a.abort(err);
      for (const w of a.cancelWaiters.splice(0)) w.reject(err);
    }
    for (const c of this.conversations.splice(0)) c.reject(err);
  }

  private cancelAnswer(a: Answer): Promise<CancelStatus> {
    if (this.closed) return Promise.reject(new StreamlineError('client_closed', 'the client was closed', a.messageId));
    return new Promise<CancelStatus>((resolve, reject) => {
      if (a.chat === 'unsent') {
        // The chat never left this client: nothing runs on the server.
        if (a.finish({ status: 'cancelled' })) {
          this.persistNow();
          resolve('cancelling');
        } else {
          resolve(a.status === 'cancelled' ? 'already_cancelled' : 'already_completed');
        }
        return;
      }
      if (!a.finished) a.cancelWanted = true;
      a.cancelWaiters.push({ resolve, reject });
      this.sendCancel(a); // offline: sent at the next welcome
      this.persistSoon();
    });
  }

  // ------------------------------------------------------------------ session and storage

  private restore(session: ConnectOptions['session']): void {
    let id: string | undefined;
    let token: string | undefined;
    if (typeof session === 'string') {
      id = session;
    } else if (session) {
      id = session.id;
      token = session.resumeToken;
    } else {
      id = this.store?.current();
    }
    if (id === undefined) return;
    const rec = this.store?.load(id);
    token ??= rec?.resumeToken;
    if (token === undefined) {
      if (session === undefined) return;
      throw new StreamlineError('unknown_session', `no resume token for session ${id} in storage`);
    }
    this.session = { id, resumeToken: token };
    for (const s of rec?.answers ?? []) {
      const parts = s.parts.map(([kind, delta]) => ({ kind, delta }));
      const a = this.add(new Answer(s.id, s.content, 'storage', this.owner, s.seq, parts));
      a.chat = s.chat;
      a.cancelWanted = s.cancel === true;
    }
  }

  private persistSoon(): void {
    if (!this.store || this.persistTimer !== undefined || this.closed) return;
    this.persistTimer = setTimeout(() => this.persistNow(), PERSIST_DELAY_MS);
  }

  private persistNow(): void {
    if (this.persistTimer !== undefined) clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    if (!this.store || !this.session || this.closed) return;
    const answers = [...this.all.values()].filter((a) => !a.finished).map((a) => a.toStored());
    this.store.save({ v: 1, sessionId: this.session.id, resumeToken: this.session.resumeToken, answers });
  }

  // ------------------------------------------------------------------ connection

  private url(): string {
    const u = new URL(this.baseUrl.href);
    u.searchParams.set('caps', CLIENT_CAPS.join(','));
    if (this.session) {
      u.searchParams.set('session_id', this.session.id);
      u.searchParams.set('resume_token', this.session.resumeToken);
    } else {
      u.searchParams.delete('session_id');
      u.searchParams.delete('resume_token');
    }
    return u.href;
  }

  private async nextToken(): Promise<string | undefined> {
    const t = this.tokenOption;
    if (t === undefined) return undefined;
    const v: unknown = typeof t === 'function' ? await t() : t;
    if (typeof v !== 'string') throw new TypeError('the token function did not return a string');
    this.token = v;
    return v;
  }

  private onClosed(code: number): void {
    this.extPending = [];
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    for (const a of this.all.values()) {
      a.stopGapTimer();
      a.resumeOutstanding = false;
      // Frames in flight died with the socket; the next welcome sends every cancel again.
      a.cancelsBeforeAck = 0;
      a.cancelOnAck = false;
    }
    if (code === CloseCode.TooBig) {
      // A chat frame of ours was over the gateway's MAX_FRAME_BYTES: sending it again would
      // close the next socket too.
      for (const a of this.all.values()) {
        if (!a.finished && a.chat === 'sent') {
          this.finishAnswer(a, { status: 'failed', error: { code: 'content_too_long', message: 'the gateway refused the frame as too big (1009)' } });
        }
      }
    }
    if (code === CloseCode.SessionReplaced) {
      this.report(new StreamlineError('session_replaced', 'another connection of this session took over (4001); call reconnect() to take it back'));
    }
  }

  private onFrame(text: string): void {
    const f = readFrame(text);
    if (!f) return;
    switch (f.type) {
      case 'welcome':
        return this.onWelcome(f);
      case 'ack': {
        const a = this.all.get(f.message_id);
        if (!a || a.chat === 'acked') return;
        a.chat = 'acked';
        a.retries = 0;
        if (a.cancelOnAck) {
          a.cancelOnAck = false;
          this.sendCancel(a);
        }
        this.persistSoon();
        return;
      }
      case 'chunk':
        return this.onChunk(f);
      case 'done':
        return this.onDone(f);
      case 'cancel_ack':
        return this.onCancelAck(f.message_id, f.status);
      case 'error':
        return this.onError(f);
      case 'conversation':
        return this.onConversation(f.messages);
      case 'started':
        return this.onStarted(f.message_id, f.content);
      case 'auth_ack': {
        const i = this.extPending.indexOf('auth');
        if (i >= 0) this.extPending.splice(i, 1);
        this.scheduleAuth(f.exp);
        return;
      }
      case 'heartbeat_ack':
        return;
    }
  }

  private onWelcome(f: Extract<Incoming, { type: 'welcome' }>): void {
    if (f.protocol !== PROTOCOL_VERSION) {
      this.report(new StreamlineError('protocol_version', `the gateway speaks protocol ${f.protocol}, this client ${PROTOCOL_VERSION}`));
    }
    const previous = this.session?.id ?? this.staleSession;
    this.staleSession = undefined;
    if (previous !== undefined && previous !== f.session_id) this.sessionLost(previous);
    this.session = { id: f.session_id, resumeToken: f.resume_token };
    const changed = this.sessionId !== f.session_id;
    this.sessionId = f.session_id;
    this.extPending = [];
    this.authUnsupported = false;
    this.link.markWelcomed(f.heartbeat_interval_ms);

    const active = new Set((f.active ?? []).map((m) => m.message_id));
    const learned: Answer[] = [];
    for (const id of active) {
      if (this.all.has(id)) continue;
      const a = this.add(new Answer(id, undefined, 'active', this.owner));
      a.chat = 'acked';
      learned.push(a);
    }
    for (const a of this.all.values()) {
      if (a.finished) {
        // A Stop whose answer was lost with the socket: ask again (already_* now).
        for (let i = 0; i < a.cancelWaiters.length; i++) this.sendCancel(a);
        continue;
      }
      a.seq.clearAhead();
      a.stopGapTimer();
      if (a.chat === 'acked' || active.has(a.messageId)) {
        a.chat = 'acked';
        this.sendResume(a);
      } else {
        // Never reached the server, or we cannot tell: the client-chosen id makes this safe.
        this.sendChat(a);
      }
      const cancels = a.cancelWaiters.length || (a.cancelWanted ? 1 : 0);
      for (let i = 0; i < cancels; i++) this.sendCancel(a);
    }
    for (let i = 0; i < this.conversations.length; i++) {
      if (this.link.send({ type: 'conversation' })) this.extPending.push('conversation');
    }
    this.persistNow();
    this.scheduleAuth(undefined);
    if (changed) this.events.emit('session', f.session_id);
    for (const a of learned) this.events.emit('message', a);
  }

  /** The gateway gave us a new session: answers in flight on the old one cannot come back. */
  private sessionLost(previous: string): void {
    for (const a of this.all.values()) {
      if (a.finished || a.chat === 'unsent') continue;
      this.finishAnswer(a, {
        status: 'failed',
        error: { code: 'resume_unavailable', message: 'the session was lost (the gateway refused its resume token)' },
      });
      for (const w of a.cancelWaiters.splice(0)) w.resolve('not_found');
    }
    this.store?.forget(previous);
  }

  // ------------------------------------------------------------------ answers

  private onChunk(f: Extract<Incoming, { type: 'chunk' }>): void {
    const a = this.all.get(f.message_id);
    if (!a || a.finished) return;
    a.chat = 'acked';
    a.resumeOutstanding = false;
    a.retries = 0;
    const r = a.seq.offer({ first: f.first_seq ?? f.seq, last: f.seq, kind: f.kind ?? 'text', delta: f.delta });
    switch (r.kind) {
      case 'repeat':
        return;
      case 'applied':
        a.append(r.pieces);
        if (!r.gap && !a.pendingDone) a.stopGapTimer();
        this.settlePendingDone(a);
        if (r.gap) this.gap(a, false);
        this.persistSoon();
        return;
      case 'gap':
        this.gap(a, r.dropped);
        return;
    }
  }

  private onDone(f: Extract<Incoming, { type: 'done' }>): void {
    const a = this.all.get(f.message_id);
    if (!a || a.finished) return;
    a.chat = 'acked';
    a.resumeOutstanding = false;
    const outcome: Outcome = { status: f.status };
    if (f.error) outcome.error = f.error;
    if (f.usage) outcome.usage = f.usage;
    if (f.seq > a.lastSeq) {
      // Chunks are missing: a resume replays them and this done again.
      a.pendingDone = { seq: f.seq, outcome };
      this.gap(a, false);
      return;
    }
    this.finishAnswer(a, outcome);
  }

  private settlePendingDone(a: Answer): void {
    if (a.pendingDone && a.lastSeq >= a.pendingDone.seq) this.finishAnswer(a, a.pendingDone.outcome);
  }

  private finishAnswer(a: Answer, outcome: Outcome): void {
    if (!a.finish(outcome)) return;
    a.cancelWanted = false;
    if (a.cancelOnAck) {
      // The early not_found's follow-up never got its ack; ask now (already_* or not_found).
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
  private gap(a: Answer, urgent: boolean): void {
    if (a.gapTimer !== undefined) return;
    if (urgent) this.sendResume(a);
    const wait = Math.min(GAP_WAIT_MAX_MS, GAP_WAIT_MS * 2 ** a.gapTries);
    a.gapTimer = setTimeout(() => {
      a.gapTimer = undefined;
      if (a.finished || this.closed || (!a.seq.hasGap && !a.pendingDone)) return;
      a.gapTries += 1;
      this.sendResume(a);
      this.gap(a, false);
    }, wait);
  }

  private onCancelAck(messageId: string, status: CancelStatus): void {
    const a = this.all.get(messageId);
    if (!a) return;
    a.retries = 0;
    if (a.cancelsBeforeAck > 0) {
      a.cancelsBeforeAck -= 1;
      if (status === 'not_found' && !a.finished) {
        // The cancel overtook its chat: the message did not exist yet. Cancel it once it does.
        if (a.chat === 'acked') this.sendCancel(a);
        else a.cancelOnAck = true;
        return;
      }
    }
    a.cancelWaiters.shift()?.resolve(status);
  }

  private onError(f: Extract<Incoming, { type: 'error' }>): void {
    const err = new StreamlineError(f.code, f.message, f.message_id ?? undefined);
    if (!f.message_id) {
      if (f.code === 'unknown_type' && this.extPending.length > 0) {
        const what = this.extPending.shift();
        if (what === 'conversation') {
          this.conversations.shift()?.reject(new StreamlineError('unsupported', 'this gateway does not answer `conversation`'));
        } else {
          this.authUnsupported = true;
        }
        return;
      }
      if (f.code === 'unauthorized' && this.extPending[0] === 'auth') this.extPending.shift();
      this.report(err);
      return;
    }
    const a = this.all.get(f.message_id);
    if (!a) {
      this.report(err);
      return;
    }
    if (f.code === 'duplicate_message_id') {
      // Our re-sent chat found the message already followed here: continue where we are.
      a.chat = 'acked';
      this.sendResume(a);
      return;
    }
    if (f.code === 'resume_unavailable') {
      this.finishAnswer(a, { status: 'failed', error: { code: f.code, message: f.message } });
      return;
    }
    if (TRANSIENT_CODES.has(f.code)) {
      this.transient(a, f.code, f.message);
      return;
    }
    if (!a.finished && a.chat !== 'acked') {
      // The chat itself was refused (too_many_generations, content_too_long, quota_exceeded
      // with retry_after_s, …).
      const error: ErrorBody = { code: f.code, message: f.message };
      if (f.retry_after_s != null) error.retry_after_s = f.retry_after_s;
      this.finishAnswer(a, { status: 'failed', error });
      return;
    }
    this.report(err);
  }

  /**
   * The server could not serve a chat, cancel or resume of this answer right now. Which one is
   * not said (the error carries only the message id), and each is idempotent: after a
   * jittered delay, send again whatever is still outstanding.
   */
  private transient(a: Answer, code: Extract<Incoming, { type: 'error' }>['code'], message: string): void {
    a.retries += 1;
    if (a.retries > TRANSIENT_RETRIES) {
      a.retries = 0;
      const waiter = a.cancelWaiters.shift();
      if (waiter) waiter.reject(new StreamlineError(code, `the cancel could not be made: ${message}`, a.messageId));
      else if (!a.finished) this.finishAnswer(a, { status: 'failed', error: { code, message } });
      return;
    }
    const delay = 500 * 2 ** (a.retries - 1) * (0.5 + Math.random() / 2);
    setTimeout(() => {
      if (this.closed || !this.link.isOnline) return; // the next welcome re-sends everything
      if (!a.finished && a.chat === 'sent') this.sendChat(a);
      if (a.cancelWaiters.length > 0) this.sendCancel(a);
      if (!a.finished && a.resumeOutstanding) this.sendResume(a);
    }, delay);
  }

  private onConversation(messages: ConversationMessage[]): void {
    const i = this.extPending.indexOf('conversation');
    if (i >= 0) this.extPending.splice(i, 1);
    const learned: Answer[] = [];
    const entries: ConversationEntry[] = [];
    for (const m of messages) {
      if (typeof m?.message_id !== 'string') continue;
      let a = this.all.get(m.message_id);
      const running = m.state === 'queued' || m.state === 'streaming';
      if (!a && running) {
        const parts = m.text ? [{ kind: 'text' as const, delta: m.text }] : [];
        a = this.add(new Answer(m.message_id, m.content, 'conversation', this.owner, m.last_seq ?? 0, parts));
        a.chat = 'acked';
        this.sendResume(a);
        learned.push(a);
      }
      const e: ConversationEntry = { messageId: m.message_id, content: m.content, state: m.state, text: m.text };
      if (m.status) e.status = m.status;
      if (a) e.answer = a;
      entries.push(e);
    }
    this.conversations.shift()?.resolve(entries);
    if (learned.length) this.persistSoon();
    for (const a of learned) this.events.emit('message', a);
  }

  private onStarted(messageId: string, content: string): void {
    if (this.all.has(messageId)) return;
    const a = this.add(new Answer(messageId, content, 'started', this.owner));
    a.chat = 'acked'; // the server delivers its chunks to this socket
    this.persistSoon();
    this.events.emit('message', a);
  }

  // ------------------------------------------------------------------ in-band token refresh

  /** Plans the next `auth` shortly before the token expires (needs a token function). */
  private scheduleAuth(expSec: number | undefined): void {
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    if (typeof this.tokenOption !== 'function' || this.authUnsupported || this.closed) return;
    // The later of what the gateway said and what the token says.
    const fromToken = this.token !== undefined ? jwtExpiry(this.token) : undefined;
    const exp = expSec === undefined ? fromToken : Math.max(expSec, fromToken ?? 0);
    if (exp === undefined) return;
    const now = Date.now();
    const delay = Math.min(MAX_TIMER_MS, Math.max(refreshDelay(exp, now), this.lastAuthAt + MIN_AUTH_INTERVAL_MS - now));
    this.authTimer = setTimeout(() => void this.refreshAuth(exp), delay);
  }

  private async refreshAuth(oldExp: number): Promise<void> {
    this.authTimer = undefined;
    if (!this.link.isOnline || this.authUnsupported) return;
    let token: string | undefined;
    try {
      token = await this.nextToken();
    } catch (e) {
      this.report(new StreamlineError('token_failed', `the token function failed: ${String(e)}`));
      return;
    }
    if (token === undefined) return;
    const exp = jwtExpiry(token);
    // No newer token: leave it to the gateway's 4003, which reconnects with a fresh one.
    if (exp !== undefined && exp <= oldExp) return;
    if (this.link.send({ type: 'auth', token })) {
      this.lastAuthAt = Date.now();
      this.extPending.push('auth');
    }
  }

  // ------------------------------------------------------------------ sending

  private sendChat(a: Answer): void {
    if (a.content === undefined) {
      this.sendResume(a);
      return;
    }
    if (this.link.send({ type: 'chat', content: a.content, message_id: a.messageId }) && a.chat === 'unsent') {
      a.chat = 'sent';
    }
  }

  private sendResume(a: Answer): void {
    if (this.link.send({ type: 'resume', message_id: a.messageId, after_seq: a.lastSeq })) a.resumeOutstanding = true;
  }

  private sendCancel(a: Answer): void {
    if (this.link.send({ type: 'cancel', message_id: a.messageId }) && a.chat !== 'acked') a.cancelsBeforeAck += 1;
  }

  // ------------------------------------------------------------------ bookkeeping

  private add(a: Answer): Answer {
    this.all.set(a.messageId, a);
    return a;
  }

  private trimFinished(): void {
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

  private report(e: StreamlineError): void {
    this.events.emit('error', e);
  }
}

/** The gateway address as a ws(s) URL. */
function wsUrl(url: string): URL {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  const u = new URL(url, base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`not a WebSocket address: ${url}`);
  return u;
}

/** The gateway's /readyz next to its /ws. */
function readyzUrl(ws: URL): string {
  const u = new URL(ws.href);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = u.pathname.replace(/[^/]*\/?$/, 'readyz');
  u.search = '';
  u.hash = '';
  return u.href;
}
