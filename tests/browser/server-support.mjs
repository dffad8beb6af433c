// What the gateway under test supports of the protocol additions the page uses (issue 15),
// asked over raw WebSockets from a page of the gateway's origin, independently of the page's
// own code: a test skips only when the SERVER lacks a feature, never because the page failed.
// Each probe uses a session of its own and waits for the answer that decides (a frame or a
// close), never for time.
//
//   conversation     `{"type":"conversation"}` answered with a `conversation` frame (not
//                    `error{unknown_type}`)
//   reasoning        `!demo reasoning=N` streams chunks with `kind: "reasoning"`
//   severalSockets   a second socket on a session does not close the first with 4001, and the
//                    first one sees the second one's message

/** @param {import('playwright-core').Page} page a page of the gateway's origin */
export async function probeServer(page) {
  return page.evaluate(async () => {
    const wsUrl = (q = '') => `${location.origin.replace(/^http/, 'ws')}/ws${q}`;
    /** Opens a socket; resolves with it and its welcome. */
    const open = (q) => new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(q));
      const s = { ws, welcome: null, frames: [], closed: null };
      ws.addEventListener('message', (ev) => {
        const f = JSON.parse(ev.data);
        if (f.type === 'welcome') {
          s.welcome = f;
          resolve(s);
        } else s.frames.push(f);
        ws.dispatchEvent(new CustomEvent('frame', { detail: f }));
      });
      ws.addEventListener('close', (ev) => {
        s.closed = ev.code;
        reject(new Error(`closed ${ev.code} before welcome`));
      });
    });
    /** Resolves with the first frame `pred` accepts, or with {closed: code} (also if it
     * closed before this was asked). */
    const next = (s, pred) => new Promise((resolve) => {
      const seen = s.frames.find(pred);
      if (seen) { resolve(seen); return; }
      if (s.closed !== null) { resolve({ closed: s.closed }); return; }
      s.ws.addEventListener('frame', (ev) => { if (pred(ev.detail)) resolve(ev.detail); });
      s.ws.addEventListener('close', (ev) => resolve({ closed: ev.code }));
    });
    const id = () => crypto.randomUUID();

    const conv = await open('');
    conv.ws.send(JSON.stringify({ type: 'conversation' }));
    const c = await next(conv, (f) => f.type === 'conversation' || (f.type === 'error' && f.code === 'unknown_type'));
    const conversation = c.type === 'conversation';
    conv.ws.close();

    const reason = await open('');
    const rid = id();
    reason.ws.send(JSON.stringify({ type: 'chat', message_id: rid, content: '!demo reasoning=2 tokens=2 rate=0\nprobe' }));
    await next(reason, (f) => f.type === 'done' && f.message_id === rid);
    const reasoning = reason.frames.some((f) => f.type === 'chunk' && f.kind === 'reasoning');
    reason.ws.close();

    const first = await open('');
    const q = `?session_id=${first.welcome.session_id}&resume_token=${encodeURIComponent(first.welcome.resume_token)}`;
    const second = await open(q);
    const sid = id();
    second.ws.send(JSON.stringify({ type: 'chat', message_id: sid, content: '!demo tokens=2 rate=0\nprobe' }));
    const seen = await next(first, (f) => f.message_id === sid);
    const severalSockets = !('closed' in seen);
    await next(second, (f) => f.type === 'done' && f.message_id === sid);
    first.ws.close();
    second.ws.close();

    return { conversation, reasoning, severalSockets };
  });
}

/** The skip reason for a missing feature (`needs server support: …`), or false. */
export function needs(support, feature) {
  const what = {
    conversation: 'the `conversation` frame (client.conversation())',
    reasoning: 'reasoning chunks (`kind: "reasoning"`, `!demo reasoning=N`)',
    severalSockets: 'several sockets per session (a second tab gets every chunk, no 4001)',
  }[feature];
  return support[feature] ? false : `needs server support: ${what}`;
}
