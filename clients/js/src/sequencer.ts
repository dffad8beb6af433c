/**
 * Sequencer: turns the chunks of one answer, as they arrive (possibly repeated, out of order,
 * or merged into ranges), into the exact sequence of pieces 1, 2, 3, …, each once.
 *
 * A chunk covers the seqs `first..=last` (`first` = `first_seq` of a merged chunk, else `seq`).
 * - `last <= lastSeq`: a repeat (a replay overlapping what we have), dropped.
 * - `first == lastSeq + 1`: the next piece; applied, then every buffered piece it makes
 *   contiguous.
 * - `first > lastSeq + 1`: a gap; the piece is buffered (bounded) until the gap fills, and the
 *   caller asks the server to resume from `lastSeq`.
 * - `first <= lastSeq < last`: a merged chunk straddling what we have. Its delta cannot be cut
 *   at a seq boundary, so it is dropped and treated like a gap: a resume from `lastSeq` gets the
 *   missing seqs without the overlap.
 */
import type { PartKind } from './protocol-next.js';

export interface Piece {
  first: number;
  last: number;
  kind: PartKind;
  delta: string;
}

export type Offer =
  | { kind: 'repeat' }
  /** `pieces` are now contiguous, in order; `gap`: something is still missing after them. */
  | { kind: 'applied'; pieces: Piece[]; gap: boolean }
  /** Nothing applied; something is missing. `dropped`: the piece could not be kept. */
  | { kind: 'gap'; dropped: boolean };

export interface SequencerLimits {
  /** Most pieces buffered past a gap. */
  maxPieces: number;
  /** Most delta characters buffered past a gap. */
  maxChars: number;
}

export const DEFAULT_SEQUENCER_LIMITS: SequencerLimits = { maxPieces: 10_000, maxChars: 4 << 20 };

export class Sequencer {
  /** Pieces past a gap, by their first seq. */
  private readonly ahead = new Map<number, Piece>();
  private aheadChars = 0;

  constructor(
    /** The highest seq applied (0: none). */
    public lastSeq = 0,
    private readonly limits: SequencerLimits = DEFAULT_SEQUENCER_LIMITS,
  ) {}

  /** Something past `lastSeq` is buffered: a gap is open. */
  get hasGap(): boolean {
    return this.ahead.size > 0;
  }

  offer(p: Piece): Offer {
    if (p.last <= this.lastSeq) return { kind: 'repeat' };
    if (p.first === this.lastSeq + 1) {
      const pieces = [p];
      this.lastSeq = p.last;
      for (let next = this.take(this.lastSeq + 1); next; next = this.take(this.lastSeq + 1)) {
        pieces.push(next);
        this.lastSeq = next.last;
      }
      this.dropStale();
      return { kind: 'applied', pieces, gap: this.ahead.size > 0 };
    }
    if (p.first <= this.lastSeq) return { kind: 'gap', dropped: true };
    const known = this.ahead.get(p.first);
    if (known && known.last >= p.last) return { kind: 'gap', dropped: false };
    const chars = this.aheadChars - (known?.delta.length ?? 0) + p.delta.length;
    if (!known && (this.ahead.size >= this.limits.maxPieces || chars > this.limits.maxChars)) {
      return { kind: 'gap', dropped: true };
    }
    this.ahead.set(p.first, p);
    this.aheadChars = chars;
    return { kind: 'gap', dropped: false };
  }

  /** Forgets what is buffered (a resume from `lastSeq` re-delivers it). */
  clearAhead(): void {
    this.ahead.clear();
    this.aheadChars = 0;
  }

  private take(first: number): Piece | undefined {
    const p = this.ahead.get(first);
    if (p) {
      this.ahead.delete(first);
      this.aheadChars -= p.delta.length;
    }
    return p;
  }

  /** Buffered pieces that now start at or before `lastSeq` can never apply. */
  private dropStale(): void {
    for (const [first, p] of this.ahead) {
      if (first <= this.lastSeq) {
        this.ahead.delete(first);
        this.aheadChars -= p.delta.length;
      }
    }
  }
}
