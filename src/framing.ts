/**
 * Newline-delimited JSON framing, shared by the daemon and its clients. A line longer than the limit is
 * an error for the whole connection: the reader cannot know where the oversized frame ends.
 *
 * The decoder can be pulled one frame at a time (`feed` + `next`), so that a reader that stops
 * serving a connection (its replies are not being read) keeps the rest of the input as the bytes
 * it arrived as, counted in `bufferedBytes`, instead of a growing list of parsed messages.
 */
import { MAX_FRAME_BYTES } from './protocol.js';

export type Frame = { ok: true; value: unknown } | { ok: false; reason: 'malformed-json'; raw: string };

export class LineDecoder {
  /** Unconsumed input is buffer[start, end); newlines were looked for up to `scanned`. */
  private buffer = EMPTY;
  private start = 0;
  private end = 0;
  private scanned = 0;
  private failed = false;

  constructor(private readonly maxFrameBytes: number = MAX_FRAME_BYTES) {}

  /** Bytes received and not yet returned as frames: a partial frame, and frames not yet pulled. */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /** Feeds a chunk; returns complete frames, or 'too-large' once a frame exceeds the limit. */
  push(chunk: Buffer): Frame[] | 'too-large' {
    this.feed(chunk);
    const frames: Frame[] = [];
    for (let frame = this.next(); frame !== null; frame = this.next()) {
      if (frame === 'too-large') return frame;
      frames.push(frame);
    }
    return frames;
  }

  /**
   * Adds a chunk without decoding it; `next` returns its frames. The bytes are copied into one buffer,
   * so a frame that arrives a byte at a time costs its bytes, not an object per byte.
   */
  feed(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    if (this.end + chunk.length > this.buffer.length) this.makeRoom(chunk.length);
    chunk.copy(this.buffer, this.end);
    this.end += chunk.length;
  }

  /** The next complete frame, null if none is complete yet, or 'too-large' once one exceeds the limit. */
  next(): Frame | null | 'too-large' {
    while (!this.failed) {
      const newline = this.buffer.subarray(0, this.end).indexOf(10, this.scanned);
      if (newline === -1) {
        this.scanned = this.end;
        // Everything left is one unterminated frame.
        if (this.end - this.start > this.maxFrameBytes) return this.fail();
        if (this.start === this.end) this.reset();
        return null;
      }
      if (newline - this.start > this.maxFrameBytes) return this.fail();
      const line = this.buffer.toString('utf8', this.start, newline);
      this.start = newline + 1;
      this.scanned = this.start;
      if (line.trim() === '') continue;
      return parseFrame(line);
    }
    return 'too-large';
  }

  private makeRoom(incoming: number): void {
    const kept = this.end - this.start;
    const needed = kept + incoming;
    // Compact in place when the consumed prefix makes enough room; grow by doubling otherwise.
    const grown = Math.max(needed, Math.min(this.buffer.length * 2, this.maxFrameBytes + 64 * 1024), 4096);
    const target = needed <= this.buffer.length && this.start >= kept ? this.buffer : Buffer.allocUnsafe(grown);
    this.buffer.copy(target, 0, this.start, this.end);
    this.buffer = target;
    this.scanned -= this.start;
    this.start = 0;
    this.end = kept;
  }

  /** Nothing left: give a large buffer back rather than keep it for the connection's lifetime. */
  private reset(): void {
    this.start = this.end = this.scanned = 0;
    if (this.buffer.length > 16 * 1024) this.buffer = EMPTY;
  }

  /** Once a frame is too large, the stream cannot be resynchronised: every later call fails too. */
  private fail(): 'too-large' {
    this.failed = true;
    this.buffer = EMPTY;
    this.start = this.end = this.scanned = 0;
    return 'too-large';
  }
}

const EMPTY = Buffer.alloc(0);

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
