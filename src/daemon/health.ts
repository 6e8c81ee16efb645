/**
 * Health checks and hang detection: an agent whose process is alive can still be dead to its users
 * (one bot ran 9 hours with its backend gone). Each online instance of an app with a `health` check is
 * probed every interval (HTTP GET answering 2xx/3xx, or a command exiting 0, within the timeout);
 * `retries` consecutive failures after the start period end the instance with reason `health-failed`,
 * and the usual backoff applies. `hangTimeout` reads the growth of the app's log files: no new output
 * for that long ends it with reason `hung`.
 */
import { statSync } from 'node:fs';
import type { HealthCheck } from '../protocol.js';
import { appLogPaths } from '../home.js';
import type { App, AppHost } from './app.js';
import { runCommandHook } from './notify.js';
import { INSTANCE_TAGS } from './spawn.js';

export type ProbeResult = { ok: true } | { ok: false; message: string };

export async function probe(check: HealthCheck, cwd: string, cancel: AbortSignal): Promise<ProbeResult> {
  if (check.http) {
    try {
      const response = await fetch(check.http, { signal: AbortSignal.any([AbortSignal.timeout(check.timeoutMs), cancel]), redirect: 'manual' });
      await response.body?.cancel();
      return response.status < 400 ? { ok: true } : { ok: false, message: `HTTP ${response.status}` };
    } catch (error) {
      const name = (error as Error).name;
      return { ok: false, message: name === 'TimeoutError' ? `no answer within ${check.timeoutMs} ms` : (error as Error).message };
    }
  }
  // The same runner as alert command hooks: own process group, killed whole at the timeout.
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !(INSTANCE_TAGS as readonly string[]).includes(key)) env[key] = value;
  const outcome = await runCommandHook(check.command ?? 'false', '', env, cwd, check.timeoutMs, cancel);
  return outcome.ok ? { ok: true } : { ok: false, message: outcome.message };
}

interface Watched {
  instance: string;
  timer: NodeJS.Timeout | undefined;
  failures: number;
  /** Log sizes and when they last grew, for hangTimeout. */
  logBytes: number;
  lastOutputAt: number;
}

export class HealthChecks {
  private readonly watched = new Map<string, Watched>();
  /** Aborted at shutdown: a probe still running is cut short. */
  private readonly closing = new AbortController();

  constructor(
    private readonly host: Pick<AppHost, 'emit' | 'log'>,
    private readonly home: string,
  ) {}

  /** Follows an app's state: checks run while it is online, for its current instance only. */
  sync(app: App): void {
    const instance = app.status === 'online' ? app.instance : null;
    const current = this.watched.get(app.name);
    if (current && current.instance === instance?.id) return;
    if (current) this.stop(app.name);
    if (!instance || (!app.spec.health && app.spec.hangTimeoutMs === null)) return;
    const watched: Watched = { instance: instance.id, timer: undefined, failures: 0, logBytes: this.logBytes(app.name), lastOutputAt: Date.now() };
    this.watched.set(app.name, watched);
    app.health = 'starting';
    if (app.spec.health) this.schedule(app, watched, app.spec.health);
  }

  /** On every monitor tick: apps whose logs have not grown for their hangTimeout are hung. */
  checkHangs(apps: Iterable<App>, now: number): void {
    for (const app of apps) {
      const watched = this.watched.get(app.name);
      const limit = app.spec.hangTimeoutMs;
      if (!watched || limit === null || app.status !== 'online' || app.enforcing) continue;
      const bytes = this.logBytes(app.name);
      if (bytes !== watched.logBytes) {
        watched.logBytes = bytes;
        watched.lastOutputAt = now;
      } else if (now - watched.lastOutputAt >= limit) {
        watched.lastOutputAt = now; // act once per silence
        this.host.log(app, `no output for ${limit} ms: hung, restarting`);
        app.endFor(watched.instance, 'hung', 'restart');
      }
    }
  }

  stop(name: string): void {
    const watched = this.watched.get(name);
    if (watched?.timer) clearTimeout(watched.timer);
    this.watched.delete(name);
  }

  closeAll(): void {
    for (const name of [...this.watched.keys()]) this.stop(name);
    this.closing.abort();
  }

  private schedule(app: App, watched: Watched, check: HealthCheck): void {
    watched.timer = setTimeout(() => {
      void this.runOnce(app, watched, check).finally(() => {
        if (this.watched.get(app.name) === watched) this.schedule(app, watched, check);
      });
    }, check.intervalMs);
  }

  private async runOnce(app: App, watched: Watched, check: HealthCheck): Promise<void> {
    const result = await probe(check, app.spec.cwd, this.closing.signal);
    if (this.watched.get(app.name) !== watched || app.instance?.id !== watched.instance) return;
    if (result.ok) {
      watched.failures = 0;
      if (app.health !== 'healthy') this.host.emit('health', app, watched.instance, 'healthy');
      app.health = 'healthy';
      return;
    }
    const startedAt = app.instance?.startedAt ?? 0;
    if (app.health === 'starting' && Date.now() - startedAt < check.startPeriodMs) return; // still starting up
    watched.failures += 1;
    if (app.health !== 'unhealthy') this.host.emit('health', app, watched.instance, 'unhealthy', { message: result.message });
    app.health = 'unhealthy';
    if (watched.failures >= check.retries && !app.enforcing) {
      this.host.emit('health', app, watched.instance, 'failed', { failures: watched.failures, message: result.message });
      app.endFor(watched.instance, 'health-failed', 'restart');
    }
  }

  private logBytes(app: string): number {
    const logs = appLogPaths(this.home, app);
    let total = 0;
    for (const file of [logs.out, logs.err]) {
      try {
        total += statSync(file).size;
      } catch {
        // not written yet
      }
    }
    return total;
  }
}
