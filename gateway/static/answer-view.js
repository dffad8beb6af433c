// AnswerView: one answer of the conversation on the page, drawn from a live `Answer` of
// @streamline/client or from a finished entry of `client.conversation()`.
//
// Contract (the testids and data attributes are used by tests/browser):
//   article.msg.msg-assistant[data-testid=answer][data-message-id]
//     [data-status]     pending | streaming while it runs; completed | cancelled | failed once
//                       it has ended
//     [data-last-seq]   the highest chunk seq drawn (live answers only)
//     details.reasoning[data-testid=reasoning]   the model's reasoning, when it sent some:
//                       open ("Thinking…") while only reasoning has come, closed once the
//                       answer text begins; each happens once, so the user's own opening or
//                       closing is never undone
//     [data-testid=answer-text]   the answer text as Markdown (markdown.js: text nodes only),
//                       without reasoning or status
//     [data-testid=answer-status] Writing… / Stopping… / Cancelled / Failed
//     [data-testid=error]         why it failed, in plain words (role=alert, data-code)
//
// Drawing is batched to one per animation frame (or 100 ms when the tab is hidden and frames
// do not come), always from the answer's state at that moment, so `data-last-seq` and the
// drawn text agree whenever anyone looks. The end of an answer is drawn at once.

import { errorText } from './error-text.js';
import { MarkdownView } from './markdown.js';

const STATUS_TEXT = { pending: 'Writing…', streaming: 'Writing…', completed: '', cancelled: 'Cancelled', failed: 'Failed' };
const HIDDEN_TAB_FRAME_MS = 100;

/** @param {string} tag @param {Record<string, string>} [data] @param {string} [className] */
function el(tag, className, data = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  Object.assign(node.dataset, data);
  return node;
}

export class AnswerView {
  /**
   * @param {string} messageId
   * @param {() => void} onChange called after each drawing (the page scrolls and updates Stop)
   */
  constructor(messageId, onChange) {
    this.messageId = messageId;
    this.onChange = onChange;
    /** @type {import('./streamline-client.js').Answer | null} */
    this.answer = null;
    this.ended = false;
    /** When it ended here (ms since the epoch; 0 while it runs). */
    this.endedAt = 0;
    this.stopping = false;
    this.openedOnce = false;
    this.collapsedOnce = false;
    this.frame = 0;
    this.timer = 0;

    this.element = el('article', 'msg msg-assistant', { testid: 'answer', messageId, status: 'pending' });
    this.element.setAttribute('aria-label', 'Answer');
    this.element.setAttribute('aria-busy', 'true');
    this.reasoning = /** @type {HTMLDetailsElement} */ (el('details', 'reasoning', { testid: 'reasoning' }));
    this.reasoning.hidden = true;
    this.reasoningSummary = el('summary', 'reasoning-summary');
    this.reasoningSummary.textContent = 'Thinking…';
    this.reasoningText = el('div', 'reasoning-text', { testid: 'reasoning-text' });
    this.reasoning.append(this.reasoningSummary, this.reasoningText);
    this.textEl = el('div', 'msg-text md', { testid: 'answer-text' });
    this.markdown = new MarkdownView(this.textEl);
    this.statusEl = el('span', 'msg-status', { testid: 'answer-status' });
    this.statusEl.textContent = STATUS_TEXT.pending;
    const meta = el('div', 'msg-meta');
    meta.append(this.statusEl);
    this.element.append(this.reasoning, this.textEl, meta);
  }

  /** Whether the answer still runs (Stop applies to it). */
  get live() {
    return this.answer !== null && !this.ended;
  }

  /**
   * Follows a live answer: its parts as they come (from the first one: a reloaded page gets
   * the stored text first), then its end.
   * @param {import('./streamline-client.js').Answer} answer
   */
  follow(answer) {
    if (this.answer === answer || this.ended) return;
    this.answer = answer;
    this.draw();
    (async () => {
      try {
        for await (const _part of answer) {
          if (this.answer !== answer) return;
          this.schedule();
        }
      } catch {
        // client_closed: this page moved to another conversation; the view is gone with it.
      }
    })();
    answer.done.then(
      (outcome) => {
        if (this.answer === answer) this.end(outcome.status, outcome.error);
      },
      () => {},
    );
  }

  /**
   * Draws a finished message of `client.conversation()`.
   * @param {{ text: string, state: string, status?: string, error?: { code: string, message: string } }} entry
   */
  showFinished(entry) {
    if (this.answer || this.ended) return;
    this.markdown.update(entry.text);
    this.end(entry.status ?? entry.state, entry.error);
  }

  /** Stop was pressed for this answer. */
  markStopping() {
    if (!this.live || this.stopping) return;
    this.stopping = true;
    this.statusEl.textContent = 'Stopping…';
  }

  /** The view leaves the page: nothing draws into it any more. */
  detach() {
    this.answer = null;
    cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
  }

  /** Draws at the next frame (or soon, in a hidden tab). */
  schedule() {
    if (this.frame || this.timer) return;
    const run = () => {
      cancelAnimationFrame(this.frame);
      clearTimeout(this.timer);
      this.frame = this.timer = 0;
      this.draw();
    };
    this.frame = requestAnimationFrame(run);
    this.timer = setTimeout(run, HIDDEN_TAB_FRAME_MS);
  }

  /** Draws the answer as it is now. */
  draw() {
    const a = this.answer;
    if (!a) return;
    const reasoning = a.reasoningSoFar;
    const text = a.textSoFar;
    if (reasoning !== '') {
      this.reasoning.hidden = false;
      if (this.reasoningText.textContent !== reasoning) this.reasoningText.textContent = reasoning;
      if (text === '' && !this.openedOnce) {
        // Thinking: shown open once (closing it meanwhile is the user's choice, kept).
        this.openedOnce = true;
        this.reasoning.open = true;
      }
    }
    if (text !== '' && !this.collapsedOnce && reasoning !== '') {
      // The answer begins: the reasoning folds away (once; the user may open it again).
      this.collapsedOnce = true;
      this.reasoning.open = false;
    }
    this.updateSummary(text !== '' || a.finished);
    this.markdown.update(text);
    this.element.dataset.lastSeq = String(a.lastSeq);
    if (!this.ended) this.element.dataset.status = a.status === 'pending' ? 'pending' : 'streaming';
    this.onChange();
  }

  /** @param {boolean} thoughtDone */
  updateSummary(thoughtDone) {
    const words = thoughtDone ? 'Reasoning' : 'Thinking…';
    if (this.reasoningSummary.textContent !== words) this.reasoningSummary.textContent = words;
  }

  /**
   * @param {string} status completed | cancelled | failed
   * @param {{ code: string, message?: string } | undefined} error
   */
  end(status, error) {
    if (this.ended) return;
    this.draw();
    cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
    this.frame = this.timer = 0;
    this.ended = true;
    this.endedAt = Date.now();
    if (!this.reasoning.hidden && !this.collapsedOnce) {
      this.collapsedOnce = true;
      this.reasoning.open = false;
    }
    this.updateSummary(true);
    this.element.dataset.status = status;
    this.element.setAttribute('aria-busy', 'false');
    this.statusEl.textContent = STATUS_TEXT[status] ?? status;
    if (status === 'failed') {
      const code = error?.code || 'unknown';
      const note = el('p', 'msg-error', { testid: 'error', code });
      note.setAttribute('role', 'alert');
      note.textContent = errorText(code, error?.message);
      this.element.append(note);
    }
    this.onChange();
  }
}
