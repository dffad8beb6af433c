// Markdown for model answers, rendered safely and incrementally.
//
// Contract:
// - `parseBlocks(source)` splits Markdown into top-level blocks; `renderBlock(block)` makes the
//   DOM of one; `MarkdownView` keeps a container showing `update(source)`'s source, rebuilding
//   only the blocks that changed since the last update (a streamed answer grows at its end, so
//   usually only the last block is rebuilt; earlier blocks keep their nodes, and a selection in
//   them survives).
// - SAFETY: model text only ever becomes text nodes (`createTextNode`, `textContent`); elements
//   are made with `createElement` from a fixed list (p, h3-h6, ul, ol, li, pre, code, strong,
//   em, del, blockquote, hr, a). Markup in the source (`<img onerror=…>`, `<script>`) is shown
//   as the characters it is. No `innerHTML`, no attribute from model text except a link's
//   `href`, and that only for an absolute `http:` or `https:` URL (parsed with `URL`), with
//   `rel="noopener noreferrer"` and `target="_blank"`; any other link (`javascript:`, `data:`,
//   relative) stays plain text. Bare URLs are not turned into links.
// - The subset (CommonMark-like, what chat models write): paragraphs (line breaks kept),
//   ATX headings (#: h3, ##: h4, ###: h5, deeper: h6, below the page's own h1), bullet and
//   ordered lists (nested by indentation; tight lists without <p>), fenced code blocks (```
//   or ~~~, an info string's first word in `data-lang`; a fence not closed yet renders as
//   code up to the end of the text, so a streaming code block looks like code at once),
//   block quotes, thematic breaks; inline: `code`, **strong**, *em*, _em_, ~~del~~,
//   [links](https://…), <https://…>, backslash escapes. Not supported (shown as text):
//   HTML, entities, indented code blocks (4-space indentation is common in chat prose),
//   setext headings, tables, images.
// - Pure functions of the source: the same source always gives the same DOM.

// ------------------------------------------------------------------ blocks

