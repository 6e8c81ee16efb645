/**
 * Text primitives of the dashboard: terminal cell widths, fitting to a width, bars and sparklines.
 * Pure functions; every string they return occupies exactly the cells it claims, so panes line up.
 */
import type { Line, Segment, Style } from './renderer.js';

/** The drawing characters, in a UTF-8 terminal and in one that only has ASCII. */
export interface Glyphs {
  barFull: string;
  barEmpty: string;
  /** Sparkline levels, lowest first. */
  spark: readonly string[];
  branch: string;
  lastBranch: string;
  pipe: string;
  ellipsis: string;
  up: string;
  down: string;
}

export const UNICODE_GLYPHS: Glyphs = {
  barFull: '█',
  barEmpty: '░',
  spark: ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
  branch: '├─',
  lastBranch: '└─',
  pipe: '│ ',
  ellipsis: '…',
  up: '↑',
  down: '↓',
};

export const ASCII_GLYPHS: Glyphs = {
  barFull: '#',
  barEmpty: '-',
  spark: ['_', '.', ',', '-', '~', '=', '*', '#'],
  branch: '|-',
  lastBranch: '`-',
  pipe: '| ',
  ellipsis: '~',
  up: '^',
  down: 'v',
};

// CSI, OSC and two-character escape sequences: coloured log output must not reach the terminal raw.
const ESCAPE_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;
const INVISIBLE = /[\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
const ASTRAL = /[\u{10000}-\u{10ffff}]/gu;

/**
 * Makes arbitrary text (commands, log lines) safe to place in a cell grid: no escape sequences, no
 * control characters, tabs as a space. Characters outside the Basic Multilingual Plane (emoji, mostly)
 * become '?': blessed 0.1.81's width table counts them as one cell while terminals draw two, which
 * would shift the rest of the row.
 */
export function sanitize(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, '').replace(INVISIBLE, '').replaceAll('\t', ' ').replace(CONTROL, '?').replace(ASTRAL, '?');
}

/** Cells a (sanitized) code point occupies: 0 for combining marks, 2 for East Asian wide forms. */
export function charWidth(codePoint: number): 0 | 1 | 2 {
  if ((codePoint >= 0x300 && codePoint <= 0x36f) || (codePoint >= 0x20d0 && codePoint <= 0x20ff) || (codePoint >= 0xfe00 && codePoint <= 0xfe0f)) return 0;
  if (
    (codePoint >= 0x1100 && codePoint <= 0x115f) ||
    (codePoint >= 0x2e80 && codePoint <= 0x303e) ||
    (codePoint >= 0x3041 && codePoint <= 0x33ff) ||
    (codePoint >= 0x3400 && codePoint <= 0x4dbf) ||
    (codePoint >= 0x4e00 && codePoint <= 0x9fff) ||
    (codePoint >= 0xa000 && codePoint <= 0xa4cf) ||
    (codePoint >= 0xac00 && codePoint <= 0xd7a3) ||
    (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0xfe30 && codePoint <= 0xfe4f) ||
    (codePoint >= 0xff00 && codePoint <= 0xff60) ||
    (codePoint >= 0xffe0 && codePoint <= 0xffe6)
  ) {
    return 2;
  }
  return 1;
}

export function textWidth(text: string): number {
  let width = 0;
  for (const char of text) width += charWidth(char.codePointAt(0) ?? 0);
  return width;
}

/** At most `width` cells of `text`; when it had to cut, the last cell is the ellipsis. */
export function truncate(text: string, width: number, ellipsis = '…'): string {
  if (width <= 0) return '';
  return textWidth(text) <= width ? text : cut(text, width, ellipsis);
}

/** The start of `text` in `width - 1` cells, then the ellipsis: something was left out. */
function cut(text: string, width: number, ellipsis: string): string {
  if (width <= 0) return '';
  let out = '';
  let used = 0;
  for (const char of text) {
    const cells = charWidth(char.codePointAt(0) ?? 0);
    if (used + cells > width - 1) break;
    out += char;
    used += cells;
  }
  // A wide character that did not fit leaves a gap: fill it so the ellipsis sits in the last cell.
  return out + ' '.repeat(width - 1 - used) + ellipsis;
}

/** Cells of the start of a line kept before its key figure, when the line's end has to go too. */
const MIN_HEAD = 12;

/**
 * At most `width` cells of `text` with a key (a part of it: a cause, a figure against its limit, a count)
 * kept whole: the first of `keys` that fits, most complete first. What goes is the less important text
 * around it, the end of what precedes it first (the ellipsis then stands just before the key), then what
 * follows it. Without a key that fits (or that is in the text), the same as truncate.
 */
