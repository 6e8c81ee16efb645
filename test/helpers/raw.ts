/**
 * A raw client of the daemon's socket for tests that play a misbehaving client: it writes whatever it
 * is told, collects every reply line, and can stop reading.
 */
import { connect, type Socket } from 'node:net';
import { PROTOCOL_VERSION } from '../../src/protocol.js';
import { waitFor } from './rig.js';

export type Reply = Record<string, unknown>;

export class Raw {
  readonly replies: Reply[] = [];
  closed = false;
  /** The daemon ended its side of the stream (EOF). */
  ended = false;
  private buffer = '';

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString();
      let newline = this.buffer.indexOf('\n');
      while (newline >= 0) {
        this.replies.push(JSON.parse(this.buffer.slice(0, newline)) as Reply);
        this.buffer = this.buffer.slice(newline + 1);
        newline = this.buffer.indexOf('\n');
      }
    });
    socket.on('end', () => (this.ended = true));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new Raw(socket)));
      socket.once('error', reject);
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Sends hello and waits for its answer. */
  async greet(id = 1): Promise<Reply> {
    this.send(hello(id));
    return waitFor(() => this.replies.find((reply) => reply['id'] === id), `the reply to hello ${id}`, 10_000);
  }

  async reply(count: number, timeoutMs = 5000): Promise<Reply[]> {
    return waitFor(() => (this.replies.length >= count ? this.replies.slice(0, count) : undefined), `${count} replies`, timeoutMs);
  }

  /** The error the daemon sent with no request id before it ended the connection, if any. */
  farewell(): { code: string; message: string } | undefined {
    const last = this.replies.findLast((reply) => reply['id'] === null && reply['ok'] === false);
    return last?.['error'] as { code: string; message: string } | undefined;
  }
}

export const hello = (id: number, protocol = PROTOCOL_VERSION): string => `${JSON.stringify({ id, type: 'hello', protocol, version: 'test' })}\n`;
