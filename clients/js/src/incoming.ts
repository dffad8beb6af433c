/**
 * Reading server frames: JSON text in, a typed frame out — or undefined for what this client
 * cannot use. The fields the client acts on are checked (a malformed frame must not corrupt an
 * answer); unknown frame types and unknown fields are ignored, as protocol v1 asks.
 */
import type { ChunkExtension, ServerFrameNext } from './protocol-next.js';
import type { ServerFrame } from './wire/index.js';

type Chunk = Extract<ServerFrame, { type: 'chunk' }> & ChunkExtension;

/** Every frame the client reads: protocol v1 (generated) plus the coming additions. */
export type Incoming = Exclude<ServerFrame, { type: 'chunk' }> | Chunk | ServerFrameNext;

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string';

export function readFrame(text: string): Incoming | undefined {
  let f: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    f = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const ok = ((): boolean => {
    switch (f.type) {
      case 'welcome':
        return isStr(f.session_id) && isStr(f.resume_token) && (f.active === undefined || Array.isArray(f.active));
      case 'ack':
        return isStr(f.message_id);
      case 'chunk':
        return (
          isStr(f.message_id) &&
          isSeq(f.seq) &&
          f.seq >= 1 &&
          isStr(f.delta) &&
          (f.first_seq === undefined || (isSeq(f.first_seq) && f.first_seq >= 1 && f.first_seq <= f.seq)) &&
          (f.kind === undefined || f.kind === 'text' || f.kind === 'reasoning')
        );
      case 'done':
        return isStr(f.message_id) && isSeq(f.seq) && isStr(f.status);
      case 'cancel_ack':
        return isStr(f.message_id) && isStr(f.status);
      case 'error':
        return isStr(f.code) && (f.message_id === undefined || f.message_id === null || isStr(f.message_id));
      case 'heartbeat_ack':
        return true;
      case 'conversation':
        return Array.isArray(f.messages);
      case 'started':
        return isStr(f.message_id) && isStr(f.content);
      case 'auth_ack':
        return typeof f.exp === 'number';
      default:
        return false;
    }
  })();
  return ok ? (f as unknown as Incoming) : undefined;
}
