/**
 * Link: one self-healing WebSocket to the gateway. It opens the socket (a fresh token per
 * attempt, offered as `bearer.<jwt>` next to `streamline.v1`), keeps it alive (heartbeats, and
 * a watchdog that abandons a socket that went silent without a close event), and after every
 * loss reconnects as the close code asks (close-code.ts) with full-jitter backoff.
 *
 * It knows nothing of answers: the client reads the frames, tells the link when `welcome`
 * arrived (only then is the link online and `send` works), and re-establishes its state.
 */
import { reconnectDelay, type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';
import { afterClose, CloseCode } from './close-code.js';
import { StreamlineError } from './errors.js';

/** `connecting`: the first connection; `reconnecting`: after a loss; `offline`: not trying, or
 * failing for a while (still retrying unless closed or replaced). */
export type ConnectionState = 'connecting' | 'online' | 'reconnecting' | 'offline';

/** What the client needs of a WebSocket: the browser's, or e.g. the `ws` package's in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (ev: { code: number; reason: string }) => void): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface LinkHooks {
  /** The address of the next attempt (with the session's resume parameters). */
  url(): string;
  /** The login token of the next attempt (undefined: none). Throwing fails the attempt. */
  token(): Promise<string | undefined>;
  /** The next attempt presents a resume token. */
  resuming(): boolean;
  onFrame(text: string): void;
  /** The socket is gone (not called after `close()`). `welcomed`: it had been online. */
  onClosed(code: number, welcomed: boolean): void;
  /** Connects keep failing with our resume token while the gateway is ready: drop the session. */
  onStaleSession(): void;
  onState(state: ConnectionState): void;
  onError(error: StreamlineError): void;
}

const OPEN = 1;
const DEFAULT_HEARTBEAT_MS = 15_000;
/** Consecutive failed attempts after which the state says `offline` (retries go on). */
const OFFLINE_AFTER_FAILURES = 5;
/** Consecutive failed attempts with a resume token after which /readyz is asked (see hooks). */
const STALE_SESSION_AFTER_FAILURES = 3;
/** An attempt that has not been welcomed by then is abandoned. */
const CONNECT_TIMEOUT_MS = 15_000;

export class Link {
  private ws: WebSocketLike | undefined;
  private welcomed = false;
  private everOnline = false;
  private failures = 0;
  private closed = false;
  private attemptNo = 0;
  private current: ConnectionState = 'connecting';
  private lastFrameAt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private watchdogTimer: ReturnType<typeof setInterval> | undefined;
  private readonly backoff: Required<BackoffOptions>;
  private readonly onOnline = () => {
    if (this.reconnectTimer !== undefined) this.attempt();
  };

  constructor(
    private readonly Ws: WebSocketConstructor,
    private readonly hooks: LinkHooks,
    private readonly readyzUrl: string | undefined,
    backoff: BackoffOptions = {},
  ) {
    this.backoff = { ...DEFAULT_BACKOFF, ...backoff };
    (globalThis as { addEventListener?: (t: string, f: () => void) => void }).addEventListener?.(
      'online',
      this.onOnline,
    );
  }

  get state(): ConnectionState {
    return this.current;
  }

  get isOnline(): boolean {
    return this.welcomed && this.ws?.readyState === OPEN;
  }

  start(): void {
    this.attempt();
  }

