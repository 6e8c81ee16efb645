/**
 * The last lines of an app's logs, in the order they arrived. Each stream's lines are read backwards
 * from its newest file into older rotated ones until enough are found; the streams (and apps) are then
 * merged by stamp (see line.ts). A line without a stamp sorts at the previous stamped line of its
 * file, which keeps it in file order right after that line; one with no stamped line before it sorts
 * before everything.
 */
import type { CommandPattern } from '../reap/pattern.js';
import { backwardBlocks } from './backward.js';
import type { AppLogFiles, LogFile, Stream } from './files.js';
import { parseLine } from './line.js';

export interface Entry {
  app: string;
  stream: Stream;
  /** The line's own stamp (microseconds since the epoch), null for a line written without the relay. */
  micros: number | null;
  /** Where it sorts: its stamp, or the previous stamped line's of its file; null when none is known. */
  at: number | null;
  text: string;
}

export interface LineFilter {
  /** Microseconds: lines that sort before it are left out (unstamped lines by the `at` they inherit). */
  since: number | null;
  /** Matched against the line's text, without its stamp. */
  grep: CommandPattern | null;
}

export const NO_FILTER: LineFilter = { since: null, grep: null };

/**
 * How far back, in lines, to look for the stamp of unstamped lines once enough were found: a log
 * written entirely without the relay has none, and must not be read to its start for it.
 */
const STAMP_LOOKBACK_LINES = 10_000;

/**
 * The last `want` lines of one stream that pass the filter, oldest first. `files` newest first; `end`
 * reads the current file as if it ended there.
 */
export async function lastLines(files: readonly LogFile[], want: number, filter: LineFilter, origin: { app: string; stream: Stream }, end?: number): Promise<Entry[]> {
  const found: Entry[] = []; // newest first
  let pending: Entry[] = []; // unstamped, newest first, waiting for the stamp of a line before them
  let lookedBack = 0;
  const full = (): boolean => found.length + pending.length >= want;
  if (want <= 0) return [];
  reading: for (const [index, file] of files.entries()) {
    for await (const block of backwardBlocks(file, index === 0 ? end : undefined)) {
      const lines = block.map(parseLine);
      const hits = filter.grep !== null && !full() ? filter.grep.testMany(lines.map((line) => line.text)) : null;
      for (let at = lines.length - 1; at >= 0; at -= 1) {
        const line = lines[at] as (typeof lines)[number];
        const matches = hits === null || hits[at] === true;
        if (line.micros === null) {
          if (!full()) {
            if (matches) pending.push({ ...origin, micros: null, at: null, text: line.text });
          } else if (++lookedBack > STAMP_LOOKBACK_LINES) break reading;
          continue;
        }
        const stamp = line.micros;
        const inWindow = filter.since === null || stamp >= filter.since;
        if (pending.length > 0) {
          if (inWindow) found.push(...pending.map((entry) => ({ ...entry, at: stamp })));
          pending = [];
        }
        if (!inWindow || full()) break reading;
        if (matches) found.push({ ...origin, micros: stamp, at: stamp, text: line.text });
        if (full()) break reading;
      }
    }
  }
  // No stamped line before these (or none within the lookback): their time is unknown, so they sort
  // first, and a --since cannot say they are recent.
  if (filter.since === null) found.push(...pending);
  return found.reverse();
}

/** The last `want` lines of an app's selected streams, merged in arrival order. */
export async function lastLinesOfApp(app: string, files: AppLogFiles, streams: readonly Stream[], want: number, filter: LineFilter, ends?: Partial<Record<Stream, number>>): Promise<Entry[]> {
  const perStream = await Promise.all(streams.map((stream) => lastLines(files[stream], want, filter, { app, stream }, ends?.[stream])));
  const merged = mergeEntries(perStream);
  return merged.slice(Math.max(0, merged.length - want));
}

/**
 * Merges lists that are each in file order into one, by `at` (unknown first); a tie keeps the earlier
 * list's line first. Never reorders lines of one list, so one stream stays exactly in its file's order
 * even where its stamps do not increase (a relay restarted after the clock stepped back).
 */
export function mergeEntries(lists: readonly (readonly Entry[])[]): Entry[] {
  const merged: Entry[] = [];
  const heads = lists.map(() => 0);
  const total = lists.reduce((sum, list) => sum + list.length, 0);
  while (merged.length < total) {
    let best = -1;
    let bestAt = Infinity;
    for (const [index, list] of lists.entries()) {
      const entry = list[heads[index] as number];
      if (entry === undefined) continue;
      const at = entry.at ?? -Infinity;
      if (best < 0 || at < bestAt) {
        best = index;
        bestAt = at;
      }
    }
    merged.push((lists[best] as readonly Entry[])[heads[best] as number] as Entry);
    heads[best] = (heads[best] as number) + 1;
  }
  return merged;
}
