/**
 * The daemon's side of the log relay (logs/relay/): finds this home's relay on relay.sock or starts one,
 * checks its version (another version hands over to a new one), sends each app's policy, attaches new
 * instances' FIFOs, and notices the relay's death (its socket closes) to start a new one at once.
 *
 * The relay is started detached, in its own session, with AGENTPM_HOME but without an app's tags: it is
 * in no app's tree and no app's limits, and it outlives this daemon for the next one to find.
 */
import { spawn } from 'node:child_process';
import { closeSync, lstatSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFrame, LineDecoder } from '../framing.js';
import type { LogPolicy, RelayRequest, RelayResponse, RelayResultMap, RelayStatus } from '../protocol.js';
import { openOwnedFile } from '../safe-files.js';
import { VERSION } from '../version.js';
import { relaySocketPath } from '../logs/fifo.js';
import { INSTANCE_TAGS } from './spawn.js';
import { RESIDENT_NODE_FLAGS } from '../node-flags.js';

const RELAY_MAIN = fileURLToPath(new URL('../logs/relay/main.js', import.meta.url));
/** How long a new relay may take to answer on its socket. */
const START_TIMEOUT_MS = 5000;
/** After a failed start, spawns use direct files for this long before the relay is tried again. */
const RETRY_AFTER_MS = 5000;
const REQUEST_TIMEOUT_MS = 3000;
/** Relays started for one connection at most, when each finds the lock still held. */
const MAX_LAUNCHES = 10;

export interface RelayLinkHost {
  home: string;
  daemonLog: string;
  /** An event of type 'relay'. */
  event(reason: string, data: Record<string, unknown>): void;
  log(message: string): void;
  /** Every app's policy, sent to each relay this daemon connects to. */
  policies(): Record<string, LogPolicy>;
}

type Body = RelayRequest extends infer R ? (R extends RelayRequest ? Omit<R, 'id'> : never) : never;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface Connection {
  socket: Socket;
  pid: number;
  startTime: number | null;
  version: string;
  pending: Map<number, Pending>;
}

export class RelayLink {
  private connection: Connection | null = null;
  private connecting: Promise<Connection | string> | null = null;
  private failure: { why: string; at: number } | null = null;
  private nextId = 1;
  private closed = false;

  constructor(private readonly host: RelayLinkHost) {}

  /** Why there is no relay now (null: connected, or not tried yet). */
  get problem(): string | null {
    return this.connection ? null : (this.failure?.why ?? null);
  }

  /** The connected relay, found or started; a string says why there is none (the caller writes logs directly). */
  async ensure(): Promise<Connection | string> {
    if (this.connection) return this.connection;
    if (this.closed) return 'the daemon is exiting';
    if (this.failure && Date.now() - this.failure.at < RETRY_AFTER_MS) return this.failure.why;
    this.connecting ??= this.connectOrStart()
      .catch((error: unknown) => `${(error as Error).message}`)
      .then((result) => {
        this.connecting = null;
        if (typeof result === 'string') {
          if (this.failure?.why !== result) this.host.event('unavailable', { message: result });
          this.failure = { why: result, at: Date.now() };
        } else this.failure = null;
        return result;
      });
    return this.connecting;
  }

  async request<T extends keyof RelayResultMap>(body: Body & { type: T }, timeoutMs = REQUEST_TIMEOUT_MS): Promise<RelayResultMap[T]> {
    const connection = await this.ensure();
    if (typeof connection === 'string') throw new Error(connection);
    return (await this.send(connection, body, timeoutMs)) as RelayResultMap[T];
  }

  /** The relay's status, or null without a relay (the reason in `problem`). Never starts one. */
  async status(): Promise<RelayStatus | null> {
    if (!this.connection) return null;
    try {
      return (await this.send(this.connection, { type: 'status' }, 1000)) as RelayStatus;
    } catch {
      return null;
    }
  }

  /** `agentpm kill`: the relay exits once the stopped apps' FIFOs are drained. */
  retire(): void {
    if (this.connection) this.connection.socket.write(encodeFrame({ id: 0, type: 'retire' }));
  }

  close(): void {
    this.closed = true;
    this.connection?.socket.end();
  }

  private async connectOrStart(): Promise<Connection> {
    const existing = await this.answering();
    if (existing) {
      const { socket, hello } = existing;
      if (hello.version === VERSION) {
        this.host.event('connected', { pid: hello.pid, version: hello.version });
        return this.up(socket, hello);
      }
      await this.handOver(socket, hello);
    }
    const { socket, hello } = await this.start();
    this.host.event('started', { pid: hello.pid, version: hello.version });
    return this.up(socket, hello);
  }

  /**
   * A relay that answers hello on relay.sock, or null. A relay killed a moment ago can still accept a
   * connection (its listening socket is closed after the connection whose loss told us it died) and then
   * drop it: that is no relay, not a failure.
   */
  private async answering(): Promise<{ socket: Socket; hello: RelayResultMap['hello'] } | null> {
    const socket = await this.tryConnect();
    if (!socket) return null;
    try {
      return { socket, hello: await this.hello(socket) };
    } catch {
      socket.destroy();
      return null;
    }
  }