const FENCE_OPEN = /^( {0,3})(`{3,}|~{3,})(.*)$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const THEMATIC_BREAK = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST_ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const BLANK = /^[ \t]*$/;

/**
 * @typedef {{ type: 'paragraph', text: string }
 *   | { type: 'heading', level: number, text: string }
 *   | { type: 'code', lang: string, text: string, open: boolean }
 *   | { type: 'hr' }
 *   | { type: 'quote', children: Block[] }
 *   | { type: 'list', ordered: boolean, start: number, tight: boolean, items: Block[][] }
 * } BlockBody
 * @typedef {BlockBody & { src: string }} Block   src: the source lines of the block
 */

/** @param {string} line */
function fenceOf(line) {
  const m = FENCE_OPEN.exec(line);
  if (!m) return null;
  const [, indent, fence, info] = m;
  if (fence[0] === '`' && info.includes('`')) return null;
  return { indent: indent.length, char: fence[0], len: fence.length, lang: info.trim().split(/\s+/)[0] ?? '' };
}

/** @param {string} line */
function listItemOf(line) {
  const m = LIST_ITEM.exec(line);
  if (!m) return null;
  const [, indent, marker, spaces = '', rest = ''] = m;
  // A marker must be followed by a space, or end the line (an empty item).
  if (spaces === '' && rest === '' && line.length !== indent.length + marker.length) return null;
  const ordered = /\d/.test(marker[0]);
  // Five or more spaces after the marker: the content starts one space after it.
  const gap = spaces.length >= 5 || rest === '' ? 1 : spaces.replace(/\t/g, '    ').length;
  const text = spaces.length >= 5 ? spaces.slice(1) + rest : rest;
  return {
    ordered,
    delimiter: ordered ? marker.at(-1) : marker,
    start: ordered ? Number(marker.slice(0, -1)) : 1,
    contentIndent: indent.length + marker.length + gap,
    text,
    empty: rest === '',
  };
}

/** Whether `line` starts a block that may interrupt a paragraph. */
function interruptsParagraph(line) {
  if (fenceOf(line) || HEADING.test(line) || THEMATIC_BREAK.test(line) || QUOTE.test(line)) return true;
  const item = listItemOf(line);
  return item !== null && !item.empty && (!item.ordered || item.start === 1);
}

/** Removes up to `n` columns of leading spaces. @param {string} line @param {number} n */
function dedent(line, n) {
  let i = 0;
  while (i < n && i < line.length && line[i] === ' ') i += 1;
  return line.slice(i);
}

/** @param {string} line */
function indentOf(line) {
  const m = /^ */.exec(line);
  return m ? m[0].length : 0;
}

/**
 * Splits Markdown into blocks.
 * @param {string} source
 * @returns {Block[]}
 */
export function parseBlocks(source) {
  return parseLines(source.replace(/\r\n?/g, '\n').replace(/\t/g, '    ').split('\n'));
}

/** @param {string[]} lines @returns {Block[]} */
function parseLines(lines) {
  /** @type {Block[]} */
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (BLANK.test(line)) {
      i += 1;
      continue;
    }
    const start = i;
    const fence = fenceOf(line);
    if (fence) {
      i += 1;
      const body = [];
      let open = true;
      while (i < lines.length) {
        const l = lines[i];
        i += 1;
        if (nextFence(fence, l) === null) {
          open = false;
          break;
        }
        body.push(dedent(l, fence.indent));
      }
      blocks.push({ type: 'code', lang: fence.lang, text: body.join('\n'), open, src: lines.slice(start, i).join('\n') });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      i += 1;
      blocks.push({ type: 'heading', level: heading[1].length, text: heading[2] ?? '', src: line });
      continue;
    }
    if (THEMATIC_BREAK.test(line)) {
      i += 1;
      blocks.push({ type: 'hr', src: line });
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length) {
        const m = QUOTE.exec(lines[i]);
        if (m) inner.push(m[1]);
        else if (!BLANK.test(lines[i]) && inner.length > 0 && !BLANK.test(inner.at(-1)) && !interruptsParagraph(lines[i])) {
          inner.push(lines[i]); // a lazy continuation of the quoted paragraph
        } else break;
        i += 1;
      }
      blocks.push({ type: 'quote', children: parseLines(inner), src: lines.slice(start, i).join('\n') });
      continue;
    }
    const item = listItemOf(line);
    if (item) {
      i = parseList(lines, i, item, blocks);
      continue;
    }
    // A paragraph: until a blank line or a block that interrupts it.
    const text = [line.trim()];
    i += 1;
    while (i < lines.length && !BLANK.test(lines[i]) && !interruptsParagraph(lines[i])) {
      text.push(lines[i].trim());
      i += 1;
    }
    blocks.push({ type: 'paragraph', text: text.join('\n'), src: lines.slice(start, i).join('\n') });
  }
  return blocks;
}

/**
 * A list starting at `lines[i]` (whose item is `first`); pushes it onto `out`, returns the
 * index of the first line after it. Loose (items in <p>) when a blank line separates two
 * items, or two blocks of one item.
 * @param {string[]} lines @param {number} i @param {NonNullable<ReturnType<typeof listItemOf>>} first
 * @param {Block[]} out
 */
function parseList(lines, i, first, out) {
  const start = i;
  /** @type {Block[][]} */
  const items = [];
  let tight = true;
  let item = first;
  for (;;) {
    // One item: its first line, then lines indented to its content, lazy paragraph lines,
    // and blank lines followed by more of it.
    const body = [item.text];
    let fence = fenceOf(item.text);
    i += 1;
    let sawBlank = false;
    while (i < lines.length) {
      const l = lines[i];
      if (BLANK.test(l)) {
        sawBlank = true;
        body.push('');
        i += 1;
        continue;
      }
      if (indentOf(l) >= item.contentIndent) {
        if (sawBlank && !fence) tight = false;
        sawBlank = false;
        const inner = dedent(l, item.contentIndent);
        fence = nextFence(fence, inner);
        body.push(inner);
        i += 1;
        continue;
      }
      if (!sawBlank && !fence && !interruptsParagraph(l) && !listItemOf(l)) {
        body.push(l.trim()); // a lazy continuation line of the item's paragraph
        i += 1;
        continue;
      }
      break;
    }
    // Trailing blank lines belong between items (or after the list), not to the item.
    let trailing = 0;
    while (body.length > 1 && body.at(-1) === '') {
      body.pop();
      trailing += 1;
    }
    items.push(parseLines(body));
    const next = i < lines.length ? listItemOf(lines[i]) : null;
    if (!next || next.ordered !== first.ordered || next.delimiter !== first.delimiter) {
      // The list ends; blank lines seen at its end are not part of it.
      i -= trailing;
      break;
    }
    if (trailing > 0) tight = false;
    item = next;
  }
  out.push({ type: 'list', ordered: first.ordered, start: first.start, tight, items, src: lines.slice(start, i).join('\n') });
  return i;
}

/**
 * The fence open after `line`, given the one open before it (null: none).
 * @param {ReturnType<typeof fenceOf>} open @param {string} line
 */
function nextFence(open, line) {
  if (!open) return fenceOf(line);
  const close = new RegExp(`^ {0,3}${open.char === '`' ? '`' : '~'}{${open.len},}[ \\t]*$`);
  return close.test(line) ? null : open;
}

// ------------------------------------------------------------------ inline

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;
const AUTOLINK = /<([a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^\s<>]*)>/y;
const LINK_TARGET = /\(\s*<?([^\s<>()]*)>?(?:\s+"[^"]*")?\s*\)/y;
const WORD = /[\p{L}\p{N}]/u;

/**
 * @typedef {{ t: 'text', s: string }
 *   | { t: 'code', s: string }
 *   | { t: 'strong' | 'em' | 'del', c: Inline[] }
 *   | { t: 'link', href: string, c: Inline[] }
 * } Inline
 */

/** An absolute http(s) URL, or null. @param {string} raw */
export function safeHref(raw) {
  let u;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
}

/**
 * Parses inline Markdown.
 * @param {string} s
 * @param {boolean} [inLink] links inside a link's text stay text
 * @returns {Inline[]}
 */
export function parseInline(s, inLink = false) {
  /** @type {Inline[]} */
  const out = [];
  // Where a search for a closer came up empty: the same search from there on is skipped, so
  // unclosed delimiters cost linear time, not quadratic (model text is hostile input too).
  /** @type {Map<string, number>} */
  const noCloser = new Map();
  /** @type {Map<number, number> | null} each `[`'s matching `]`, found once in one pass */
  let brackets = null;
  let text = '';
  const flush = () => {
    if (text) out.push({ t: 'text', s: text });
    text = '';
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length && PUNCTUATION.test(s[i + 1])) {
      text += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      let n = 1;
      while (s[i + n] === '`') n += 1;
      const ticks = '`'.repeat(n);
      let j = i + n >= (noCloser.get(ticks) ?? Infinity) ? -1 : s.indexOf(ticks, i + n);
      while (j !== -1 && (s[j + n] === '`' || s[j - 1] === '`')) {
        // A longer run is not the closer.
        let k = j;
        while (s[k] === '`') k += 1;
        j = s.indexOf(ticks, k);
      }
      if (j === -1) {
        noCloser.set(ticks, Math.min(noCloser.get(ticks) ?? Infinity, i + n));
        text += ticks;
        i += n;
        continue;
      }
      let code = s.slice(i + n, j).replace(/\n/g, ' ');
      if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '') code = code.slice(1, -1);
      flush();
      out.push({ t: 'code', s: code });
      i = j + n;
      continue;
    }
    if (c === '<' && !inLink) {
      AUTOLINK.lastIndex = i;
      const m = AUTOLINK.exec(s);
      const href = m ? safeHref(m[1]) : null;
      if (m && href) {
        flush();
        out.push({ t: 'link', href, c: [{ t: 'text', s: m[1] }] });
        i += m[0].length;
        continue;
      }
    }
    if (c === '[' && !inLink) {
      brackets ??= matchBrackets(s);
      const link = parseLink(s, i, brackets.get(i));
      if (link) {
        flush();
        out.push(link.node);
        i = link.end;
        continue;
      }
    }
    if (c === '*' || c === '_' || c === '~') {
      const span = parseDelimited(s, i, noCloser);
      if (span) {
        flush();
        out.push({ t: span.t, c: parseInline(span.inner, inLink) });
        i = span.end;
        continue;
      }
      // A run that opens nothing is text, whole (so `**` never half-opens later).
      let n = 1;
      while (s[i + n] === c) n += 1;
      text += s.slice(i, i + n);
      i += n;
      continue;
    }
    text += c;
    i += 1;
  }
  flush();
  return out;
}