export function truncateKeeping(text: string, width: number, keys: readonly string[], ellipsis = '…'): string {
  if (textWidth(text) <= width) return text;
  // Room for the key and an ellipsis on each side of it.
  const key = keys.find((candidate) => candidate !== '' && text.includes(candidate) && textWidth(candidate) <= width - 2);
  if (key === undefined) return truncate(text, width, ellipsis);
  const at = text.lastIndexOf(key);
  const head = text.slice(0, at);
  const tail = text.slice(at + key.length);
  const keyWidth = textWidth(key);
  const headWidth = textWidth(head);
  // All of what follows the key, when that leaves the line's start enough room to say what it is.
  // (The whole line is too wide, so the start is always cut here.)
  const headRoom = width - keyWidth - textWidth(tail);
  if (tail === '' || (headRoom >= Math.min(headWidth, MIN_HEAD) && headRoom > 0)) return cut(head, headRoom, ellipsis) + key + tail;
  // Otherwise the start (as much as fits, leaving a cell), the key, and what follows cut at the edge.
  const keptHead = headWidth <= width - keyWidth - 1 ? head : cut(head, width - keyWidth - 1, ellipsis);
  return keptHead + key + cut(tail, width - textWidth(keptHead) - keyWidth, ellipsis);
}

/** Exactly `width` cells: truncated, or padded on the right (left, with `alignRight`). */
export function fit(text: string, width: number, options: { alignRight?: boolean; ellipsis?: string } = {}): string {
  const cut = truncate(text, width, options.ellipsis);
  const pad = ' '.repeat(Math.max(0, width - textWidth(cut)));
  return options.alignRight ? pad + cut : cut + pad;
}

export function lineWidth(line: Line): number {
  return line.reduce((sum, segment) => sum + textWidth(segment.text), 0);
}

/**
 * A line cut to `width` cells, styles kept; with `pad`, filled to exactly `width` with spaces in the
 * last segment's style (so a highlighted row is highlighted to the edge).
 */
export function fitLine(line: Line, width: number, options: { pad?: boolean; ellipsis?: string } = {}): Line {
  const total = lineWidth(line);
  const out: Segment[] = [];
  if (total <= width) {
    out.push(...line.filter((segment) => segment.text !== ''));
  } else {
    let left = width;
    for (const segment of line) {
      const cells = textWidth(segment.text);
      if (cells < left) {
        out.push(segment);
        left -= cells;
        continue;
      }
      // This segment reaches the edge and more text follows (the line is too long): cut it here.
      out.push(withText(segment, cut(segment.text, left, options.ellipsis ?? '…')));
      break;
    }
  }
  if (options.pad) {
    const missing = width - lineWidth(out);
    if (missing > 0) {
      const last = out[out.length - 1];
      if (last) out[out.length - 1] = withText(last, last.text + ' '.repeat(missing));
      else out.push({ text: ' '.repeat(missing) });
    }
  }
  return out.filter((segment) => segment.text !== '');
}

function withText(segment: Segment, text: string): Segment {
  return segment.style === undefined ? { text } : { text, style: segment.style };
}

export function segment(text: string, style?: Style): Segment {
  return style === undefined ? { text } : { text, style };
}

/** A horizontal gauge of `width` cells; over 1 is shown full. */
export function bar(fraction: number, width: number, glyphs: Glyphs): string {
  if (width <= 0) return '';
  const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  // Anything above zero shows at least one cell, so a small but real figure is not mistaken for none.
  const filled = clamped > 0 ? Math.max(1, Math.round(clamped * width)) : 0;
  return glyphs.barFull.repeat(filled) + glyphs.barEmpty.repeat(width - filled);
}

/** How full a figure is against its limit: for choosing the bar's style. */
export function levelStyle(fraction: number): Style {
  if (fraction >= 0.9) return 'bad';
  if (fraction >= 0.7) return 'warn';
  return 'ok';
}

/**
 * The last values as at most `width` columns, scaled from 0 to the largest value. When there are more
 * values than columns, each column is the largest value of its stretch, so a short spike still shows.
 * A value of 0 (nothing running) is a blank column.
 */
export function sparkline(values: readonly number[], width: number, glyphs: Glyphs): string {
  if (width <= 0 || values.length === 0) return '';
  const columns = values.length <= width ? [...values] : bucketMax(values, width);
  const max = Math.max(...columns);
  const top = glyphs.spark.length - 1;
  return columns
    .map((value) => {
      if (value <= 0 || max <= 0) return ' ';
      return glyphs.spark[Math.min(top, Math.round((value / max) * top))] ?? ' ';
    })
    .join('');
}

function bucketMax(values: readonly number[], buckets: number): number[] {
  const out: number[] = [];
  for (let index = 0; index < buckets; index += 1) {
    const from = Math.floor((index * values.length) / buckets);
    const to = Math.floor(((index + 1) * values.length) / buckets);
    let max = 0;
    for (let at = from; at < to; at += 1) max = Math.max(max, values[at] ?? 0);
    out.push(max);
  }
  return out;
}

/**
 * A command line for a narrow column: absolute paths as their last component ('/usr/bin/node
 * /srv/bot/agent.ts' → 'node agent.ts'), so what distinguishes the processes stays in view.
 * `agentpm show` has the full line.
 */
export function shortCommand(cmd: string): string {
  return cmd
    .split(' ')
    .map((word) => word.replace(/^(--?[\w-]+=)?\/(?:[^/\s]*\/)+([^/\s]+)$/, (_match, flag: string | undefined, base: string) => `${flag ?? ''}${base}`))
    .join(' ');
}

/** Local wall-clock time of an ISO timestamp, HH:MM:SS. */
export function clock(iso: string | number): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '--:--:--';
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}
