/**
 * The relay's control socket (relay.sock in the home, 0600): newline-delimited JSON requests from the
 * daemon (see RelayRequest in protocol.ts), each answered `{id, ok, result | error}`. A malformed
 * request is answered with an error; it never takes the relay down.
 */
import { chmodSync, lstatSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { z } from 'zod';
import { encodeFrame, LineDecoder } from '../../framing.js';
import type { RelayRequest, RelayResponse } from '../../protocol.js';
import { logPolicySchema } from '../../daemon/requests.js';

const appName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
const id = z.number().int();
const requestSchema = z.discriminatedUnion('type', [
  z.strictObject({ id, type: z.literal('hello'), version: z.string() }),
  z.strictObject({ id, type: z.literal('attach'), fifos: z.array(z.string().min(1)).max(10_000) }),
  z.strictObject({ id, type: z.literal('policy'), policies: z.record(appName, logPolicySchema) }),
  z.strictObject({ id, type: z.literal('flush'), apps: z.array(appName).max(100_000).nullable() }),
  z.strictObject({ id, type: z.literal('status') }),
  z.strictObject({ id, type: z.literal('hand-over') }),
  z.strictObject({ id, type: z.literal('retire') }),
]);

export interface ControlHost {
  handle(request: RelayRequest, connection: ControlConnection): unknown;
  connected(connection: ControlConnection): void;
  disconnected(connection: ControlConnection): void;
}

export interface ControlConnection {
  /** Set by a hello: a daemon is connected (the relay does not go idle). */
  daemon: boolean;
  /** Sends a reply, then calls `after` once it is written. */
  reply(response: RelayResponse, after?: () => void): void;
}

const MAX_REQUEST_BYTES = 8 * 1024 * 1024;

export class ControlServer {
  private readonly server: Server;
  private identity: { dev: number; ino: number } | null = null;

  constructor(
    private readonly path: string,
    private readonly host: ControlHost,
  ) {
    this.server = createServer((socket) => this.serve(socket));
  }

  /** The caller holds the relay lock: a socket file already there is a dead relay's. */
  async listen(): Promise<void> {
    rmSync(this.path, { force: true });
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.path, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previous);
    }
    chmodSync(this.path, 0o600);
    const info = statSync(this.path);
    this.identity = { dev: info.dev, ino: info.ino };
  }

  /** Stops listening and removes the socket file, if it is still this relay's. */
  close(): void {
    this.server.close();
    try {
      const info = lstatSync(this.path);
      if (this.identity && info.dev === this.identity.dev && info.ino === this.identity.ino) rmSync(this.path, { force: true });
    } catch {
      // gone already
    }
  }

  private serve(socket: Socket): void {
    const decoder = new LineDecoder(MAX_REQUEST_BYTES);
    const connection: ControlConnection = {
      daemon: false,
      reply: (response, after) => {
        if (socket.destroyed) return after?.();
        socket.write(encodeFrame(response), () => after?.());
      },
    };
    this.host.connected(connection);
    socket.on('error', () => undefined);
    socket.on('close', () => this.host.disconnected(connection));
    socket.on('data', (chunk: Buffer) => {
      const frames = decoder.push(chunk);
      if (frames === 'too-large') {
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (!frame.ok) {
          connection.reply({ id: -1, ok: false, error: 'malformed JSON' });
          continue;
        }
        const parsed = requestSchema.safeParse(frame.value);
        if (!parsed.success) {
          const raw = frame.value as { id?: unknown } | null;
          connection.reply({ id: typeof raw?.id === 'number' ? raw.id : -1, ok: false, error: `invalid relay request: ${parsed.error.issues[0]?.message ?? 'unrecognised'}` });
          continue;
        }
        const request = parsed.data as RelayRequest;
        try {
          const result = this.host.handle(request, connection);
          if (result !== undefined) connection.reply({ id: request.id, ok: true, result });
        } catch (error) {
          connection.reply({ id: request.id, ok: false, error: (error as Error).message });
        }
      }
    });
  }
}
