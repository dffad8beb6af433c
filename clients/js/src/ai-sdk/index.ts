/**
 * @streamline/client/ai-sdk: a `ChatTransport` for the Vercel AI SDK (`ai` v7), so `Chat`
 * (and `useChat`) talk to a streamline gateway through a streamline client.
 *
 * - `sendMessages` sends the last user message's text as a `chat` and streams the answer as UI
 *   message chunks: `start` (its messageId is the streamline message id), `text-*` and
 *   `reasoning-*` blocks, then `finish` — or `error` for a failed answer, `abort` for a
 *   cancelled one. Earlier messages are not sent: the server keeps the session's history.
 * - The abort signal (`chat.stop()`) is the Stop button: it cancels the answer on the server,
 *   which stops the model. A stream cancelled by its reader without it only detaches
 *   (a disconnect is not a Stop).
 * - `reconnectToStream` continues the chat's unfinished answer — after a reconnect or a page
 *   reload (with storage, the client restores it) — by replaying it from its first part
 *   (`resumeStreamIsReplay`), or answers null when nothing runs.
 *
 * Only types come from `ai` (a peer dependency); nothing of it is loaded at run time.
 */
import type { ChatTransport, UIMessage, UIMessageChunk } from 'ai';

import type { Answer } from '../answer.js';
import type { Client } from '../client.js';

export interface StreamlineChatTransportOptions<M extends UIMessage> {
  /** The client whose session this chat is. One transport per session. */
  client: Client;
  /** The text to send for a request; default: the text parts of the last user message. */
  prompt?: (messages: M[]) => string;
}

type Trigger = 'submit-message' | 'regenerate-message';

export class StreamlineChatTransport<M extends UIMessage = UIMessage> implements ChatTransport<M> {
  /** A reconnect replays the answer from its first part. */
  readonly resumeStreamIsReplay = true;
  private readonly client: Client;
  private readonly prompt: (messages: M[]) => string;
  /** The latest answer of each chat id. */
  private readonly byChat = new Map<string, Answer>();

  constructor(options: StreamlineChatTransportOptions<M>) {
    this.client = options.client;
    this.prompt = options.prompt ?? lastUserText;
  }

  async sendMessages(options: {
    trigger: Trigger;
    chatId: string;
    messageId: string | undefined;
    messages: M[];
    abortSignal: AbortSignal | undefined;
  }): Promise<ReadableStream<UIMessageChunk>> {
    const answer = this.client.chat(this.prompt(options.messages));
    this.byChat.set(options.chatId, answer);
    return answerStream(answer, options.abortSignal);
  }

  async reconnectToStream(options: {
    chatId: string;
    abortSignal?: AbortSignal;
  }): Promise<ReadableStream<UIMessageChunk> | null> {
    const known = this.byChat.get(options.chatId);
    const answer =
      known && !known.finished ? known : [...this.client.answers()].reverse().find((a) => !a.finished);
    if (!answer) return null;
    this.byChat.set(options.chatId, answer);
    return answerStream(answer, options.abortSignal);
  }

  /** The transport owns nothing: close the client yourself. */
  close(): void {}
}

/** The text parts of the last user message, joined. */
export function lastUserText(messages: UIMessage[]): string {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  if (!last) return '';
  return last.parts
    .map((p) => (p.type === 'text' ? p.text : ''))
    .filter((t) => t !== '')
    .join('\n');
}

/** The answer as UI message chunks, from its first part to its end. */
export function answerStream(answer: Answer, abortSignal?: AbortSignal): ReadableStream<UIMessageChunk> {
  let detached = false;
  const onAbort = () => {
    answer.cancel().catch(() => {
      /* closed client, or refused through every retry: the answer's done says the rest */
    });
  };
  return new ReadableStream<UIMessageChunk>({
    start(controller) {
      if (abortSignal?.aborted) onAbort();
      else abortSignal?.addEventListener('abort', onAbort, { once: true });
      const put = (c: UIMessageChunk) => {
        if (!detached) controller.enqueue(c);
      };
      void (async () => {
        let block: { kind: 'text' | 'reasoning'; id: string } | undefined;
        let blocks = 0;
        const end = () => {
          if (block) put({ type: block.kind === 'text' ? 'text-end' : 'reasoning-end', id: block.id });
          block = undefined;
        };
        try {
          put({ type: 'start', messageId: answer.messageId });
          for await (const part of answer) {
            if (detached) return;
            if (block?.kind !== part.kind) {
              end();
              block = { kind: part.kind, id: `${answer.messageId}:${blocks++}` };
              put({ type: part.kind === 'text' ? 'text-start' : 'reasoning-start', id: block.id });
            }
            put({ type: part.kind === 'text' ? 'text-delta' : 'reasoning-delta', id: block.id, delta: part.delta });
          }
          end();
          const outcome = await answer.done;
          if (outcome.status === 'failed') {
            const e = outcome.error;
            put({ type: 'error', errorText: e ? `${e.code}: ${e.message}` : 'the answer failed' });
          } else if (outcome.status === 'cancelled') {
            put({ type: 'abort', reason: 'cancelled' });
          } else {
            put({ type: 'finish', finishReason: 'stop' });
          }
          if (!detached) controller.close();
        } catch (e) {
          if (!detached) controller.error(e);
        } finally {
          abortSignal?.removeEventListener('abort', onAbort);
        }
      })();
    },
    cancel() {
      detached = true;
      abortSignal?.removeEventListener('abort', onAbort);
    },
  });
}
