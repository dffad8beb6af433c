/**
 * SessionStore: what a page reload needs, kept in a localStorage-like `storage`.
 *
 * Keys (all under the `streamline:` prefix):
 * - `streamline:current`        the id of the session the last client used;
 * - `streamline:sessions`       ids of the sessions kept, oldest first (at most MAX_SESSIONS);
 * - `streamline:session:<id>`   a {@link StoredSession}: the resume token, and every
 *                               unfinished answer with its content, highest seq and the text
 *                               so far (so a reloaded page shows the whole answer and resumes
 *                               from where the stored text ends).
 *
 * A stored answer's `seq` and `parts` are written together in one value, so whatever moment a
 * page dies at, what is stored is consistent: resuming after `seq` continues exactly the stored
 * text. Writes therefore may lag behind (the client batches them) without losing anything.
 *
 * Storage failures (quota, private mode, a broken value) never break the client: reads of a
 * broken value count as absent, and write errors are reported to `onError`.
 */
import type { PartKind } from './protocol-next.js';

/** The subset of the Web Storage API the client uses (localStorage, or any equivalent). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** How far a `chat` got: unsent (still queued here), sent (maybe arrived), acked (known). */
export type ChatProgress = 'unsent' | 'sent' | 'acked';

/** One unfinished answer as stored. `parts`: runs of [kind, text], in order. */
export interface StoredAnswer {
  id: string;
  content?: string;
  seq: number;
  parts: Array<[PartKind, string]>;
  chat: ChatProgress;
  /** Stop was pressed: the cancel is sent again after a reload. */
  cancel?: boolean;
}

export interface StoredSession {
  v: 1;
  sessionId: string;
  resumeToken: string;
  answers: StoredAnswer[];
}

export const KEY_PREFIX = 'streamline:';
const CURRENT = `${KEY_PREFIX}current`;
const INDEX = `${KEY_PREFIX}sessions`;
const sessionKey = (id: string) => `${KEY_PREFIX}session:${id}`;
/** Sessions kept (their resume tokens); older ones are forgotten. */
export const MAX_SESSIONS = 16;

export class SessionStore {
  constructor(
    private readonly storage: StorageLike,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** The session the last client of this storage used. */
  current(): string | undefined {
    return this.read(CURRENT) ?? undefined;
  }

  load(sessionId: string): StoredSession | undefined {
    const raw = this.read(sessionKey(sessionId));
    if (raw === null) return undefined;
    try {
      const v = JSON.parse(raw) as StoredSession;
      if (v?.v !== 1 || v.sessionId !== sessionId || typeof v.resumeToken !== 'string') return undefined;
      return { ...v, answers: Array.isArray(v.answers) ? v.answers.filter(validAnswer) : [] };
    } catch {
      return undefined;
    }
  }

  /** Writes the session and makes it current. */
  save(s: StoredSession): void {
    this.write(sessionKey(s.sessionId), JSON.stringify(s));
    this.write(CURRENT, s.sessionId);
    const index = this.index().filter((id) => id !== s.sessionId);
    index.push(s.sessionId);
    while (index.length > MAX_SESSIONS) {
      const old = index.shift();
      if (old !== undefined) this.remove(sessionKey(old));
    }
    this.write(INDEX, JSON.stringify(index));
  }

  /** Drops a session the server no longer knows. */
  forget(sessionId: string): void {
    this.remove(sessionKey(sessionId));
    this.write(INDEX, JSON.stringify(this.index().filter((id) => id !== sessionId)));
    if (this.current() === sessionId) this.remove(CURRENT);
  }

  private index(): string[] {
    try {
      const v: unknown = JSON.parse(this.read(INDEX) ?? '[]');
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    } catch {
      return [];
    }
  }

  private read(key: string): string | null {
    try {
      return this.storage.getItem(key);
    } catch (e) {
      this.onError(e);
      return null;
    }
  }

  private write(key: string, value: string): void {
    try {
      this.storage.setItem(key, value);
    } catch (e) {
      this.onError(e);
    }
  }

  private remove(key: string): void {
    try {
      this.storage.removeItem(key);
    } catch (e) {
      this.onError(e);
    }
  }
}

function validAnswer(a: unknown): a is StoredAnswer {
  if (typeof a !== 'object' || a === null) return false;
  const x = a as StoredAnswer;
  return (
    typeof x.id === 'string' &&
    Number.isInteger(x.seq) &&
    x.seq >= 0 &&
    Array.isArray(x.parts) &&
    x.parts.every((p) => Array.isArray(p) && (p[0] === 'text' || p[0] === 'reasoning') && typeof p[1] === 'string') &&
    (x.chat === 'unsent' || x.chat === 'sent' || x.chat === 'acked')
  );
}

/** The Web Storage of a browser page, when there is one (none in Node). */
export function defaultStorage(): StorageLike | undefined {
  try {
    const ls = (globalThis as { localStorage?: StorageLike }).localStorage;
    return ls ?? undefined;
  } catch {
    return undefined; // a sandboxed iframe throws on access
  }
}
