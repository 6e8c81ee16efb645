/**
 * The opt-in Prometheus endpoint: `GET /metrics` over plain HTTP, no authentication (loopback unless
 * allowPublic, see config/metrics.ts). Off by default; on, it loads prom-client (metrics-registry.ts)
 * and node:http the first time, so a daemon without metrics never pays for them.
 *
 * The endpoint never takes supervision down with it: an address that cannot be bound (a port in use)
 * is reported (`daemon status`, a `daemon` event, daemon.log) and the daemon goes on without metrics;
 * a failing scrape is answered 500.
 *
 * Counters: restarts are the app's own count (as `ls` shows it, kept across daemon restarts); exits and
 * limit breaches are counted here from the event stream, from the daemon's start whether or not the
 * endpoint is on, so they go back to 0 only when the daemon restarts (a counter reset, as Prometheus
 * expects).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { metricsProblem, parseListen } from '../config/metrics.js';
import { readMachineMemory } from '../proc/machine.js';
import type { AgentEvent, AppSummary, MetricsSettings, MetricsStatus, TickCost } from '../protocol.js';
import { VERSION } from '../version.js';
import type { EventBus } from './events.js';
import type { MetricsRenderer } from './metrics-registry.js';

/** What the endpoint reads from the supervisor, at scrape time only. */
export interface MetricsSource {
  list(): AppSummary[];
  tickCost(): TickCost;
  readonly tickMs: number;
}

export interface MetricsEndpointOptions {
  source: MetricsSource;
  events: EventBus;
  log: (message: string) => void;
}

/** Scrapes closer together than this get the same text: a client hammering the endpoint costs one /proc scan a second. */
const MIN_RENDER_INTERVAL_MS = 1000;
/** Apps whose counts are kept before those of deleted apps are dropped (a bot may create an app per conversation). */
const MAX_COUNTED_APPS = 2000;
const MAX_CONNECTIONS = 16;

/** Exits by reason and limit breaches by limit, per app, since the daemon started. */
class EventCounts {
  private readonly exits = new Map<string, Map<string, number>>();
  private readonly breaches = new Map<string, Map<string, number>>();

  constructor(
    events: EventBus,
    private readonly liveApps: () => Set<string>,
  ) {
    events.subscribe((event) => this.count(event));
  }

  exitCount(app: string, reason: string): number {
    return this.exits.get(app)?.get(reason) ?? 0;
  }

  breachCount(app: string, reason: string): number {
    return this.breaches.get(app)?.get(reason) ?? 0;
  }

  /** Drops the counts of apps that are gone, so that a deleted app's series go with it. */
  keepOnly(apps: Set<string>): void {
    for (const counts of [this.exits, this.breaches]) for (const app of counts.keys()) if (!apps.has(app)) counts.delete(app);
  }

  private count(event: AgentEvent): void {
    if (event.app === null || event.reason === null) return;
    const counts = event.type === 'exit' ? this.exits : event.type === 'limit-breach' ? this.breaches : null;
    if (!counts) return;
    if (!counts.has(event.app) && counts.size >= MAX_COUNTED_APPS) this.keepOnly(this.liveApps());
    const byReason = counts.get(event.app) ?? new Map<string, number>();
    byReason.set(event.reason, (byReason.get(event.reason) ?? 0) + 1);
    counts.set(event.app, byReason);
  }
}

