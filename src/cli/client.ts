/**
 * The CLI's side of the socket. Finds the daemon by its socket in AGENTPM_HOME, starts it when a command
 * needs it (detached, output to daemon.log), waits for it with a bound, and greets it with the protocol
 * version. When the connection closes, every pending request is rejected with the reason: nothing hangs.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatBytes } from '../config/units.js';
import { AgentpmError, type ErrorCode, type ErrorPayload } from '../errors.js';
import { LineDecoder, encodeFrame } from '../framing.js';
import { ensurePrivateHome, type HomePaths } from '../home.js';
import { MAX_FRAME_BYTES, MAX_REPLY_BYTES, PROTOCOL_VERSION, type AgentEvent, type RequestBody, type Response, type ResultMap, type ServerMessage } from '../protocol.js';
import { VERSION } from '../version.js';

const DAEMON_START_TIMEOUT_MS = 10_000;
let versionNoticeShown = false;
const DAEMON_MAIN = fileURLToPath(new URL('../daemon/main.js', import.meta.url));

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class DaemonClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedReason: string | null = null;
  private closedCode: ErrorCode = 'daemon-unreachable';
  /** An error the daemon sent about the connection itself, before closing it. */
  private daemonError: ErrorPayload | null = null;
  /** Receives events pushed after a `subscribe` request. */
  onEvent: ((event: AgentEvent) => void) | null = null;
  /** Called once when the connection ends, with the reason. */
  onClose: ((reason: string) => void) | null = null;

  private constructor(private readonly socket: Socket) {
    const decoder = new LineDecoder(MAX_REPLY_BYTES);
    socket.on('data', (chunk: Buffer) => {
      const frames = decoder.push(chunk);
      if (frames === 'too-large') return this.fail('the daemon sent an oversized reply');
      for (const frame of frames) {
        if (!frame.ok) continue;
        const message = frame.value as ServerMessage;
        if ('push' in message) this.onEvent?.(message.event);
        else this.settle(message);
      }
    });
    // A write cut off by the daemon closing (EPIPE) after it said why: its reason is the one to report.
    socket.on('error', (error) => this.fail(this.daemonError?.message ?? `connection error: ${error.message}`, this.daemonError?.code));
    socket.on('close', () => this.fail('the daemon closed the connection'));
  }

  /** Connects to a running daemon; with `autostart`, starts one first if none answers. */
  static async connect(paths: HomePaths, options: { autostart: boolean }): Promise<DaemonClient> {
    let socket = await tryConnect(paths.socket);
    if (!socket && options.autostart) socket = await startDaemon(paths);
    if (!socket) {
      throw new AgentpmError('daemon-unreachable', `no agentpm daemon is running for ${paths.home}; start one with \`agentpm daemon start\``);
    }
    const client = new DaemonClient(socket);
    const hello = await client.request({ type: 'hello', protocol: PROTOCOL_VERSION, version: VERSION });
    if (hello.version !== VERSION && !versionNoticeShown) {
      versionNoticeShown = true;
      process.stderr.write(
        `agentpm: the running daemon is agentpm ${hello.version} (pid ${hello.pid}); this command is agentpm ${VERSION}. ` +
          'Replace it with `agentpm daemon restart`: your apps keep running and the new daemon adopts them.\n',
      );
    }
    return client;
  }

  request<B extends RequestBody>(body: B): Promise<ResultMap[B['type']]> {
    if (this.closedReason) return Promise.reject(new AgentpmError(this.closedCode, this.closedReason));
    const id = this.nextId++;
    const frame = encodeFrame({ ...body, id });
    // The daemon would read a megabyte of it, answer frame-too-large and close: say so before sending.
    const bytes = Buffer.byteLength(frame);
    if (bytes > MAX_FRAME_BYTES) {
      return Promise.reject(
        new AgentpmError('frame-too-large', `this ${body.type} request is ${formatBytes(bytes)}, more than the daemon accepts in one request (${formatBytes(MAX_FRAME_BYTES)}); nothing was sent`),
      );
    }
    return new Promise<ResultMap[B['type']]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.socket.write(frame);
    });
  }

  close(): void {
    this.closedReason ??= 'closed by the client';
    this.socket.end();
    this.socket.destroy();
  }

  private settle(response: Response): void {
    if (response.id === null) {
      // An error about the connection itself (frame-too-large): every pending request fails with it.
      if (!response.ok) {
        this.daemonError = response.error;
        this.fail(response.error.message, response.error.code);
      }
      return;
    }
    const pending = this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id);
    if (response.ok) pending.resolve(response.result);
    else pending.reject(new AgentpmError((response.error as ErrorPayload).code, response.error.message));
  }

  private fail(reason: string, code: ErrorCode = 'daemon-unreachable'): void {
    if (this.closedReason === null) {
      this.onClose?.(reason);
      this.closedCode = code;
    }
    this.closedReason ??= reason;
    for (const pending of this.pending.values()) pending.reject(new AgentpmError(code, reason));
    this.pending.clear();
  }
}

function tryConnect(path: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(null);
    });
  });
}

/**
 * Launches the daemon and waits until its socket answers. A socket file that refuses connections is
 * stale: the new daemon removes it under its lock. If another CLI launched a daemon at the same moment,
 * the loser exits at once (code 3) and both CLIs connect to the winner.
 */
async function startDaemon(paths: HomePaths): Promise<Socket> {
  ensurePrivateHome(paths.home);
  const log = openSync(paths.daemonLog, 'a', 0o600);
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: paths.home };
  // A CLI run from inside an app must not start a daemon tagged as part of that app's tree.
  delete env['AGENTPM_APP'];
  delete env['AGENTPM_INSTANCE'];
  const logStart = safeSize(paths.daemonLog);
  const child = spawn(process.execPath, [DAEMON_MAIN], { detached: true, stdio: ['ignore', log, log], env, cwd: paths.home });
  closeSync(log);
  let exitCode: number | null = null;
  child.once('exit', (code) => {
    exitCode = code ?? 1;
  });
  child.unref();
  const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const socket = await tryConnect(paths.socket);
    if (socket) return socket;
    if (exitCode !== null && exitCode !== 3) {
      const output = readTail(paths.daemonLog, logStart).trim();
      throw new AgentpmError('daemon-unreachable', `the agentpm daemon failed to start (exit ${exitCode}):\n${output || '(no output)'}\nSee ${paths.daemonLog}.`);
    }
    // Exit 3: another daemon holds this home's lock. It is starting (we connect in a moment), or its
    // socket file was removed, in which case it re-creates it within a few seconds.
    await sleep(20);
  }
  throw new AgentpmError('daemon-unreachable', `the agentpm daemon did not answer within ${DAEMON_START_TIMEOUT_MS / 1000}s; see ${paths.daemonLog}`);
}

function safeSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function readTail(path: string, from: number): string {
  try {
    return readFileSync(path).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}
