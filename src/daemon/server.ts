/**
 * The daemon's side of the socket: framing, the hello gate, validation, dispatch. A malformed or
 * oversized request is answered with an error (or the connection is closed); it never reaches the
 * supervisor and never takes the daemon down.
 */
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { AgentpmError, toErrorPayload } from '../errors.js';
import { LineDecoder, encodeFrame } from '../framing.js';
import { ensurePrivateHome, type HomePaths } from '../home.js';
import { readMachineMemory } from '../proc/machine.js';
import { MAX_FRAME_BYTES, PROTOCOL_VERSION, type EventPush, type Request, type Response, type ResultMap } from '../protocol.js';
import { VERSION } from '../version.js';
import { parseRequest } from './requests.js';
import type { Supervisor } from './supervisor.js';

export type ExitMode = 'kill' | 'daemon-stop';

export class ControlServer {
  private server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly startedAt = Date.now();
  private relistening = false;

  constructor(
    private readonly paths: HomePaths,
    private readonly supervisor: Supervisor,
    private readonly requestExit: (mode: ExitMode) => void,
    /** Settles once the registry is restored; requests that touch apps wait for it. */
    private readonly ready: Promise<void>,
  ) {
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<void> {
    // The caller holds the daemon lock, so a socket file still here belongs to a dead daemon.
    rmSync(this.paths.socket, { force: true });
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.paths.socket, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previous);
    }
    chmodSync(this.paths.socket, 0o600);
  }

  /**
   * Re-creates the socket if its file is gone (the home was deleted or cleaned while the daemon ran).
   * The daemon still holds the home's lock, so without this no client could reach it and no new
   * daemon could start: every command would hang until its timeout.
   */
  async ensureReachable(): Promise<void> {
    if (existsSync(this.paths.socket) || this.relistening) return;
    this.relistening = true;
    try {
      ensurePrivateHome(this.paths.home);
      // A fresh server: close()'s callback would wait for every open connection (a `monit` left open
      // for days), and they go on being served by this one while new clients reach the new socket.
      this.server.close();
      this.server = createServer((socket) => this.accept(socket));
      await this.listen();
    } finally {
      this.relistening = false;
    }
  }

  close(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    rmSync(this.paths.socket, { force: true });
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const decoder = new LineDecoder();
    let greeted = false;
    const send = (response: Response): void => {
      if (!socket.destroyed && socket.writable) socket.write(encodeFrame(response));
    };
    let unsubscribe: (() => void) | null = null;
    const subscribe = (app: string | null): void => {
      unsubscribe?.();
      unsubscribe = this.supervisor.events.subscribe((event) => {
        if (app !== null && event.app !== app) return;
        const push: EventPush = { push: 'event', event };
        if (!socket.destroyed && socket.writable) socket.write(encodeFrame(push));
      });
    };
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      unsubscribe?.();
      this.sockets.delete(socket);
    });
    socket.on('data', (chunk: Buffer) => {
      const frames = decoder.push(chunk);
      if (frames === 'too-large') {
        send({ id: null, ok: false, error: { code: 'frame-too-large', message: `a request larger than ${MAX_FRAME_BYTES / 1024 / 1024} MiB reached the daemon; the connection is closed` } });
        socket.end();
        socket.destroySoon();
        return;
      }
      for (const frame of frames) {
        if (!frame.ok) {
          send({ id: null, ok: false, error: { code: 'bad-request', message: `malformed JSON: ${frame.raw}` } });
          continue;
        }
        const parsed = parseRequest(frame.value);
        if (!parsed.ok) {
          send({ id: parsed.id, ok: false, error: { code: 'bad-request', message: parsed.message } });
          continue;
        }
        const request = parsed.request;
        if (!greeted && request.type !== 'hello') {
          send({ id: request.id, ok: false, error: { code: 'bad-request', message: 'the first request on a connection must be hello' } });
          continue;
        }
        if (request.type === 'hello') {
          if (request.protocol !== PROTOCOL_VERSION) {
            send({
              id: request.id,
              ok: false,
              error: {
                code: 'protocol-mismatch',
                message:
                  `the running daemon (agentpm ${VERSION}, pid ${process.pid}) speaks protocol ${PROTOCOL_VERSION}, this CLI (agentpm ${request.version}) speaks ${request.protocol}. ` +
                  `Replace the daemon with \`kill ${process.pid}\` (your apps keep running and the new daemon adopts them), then run the command again.`,
              },
            });
            continue;
          }
          greeted = true;
        }
        void this.handle(request, subscribe).then(
          (result) => send({ id: request.id, ok: true, result }),
          (error: unknown) => send({ id: request.id, ok: false, error: toErrorPayload(error) }),
        );
      }
    });
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
          tickMs: supervisor.tickMs,
          tickCost: supervisor.tickCost(),
          machine: readMachineMemory(),
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
      case 'settings':
        return supervisor.updateSettings(request.settings);
      case 'kill': {
        const apps = await supervisor.stop({ all: true });
        setImmediate(() => this.requestExit('kill'));
        return { apps };
      }
      case 'daemon-stop':
        setImmediate(() => this.requestExit('daemon-stop'));
        return {};
      default:
        throw new AgentpmError('bad-request', `unknown request type`);
    }
  }
}
