/**
 * The daemon's side of the socket: admission, the hello gate, validation, dispatch, and the budgets
 * all connections share. A malformed or oversized request is answered with an error (or the
 * connection is closed); it never reaches the supervisor and never takes the daemon down. Per
 * connection flow control is in connection.ts, who may connect in admission.ts.
 */
import { chmodSync, lstatSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { AgentpmError, toErrorPayload } from '../errors.js';
import { encodeFrame, type Frame } from '../framing.js';
import { ensurePrivateHome, type HomePaths } from '../home.js';
import { readMachineMemory } from '../proc/machine.js';
import { PROTOCOL_VERSION, type EventPush, type Request, type Response, type ResultMap } from '../protocol.js';
import { VERSION } from '../version.js';
import { refusal } from './admission.js';
import { ClientConnection, type ConnectionHost } from './connection.js';
import { parseRequest } from './requests.js';
import type { MetricsEndpoint } from './metrics.js';
import type { Supervisor } from './supervisor.js';

export type ExitMode = 'kill' | 'daemon-stop';

/** Input (partial and unserved requests) the daemon holds for all its clients together. */
export const INPUT_BUDGET_BYTES = 8 * 1024 * 1024;
/** Unsent output for all clients together; past it, the client with the most is dropped as slow. */
export const OUTPUT_BUDGET_BYTES = 32 * 1024 * 1024;
/** How long a refused connection waits for the client's first request before it is answered, and how many may wait. */
const REFUSED_WAIT_MS = 250;
const MAX_REFUSED_WAITING = 16;
/** A kind of refusal or drop is written to daemon.log at most this often (with a count of the rest). */
const LOG_EVERY_MS = 60_000;

export class ControlServer {
  private server: Server;
  private readonly connections = new Set<ClientConnection>();
  private readonly startedAt = Date.now();
  private relistening = false;
  private closed = false;
  /** The socket file this daemon listens on; another file at the path is replaced. */
  private socketIdentity: { dev: number; ino: number } | null = null;
  private inputHeld = 0;
  /** Refused connections waiting for the client's first request before they are answered. */
  private refusedWaiting = 0;
  private readonly logged = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly paths: HomePaths,
    private readonly supervisor: Supervisor,
    private readonly requestExit: (mode: ExitMode) => void,
    /** Settles once the registry is restored; requests that touch apps wait for it. */
    private readonly ready: Promise<void>,
    private readonly metrics: MetricsEndpoint,
  ) {
    this.server = this.createServer();
  }

  async listen(): Promise<void> {
    // The caller holds the daemon lock, so a socket file still here belongs to a dead daemon.
    rmSync(this.paths.socket, { force: true });
    // No process-wide umask around the bind: apps are spawned concurrently (re-adoption and revival run
    // while the socket is created, and a re-created socket can come at any time), and each would inherit
    // it (0177 left apps unable to create usable directories). Between the bind and the chmod the socket
    // is unreachable by others anyway: the home is 0700 and checked to be the caller's.
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.paths.socket, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.paths.socket, 0o600);
    const stat = statSync(this.paths.socket);
    this.socketIdentity = { dev: stat.dev, ino: stat.ino };
  }

  /**
   * Re-creates the socket if the file at its path is not this daemon's: gone (the home was deleted or
   * cleaned while the daemon ran), or replaced by another file, such as the dead socket of a process
   * that bound the path and died. The daemon still holds the home's lock, so without this no client
   * could reach it and no new daemon could start: every command would wait for its timeout.
   */
  async ensureReachable(): Promise<void> {
    // A stopping daemon has removed its socket on purpose: re-creating it in the moment before the
    // process exits would leave a socket file with no daemon behind it.
    if (this.closed || this.relistening || this.ownsSocketPath()) return;
    this.relistening = true;
    try {
      ensurePrivateHome(this.paths.home);
      // A fresh server: close()'s callback would wait for every open connection (a `monit` left open
      // for days), and they go on being served by this one while new clients reach the new socket.
      // Closing the old one unlinks the path: the file there now (not ours) goes with it.
      this.server.close();
      this.server = this.createServer();
      await this.listen();
      if (this.closed) {
        this.close();
        return;
      }
      this.note('socket', `the socket file ${this.paths.socket} was missing or not this daemon's; re-created it`);
    } catch (error) {
      this.note('socket-failed', `cannot re-create the socket ${this.paths.socket}: ${(error as Error).message}`);
    } finally {
      this.relistening = false;
    }
  }

  close(): void {
    this.closed = true;
    this.server.close();
    for (const connection of this.connections) connection.socket.destroy();
    rmSync(this.paths.socket, { force: true });
  }

  private createServer(): Server {
    // allowHalfOpen: a client that sends its requests and ends its side still gets every reply.
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    // accept() failing (EMFILE despite the reserve) must not reach uncaughtException; the server goes on.
    server.on('error', (error) => this.note('accept', `accepting a connection failed: ${error.message}`));
    return server;
  }

  private ownsSocketPath(): boolean {
    try {
      const stat = lstatSync(this.paths.socket);
      return stat.isSocket() && this.socketIdentity !== null && stat.dev === this.socketIdentity.dev && stat.ino === this.socketIdentity.ino;
    } catch {
      return false;
    }
  }

  private accept(socket: Socket): void {
    const refused = refusal(this.connections.size);
    if (refused !== null) {
      this.note(`refused-${refused.limit}`, `refused a connection: ${refused.error.message}`);
      this.refuse(socket, { id: null, ok: false, error: refused.error });
      return;
    }
    this.connections.add(new ClientConnection(socket, this.host));
  }

  /**
   * Answers a refused client with why, after its first request (its hello) has arrived: a client told
   * before it wrote would fail on EPIPE writing it and never read the answer. The wait is short and
   * only a few refused clients wait at once, so that a flood of them cannot hold the descriptors the
   * refusal keeps for supervision; past those, the answer goes out at once.
   */
  private refuse(socket: Socket, farewell: Response): void {
    socket.on('error', () => socket.destroy());
    let timer: NodeJS.Timeout | null = null;
    const answer = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      if (socket.destroyed) return;
      socket.end(encodeFrame(farewell));
      socket.destroySoon();
    };
    if (this.refusedWaiting >= MAX_REFUSED_WAITING) return answer();
    this.refusedWaiting += 1;
    socket.once('close', () => (this.refusedWaiting -= 1));
    socket.once('data', answer);
    timer = setTimeout(answer, REFUSED_WAIT_MS);
  }

  private readonly host: ConnectionHost = {
    serve: (frame, connection) => this.serve(frame, connection),
    inputChanged: (delta) => {
      this.inputHeld += delta;
      return this.inputHeld <= INPUT_BUDGET_BYTES;
    },
    outputGrew: () => this.enforceOutputBudget(),
    dropping: (_connection, why) => this.note(why.code, `closing a client connection (${why.code}): ${why.message}`),
    closed: (connection) => this.connections.delete(connection),
  };

  /** Past the budget, the client with the most unsent output (the slowest reader) goes. */
  private enforceOutputBudget(): void {
    let total = 0;
    let largest: ClientConnection | null = null;
    for (const connection of this.connections) {
      total += connection.unsent;
      if (!connection.isClosing && (largest === null || connection.unsent > largest.unsent)) largest = connection;
    }
    if (total <= OUTPUT_BUDGET_BYTES || largest === null) return;
    largest.closeWith(
      'slow-consumer',
      `this client fell behind: ${Math.round(largest.unsent / 1024)} KiB of replies and events waited unread, the most of any client when the daemon's output buffers were full, so the daemon closed its connection; reconnect to go on`,
    );
  }

  private serve(frame: Frame, connection: ClientConnection): Response | Promise<Response> {
    if (!frame.ok) return { id: null, ok: false, error: { code: 'bad-request', message: `malformed JSON: ${frame.raw}` } };
    const parsed = parseRequest(frame.value);
    if (!parsed.ok) return { id: parsed.id, ok: false, error: { code: 'bad-request', message: parsed.message } };
    const request = parsed.request;
    if (!connection.isGreeted && request.type !== 'hello') {
      return { id: request.id, ok: false, error: { code: 'bad-request', message: 'the first request on a connection must be hello' } };
    }
    if (request.type === 'hello') {
      if (request.protocol !== PROTOCOL_VERSION) {
        return {
          id: request.id,
          ok: false,
          error: {
            code: 'protocol-mismatch',
            message:
              `the running daemon (agentpm ${VERSION}, pid ${process.pid}) speaks protocol ${PROTOCOL_VERSION}, this CLI (agentpm ${request.version}) speaks ${request.protocol}. ` +
              `Replace the daemon with \`kill ${process.pid}\` (your apps keep running and the new daemon adopts them), then run the command again.`,
          },
        };
      }
      connection.greet();
    }
    const subscribe = (app: string | null): void => {
      connection.subscribed(
        this.supervisor.events.subscribe((event) => {
          if (app !== null && event.app !== app) return;
          connection.push({ push: 'event', event } satisfies EventPush);
        }),
      );
    };
    return this.handle(request, subscribe).then(
      (result): Response => ({ id: request.id, ok: true, result }),
      (error: unknown): Response => ({ id: request.id, ok: false, error: toErrorPayload(error) }),
    );
  }

  /**
   * daemon.log gets each kind of refusal or drop, but a flood (a client reconnecting in a loop) at most
   * once a minute, with the number left out.
   */
  private note(kind: string, message: string): void {
    const now = Date.now();
    const last = this.logged.get(kind);
    if (last !== undefined && now - last.at < LOG_EVERY_MS) {
      last.suppressed += 1;
      return;
    }
    const more = last !== undefined && last.suppressed > 0 ? ` (and ${last.suppressed} more like it in the last ${Math.round((now - last.at) / 1000)}s)` : '';
    this.logged.set(kind, { at: now, suppressed: 0 });
    this.supervisor.log(null, `${message}${more}`);
  }

  private async handle(request: Request, subscribe: (app: string | null) => void): Promise<ResultMap[Request['type']]> {
    const supervisor = this.supervisor;
    if (request.type !== 'hello' && request.type !== 'status') await this.ready;
    switch (request.type) {
      case 'hello':
        return { version: VERSION, protocol: PROTOCOL_VERSION, pid: process.pid };
      case 'status':
        return {
          pid: process.pid,
          version: VERSION,
          protocol: PROTOCOL_VERSION,
          uptimeMs: Date.now() - this.startedAt,
          home: this.paths.home,
          apps: supervisor.appCount,
          // systemd sets INVOCATION_ID for the processes of a unit.
          supervisedBy: process.env['INVOCATION_ID'] ? 'systemd' : null,
          rss: process.memoryUsage.rss(),
          ...heapFigures(),
          tickMs: supervisor.tickMs,
          tickCost: supervisor.tickCost(),
          machine: readMachineMemory(),
          metrics: this.metrics.status(),
          ...(await supervisor.relayStatus()),
          containment: supervisor.containment,
        };
      case 'ls':
        return supervisor.list();
      case 'show':
        return supervisor.show(request.name);
      case 'start': {
        // One environment for every app of the request: the same object, not a copy per app.
        const env = request.env;
        return supervisor.start(request.apps.map((definition) => ({ ...definition, baseEnv: env })), request.ifRunning);
      }
      case 'start-saved':
        return supervisor.startSaved(request.names, request.ifRunning);
      case 'stop':
        return { apps: await supervisor.stop(request.target) };
      case 'restart':
        return { apps: await supervisor.restart(request.target) };
      case 'delete':
        return { apps: await supervisor.delete(request.target) };
      case 'signal':
        return { apps: await supervisor.signal(request.name, request.signal as NodeJS.Signals) };
      case 'events':
        return supervisor.recentEvents(request.app, request.limit);
      case 'subscribe':
        if (request.app !== null) supervisor.recentEvents(request.app, 1); // an unknown app is an error
        subscribe(request.app);
        return {};
      case 'notify-test':
        return supervisor.notifyTest(request.app);
      case 'save':
        return supervisor.save();
      case 'resurrect':
        return supervisor.resurrect();
      case 'reap':
        return supervisor.reap(request.options);
      case 'settings': {
        const settings = await supervisor.updateSettings(request.settings);
        // Bound (or refused) before the answer, so that `daemon status` right after tells how it went.
        if (request.settings.metrics !== undefined) await this.metrics.apply(settings.metrics);
        return settings;
      }
      case 'kill': {
        const apps = await supervisor.stop({ all: true });
        setImmediate(() => this.requestExit('kill'));
        return { apps };
      }
      case 'daemon-stop':
        setImmediate(() => this.requestExit('daemon-stop'));
        return {};
      case 'flush':
        return supervisor.flush(request.target);
      default:
        throw new AgentpmError('bad-request', `unknown request type`);
    }
  }
}

/** The V8 heap in use and committed, and memory held outside it (Buffers): what a leak hunt separates. */
function heapFigures(): { heapUsed: number; heapTotal: number; external: number } {
  const { heapUsed, heapTotal, external } = process.memoryUsage();
  return { heapUsed, heapTotal, external };
}
