/**
 * The log pane's source: the selected app's out and err files (paths from `show`), read directly like
 * `agentpm logs` does. Starts from the last lines of each, then appends what the files gained since
 * the previous poll, so lines of the two streams appear in about the order they were written.
 */
import { closeSync, readSync, statSync } from 'node:fs';
import { tail } from '../cli/logs.js';
import { AgentpmError } from '../errors.js';
import { openOwnedFile } from '../safe-files.js';
import { sanitize } from './format.js';
import { LOG_LINE_LIMIT, type LogLine } from './state.js';

type Stream = 'out' | 'err';
const STREAMS: readonly Stream[] = ['out', 'err'];

/** A chattier app than this per poll shows only its latest output: the pane is a glance, not a pager. */
const MAX_READ_BYTES = 64 * 1024;

export class LogTail {
  private files: Record<Stream, string> | null = null;
  private readonly offsets: Record<Stream, number> = { out: 0, err: 0 };
  private readonly partial: Record<Stream, Buffer> = { out: Buffer.alloc(0), err: Buffer.alloc(0) };
  private kept: LogLine[] = [];

  constructor(private readonly initialLines = 50) {}

  get lines(): LogLine[] {
    return this.kept;
  }

  /** Follows another pair of files (null: none); starts over from their last lines. */
  follow(files: Record<Stream, string> | null): void {
    if (files?.out === this.files?.out && files?.err === this.files?.err) return;
    this.files = files;
    this.kept = [];
    if (files === null) return;
    for (const stream of STREAMS) {
      const { text, end } = safeTail(files[stream], this.initialLines);
      this.offsets[stream] = end;
      this.partial[stream] = Buffer.alloc(0);
      this.push(stream, text);
    }
  }

  /** Reads what was appended since the last poll; true if there are new lines. */
  poll(): boolean {
    const files = this.files;
    if (files === null) return false;
    let added = false;
    for (const stream of STREAMS) {
      const size = sizeOf(files[stream]);
      let from = this.offsets[stream];
      if (size < from) {
        from = 0; // truncated or replaced
        this.partial[stream] = Buffer.alloc(0);
      }
      if (size === from) continue;
      const skipped = size - from > MAX_READ_BYTES;
      if (skipped) {
        from = size - MAX_READ_BYTES;
        this.partial[stream] = Buffer.alloc(0);
      }
      let bytes = Buffer.concat([this.partial[stream], readRange(files[stream], from, size)]);
      this.offsets[stream] = size;
      if (skipped) bytes = bytes.subarray(bytes.indexOf(0x0a) + 1); // the first line is cut: drop it
      // Bytes after the last newline are a line still being written (perhaps mid-character): keep
      // them for the next poll rather than show half a line.
      const end = bytes.lastIndexOf(0x0a);
      this.partial[stream] = Buffer.from(bytes.subarray(end + 1));
      if (end >= 0) {
        this.push(stream, bytes.subarray(0, end).toString('utf8').split('\n'));
        added = true;
      }
      if (this.partial[stream].length > MAX_READ_BYTES) {
        // A line that never ends (a binary dump, a spinner without newlines): show it as it is.
        this.push(stream, [this.partial[stream].toString('utf8')]);
        this.partial[stream] = Buffer.alloc(0);
        added = true;
      }
    }
    return added;
  }

  private push(stream: Stream, raw: readonly string[]): void {
    for (const line of raw) this.kept.push({ stream, text: sanitize(lastRewrite(line)) });
    if (this.kept.length > LOG_LINE_LIMIT) this.kept.splice(0, this.kept.length - LOG_LINE_LIMIT);
  }
}

/** A progress display rewrites its line with carriage returns; what a terminal would show is the last. */
function lastRewrite(line: string): string {
  const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
  return trimmed.slice(trimmed.lastIndexOf('\r') + 1);
}

function safeTail(path: string, lines: number): { text: string[]; end: number } {
  try {
    return tail(path, lines);
  } catch (error) {
    // A refused file (a symlink, someone else's) says why in the pane instead of showing nothing.
    return { text: error instanceof AgentpmError ? [`agentpm: ${error.message}`] : [], end: 0 };
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function readRange(path: string, from: number, to: number): Buffer {
  let fd: number;
  try {
    fd = openOwnedFile(path, 'read');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buffer = Buffer.alloc(to - from);
    const read = readSync(fd, buffer, 0, buffer.length, from);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
