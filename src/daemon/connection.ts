/**
 * One client connection's flow control. The daemon never holds more for a client than a few bounds
 * allow: input it has not served yet stays in the kernel (reading stops while the client's replies go
 * unread or too many of its requests are in flight), a subscriber that stops reading is dropped with
 * a message, and a client that never says hello, or leaves a request half-sent, is closed. What the
 * bytes mean (the hello gate, dispatch) is the host's business.
 */
import type { Socket } from 'node:net';
import type { ErrorCode, ErrorPayload } from '../errors.js';
import { LineDecoder, encodeFrame, type Frame } from '../framing.js';
import { MAX_FRAME_BYTES, type Response, type ServerMessage } from '../protocol.js';

export const CONNECTION_LIMITS = {
  /** A connection must say hello within this, or it is closed (it holds a descriptor for nothing). */
  helloTimeoutMs: 5000,
  /** Input a connection may have buffered before its hello: a hello is well under 200 bytes. */
  preHelloBytes: 4 * 1024,
  /** A request that has started to arrive must be complete within this (while the daemon reads). */
  partialFrameMs: 10_000,
  /** Requests of one connection served at once; the rest wait, unread, in the kernel. */
  maxInFlight: 16,
  /** Unsent reply bytes above which the daemon serves and reads nothing more from the connection. */
  replyHighWater: 256 * 1024,
  /** Unsent bytes above which a subscriber is dropped as a slow consumer when the next event comes. */
  subscriberMaxBytes: 1024 * 1024,
  /**
   * How long a connection being closed with a last message may go without reading any of what is
   * still queued for it (the message comes last) before it is cut off.
   */
  closeGraceMs: 5000,
} as const;

export interface ConnectionHost {
  /** Serves one frame: a reply now or later. Never rejects. */
  serve(frame: Frame, connection: ClientConnection): Response | Promise<Response>;
  /** Input held for this connection changed by `delta` bytes; false: the total is over its budget. */
  inputChanged(delta: number): boolean;
  /** The connection has this many unsent bytes (called when they pile up). */
  outputGrew(connection: ClientConnection): void;
  /** The daemon is ending the connection, for this reason. */
  dropping(connection: ClientConnection, why: ErrorPayload): void;
  closed(connection: ClientConnection): void;
}