  /** Sends a frame if online (welcomed); false otherwise (the client re-sends at welcome). */
  send(frame: object): boolean {
    const ws = this.ws;
    if (!this.welcomed || !ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  /** The client read `welcome`: the link is online. */
  markWelcomed(heartbeatMs: number): void {
    this.welcomed = true;
    this.everOnline = true;
    this.failures = 0;
    this.clearTimer('connect');
    this.startHeartbeat(heartbeatMs > 0 ? heartbeatMs : DEFAULT_HEARTBEAT_MS);
    this.setState('online');
  }

  /** Drops the socket (if any) and connects again at once, with a fresh token. */
  reconnectNow(): void {
    if (this.closed) return;
    const ws = this.ws;
    if (ws) {
      const wasWelcomed = this.welcomed;
      this.forgetSocket();
      try {
        ws.close(CloseCode.Normal, 'reconnect');
      } catch {
        /* already closing */
      }
      this.hooks.onClosed(CloseCode.Normal, wasWelcomed);
    }
    this.attempt();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const ws = this.ws;
    this.forgetSocket();
    this.clearTimer('reconnect');
    (globalThis as { removeEventListener?: (t: string, f: () => void) => void }).removeEventListener?.(
      'online',
      this.onOnline,
    );
    if (ws) {
      try {
        ws.close(CloseCode.Normal, 'bye');
      } catch {
        /* already closing */
      }
    }
    this.setState('offline');
  }

  private async attempt(): Promise<void> {
    this.clearTimer('reconnect');
    if (this.closed || this.ws) return;
    const no = ++this.attemptNo;
    const waiting = this.failures >= OFFLINE_AFTER_FAILURES;
    this.setState(waiting ? 'offline' : this.everOnline ? 'reconnecting' : 'connecting');
    let token: string | undefined;
    try {
      token = await this.hooks.token();
    } catch (e) {
      this.hooks.onError(new StreamlineError('token_failed', `the token function failed: ${String(e)}`));
      if (no === this.attemptNo) this.failed();
      return;
    }
    if (this.closed || no !== this.attemptNo || this.ws) return;
    let ws: WebSocketLike;
    try {
      ws = new this.Ws(this.hooks.url(), token ? ['streamline.v1', `bearer.${token}`] : []);
    } catch (e) {
      this.hooks.onError(new StreamlineError('connect_failed', `cannot open a WebSocket: ${String(e)}`));
      this.failed();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    this.lastFrameAt = Date.now();
    this.connectTimer = setTimeout(() => this.abandon(), CONNECT_TIMEOUT_MS);
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      if (typeof ev.data === 'string') this.hooks.onFrame(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws === ws) this.dropped(ev.code);
    });
    ws.addEventListener('error', () => {
      /* always followed by 'close' */
    });
  }

  /** The socket went away (close event, or abandoned by the watchdog). */
  private dropped(code: number): void {
    const wasWelcomed = this.welcomed;
    this.forgetSocket();
    if (!wasWelcomed) this.failures += 1;
    this.hooks.onClosed(code, wasWelcomed);
    if (this.closed) return;
    const plan = afterClose(code);
    switch (plan.kind) {
      case 'stay_offline':
        this.setState('offline');
        return;
      case 'now':
        if (wasWelcomed) {
          this.attempt();
          return;
        }
        this.schedule(false);
        return;
      case 'spread':
        this.schedule(true);
        return;
      case 'backoff':
        this.schedule(false);
        return;
    }
  }

  private failed(): void {
    this.failures += 1;
    this.schedule(false);
  }

  private schedule(spread: boolean): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    const waiting = this.failures >= OFFLINE_AFTER_FAILURES;
    this.setState(waiting ? 'offline' : this.everOnline ? 'reconnecting' : 'connecting');
    const delay = reconnectDelay(this.failures, spread, this.backoff);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.beforeAttempt().then(() => this.attempt());
    }, delay);
  }

  /**
   * After several refused attempts with a resume token, ask the gateway's /readyz: if it is
   * ready, the refusal is our session (an anonymous gateway restarted, or the session is
   * another user's), and a new one is needed. A browser cannot see the handshake's 401.
   */
  private async beforeAttempt(): Promise<void> {
    if (this.failures < STALE_SESSION_AFTER_FAILURES || !this.hooks.resuming() || !this.readyzUrl) return;
    try {
      const r = await fetch(this.readyzUrl, { cache: 'no-store' });
      if (r.ok) this.hooks.onStaleSession();
    } catch {
      // Unreachable (or a cross-origin page without CORS): keep the session and keep trying.
    }
  }

  private abandon(): void {
    const ws = this.ws;
    if (!ws) return;
    this.dropped(CloseCode.Abnormal);
    try {
      ws.close();
    } catch {
      /* already closing */
    }
  }

  private forgetSocket(): void {
    this.ws = undefined;
    this.welcomed = false;
    this.clearTimer('connect');
    this.clearTimer('heartbeat');
  }

  private startHeartbeat(ms: number): void {
    this.clearTimer('heartbeat');
    this.heartbeatTimer = setInterval(() => this.send({ type: 'heartbeat' }), ms);
    // A socket that died without a close event shows as missing heartbeat_acks.
    this.watchdogTimer = setInterval(() => {
      if (Date.now() - this.lastFrameAt > ms * 2.5 + 1000) this.abandon();
    }, Math.max(1000, Math.floor(ms / 2)));
  }

  private clearTimer(which: 'reconnect' | 'connect' | 'heartbeat'): void {
    switch (which) {
      case 'reconnect':
        if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        return;
      case 'connect':
        if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
        this.connectTimer = undefined;
        return;
      case 'heartbeat':
        if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
        if (this.watchdogTimer !== undefined) clearInterval(this.watchdogTimer);
        this.heartbeatTimer = this.watchdogTimer = undefined;
        return;
    }
  }

  private setState(s: ConnectionState): void {
    if (this.current === s) return;
    this.current = s;
    this.hooks.onState(s);
  }
}