  /** The old relay writes what it read, closes and exits; the FIFOs and what is in them wait for the new one. */
  private async handOver(socket: Socket, hello: RelayResultMap['hello']): Promise<void> {
    const connection: Connection = { socket, pid: hello.pid, startTime: hello.startTime, version: hello.version, pending: new Map() };
    this.wire(connection, false);
    this.host.event('replaced', { pid: hello.pid, version: hello.version, by: VERSION });
    await this.send(connection, { type: 'hand-over' }, 10_000);
    await new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
    // Its lock goes with its process: wait for it (bounded), so that the new relay can take it.
    for (let waited = 0; waited < 5000 && isAlive(hello.pid); waited += 20) await sleep(20);
  }

  private async start(): Promise<{ socket: Socket; hello: RelayResultMap['hello'] }> {
    const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: this.host.home };
    for (const tag of INSTANCE_TAGS) delete env[tag];
    const deadline = Date.now() + START_TIMEOUT_MS;
    let exitCode: number | null = null;
    const launch = (): void => {
      const log = openOwnedFile(this.host.daemonLog, 'append');
      try {
        const child = spawn(process.execPath, [...RESIDENT_NODE_FLAGS, RELAY_MAIN], { detached: true, stdio: ['ignore', log, log], env, cwd: this.host.home });
        exitCode = null;
        child.once('exit', (code) => (exitCode = code ?? 1));
        child.once('error', () => (exitCode = 1));
        child.unref();
      } finally {
        closeSync(log);
      }
    };
    launch();
    let launches = 1;
    while (Date.now() < deadline) {
      const found = await this.answering();
      if (found) return found;
      // Exit 3: the lock is still held by a relay that is exiting (a hand-over, a kill -9 a moment ago).
      // Tried again a bounded number of times: a relay that holds the lock but does not answer stays.
      if (exitCode === 3 && launches < MAX_LAUNCHES) {
        launches += 1;
        await sleep(100);
        launch();
        continue;
      }
      if (exitCode === 3) throw new Error(`another log relay holds ${this.host.home} but does not answer on ${relaySocketPath(this.host.home)}; see ${this.host.daemonLog}`);
      if (exitCode !== null) throw new Error(`the log relay exited at start (code ${exitCode}); see ${this.host.daemonLog}`);
      await sleep(20);
    }
    throw new Error(`the log relay did not answer within ${START_TIMEOUT_MS / 1000}s; see ${this.host.daemonLog}`);
  }

  /** A connection to relay.sock, if a socket of this user's listens there. */
  private async tryConnect(): Promise<Socket | null> {
    const path = relaySocketPath(this.host.home);
    try {
      const info = lstatSync(path);
      if (!info.isSocket() || info.uid !== process.getuid?.()) throw new Error(`${path} is not a socket of yours; remove it (rm ${path})`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    return new Promise((resolve) => {
      const socket = connect(path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', () => resolve(null));
    });
  }

  private async hello(socket: Socket): Promise<RelayResultMap['hello']> {
    const connection: Connection = { socket, pid: 0, startTime: null, version: '', pending: new Map() };
    this.wire(connection, false);
    try {
      return (await this.send(connection, { type: 'hello', version: VERSION }, REQUEST_TIMEOUT_MS)) as RelayResultMap['hello'];
    } finally {
      socket.removeAllListeners('data');
      socket.removeAllListeners('close');
    }
  }

  private up(socket: Socket, hello: RelayResultMap['hello']): Connection {
    const connection: Connection = { socket, pid: hello.pid, startTime: hello.startTime, version: hello.version, pending: new Map() };
    this.wire(connection, true);
    this.connection = connection;
    const policies = this.host.policies();
    if (Object.keys(policies).length > 0) void this.send(connection, { type: 'policy', policies }).catch((error: unknown) => this.host.log(`cannot send the log policies to the relay: ${(error as Error).message}`));
    return connection;
  }

  /** `watched`: the live connection, whose loss means the relay died. */
  private wire(connection: Connection, watched: boolean): void {
    const decoder = new LineDecoder();
    const { socket } = connection;
    socket.on('data', (chunk: Buffer) => {
      const frames = decoder.push(chunk);
      if (frames === 'too-large') {
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (!frame.ok) continue;
        const response = frame.value as RelayResponse;
        const pending = connection.pending.get(response.id);
        if (!pending) continue;
        connection.pending.delete(response.id);
        clearTimeout(pending.timer);
        if (response.ok) pending.resolve(response.result);
        else pending.reject(new Error(`the log relay refused: ${response.error}`));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const pending of connection.pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error('the log relay closed its connection'));
      }
      connection.pending.clear();
      if (!watched || this.connection !== connection) return;
      this.connection = null;
      if (this.closed) return;
      this.host.event('lost', { pid: connection.pid });
      // A new relay at once: the apps' pipes fill in a moment at a high rate.
      setImmediate(() => void this.ensure());
    });
  }

  private send(connection: Connection, body: Body, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        connection.pending.delete(id);
        reject(new Error(`the log relay (pid ${connection.pid}) did not answer ${body.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      connection.pending.set(id, { resolve, reject, timer });
      connection.socket.write(encodeFrame({ ...body, id }));
    });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
