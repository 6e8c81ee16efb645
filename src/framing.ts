/**
 * Newline-delimited JSON framing, shared by the daemon and its clients. A line longer than the limit is
 * an error for the whole connection: the reader cannot know where the oversized frame ends.
 */
import { MAX_FRAME_BYTES } from './protocol.js';

export type Frame = { ok: true; value: unknown } | { ok: false; reason: 'malformed-json'; raw: string };

export class LineDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(private readonly maxFrameBytes: number = MAX_FRAME_BYTES) {}

  /** Feeds a chunk; returns complete frames, or 'too-large' once a frame exceeds the limit. */
  push(chunk: Buffer): Frame[] | 'too-large' {
    if (this.failed) return 'too-large';
    const frames: Frame[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(10, start); newline !== -1; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      if (this.pendingBytes + piece.length > this.maxFrameBytes) return this.fail();
      const line = this.pendingBytes > 0 ? Buffer.concat([...this.pending, piece]).toString('utf8') : piece.toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
      if (line.trim() === '') continue;
      frames.push(parseFrame(line));
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0) {
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxFrameBytes) return this.fail();
      this.pending.push(rest);
    }
    return frames;
  }

  /** Once a frame is too large, the stream cannot be resynchronised: every later push fails too. */
  private fail(): 'too-large' {
    this.failed = true;
    this.pending = [];
    return 'too-large';
  }
}

function parseFrame(line: string): Frame {
  try {
    return { ok: true, value: JSON.parse(line) as unknown };
  } catch {
    return { ok: false, reason: 'malformed-json', raw: line.length > 200 ? `${line.slice(0, 200)}…` : line };
  }
}

export function encodeFrame(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}