/** Each `[` of `s` and the `]` that balances it (a backslash escapes either). @param {string} s */
function matchBrackets(s) {
  /** @type {Map<number, number>} */
  const match = new Map();
  const open = [];
  for (let j = 0; j < s.length; j++) {
    if (s[j] === '\\') j += 1;
    else if (s[j] === '[') open.push(j);
    else if (s[j] === ']' && open.length > 0) match.set(/** @type {number} */ (open.pop()), j);
  }
  return match;
}

/**
 * `[text](url)` at `s[i]`, whose `]` is at `j`: a link for an http(s) URL; anything else
 * (another scheme, a relative address) is not a link, and its characters stay text.
 * @param {string} s @param {number} i @param {number | undefined} j
 */
function parseLink(s, i, j) {
  if (j === undefined || s[j + 1] !== '(') return null;
  LINK_TARGET.lastIndex = j + 1;
  const m = LINK_TARGET.exec(s);
  if (!m) return null;
  const href = safeHref(m[1]);
  if (!href) return null;
  return { node: /** @type {Inline} */ ({ t: 'link', href, c: parseInline(s.slice(i + 1, j), true) }), end: j + 1 + m[0].length };
}

/**
 * Emphasis at `s[i]`: `**x**` / `__x__` strong, `*x*` / `_x_` em, `***x***` both, `~~x~~`
 * del. An opener is followed by a non-space, a closer preceded by one; `_` neither opens nor
 * closes inside a word (snake_case stays text); an em closer is a lone delimiter (the `**` of
 * `*a **b** c*` belong to the inner strong).
 * @param {string} s @param {number} i @param {Map<string, number>} noCloser see parseInline
 * @returns {{ t: 'strong' | 'em' | 'del', inner: string, end: number } | null}
 */
