/**
 * The one format of a line in an app's log files, shared by the relay that writes them and by every
 * reader (`agentpm logs`, monit). Each line starts with the moment the relay read it, in UTC with
 * microseconds, then one space, then the app's text:
 *
 *     2026-11-29T10:04:37.123456Z listening on :8080
 *
 * The relay makes these stamps strictly increasing across everything it writes (all apps, out and
 * err), so sorting lines by stamp replays the order in which they arrived: that is how out and err of
 * one app, or all apps, are interleaved on reading. Lines written without the relay (an app started
 * while it could not run, or files from before it existed) carry no stamp; readers keep them in file
 * order after the previous stamped line.
 */

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ`: 27 characters. */
export const STAMP_LENGTH = 27;
const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})Z /;

/** A stamp for `micros` microseconds since the epoch. */
export function formatStamp(micros: number): string {
  const millis = Math.floor(micros / 1000);
  const iso = new Date(millis).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const sub = String(Math.floor(micros) % 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 19)}.${sub}Z`;
}

export interface LogLine {
  /** Microseconds since the epoch, or null for a line written without the relay. */
  micros: number | null;
  text: string;
}

/** Splits one line (without its newline) into its stamp and text. */
export function parseLine(line: string): LogLine {
  const match = STAMP.exec(line);
  if (match === null) return { micros: null, text: line };
  const seconds = Date.parse(`${match[1]}Z`);
  if (Number.isNaN(seconds)) return { micros: null, text: line };
  return { micros: seconds * 1000 + Number(match[2]), text: line.slice(STAMP_LENGTH + 1) };
}

/**
 * Strictly increasing microsecond clock: never the same value twice and never backwards, even when
 * the wall clock steps back (the stamp then runs a little ahead until the clock catches up).
 */
export class StampClock {
  private last = 0;

  constructor(private readonly now: () => number = () => Date.now() * 1000) {}

  next(): number {
    const now = Math.floor(this.now());
    this.last = now > this.last ? now : this.last + 1;
    return this.last;
  }
}

/**
 * The files of one stream, newest first: the current file, then `.1`, `.2`, … (each possibly
 * compressed as `.N.gz`). Rotation renames `.N` to `.N+1` and the current file to `.1`, so a reader
 * that wants the last lines reads the current file, then `.1`, and so on.
 */
export function rotatedName(current: string, generation: number, compressed: boolean): string {
  return `${current}.${generation}${compressed ? '.gz' : ''}`;
}
