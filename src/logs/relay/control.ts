/**
 * The relay's control socket (relay.sock in the home, 0600): newline-delimited JSON requests from the
 * daemon (see RelayRequest in protocol.ts), each answered `{id, ok, result | error}`. A malformed
 * request is answered with an error; it never takes the relay down.
 */
import { chmodSync, lstatSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { LogPolicy, RelayRequest, RelayResponse } from '../../protocol.js';
import { MAX_LOG_KEEP, MIN_LOG_MAX_SIZE } from '../../config/defaults.js';
import { MAX_SIZE_BYTES } from '../../config/units.js';
import { encodeFrame, LineDecoder } from '../../framing.js';

/**
 * Checked by hand rather than with a schema library: the relay runs for as long as
 * any app logs, and zod alone would add about 14 MB to its resident memory.
 */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KEYS: Record<RelayRequest['type'], readonly string[]> = {
  hello: ['version'],
  attach: ['fifos'],
  policy: ['policies'],
  flush: ['apps'],
  status: [],
  'hand-over': [],
  retire: [],
};

export function parseRelayRequest(value: unknown): { ok: true; request: RelayRequest } | { ok: false; id: number; message: string } {
  const raw = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const id = typeof raw['id'] === 'number' && Number.isInteger(raw['id']) ? raw['id'] : -1;
  const refuse = (message: string) => ({ ok: false as const, id, message: `invalid relay request: ${message}` });
  if (id === -1) return refuse('id must be an integer');
  const type = raw['type'];
  if (typeof type !== 'string' || !(type in KEYS)) return refuse(`unknown type ${JSON.stringify(type)}`);
  const allowed = KEYS[type as RelayRequest['type']];
  const extra = Object.keys(raw).find((key) => key !== 'id' && key !== 'type' && !allowed.includes(key));
  if (extra !== undefined) return refuse(`unknown field ${extra}`);
  const missing = allowed.find((key) => !(key in raw));
  if (missing !== undefined) return refuse(`${type} needs ${missing}`);
  switch (type) {
    case 'hello':
      if (typeof raw['version'] !== 'string') return refuse('version must be a string');
      break;
    case 'attach': {
      const fifos = raw['fifos'];
      if (!Array.isArray(fifos) || fifos.length > 10_000 || !fifos.every((path) => typeof path === 'string' && path !== '')) return refuse('fifos must be a list of paths');
      break;
    }
    case 'policy': {
      const policies = raw['policies'];
      if (typeof policies !== 'object' || policies === null || Array.isArray(policies)) return refuse('policies must be an object of app: policy');
      for (const [app, policy] of Object.entries(policies)) if (!APP_NAME.test(app) || !isPolicy(policy)) return refuse(`bad policy for ${JSON.stringify(app)}`);
      break;
    }
    case 'flush': {
      const apps = raw['apps'];
      if (apps !== null && !(Array.isArray(apps) && apps.length <= 100_000 && apps.every((app) => typeof app === 'string' && APP_NAME.test(app)))) return refuse('apps must be null or a list of app names');
      break;
    }
    default:
      break;
  }
  return { ok: true, request: raw as unknown as RelayRequest };
}

function isPolicy(value: unknown): value is LogPolicy {
  if (typeof value !== 'object' || value === null) return false;
  const { maxSizeBytes, keep, compress, ...rest } = value as Record<string, unknown>;
  return (
    Object.keys(rest).length === 0 &&
    Number.isInteger(maxSizeBytes) && (maxSizeBytes as number) >= MIN_LOG_MAX_SIZE && (maxSizeBytes as number) <= MAX_SIZE_BYTES &&
    Number.isInteger(keep) && (keep as number) >= 0 && (keep as number) <= MAX_LOG_KEEP &&
    typeof compress === 'boolean'
  );
}

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
  private server: Server;
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

  /**
   * Listens again if the socket file is gone or is not this relay's any more (the home was cleaned or
   * re-created while it ran): without it no daemon could reach the relay, and none could replace it
   * while it holds the lock.
   */
  async ensureReachable(): Promise<void> {
    try {
      const info = lstatSync(this.path);
      if (this.identity && info.dev === this.identity.dev && info.ino === this.identity.ino) return;
    } catch {
      // gone: listen again
    }
    this.server.close(); // connections already made (the daemon's) go on
    this.server = createServer((socket) => this.serve(socket));
    await this.listen();
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
        const parsed = parseRelayRequest(frame.value);
        if (!parsed.ok) {
          connection.reply({ id: parsed.id, ok: false, error: parsed.message });
          continue;
        }
        const { request } = parsed;
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
