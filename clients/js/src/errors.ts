/**
 * StreamlineError: every failure this package reports, with a stable `code` to branch on.
 *
 * Server codes (protocol v1, `ErrorCode` from shared-proto) pass through unchanged; the
 * client adds a few of its own for what only it can see (a closed client, a session it has
 * no resume token for, a server that does not know an extension frame).
 */
import type { ErrorCode } from './wire/index.js';

/** Codes that only the client produces. */
export type ClientErrorCode =
  /** `close()` was called while this was pending. */
  | 'client_closed'
  /** `connect({ session })` names a session whose resume token is not in storage. */
  | 'unknown_session'
  /** The server answered an extension frame (`conversation`, `auth`) with `unknown_type`. */
  | 'unsupported'
  /** The token function threw or returned something that is not a string. */
  | 'token_failed'
  /** `storage` threw (quota, private mode); the client keeps working without it. */
  | 'storage_failed'
  /** The WebSocket constructor threw (a bad address, a refused subprotocol). */
  | 'connect_failed'
  /** The gateway speaks another protocol version than this client. */
  | 'protocol_version'
  /** Another socket of this session took over (close 4001); `client.reconnect()` takes it back. */
  | 'session_replaced';

export type StreamlineErrorCode = ErrorCode | ClientErrorCode;

export class StreamlineError extends Error {
  override readonly name = 'StreamlineError';
  constructor(
    readonly code: StreamlineErrorCode,
    message: string,
    /** The message the error concerns, when it concerns one. */
    readonly messageId?: string,
  ) {
    super(message);
  }
}