function parseDelimited(s, i, noCloser) {
  const c = s[i];
  let run = 1;
  while (s[i + run] === c) run += 1;
  if (c === '_' && i > 0 && WORD.test(s[i - 1])) return null;
  /** @type {Array<[number, 'strong' | 'em' | 'del']>} */
  /** @type {[number, 'strong' | 'em' | 'del'] | null} */
  const kind = c === '~' ? (run === 2 ? [2, 'del'] : null) : run >= 3 ? [3, 'strong'] : run === 2 ? [2, 'strong'] : [1, 'em'];
  if (!kind) return null;
  const [n, t] = kind;
  if (run !== n) return null;
  const after = s[i + n];
  if (after === undefined || /\s/.test(after)) return null;
  const delim = c.repeat(n);
  const from = i + n + 1;
  if (from >= (noCloser.get(delim) ?? Infinity)) return null;
  // Whether a position closes depends on the position only, never on the opener.
  for (let j = s.indexOf(delim, from); j !== -1; j = s.indexOf(delim, j + 1)) {
    if (s[j - 1] === '\\' || /\s/.test(s[j - 1])) continue;
    if (c === '_' && WORD.test(s[j + n] ?? '')) continue;
    if (s[j - 1] === c || s[j + n] === c) continue; // part of a longer run
    if (n === 3) return { t, inner: s.slice(i + 2, j + 1), end: j + 3 };
    return { t, inner: s.slice(i + n, j), end: j + n };
  }
  noCloser.set(delim, Math.min(noCloser.get(delim) ?? Infinity, from));
  return null;
}

