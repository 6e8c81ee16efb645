/**
 * `agentpm logs`: read straight from the app's log files, which the apps write themselves. Following
 * polls the files' size, so it also survives truncation.
 */
import { closeSync, existsSync, readSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentpmError } from '../errors.js';
import { appLogPaths } from '../home.js';
import { openOwnedFile } from '../safe-files.js';

type Stream = 'out' | 'err';

export interface LogOptions {
  lines: number;
  follow: boolean;
  streams: Stream[];
}

const FOLLOW_POLL_MS = 200;

export async function showLogs(home: string, app: string, options: LogOptions): Promise<void> {
  const files = appLogPaths(home, app);
  const present = options.streams.filter((stream) => existsSync(files[stream]));
  if (present.length === 0) {
    throw new AgentpmError('unknown-app', `no logs for ${app} in ${home}/logs; check the name with \`agentpm ls\``);
  }
  const label = (stream: Stream): string => (present.length > 1 ? `${stream} | ` : '');
  const offsets = new Map<Stream, number>();
  for (const stream of present) {
    const { text, end } = tail(files[stream], options.lines);
    for (const line of text) process.stdout.write(`${label(stream)}${line}\n`);
    offsets.set(stream, end);
  }
  if (!options.follow) return;
  for (;;) {
    for (const stream of present) {
      const path = files[stream];
      const size = safeSize(path);
      let from = offsets.get(stream) ?? 0;
      if (size < from) from = 0; // truncated or rotated
      if (size > from) {
        const chunk = readRange(path, from, size);
        for (const line of chunk.replace(/\n$/, '').split('\n')) process.stdout.write(`${label(stream)}${line}\n`);
        offsets.set(stream, size);
      }
    }
    await sleep(FOLLOW_POLL_MS);
  }
}

/** The last `count` lines of a file, reading backwards in blocks so a large log costs little. */
export function tail(path: string, count: number): { text: string[]; end: number } {
  const size = safeSize(path);
  if (count === 0 || size === 0) return { text: [], end: size };
  let start = size;
  let buffer = '';
  while (start > 0) {
    const from = Math.max(0, start - 64 * 1024);
    buffer = readRange(path, from, start) + buffer;
    start = from;
    if (buffer.split('\n').length > count + 1) break;
  }
  const lines = buffer.replace(/\n$/, '').split('\n');
  return { text: lines.slice(-count), end: size };
}

function readRange(path: string, from: number, to: number): string {
  // Not a symlink, FIFO or someone else's file planted in logs/ (see safe-files.ts).
  const fd = openOwnedFile(path, 'read');
  try {
    const buffer = Buffer.alloc(to - from);
    const read = readSync(fd, buffer, 0, buffer.length, from);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function safeSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
