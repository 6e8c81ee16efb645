/**
 * Reading one FIFO (one instance's out or err): non-blocking, through libuv's epoll like a socket (no
 * thread-pool read per chunk), cut into lines, each stamped the moment it is complete. A line without
 * its newline yet is held, but not for ever: after a short quiet time, or once it reaches
 * MAX_PARTIAL_BYTES, it is written as a line (a prompt without a newline still reaches the file).
 *
 * EOF means every writer is gone (the instance's whole tree exited): what is held is written, and the
 * FIFO removed. A relay that stops for another (`stop`) leaves the FIFO and what is still in the
 * pipe to its successor: the kernel keeps the pipe's buffer while the app holds its end.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { checkOwnFifo, removeFifo, type FifoName } from '../fifo.js';

export const MAX_PARTIAL_BYTES = 64 * 1024;
export const PARTIAL_IDLE_MS = 500;

export interface FifoSourceHost {
  /** Complete lines, each stamped and ending in a newline, in the order read. */
  lines(source: FifoSource, lines: Buffer[]): void;
  stampLine(text: Buffer): Buffer;
  ended(source: FifoSource): void;
  log(message: string): void;
}

/**
 * Reads what a FIFO holds right after it is opened, until it would block (writers are there: epoll takes
 * over) or reads EOF (none are: the instance is gone). Needed because Linux reports no hang-up for a
 * FIFO opened without O_NONBLOCK's writers until a writer has come and gone since: a FIFO whose
 * writers all left before the relay opened it (an app that exited while no relay ran) would otherwise
 * be waited on for ever.
 */
function drainNow(fd: number): { chunks: Buffer[]; eof: boolean } {
  const chunks: Buffer[] = [];
  const buffer = Buffer.allocUnsafe(64 * 1024);
  // Bounded: a pipe holds 64 KiB by default and at most 1 MiB unless root raised the limit.
  for (let round = 0; round < 64; round += 1) {
    let read: number;
    try {
      read = readSync(fd, buffer, 0, buffer.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return { chunks, eof: false };
      throw error;
    }
    if (read === 0) return { chunks, eof: true };
    chunks.push(Buffer.from(buffer.subarray(0, read)));
  }
  return { chunks, eof: false };
}

export class FifoSource {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private done = false;

  private constructor(
    readonly path: string,
    readonly name: FifoName,
    readonly identity: { dev: number; ino: number },
    private readonly socket: Socket,
    private readonly host: FifoSourceHost,
  ) {
    socket.on('data', (chunk: Buffer) => this.consume(chunk));
    socket.on('end', () => this.finish(true));
    socket.on('close', () => this.finish(true));
    socket.on('error', (error) => {
      host.log(`reading ${path}: ${error.message}`);
      this.finish(false);
    });
  }

  /** Opens a FIFO of the run directory for reading; throws if it is not a FIFO of this user's. */
  static open(path: string, name: FifoName, host: FifoSourceHost): FifoSource {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    let identity: { dev: number; ino: number };
    let first: { chunks: Buffer[]; eof: boolean };
    try {
      checkOwnFifo(fd, path);
      const info = fstatSync(fd);
      identity = { dev: info.dev, ino: info.ino };
      first = drainNow(fd);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    const source = new FifoSource(path, name, identity, new Socket({ fd, readable: true, writable: false }), host);
    for (const chunk of first.chunks) source.consume(chunk);
    if (first.eof) source.finish(true);
    return source;
  }

  /** True once EOF was read (or reading failed): nothing more will come from this FIFO. */
  get finished(): boolean {
    return this.done;
  }

  /** Writes what is held and stops reading, leaving the FIFO (and what is still in it) for the next relay. */
  stop(): void {
    if (this.done) return;
    this.done = true;
    this.flushPartial();
    this.socket.destroy();
  }

  private consume(chunk: Buffer): void {
    if (this.done) return;
    const lines: Buffer[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      if (this.partialBytes > 0) {
        this.partial.push(piece);
        lines.push(this.host.stampLine(Buffer.concat(this.partial)));
        this.partial = [];
        this.partialBytes = 0;
      } else {
        lines.push(this.host.stampLine(piece));
      }
      start = newline + 1;
    }
    if (start < chunk.length) {
      const rest = Buffer.from(chunk.subarray(start)); // held across reads: a copy of its own
      this.partial.push(rest);
      this.partialBytes += rest.length;
      while (this.partialBytes >= MAX_PARTIAL_BYTES) {
        const held = Buffer.concat(this.partial);
        lines.push(this.host.stampLine(held.subarray(0, MAX_PARTIAL_BYTES)));
        const left = held.subarray(MAX_PARTIAL_BYTES);
        this.partial = left.length > 0 ? [Buffer.from(left)] : [];
        this.partialBytes = left.length;
      }
    }
    if (lines.length > 0) this.host.lines(this, lines);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = this.partialBytes > 0 ? setTimeout(() => this.flushPartial(), PARTIAL_IDLE_MS) : undefined;
  }

  private flushPartial(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.partialBytes === 0) return;
    const held = Buffer.concat(this.partial);
    this.partial = [];
    this.partialBytes = 0;
    this.host.lines(this, [this.host.stampLine(held)]);
  }

  /** EOF: every writer is gone. `remove`: the FIFO is removed (only if its name still means this one). */
  private finish(remove: boolean): void {
    if (this.done) return;
    this.done = true;
    this.flushPartial();
    this.socket.destroy();
    if (remove) removeFifo(this.path, this.identity);
    this.host.ended(this);
  }
}
