/**
 * The CLI's side of the socket. Finds the daemon by its socket in AGENTPM_HOME, starts it when a command
 * needs it (detached, output to daemon.log), waits for it with a bound, and greets it with the protocol
 * version. When the connection closes, every pending request is rejected with the reason: nothing hangs.
 */
import { spawn } from 'node:child_process';
import { closeSync, readFileSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatBytes } from '../config/units.js';
import { AgentpmError, type ErrorPayload } from '../errors.js';
import { LineDecoder, encodeFrame } from '../framing.js';
import { checkBeforeConnect, ensurePrivateHome, type HomePaths } from '../home.js';
import { DAEMON_MAIN } from '../package-files.js';
import { openOwnedFile, readOwnedFile } from '../safe-files.js';
import { MAX_FRAME_BYTES, MAX_REPLY_BYTES, PROTOCOL_VERSION, type AgentEvent, type RequestBody, type Response, type ResultMap, type ServerMessage } from '../protocol.js';
import { VERSION } from '../version.js';
import { RESIDENT_NODE_FLAGS } from '../node-flags.js';
import { scopePrefix } from './scope.js';

const DAEMON_START_TIMEOUT_MS = 10_000;
/** A daemon that does not answer hello within this is stopped or hung (hello never waits for anything). */
const HELLO_TIMEOUT_MS = 10_000;
let versionNoticeShown = false;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class DaemonClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Set once the connection has ended: what every later request is rejected with. */
  private ended: AgentpmError | null = null;
  /**
   * The daemon's last word on this connection: an error with no request id, sent before it closes a
   * connection (a slow consumer, a refused or timed-out client). It is why the connection ended.
   */
  private farewell: ErrorPayload | null = null;
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
    // A write cut off by the daemon closing (EPIPE) after it said why: fail() reports the farewell.
    socket.on('error', (error) => this.fail(`connection error: ${error.message}`));
    socket.on('close', () => this.fail('the daemon closed the connection'));
  }

  /** Why the connection ended (the daemon's own code and message when it said why), or null while open. */
  get closeError(): AgentpmError | null {
    return this.ended;
  }

  /** Connects to a running daemon; with `autostart`, starts one first if none answers. */
  static async connect(paths: HomePaths, options: { autostart: boolean }): Promise<DaemonClient> {
    checkBeforeConnect(paths);
    const attempt = await tryConnect(paths.socket);
    let socket = 'socket' in attempt ? attempt.socket : null;
    if (!socket && options.autostart) socket = await startDaemon(paths);
    if (!socket) {
      const problem = 'error' in attempt ? await socketProblem(paths, attempt.error, false) : null;
      throw new AgentpmError('daemon-unreachable', problem ?? `no agentpm daemon is running for ${paths.home}; start one with \`agentpm daemon start\``);
    }
    const client = new DaemonClient(socket);
    const hello = await client.greet(paths);
    if (hello.version !== VERSION && !versionNoticeShown) {
      versionNoticeShown = true;
      process.stderr.write(
        `agentpm: the running daemon is agentpm ${hello.version} (pid ${hello.pid}); this command is agentpm ${VERSION}. ` +
          'Replace it with `agentpm daemon restart`: your apps keep running and the new daemon adopts them.\n',
      );
    }
    return client;
  }

  /**
   * Says hello, bounded: the kernel accepts a connection on behalf of a daemon that is stopped or hung,
   * and a command must not wait for it for ever.
   */
  private async greet(paths: HomePaths): Promise<ResultMap['hello']> {
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void daemonPid(paths).then((pid) =>
          reject(
            new AgentpmError(
              'daemon-unreachable',
              `the daemon${pid !== null ? ` (pid ${pid})` : ''} accepted the connection on ${paths.socket} but did not answer within ${HELLO_TIMEOUT_MS / 1000}s: ` +
                `it may be stopped or hung; see ${paths.daemonLog}${pid !== null ? `, and replace it with \`kill ${pid}\` (your apps keep running; the next command starts a new daemon that adopts them)` : ''}`,
            ),
          ),
        );
      }, HELLO_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.request({ type: 'hello', protocol: PROTOCOL_VERSION, version: VERSION }), silence]);
    } catch (error) {
      this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  request<B extends RequestBody>(body: B): Promise<ResultMap[B['type']]> {
    if (this.ended) return Promise.reject(this.ended);
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
    this.ended ??= new AgentpmError('daemon-unreachable', 'closed by the client');
    this.socket.end();
    this.socket.destroy();
  }

  private settle(response: Response): void {
    if (response.id === null) {
      // The daemon's last word before it closes the connection (frame-too-large, slow-consumer, a
      // refused client): every pending request fails with it now, not with the EPIPE or close after it.
      if (!response.ok) {
        this.farewell = response.error;
        this.fail(response.error.message);
      }
      return;
    }
    const pending = this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id);
    if (response.ok) pending.resolve(response.result);
    else pending.reject(new AgentpmError((response.error as ErrorPayload).code, response.error.message));
  }

  private fail(reason: string): void {
    if (this.ended === null) {
      this.ended = this.farewell !== null ? new AgentpmError(this.farewell.code, this.farewell.message) : new AgentpmError('daemon-unreachable', reason);
      this.onClose?.(this.ended.message);
    }
    for (const pending of this.pending.values()) pending.reject(this.ended);
    this.pending.clear();
  }
}

function tryConnect(path: string): Promise<{ socket: Socket } | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve({ socket });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve({ error });
    });
  });
}

/**
 * What is wrong with the socket when connecting failed for another reason than its absence, or null
 * when there is simply no socket. (What sits at the path was checked before connecting: a socket of
 * the caller's.) `lockHeld`: a daemon was found holding the home's lock.
 */
async function socketProblem(paths: HomePaths, error: NodeJS.ErrnoException, lockHeld: boolean): Promise<string | null> {
  if (error.code === 'ENOENT') return null;
  if (error.code === 'ECONNREFUSED') {
    if (!lockHeld) return `${paths.socket} is a dead socket file (nothing listens on it); \`agentpm daemon start\` replaces it`;
    const holder = await daemonPid(paths);
    return (
      `${paths.socket} is a dead socket file (nothing listens on it), and the daemon${holder !== null ? ` (pid ${holder})` : ''} that holds ${paths.home} did not replace it ` +
      `as it should within a few seconds: it may be hung. Restart it${holder !== null ? ` with \`kill ${holder}\`` : ''} (your apps keep running; the next command starts a new daemon that adopts them); see ${paths.daemonLog}`
    );
  }
  if (error.code === 'EAGAIN') return `the daemon's socket ${paths.socket} is not accepting connections (its queue is full): the daemon is overloaded or hung; see ${paths.daemonLog}`;
  return `cannot connect to ${paths.socket}: ${error.message}`;
}

/**
 * The pid of this home's daemon from its pid file, only if that pid is still that daemon (same start
 * time, this home's tag, the daemon's command): a message must never name a pid for `kill` that has
 * since been reused by another process.
 */
async function daemonPid(paths: HomePaths): Promise<number | null> {
  try {
    const recorded = JSON.parse(readOwnedFile(paths.pidFile).toString('utf8')) as { pid?: unknown; startTime?: unknown };
    if (typeof recorded.pid !== 'number' || typeof recorded.startTime !== 'number') return null;
    const { parseStat, parseTags } = await import('../proc/linux.js');
    const proc = parseStat(readFileSync(`/proc/${recorded.pid}/stat`, 'latin1'), 1);
    const tags = parseTags(readFileSync(`/proc/${recorded.pid}/environ`, 'utf8'));
    const command = readFileSync(`/proc/${recorded.pid}/cmdline`, 'utf8');
    return proc?.startTime === recorded.startTime && tags?.home === paths.home && command.includes('daemon/main.js') ? recorded.pid : null;
  } catch {
    return null;
  }
}

/**
 * Launches the daemon and waits until its socket answers. A socket file that refuses connections is
 * stale: the new daemon removes it under its lock. If another CLI launched a daemon at the same moment,
 * the loser exits at once (code 3) and both CLIs connect to the winner.
 */
async function startDaemon(paths: HomePaths): Promise<Socket> {
  ensurePrivateHome(paths.home);
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: paths.home };
  // A CLI run from inside an app must not start a daemon tagged as part of that app's tree.
  delete env['AGENTPM_APP'];
  delete env['AGENTPM_INSTANCE'];
  const logStart = safeSize(paths.daemonLog);
  const scope = scopePrefix(env);
  const daemon = [process.execPath, ...RESIDENT_NODE_FLAGS, ...daemonNodeFlags(env), DAEMON_MAIN];
  let launch = scope ? launchDaemon(paths, [...scope, ...daemon], { ...env, AGENTPM_LAUNCHER: 'systemd-scope' }) : launchDaemon(paths, daemon, env);
  let scoped = scope !== null;
  const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
  let lastError: NodeJS.ErrnoException | null = null;
  while (Date.now() < deadline) {
    checkBeforeConnect(paths);
    const attempt = await tryConnect(paths.socket);
    if ('socket' in attempt) return attempt.socket;
    lastError = attempt.error;
    const exitCode = launch.exitCode();
    if (scoped && exitCode !== null && exitCode !== 3) {
      // No delegated scope after all (a user manager that refused): the plain launch, silently.
      scoped = false;
      launch = launchDaemon(paths, daemon, env);
      continue;
    }
    if (exitCode !== null && exitCode !== 3) {
      const output = readTail(paths.daemonLog, logStart).trim();
      throw new AgentpmError('daemon-unreachable', `the agentpm daemon failed to start (exit ${exitCode}):\n${output || '(no output)'}\nSee ${paths.daemonLog}.`);
    }
    // Exit 3: another daemon holds this home's lock. It is starting (we connect in a moment), or its
    // socket file was removed, in which case it re-creates it within a few seconds.
    await sleep(20);
  }
  const problem = lastError !== null ? await socketProblem(paths, lastError, launch.exitCode() === 3) : null;
  throw new AgentpmError('daemon-unreachable', problem ?? `the agentpm daemon did not answer within ${DAEMON_START_TIMEOUT_MS / 1000}s; see ${paths.daemonLog}`);
}

/**
 * Extra Node flags for the daemon alone, for diagnosis (`AGENTPM_DAEMON_NODE_FLAGS=--trace-gc`, whose
 * output goes to daemon.log): NODE_OPTIONS would also reach the CLI and, through the caller's
 * environment, every app.
 */
function daemonNodeFlags(env: NodeJS.ProcessEnv): string[] {
  return (env['AGENTPM_DAEMON_NODE_FLAGS'] ?? '').split(/\s+/).filter((flag) => flag.startsWith('--'));
}

function launchDaemon(paths: HomePaths, command: string[], env: NodeJS.ProcessEnv): { exitCode: () => number | null } {
  const log = openOwnedFile(paths.daemonLog, 'append');
  const child = spawn(command[0] as string, command.slice(1), { detached: true, stdio: ['ignore', log, log], env, cwd: paths.home });
  closeSync(log);
  let exitCode: number | null = null;
  child.once('exit', (code) => {
    exitCode = code ?? 1;
  });
  // A launcher that cannot be run at all (ENOENT) is an exit like any other.
  child.once('error', () => {
    exitCode ??= 127;
  });
  child.unref();
  return { exitCode: () => exitCode };
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