// ------------------------------------------------------------------ DOM

/** @param {Inline[]} nodes @param {Node} parent */
function appendInline(nodes, parent) {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        parent.appendChild(document.createTextNode(n.s));
        break;
      case 'code': {
        const code = document.createElement('code');
        code.textContent = n.s;
        parent.appendChild(code);
        break;
      }
      case 'strong':
      case 'em':
      case 'del': {
        const el = document.createElement(n.t);
        appendInline(n.c, el);
        parent.appendChild(el);
        break;
      }
      case 'link': {
        const a = document.createElement('a');
        a.href = n.href;
        a.rel = 'noopener noreferrer';
        a.target = '_blank';
        appendInline(n.c, a);
        parent.appendChild(a);
        break;
      }
    }
  }
}

/**
 * The DOM of one block.
 * @param {Block} block
 * @param {boolean} [tight] a paragraph inside a tight list item: its text without <p>
 * @returns {Node}
 */
export function renderBlock(block, tight = false) {
  switch (block.type) {
    case 'paragraph': {
      if (tight) {
        const f = document.createDocumentFragment();
        appendInline(parseInline(block.text), f);
        return f;
      }
      const p = document.createElement('p');
      appendInline(parseInline(block.text), p);
      return p;
    }
    case 'heading': {
      const h = document.createElement(`h${Math.min(6, block.level + 2)}`);
      appendInline(parseInline(block.text), h);
      return h;
    }
    case 'code': {
      const pre = document.createElement('pre');
      const code = document.createElement('code');
      if (block.lang) pre.dataset.lang = block.lang;
      if (block.open) pre.dataset.open = 'true';
      code.textContent = block.text;
      pre.appendChild(code);
      return pre;
    }
    case 'hr':
      return document.createElement('hr');
    case 'quote': {
      const q = document.createElement('blockquote');
      for (const b of block.children) q.appendChild(renderBlock(b));
      return q;
    }
    case 'list': {
      const list = document.createElement(block.ordered ? 'ol' : 'ul');
      if (block.ordered && block.start !== 1) list.setAttribute('start', String(block.start));
      for (const item of block.items) {
        const li = document.createElement('li');
        for (const b of item) li.appendChild(renderBlock(b, block.tight));
        list.appendChild(li);
      }
      return list;
    }
  }
  throw new TypeError(`unknown block ${/** @type {{type: string}} */ (block).type}`);
}

/** What identifies a block's rendering: equal keys render to equal DOM. @param {Block} b */
const keyOf = (b) => `${b.type}\u0000${b.type === 'code' && b.open ? 'open' : ''}\u0000${b.src}`;

/** A container that shows a Markdown source, rebuilding only the blocks that changed. */
export class MarkdownView {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    /** @type {Array<{ key: string, node: Node }>} */
    this.shown = [];
    this.source = '';
  }

  /** @param {string} source */
  update(source) {
    if (source === this.source) return;
    this.source = source;
    const blocks = parseBlocks(source);
    let same = 0;
    while (same < blocks.length && same < this.shown.length && this.shown[same].key === keyOf(blocks[same])) same += 1;
    for (const { node } of this.shown.splice(same)) this.container.removeChild(node);
    for (const b of blocks.slice(same)) {
      // Each block is one element (a fragment would leave no node to replace later).
      const node = renderBlock(b);
      this.container.appendChild(node);
      this.shown.push({ key: keyOf(b), node });
    }
  }
}
