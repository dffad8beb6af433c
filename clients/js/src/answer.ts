/**
 * Answer: one message's answer as the application sees it — an async iterable of its parts
 * (each once, in order, however many reconnects happen underneath), its text, its outcome, and
 * its Stop.
 *
 * Every iteration starts from the first part: an answer keeps its parts, so a view attached
 * late (or a reloaded page, whose stored text comes back as the first parts) renders it whole.
 *
 * The members marked `@internal` are the client's bookkeeping for the protocol (how far the
 * `chat` got, the sequencer, the cancels in flight); they are not part of the published types.
 */
import { StreamlineError } from './errors.js';
import type { PartKind, UsageNext } from './protocol-next.js';
import { Sequencer, type Piece } from './sequencer.js';
import type { ChatProgress, StoredAnswer } from './session-store.js';
import type { CancelStatus, ErrorBody, FinalStatus } from './wire/index.js';

/** One piece of an answer. Reasoning parts are not part of `text()`. */
export interface Part {
  kind: PartKind;
  delta: string;
}

/** How an answer ended: the `done` frame. */
export interface Outcome {
  status: FinalStatus;
  /** Why it failed (only with `failed`). */
  error?: ErrorBody;
  /** Token counts, when the model server reported them (or the server estimated them). */
  usage?: UsageNext;
}

/** `pending`: no part yet; `streaming`: parts arriving; then how it ended. */
export type AnswerStatus = 'pending' | 'streaming' | FinalStatus;

/**
 * Where the client learned of the answer: `chat()` here; `storage` (a reload); the server's
 * `welcome.active`, `started` or `conversation` (started elsewhere, e.g. another tab).
 */
export type AnswerOrigin = 'chat' | 'storage' | 'active' | 'started' | 'conversation';

/** What an answer needs from its client. */
export interface AnswerOwner {
  cancel(answer: Answer): Promise<CancelStatus>;
}

interface Waiter {
  resolve(s: CancelStatus): void;
  reject(e: StreamlineError): void;
}

export class Answer implements AsyncIterable<Part> {
  /** Resolves once the answer ended (never rejects, except after `client.close()`). */
  readonly done: Promise<Outcome>;

  /** @internal */ chat: ChatProgress = 'unsent';
  /** @internal */ readonly seq: Sequencer;
  /** @internal A `done` that arrived before all its chunks. */
  pendingDone: { seq: number; outcome: Outcome } | undefined;
  /** @internal One per `cancel()` call not yet answered; each has one cancel frame in flight. */
  readonly cancelWaiters: Waiter[] = [];
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
  /** @internal */ gapTimer: ReturnType<typeof setTimeout> | undefined;
  /** @internal */ gapTries = 0;
  /** @internal When the answer ended here (ms). */
  finishedAt = 0;

  private readonly partList: Part[] = [];
  private outcome: Outcome | undefined;
  private failure: StreamlineError | undefined;
  private readonly wakers = new Set<() => void>();
  private resolveDone!: (o: Outcome) => void;
  private rejectDone!: (e: StreamlineError) => void;

  /** @internal */
  constructor(
    /** The message id (a UUID). */
    readonly messageId: string,
    /** The prompt, when this client knows it. */
    readonly content: string | undefined,
    readonly origin: AnswerOrigin,
    private readonly owner: AnswerOwner,
    startSeq = 0,
    initialParts: Part[] = [],
  ) {
    this.seq = new Sequencer(startSeq);
    this.partList.push(...initialParts);
    this.done = new Promise<Outcome>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A rejection after close() must not be an unhandled rejection for those who never awaited.
    this.done.catch(() => {});
  }

  get status(): AnswerStatus {
    if (this.outcome) return this.outcome.status;
    return this.seq.lastSeq > 0 || this.partList.length > 0 ? 'streaming' : 'pending';
  }

  /** True once the answer ended (or the client was closed). */
  get finished(): boolean {
    return this.outcome !== undefined || this.failure !== undefined;
  }

  /** The highest seq received without a gap. */
  get lastSeq(): number {
    return this.seq.lastSeq;
  }

  /** The answer text received so far (reasoning excluded). */
  get textSoFar(): string {
    return this.join('text');
  }

  /** The reasoning received so far. */
  get reasoningSoFar(): string {
    return this.join('reasoning');
  }

  /** The whole answer text once it ended (the partial text of a cancelled or failed answer). */
  async text(): Promise<string> {
    await this.done;
    return this.textSoFar;
  }

  /**
   * Stop. Resolves with the server's `cancel_ack` status; a duplicate, or a cancel of an answer
   * that already ended, resolves too (`already_cancelled`, `already_completed`, `not_found`).
   * Rejects only after `client.close()`, or when the server kept refusing it (rate limited,
   * service unavailable) through every retry.
   */
  cancel(): Promise<CancelStatus> {
    return this.owner.cancel(this);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Part, void, undefined> {
    let i = 0;
    for (;;) {
      while (i < this.partList.length) {
        const p = this.partList[i++];
        if (p) yield p;
      }
      if (this.failure) throw this.failure;
      if (this.outcome) return;
      await new Promise<void>((r) => this.wakers.add(r));
    }
  }

  /** @internal */
  append(pieces: Piece[]): void {
    for (const p of pieces) {
      if (p.delta !== '') this.partList.push({ kind: p.kind, delta: p.delta });
    }
    this.wake();
  }

  /** @internal Ends the answer; returns false if it had already ended. */
  finish(outcome: Outcome): boolean {
    if (this.finished) return false;
    this.outcome = outcome;
    this.finishedAt = Date.now();
    this.pendingDone = undefined;
    this.seq.clearAhead();
    this.stopGapTimer();
    this.resolveDone(outcome);
    this.wake();
    return true;
  }

  /** @internal The client was closed: whoever waits learns it. Storage keeps the answer. */
  abort(error: StreamlineError): void {
    if (this.finished) return;
    this.failure = error;
    this.stopGapTimer();
    this.rejectDone(error);
    this.wake();
  }

  /** @internal */
  stopGapTimer(): void {
    if (this.gapTimer !== undefined) clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    this.gapTries = 0;
  }

  /** @internal What storage keeps of an unfinished answer. */
  toStored(): StoredAnswer {
    const parts: Array<[PartKind, string]> = [];
    for (const p of this.partList) {
      const last = parts[parts.length - 1];
      if (last && last[0] === p.kind) last[1] += p.delta;
      else parts.push([p.kind, p.delta]);
    }
    const s: StoredAnswer = { id: this.messageId, seq: this.seq.lastSeq, parts, chat: this.chat };
    if (this.content !== undefined) s.content = this.content;
    if (this.cancelWanted) s.cancel = true;
    return s;
  }

  private join(kind: PartKind): string {
    let s = '';
    for (const p of this.partList) if (p.kind === kind) s += p.delta;
    return s;
  }

  private wake(): void {
    const w = [...this.wakers];
    this.wakers.clear();
    for (const f of w) f();
  }
}
