/**
 * `agentpm logs`: reads the apps' log files (the daemon is not involved) and prints their lines in
 * arrival order, labelled by app; `--follow` goes on across rotation and truncation. The reading is in
 * src/logs/ (shared with monit's log pane); this is the command's selection and printing.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentpmError } from '../errors.js';
import { homePaths } from '../home.js';
import { listLogFiles, type AppLogFiles, type Stream } from '../logs/files.js';
import { LogFollower } from '../logs/follow.js';
import { formatEntry, labelWidth, type LineLayout } from '../logs/format.js';
import { lastLines, lastLinesOfApp, mergeEntries, NO_FILTER, type Entry, type LineFilter } from '../logs/tail.js';
import { commandPattern, type CommandPattern } from '../reap/pattern.js';

export interface LogOptions {
  /** App names; empty or `all`: every app with logs. */
  names: string[];
  /** Per app; null: the default (20, or everything since --since up to SINCE_LINES). */
  lines: number | null;
  follow: boolean;
  streams: Stream[];
  timestamps: boolean;
  /** Microseconds since the epoch. */
  since: number | null;
  grep: string | null;
}

export const DEFAULT_LINES = 20;
/** `--since` without `--lines` prints every line since then, up to this many per app (they are held to be merged). */
export const SINCE_LINES = 100_000;
const FOLLOW_POLL_MS = 200;
/** While following every app, logs/ is listed this often for apps that start writing. */
const RESCAN_MS = 2000;

export async function showLogs(home: string, options: LogOptions): Promise<void> {
  const dir = homePaths(home).logs;
  const everyApp = options.names.length === 0 || (options.names.length === 1 && options.names[0] === 'all');
  const present = listLogFiles(dir);
  const apps = everyApp ? [...present.keys()] : options.names.filter((name, index) => options.names.indexOf(name) === index);
  for (const app of apps) {
    const files = present.get(app);
    if (files === undefined || options.streams.every((stream) => files[stream].length === 0)) throw unknownApp(app, dir, present, options.streams);
  }
  if (apps.length === 0 && !options.follow) {
    process.stderr.write(`no app has written logs yet (${dir} has none); start one with \`agentpm start <script>\`\n`);
    return;
  }
  const filter: LineFilter = { since: options.since, grep: options.grep === null ? null : grepPattern(options.grep) };
  const layout: LineLayout = {
    labels: everyApp || apps.length > 1 || options.streams.length > 1,
    labelWidth: labelWidth(apps, options.streams),
    color: process.stdout.isTTY === true && !('NO_COLOR' in process.env),
    timestamps: options.timestamps,
  };
  const print = (entries: readonly Entry[]): void => {
    if (entries.length > 0) process.stdout.write(`${entries.map((entry) => formatEntry(entry, layout)).join('\n')}\n`);
  };
  const want = options.lines ?? (options.since !== null ? SINCE_LINES : DEFAULT_LINES);
  // Opened before the tail is read, so that the lines the tail reads and those followed after meet exactly.
  const follower = options.follow ? new LogFollower({ filter }) : null;
  const perApp: Entry[][] = [];
  for (const app of apps) {
    const files = present.get(app) as AppLogFiles;
    const ends: Partial<Record<Stream, number>> = {};
    for (const stream of options.streams) {
      const current = `${dir}/${app}.${stream}.log`;
      const offset = follower?.add(app, stream, current, null);
      if (offset !== undefined && files[stream][0]?.path === current) ends[stream] = offset;
    }
    perApp.push(await lastLinesOfApp(app, files, options.streams, want, filter, follower !== null ? ends : undefined));
  }
  print(mergeEntries(perApp));
  if (follower === null) return;
  let rescanAt = Date.now() + RESCAN_MS;
  for (;;) {
    await sleep(FOLLOW_POLL_MS);
    if (everyApp && Date.now() >= rescanAt) {
      rescanAt = Date.now() + RESCAN_MS;
      for (const app of listLogFiles(dir).keys()) {
        for (const stream of options.streams) {
          const path = `${dir}/${app}.${stream}.log`;
          if (!follower.has(path)) follower.add(app, stream, path, null, true);
        }
      }
    }
    print(follower.poll());
  }
}

function grepPattern(source: string): CommandPattern {
  try {
    return commandPattern(source, { one: 'one log line', many: 'log lines', consequence: 'nothing more was printed', advice: 'a literal word of the lines you want' });
  } catch (error) {
    throw new AgentpmError('invalid-argument', `--grep: ${(error as Error).message}; give a JavaScript regular expression, e.g. --grep 'timeout|ECONNRESET'`);
  }
}

function unknownApp(app: string, dir: string, present: Map<string, AppLogFiles>, streams: readonly Stream[]): AgentpmError {
  const known = [...present.entries()].filter(([, files]) => streams.some((stream) => files[stream].length > 0)).map(([name]) => name);
  const which = streams.length === 1 ? `${streams[0]} logs` : 'logs';
  const others = known.length > 0 ? `apps with ${which}: ${known.join(', ')}` : `no app has ${which} there yet`;
  return new AgentpmError('unknown-app', `no ${which} for ${app} in ${dir} (${others}); check the name with \`agentpm ls\`, or run \`agentpm logs\` for every app`);
}

/** `agentpm daemon logs`: the daemon's own log, back through its rotated copies. */
export async function showDaemonLog(path: string, lines: number, follow: boolean): Promise<void> {
  const chain = [path, `${path}.1`, `${path}.2`].filter((file) => existsSync(file)).map((file) => ({ path: file, compressed: false }));
  const follower = follow ? new LogFollower() : null;
  const end = follower?.add('daemon', 'out', path, null);
  const print = (entries: readonly Entry[]): void => {
    if (entries.length > 0) process.stdout.write(`${entries.map((entry) => entry.text).join('\n')}\n`);
  };
  print(await lastLines(chain, lines, NO_FILTER, { app: 'daemon', stream: 'out' }, chain[0]?.path === path ? end : undefined));
  if (follower === null) return;
  for (;;) {
    await sleep(FOLLOW_POLL_MS);
    print(follower.poll());
  }
}
