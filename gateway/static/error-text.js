// Plain words for every error code a user of the reference page may see.
//
// Contract: `errorText(code, fallback)` never returns a code, JSON or a stack trace; a code
// not listed here gets `fallback` (the server's or the library's own message) or a generic
// sentence. Codes: protocol v1 (shared-proto error_code.rs) and the client library's own
// (clients/js/src/errors.ts).

const UNDERSTOOD = 'The page sent something the server did not understand. Please reload.';

const ERROR_TEXT = {
  // The model and the service.
  upstream_error: 'The AI model ran into a problem and stopped answering.',
  upstream_auth: 'The AI model refused our credentials. Please tell the site operator.',
  upstream_rate_limited: 'The AI model is too busy right now. Please try again in a moment.',
  upstream_timeout: 'The AI model took too long to respond. Please try again.',
  worker_lost: 'The server writing this answer stopped unexpectedly. Please try again.',
  redis_unavailable: 'The service lost its storage while answering. Please try again.',
  store_unavailable: 'The service cannot reach its storage right now. Please try again shortly.',
  shutdown: 'The service restarted before the answer was finished. Please try again.',
  shutting_down: 'The service is restarting. Please try again in a moment.',
  internal: 'Something went wrong on the server. Please try again.',
  resume_unavailable: 'The connection dropped and the rest of this answer could not be recovered.',
  ai_service_unavailable: 'The AI service is unavailable right now. Please try again shortly.',
  // Limits and input.
  rate_limited: 'You are sending messages too quickly. Please wait a moment.',
  too_many_generations: 'Too many answers are being written at once. Wait for one to finish or stop it.',
  too_many_connections: 'Too many connections from here right now. Please close a tab and try again.',
  content_too_long: 'That message is too long. Please shorten it.',
  empty_content: 'Please type a message first.',
  duplicate_message_id: 'This message was already sent.',
  unauthorized: 'You are not signed in, or your sign-in has expired. Please sign in again.',
  origin_not_allowed: 'This page is not allowed to talk to the chat service.',
  invalid_json: UNDERSTOOD,
  unknown_type: UNDERSTOOD,
  invalid_frame: UNDERSTOOD,
  invalid_message_id: UNDERSTOOD,
  binary_not_supported: UNDERSTOOD,
  // The client library's own.
  session_replaced: 'This conversation is open in another tab or window.',
  protocol_version: 'This page is out of date. Please reload it.',
  token_failed: 'Your sign-in could not be refreshed. Please sign in again.',
  storage_failed: 'This browser is not keeping the conversation, so a reload will lose it.',
  connect_failed: 'The page cannot open a connection to the chat service.',
  client_closed: 'This conversation was closed.',
};

/** @param {string | undefined} code @param {string | undefined} [fallback] */
export function errorText(code, fallback) {
  return (code && Object.hasOwn(ERROR_TEXT, code) && ERROR_TEXT[code]) || fallback || 'Something went wrong. Please try again.';
}