export class ClientConnection {
  private decoder = new LineDecoder();
  private greeted = false;
  private inFlight = 0;
  private peerEnded = false;
  private closing = false;
  /** Bytes of input this connection has reported to the host's budget. */
  private reportedInput = 0;
  /** A frame was completed since the partial-frame timer was armed. */
  private progressed = false;
  private helloTimer: NodeJS.Timeout | null;
  private frameTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.closing) return; // ending: what still comes is dropped
      this.decoder.feed(chunk);
      this.pump();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.closed());
    this.helloTimer = lateTimer(CONNECTION_LIMITS.helloTimeoutMs, () => {
      if (!this.greeted) this.closeWith('client-timeout', `no hello within ${CONNECTION_LIMITS.helloTimeoutMs / 1000}s; the connection is closed`);
    });
  }

  get isGreeted(): boolean {
    return this.greeted;
  }

  /** Unsent bytes: what the kernel has not taken yet. */
  get unsent(): number {
    return this.socket.writableLength;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  greet(): void {
    this.greeted = true;
    clearTimer(this.helloTimer);
    this.helloTimer = null;
  }

  /** Keeps the subscription's cancel, called when the connection goes; replaces an earlier one. */
  subscribed(unsubscribe: () => void): void {
    this.unsubscribe?.();
    this.unsubscribe = unsubscribe;
  }

  /**
   * Sends a frame the client did not ask for (an event). A client that lets them pile up is dropped
   * with a last frame saying so, rather than have the daemon buffer its backlog without bound.
   */
  push(message: ServerMessage): void {
    if (this.closing) return;
    if (this.socket.writableLength > CONNECTION_LIMITS.subscriberMaxBytes) {
      this.closeWith(
        'slow-consumer',
        `this client fell behind: ${Math.round(this.socket.writableLength / 1024)} KiB of events waited unread, so the daemon closed its connection; ` +
          'reconnect to follow again (`agentpm events` lists what was missed)',
      );
      return;
    }
    this.write(message);
  }

  /** Ends the connection with a last frame that says why. The client gets `closeGraceMs` to read it. */
  closeWith(code: ErrorCode, message: string): void {
    if (this.closing) return;
    this.closing = true;
    const why: ErrorPayload = { code, message };
    this.host.dropping(this, why);
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.clearTimers();
    // What it sent and was not served is dropped now, not when the client gets round to closing.
    this.decoder = new LineDecoder();
    this.account(true);
    endWith(this.socket, { id: null, ok: false, error: why }, CONNECTION_LIMITS.closeGraceMs);
  }

  /**
   * Serves what has arrived, as far as the bounds allow, then decides whether to read on. Called on
   * input, on 'drain', when a reply is sent and when the client ends its side.
   */
  private pump(): void {
    let drained = false;
    while (!this.closing) {
      if (this.inFlight >= CONNECTION_LIMITS.maxInFlight || this.socket.writableLength >= CONNECTION_LIMITS.replyHighWater) break;
      const frame = this.decoder.next();
      if (frame === null) {
        drained = true;
        break;
      }
      if (frame === 'too-large') {
        this.closeWith('frame-too-large', `a request larger than ${MAX_FRAME_BYTES / 1024 / 1024} MiB reached the daemon; the connection is closed`);
        break;
      }
      this.progressed = true;
      this.serve(frame);
    }
    if (!this.account(drained) || this.closing) return;
    if (!this.greeted && this.decoder.bufferedBytes > CONNECTION_LIMITS.preHelloBytes) {
      this.closeWith('frame-too-large', `a connection may send at most ${CONNECTION_LIMITS.preHelloBytes / 1024} KiB before its hello; the connection is closed`);
      return;
    }
    // Unserved input stays in the kernel until the client reads its replies and requests complete.
    const hold = !drained || this.socket.writableLength >= CONNECTION_LIMITS.replyHighWater;
    if (hold !== this.socket.isPaused()) {
      if (hold) this.socket.pause();
      else this.socket.resume();
    }
    this.watchPartialFrame(drained && !hold && this.decoder.bufferedBytes > 0);
    // A client that half-closed after its requests still gets every reply, then the end of the stream.
    if (this.peerEnded && drained && this.inFlight === 0 && !this.socket.writableEnded) this.socket.end();
  }

  private serve(frame: Frame): void {
    const reply = this.host.serve(frame, this);
    if (!(reply instanceof Promise)) {
      this.write(reply);
      return;
    }
    this.inFlight += 1;
    void reply.then((response) => {
      this.inFlight -= 1;
      this.write(response);
      this.pump();
    });
  }

  private write(message: ServerMessage): void {
    if (this.closing || this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(encodeFrame(message));
    if (this.socket.writableLength > 64 * 1024) this.host.outputGrew(this);
  }

  /**
   * Reports this connection's buffered input to the shared budget; false once it has been closed for
   * it. Only a connection whose input is one growing partial request is closed for the budget: one
   * with requests waiting to be served is not being read, so what it holds cannot grow.
   */
  private account(drained: boolean): boolean {
    const held = this.decoder.bufferedBytes;
    const delta = held - this.reportedInput;
    if (delta === 0) return true;
    this.reportedInput = held;
    if (this.host.inputChanged(delta) || delta < 0 || !drained) return true;
    this.closeWith('daemon-busy', 'the daemon holds too many unfinished requests from its clients to take more of this one; try again in a moment');
    return false;
  }

  /**
   * A slow trickle of one request (a byte every few seconds) would hold its buffer and descriptor for
   * ever: a request must make progress within partialFrameMs. Off while the daemon itself does not
   * read (the client has not read its replies), since then the request cannot complete.
   */
  private watchPartialFrame(waiting: boolean): void {
    if (!waiting) {
      clearTimer(this.frameTimer);
      this.frameTimer = null;
      return;
    }
    if (this.frameTimer !== null && !this.progressed) return;
    this.progressed = false;
    clearTimer(this.frameTimer);
    const timer = lateTimer(CONNECTION_LIMITS.partialFrameMs, () => {
      if (this.frameTimer !== timer) return; // re-armed or cleared while the action was queued
      this.frameTimer = null;
      this.closeWith('client-timeout', `a request was left incomplete for ${CONNECTION_LIMITS.partialFrameMs / 1000}s; the connection is closed`);
    });
    this.frameTimer = timer;
  }

  private clearTimers(): void {
    clearTimer(this.helloTimer);
    clearTimer(this.frameTimer);
    this.helloTimer = this.frameTimer = null;
  }

  private closed(): void {
    this.closing = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.clearTimers();
    if (this.reportedInput !== 0) this.host.inputChanged(-this.reportedInput);
    this.reportedInput = 0;
    this.host.closed(this);
  }
}

/**
 * Sends a last frame and ends the connection. Reading goes on (dropping what comes), so that the
 * client's end is seen and the connection closed at once, and so that a client still writing does not
 * fail with EPIPE before it reads why it was closed. One that sends on past `DISCARD_BYTES` has had
 * the time to read it and is cut off. A client that reads nothing of what is queued for it for
 * `graceMs` is cut off too; one that reads on (a slow consumer catching up with its backlog, whose
 * last frame is this one) is given up to ten times that.
 */
function endWith(socket: Socket, farewell: Response, graceMs: number): void {
  if (socket.destroyed) return;
  if (socket.listenerCount('error') === 0) socket.on('error', () => socket.destroy());
  let discarded = 0;
  socket.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_BYTES) socket.destroy();
  });
  socket.on('end', () => socket.destroySoon());
  socket.resume();
  if (socket.writable) socket.end(encodeFrame(farewell));
  if (socket.readableEnded) socket.destroySoon();
  let unsent = socket.writableLength;
  let rounds = 0;
  const check = (): void => {
    rounds += 1;
    if (socket.destroyed) return;
    if (socket.writableLength === 0 || socket.writableLength >= unsent || rounds >= 10) {
      socket.destroy();
      return;
    }
    unsent = socket.writableLength;
    lateTimer(graceMs, check);
  };
  lateTimer(graceMs, check);
}

const DISCARD_BYTES = 64 * 1024;

/**
 * A timer whose action runs after the event loop has read what is pending: a daemon that was busy for
 * longer than the timeout must not drop a client whose hello (or rest of a request) is already waiting.
 */
function lateTimer(ms: number, action: () => void): NodeJS.Timeout {
  const timer = setTimeout(() => setImmediate(action), ms);
  timer.unref();
  return timer;
}

function clearTimer(timer: NodeJS.Timeout | null): void {
  if (timer !== null) clearTimeout(timer);
}