export class MetricsEndpoint {
  private readonly counts: EventCounts;
  private readonly startedAt = Date.now();
  private settings: MetricsSettings | null = null;
  private state: MetricsStatus | null = null;
  private server: Server | null = null;
  private renderer: MetricsRenderer | null = null;
  private lastRender: { at: number; text: Promise<string> } | null = null;
  /** Changes of setting, one at a time (a close must finish before the next bind). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: MetricsEndpointOptions) {
    this.counts = new EventCounts(options.events, () => new Set(options.source.list().map((app) => app.name)));
  }

  status(): MetricsStatus | null {
    return this.state ? { ...this.state } : null;
  }

  /**
   * Serves on the setting's address, or stops serving (null). The same address already served is left
   * as it is; one that failed before is tried again. Resolves with the outcome; never rejects.
   */
  apply(settings: MetricsSettings | null): Promise<MetricsStatus | null> {
    const run = this.queue.then(async () => {
      try {
        return await this.applyNow(settings);
      } catch (error) {
        // A setting read back from a registry edited by hand is not validated by anyone else.
        return this.fail(String((settings as Partial<MetricsSettings> | null)?.listen), `the metrics setting is unusable (${(error as Error).message}); set it again`);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** At daemon exit. */
  close(): void {
    this.server?.close();
    this.server?.closeAllConnections();
    this.server = null;
  }

  private async applyNow(settings: MetricsSettings | null): Promise<MetricsStatus | null> {
    if (this.server && isDeepStrictEqual(settings, this.settings)) return this.status();
    const wasServing = this.server !== null;
    await this.stopServing();
    this.settings = settings;
    if (settings === null) {
      this.state = null;
      if (wasServing) this.options.events.emit('daemon', null, null, 'metrics-stopped', { message: 'metrics are no longer served (turned off)' });
      return null;
    }
    const problem = metricsProblem(settings);
    const parsed = parseListen(settings.listen);
    if (problem || !parsed.ok) return this.fail(settings.listen, problem ?? 'not a valid address');
    try {
      if (!this.renderer) {
        const { createRenderer } = await import('./metrics-registry.js');
        this.renderer = createRenderer({ psi: readMachineMemory().pressureSomeAvg10 !== null });
      }
    } catch (error) {
      return this.fail(parsed.listen, `cannot load prom-client (${(error as Error).message}); reinstall agentpm`);
    }
    // node:http too is loaded only once metrics are on: an idle daemon does not carry an HTTP server.
    const { createServer } = await import('node:http');
    const server = createServer((request, response) => this.handle(request, response));
    // Unauthenticated and perhaps reachable from afar: nothing may hold the daemon's resources for long.
    server.maxConnections = MAX_CONNECTIONS;
    server.headersTimeout = 5000;
    server.requestTimeout = 10_000;
    server.keepAliveTimeout = 5000;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: parsed.host, port: parsed.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      return this.fail(parsed.listen, listenProblem(error, parsed.listen, parsed.port));
    }
    server.on('error', (error) => this.options.log(`metrics endpoint: ${error.message}`));
    this.server = server;
    const url = `http://${parsed.listen}/metrics`;
    this.state = { listen: parsed.listen, url, problem: null };
    this.options.events.emit('daemon', null, null, 'metrics-listening', { url, message: `serving metrics on ${url}` });
    return this.status();
  }

  private fail(listen: string, problem: string): MetricsStatus {
    this.state = { listen, url: null, problem };
    const message = `metrics are not served: ${problem}`;
    this.options.log(message);
    this.options.events.emit('daemon', null, null, 'metrics-failed', { listen, message });
    return { ...this.state };
  }

  private async stopServing(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.lastRender = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('only GET /metrics\n');
      return;
    }
    if (path === '/') {
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end('agentpm: metrics are at /metrics\n');
      return;
    }
    if (path !== '/metrics') {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found; metrics are at /metrics\n');
      return;
    }
    this.render().then(
      (text) => {
        response.writeHead(200, { 'Content-Type': this.renderer?.contentType ?? 'text/plain' });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        this.options.log(`metrics scrape failed: ${(error as Error).stack ?? String(error)}`);
        response.writeHead(500, { 'Content-Type': 'text/plain' }).end(`agentpm could not render its metrics: ${(error as Error).message}\n`);
      },
    );
  }

  private render(): Promise<string> {
    const renderer = this.renderer;
    if (!renderer) return Promise.reject(new Error('not serving'));
    const now = Date.now();
    if (this.lastRender && now - this.lastRender.at < MIN_RENDER_INTERVAL_MS) return this.lastRender.text;
    const source = this.options.source;
    const apps = source.list();
    this.counts.keepOnly(new Set(apps.map((app) => app.name)));
    const text = renderer.render({
      apps,
      exits: (app, reason) => this.counts.exitCount(app, reason),
      breaches: (app, reason) => this.counts.breachCount(app, reason),
      tickCost: source.tickCost(),
      tickMs: source.tickMs,
      machine: readMachineMemory(),
      daemon: { version: VERSION, startTimeSeconds: Math.floor(this.startedAt / 1000) },
    });
    this.lastRender = { at: now, text };
    return text;
  }
}

function listenProblem(error: unknown, listen: string, port: number): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return (
        `${listen} is in use by another process (\`ss -ltnp 'sport = :${port}'\` names it); choose another port ` +
        '(metrics.listen in the config, or `agentpm daemon start --metrics HOST:PORT`), or free this one and run that again'
      );
    case 'EACCES':
      return `binding port ${port} is not permitted (ports under 1024 need root); choose a port from 1024 up`;
    case 'EADDRNOTAVAIL':
      return `${listen}: that address is not one of this machine's; use 127.0.0.1, or an address \`ip addr\` lists`;
    default:
      return `cannot listen on ${listen}: ${(error as Error).message}`;
  }
}
