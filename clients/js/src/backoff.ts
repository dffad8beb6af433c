/**
 * Reconnect delays: exponential backoff with full jitter (a uniform draw in [0, cap)), so that
 * clients cut at the same moment do not come back at the same moment.
 */

export interface BackoffOptions {
  /** Cap of the first retry's window (ms); doubles per consecutive failure. Default 500. */
  baseMs?: number;
  /** Largest window (ms). Default 15 000. */
  maxMs?: number;
  /**
   * Window of the first retry after the gateway drained (close 1001), ms. Default 5 000: a
   * draining gateway drops all its sockets at once, and the other replicas take them back
   * spread over this time instead of in one burst.
   */
  drainSpreadMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  baseMs: 500,
  maxMs: 15_000,
  drainSpreadMs: 5_000,
};

/**
 * The delay before attempt number `failures` (0 = the first retry after a drop).
 * `spread`: the drop was a drain; the window is at least `drainSpreadMs`.
 */
export function reconnectDelay(
  failures: number,
  spread: boolean,
  options: Required<BackoffOptions>,
  random: () => number = Math.random,
): number {
  const exp = options.baseMs * 2 ** Math.min(failures, 30);
  let cap = Math.min(options.maxMs, exp);
  if (spread) cap = Math.max(cap, options.drainSpreadMs);
  return Math.floor(random() * cap);
}
