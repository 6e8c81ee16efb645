/**
 * Following log files as they grow, across rotation and truncation. Each followed file is held open:
 * when its name comes to point at another file (the relay renamed it to `.1` and created a new one),
 * what was appended to the old one before the rename is read to its end first, then the new one from
 * its start; when a file shrinks (flushed), it is read again from its start. Polls are synchronous and
 * cheap (an lstat and an fstat per file) so the TUI can call them from its refresh.
 */
import { closeSync, fstatSync, lstatSync, readSync } from 'node:fs';
import { AgentpmError } from '../errors.js';
import { openOwnedFile } from '../safe-files.js';
import { MAX_LINE_BYTES, splitLines } from './backward.js';
import type { Stream } from './files.js';
import { parseLine } from './line.js';
import { mergeEntries, type Entry, type LineFilter } from './tail.js';

interface Followed {
  app: string;
  stream: Stream;
  path: string;
  fd: number | null;
  ino: number;
  offset: number;
  /** Bytes after the last newline: a line still being written, shown once it is complete. */
  partial: Buffer;
  /** The last stamp seen in this stream, which an unstamped line sorts at. */
  at: number | null;
  /** Why the file cannot be read (a symlink, someone else's file); told once. */
  refused: string | null;
  told: boolean;
}

export interface FollowerOptions {
  filter?: LineFilter;
  /** More than this appended to one file between polls: only its end is read (the TUI's pane is a glance). */
  maxBytesPerPoll?: number;
}

export class LogFollower {
  private readonly files: Followed[] = [];

  constructor(private readonly options: FollowerOptions = {}) {}

  has(path: string): boolean {
    return this.files.some((file) => file.path === path);
  }

  /**
   * Starts following `path` (which may not exist yet). Returns the offset it goes on from: the end of
   * the last complete line, so that a tail read up to there and this follower neither miss nor repeat
   * a line. `fromStart`: a file that appeared while following is read whole. Throws the refusal of a
   * file that is not the caller's regular file (see safe-files.ts), and then follows nothing.
   */
  add(app: string, stream: Stream, path: string, at: number | null, fromStart = false): number {
    const file: Followed = { app, stream, path, fd: null, ino: 0, offset: 0, partial: Buffer.alloc(0), at, refused: null, told: false };
    this.open(file);
    if (file.refused !== null) throw new AgentpmError('home-unsafe', file.refused);
    this.files.push(file);
    if (file.fd !== null && !fromStart) file.offset = lastNewlineEnd(file.fd);
    return file.offset;
  }

  /** Lines appended since the last poll, of every followed file, in arrival order. */
  poll(): Entry[] {
    const lists = this.files.map((file) => this.read(file));
    const refusals = this.files.filter((file) => file.refused !== null && !file.told);
    for (const file of refusals) file.told = true;
    const told = refusals.map((file): Entry => ({ app: file.app, stream: 'err', micros: null, at: null, text: `agentpm: ${file.refused ?? ''}` }));
    return [...told, ...mergeEntries(lists)];
  }

  close(): void {
    for (const file of this.files) if (file.fd !== null) closeSync(file.fd);
    this.files.length = 0;
  }

  private open(file: Followed): void {
    if (file.refused !== null) return;
    try {
      // Not a symlink, FIFO or someone else's file planted in logs/ (see safe-files.ts).
      file.fd = openOwnedFile(file.path, 'read');
      file.ino = fstatSync(file.fd).ino;
      file.offset = 0;
      file.partial = Buffer.alloc(0);
    } catch (error) {
      file.fd = null;
      if (error instanceof AgentpmError) file.refused = error.message;
    }
  }

  private read(file: Followed): Entry[] {
    if (file.fd === null) {
      this.open(file);
      if (file.fd === null) return [];
    }
    const raw: string[] = [];
    const now = this.current(file);
    if (now !== file.ino && now !== null) {
      // Rotated, and the new file exists, so its writer has moved on: the old one is read to its end.
      raw.push(...this.drain(file, true));
      closeSync(file.fd);
      file.fd = null;
      this.open(file);
      if (file.fd === null) return this.entries(file, raw);
    }
    // Renamed with no new file yet: its writer may still append to it, so it is kept open until one appears.
    raw.push(...this.drain(file, false));
    return this.entries(file, raw);
  }

  /** The inode the name points at now (null: none), to tell when the file held open was rotated away. */
  private current(file: Followed): number | null {
    try {
      return lstatSync(file.path).ino;
    } catch {
      return null;
    }
  }

  /** Reads what was appended since the last poll; `final`: the file is left for good, so its last partial line is complete. */
  private drain(file: Followed, final: boolean): string[] {
    const fd = file.fd as number;
    const size = fstatSync(fd).size;
    if (size < file.offset) {
      file.offset = 0; // truncated (flushed): its new content starts at 0
      file.partial = Buffer.alloc(0);
    }
    let from = file.offset;
    const limit = this.options.maxBytesPerPoll;
    const skipped = limit !== undefined && size - from > limit;
    if (skipped) {
      from = size - limit;
      file.partial = Buffer.alloc(0);
    }
    const chunk = Buffer.alloc(size - from);
    const read = chunk.length > 0 ? readSync(fd, chunk, 0, chunk.length, from) : 0;
    file.offset = from + read;
    let bytes = Buffer.concat([file.partial, chunk.subarray(0, read)]);
    if (skipped) bytes = bytes.subarray(bytes.indexOf(0x0a) + 1); // the first line is cut: drop it
    const end = bytes.lastIndexOf(0x0a);
    file.partial = Buffer.from(bytes.subarray(end + 1));
    const lines = end >= 0 ? splitLines(bytes.subarray(0, end)) : [];
    // A line that never ends (a binary dump, a spinner without newlines) is shown as it is.
    if (final || file.partial.length > MAX_LINE_BYTES) {
      if (file.partial.length > 0) lines.push(file.partial.toString('utf8'));
      file.partial = Buffer.alloc(0);
    }
    return lines;
  }

  private entries(file: Followed, raw: readonly string[]): Entry[] {
    const lines = raw.map(parseLine);
    const grep = this.options.filter?.grep ?? null;
    const hits = grep !== null ? grep.testMany(lines.map((line) => line.text)) : null;
    const entries: Entry[] = [];
    for (const [index, line] of lines.entries()) {
      if (line.micros !== null) file.at = line.micros;
      if (hits === null || hits[index] === true) entries.push({ app: file.app, stream: file.stream, micros: line.micros, at: file.at, text: line.text });
    }
    return entries;
  }
}

/** The offset just past the last newline: where a complete line ends. */
function lastNewlineEnd(fd: number): number {
  let position = fstatSync(fd).size;
  const block = Buffer.alloc(64 * 1024);
  while (position > 0) {
    const from = Math.max(0, position - block.length);
    const read = readSync(fd, block, 0, position - from, from);
    const cut = block.subarray(0, read).lastIndexOf(0x0a);
    if (cut >= 0) return from + cut + 1;
    position = from;
  }
  return 0;
}
