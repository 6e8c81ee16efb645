/**
 * Which log files there are: the apps with logs in logs/, and the files of each of their streams,
 * newest first (the current file, then `.1`, `.2`, … each plain or compressed; see line.ts). One
 * directory listing answers both, so a rotation in between cannot make them disagree.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type Stream = 'out' | 'err';
export const STREAMS: readonly Stream[] = ['out', 'err'];

export interface LogFile {
  path: string;
  compressed: boolean;
}

/** An app's files per stream, newest first; a stream without any file has an empty list. */
export type AppLogFiles = Record<Stream, LogFile[]>;

const LOG_FILE = /^(.+)\.(out|err)\.log(?:\.(\d{1,6})(\.gz)?)?$/;

/** Every app with at least one log file in `dir`, by name, with its files. */
export function listLogFiles(dir: string): Map<string, AppLogFiles> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  const found = new Map<string, Map<Stream, Map<number, LogFile>>>();
  for (const name of names) {
    const match = LOG_FILE.exec(name);
    if (match === null) continue;
    const [, app = '', stream, generation, gz] = match;
    const byStream = found.get(app) ?? new Map<Stream, Map<number, LogFile>>();
    found.set(app, byStream);
    const files = byStream.get(stream as Stream) ?? new Map<number, LogFile>();
    byStream.set(stream as Stream, files);
    const number = generation === undefined ? 0 : Number(generation);
    // Both `.N` and `.N.gz`: the plain one is being compressed and is the complete one until it is gone.
    if (files.get(number)?.compressed === false) continue;
    files.set(number, { path: join(dir, name), compressed: gz !== undefined });
  }
  const apps = new Map<string, AppLogFiles>();
  for (const app of [...found.keys()].sort()) {
    const byStream = found.get(app);
    const newestFirst = (stream: Stream): LogFile[] =>
      [...(byStream?.get(stream) ?? new Map<number, LogFile>()).entries()].sort(([a], [b]) => a - b).map(([, file]) => file);
    apps.set(app, { out: newestFirst('out'), err: newestFirst('err') });
  }
  return apps;
}

/** The files of the stream whose current file is `current` (the TUI knows the paths from `show`). */
export function streamFiles(current: string): LogFile[] {
  const match = /^(.+)\.(out|err)\.log$/.exec(basename(current));
  if (match === null) return [{ path: current, compressed: false }];
  return listLogFiles(dirname(current)).get(match[1] as string)?.[match[2] as Stream] ?? [];
}
