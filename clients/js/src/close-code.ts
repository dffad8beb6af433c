/**
 * The gateway's WebSocket close codes (shared-proto `CloseCode`, docs/PROTOCOL.md §7) and what
 * the client does after each.
 *
 * `CloseCode` in shared-proto is not a serde type, so it is not generated; the numbers are
 * part of protocol v1 and do not change without a version bump.
 */

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  /** Not sent by the gateway: a socket that ended without a close frame (TCP cut). */
  Abnormal: 1006,
  InvalidPayload: 1007,
  TooBig: 1009,
  InternalError: 1011,
  ClientTimeout: 4000,
  SessionReplaced: 4001,
  /** The connection's JWT expired (plus the gateway's leeway) without an in-band `auth`. */
  TokenExpired: 4003,
  SlowConsumer: 4008,
} as const;

/** What to do after a socket closed. */
export type AfterClose =
  /** Reconnect after the usual jittered backoff. */
  | { kind: 'backoff' }
  /** The gateway drains (1001): every client it had reconnects now, so spread the first try wide. */
  | { kind: 'spread' }
  /** Reconnect at once (a fresh token is fetched first). */
  | { kind: 'now' }
  /** Do not reconnect until told to: another socket of this session took over (4001). */
  | { kind: 'stay_offline' };

export function afterClose(code: number): AfterClose {
  switch (code) {
    case CloseCode.GoingAway:
      return { kind: 'spread' };
    case CloseCode.SessionReplaced:
      // PROTOCOL §7: the newer socket is the one that counts; reconnecting here would make two
      // tabs of one session replace each other in a loop.
      return { kind: 'stay_offline' };
    case CloseCode.TokenExpired:
    case CloseCode.ClientTimeout:
      return { kind: 'now' };
    default:
      // 4008 (slow consumer: its queued frames were dropped, resume restores them), 1006, 1011,
      // 1002/1007/1009 (a frame of ours was refused; the culprit chat is failed by the client).
      return { kind: 'backoff' };
  }
}
