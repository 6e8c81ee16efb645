/**
 * How `agentpm logs` prints a line: `[time ]app | text`, where an err line's label is `app/err`, so
 * stderr stays recognisable in a pipe or a file; on a terminal the label is also coloured (err red).
 */
import type { Stream } from './files.js';
import type { Entry } from './tail.js';

export interface LineLayout {
  /** Prefix each line with its app (and stream): off when one stream of one app is shown. */
  labels: boolean;
  labelWidth: number;
  color: boolean;
  timestamps: boolean;
}

/** Past this, a long app name is not padded to: one long name must not push every line far right. */
const MAX_LABEL_WIDTH = 24;
/** `YYYY-MM-DD HH:MM:SS.mmm` */
const TIME_WIDTH = 23;

export function labelOf(app: string, stream: Stream): string {
  return stream === 'err' ? `${app}/err` : app;
}

export function labelWidth(apps: readonly string[], streams: readonly Stream[]): number {
  const widths = apps.flatMap((app) => streams.map((stream) => labelOf(app, stream).length));
  return Math.min(MAX_LABEL_WIDTH, Math.max(0, ...widths));
}

export function formatEntry(entry: Entry, layout: LineLayout): string {
  const paint = (code: number, text: string): string => (layout.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  let prefix = '';
  if (layout.timestamps) prefix += `${paint(90, entry.micros === null ? '-'.padEnd(TIME_WIDTH) : localTime(entry.micros))} `;
  if (layout.labels) prefix += `${paint(entry.stream === 'err' ? 31 : 36, labelOf(entry.app, entry.stream).padEnd(layout.labelWidth))} | `;
  return `${prefix}${entry.text}`;
}

/** A stamp in local time, to the millisecond: `2026-11-29 11:04:37.123`. */
export function localTime(micros: number): string {
  const date = new Date(Math.floor(micros / 1000));
  const two = (value: number): string => String(value).padStart(2, '0');
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`
  );
}
