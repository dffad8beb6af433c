/**
 * Reading a JWT's `exp` without verifying it: the client only needs to know when to fetch the
 * next token; the gateway is the one that verifies.
 */

/** `exp` (seconds since the epoch) of a JWT, or undefined when it has none or is not a JWT. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const b64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const claims: unknown = JSON.parse(atob(padded));
    if (typeof claims !== 'object' || claims === null) return undefined;
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When to refresh a token that expires at `expSec`: a fifth of its remaining life early, at
 * least 5 s and at most 60 s before it expires. Returns ms from `nowMs`, never below 0.
 */
export function refreshDelay(expSec: number, nowMs: number): number {
  const left = expSec * 1000 - nowMs;
  const lead = Math.min(60_000, Math.max(5_000, left / 5));
  return Math.max(0, left - lead);
}
