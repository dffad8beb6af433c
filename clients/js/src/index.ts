/**
 * @streamline/client: streamed LLM answers from a streamline gateway, exact across reconnects
 * and reloads, with a Stop that always stops the model. See README.md.
 */
export { connect, Client, PROTOCOL_VERSION } from './client.js';
export type { ChatOptions, ClientEvents, ConnectOptions, ConversationEntry } from './client.js';
export { Answer } from './answer.js';
export type { AnswerOrigin, AnswerStatus, Outcome, Part } from './answer.js';
export { StreamlineError } from './errors.js';
export type { ClientErrorCode, StreamlineErrorCode } from './errors.js';
export type { ConnectionState, WebSocketConstructor, WebSocketLike } from './link.js';
export type { BackoffOptions } from './backoff.js';
export { CloseCode } from './close-code.js';
export { KEY_PREFIX } from './session-store.js';
export type { StorageLike } from './session-store.js';
export type { PartKind, UsageNext } from './protocol-next.js';
export type * from './wire/index.js';
