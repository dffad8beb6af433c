/**
 * Wire additions this client already speaks but shared-proto does not define yet (the
 * "wire additions coming" of the client brief). Each type here moves into shared-proto, and
 * so into the generated `wire/`, when the server side lands; then it is deleted here.
 *
 * Until then a server that does not know them ignores `caps` and the extra fields, and answers
 * the extra client frames with `error{unknown_type}`, which the client handles.
 */
import type { DeltaKind, Usage } from './wire/index.js';

/** What a chunk's `delta` is: answer text (the default when `kind` is absent) or reasoning. */
export type PartKind = DeltaKind;

/** Capabilities the client announces in the `/ws` query (`caps=merge`). */
export const CLIENT_CAPS = ['merge'] as const;

/** Extra fields of a `chunk` frame. */
export interface ChunkExtension {
  /** With `caps=merge`: this frame's `delta` is seqs `first_seq..=seq` concatenated. */
  first_seq?: number;
}

/** `done.usage` with the coming `estimated` flag (true: counted by us, not the upstream). */
export type UsageNext = Usage & { estimated?: boolean };

/** One message of a `conversation` answer, oldest first (now in shared-proto). */
export type { ConversationMessage } from './wire/index.js';

/** Server frames that are not in protocol v1 yet. */
export type ServerFrameNext =
  /** The in-band token was accepted; `exp` is its expiry (seconds since the epoch). */
  { type: 'auth_ack'; exp: number };

/** Client frames that are not in protocol v1 yet. */
export type ClientFrameNext = { type: 'auth'; token: string };
