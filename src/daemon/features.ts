/**
 * The optional per-app features: file watching, health checks and hang detection, cron restarts, and
 * alerts. Each module is loaded the first time a definition (or the global settings, for alerts) uses
 * it, so a daemon whose apps use none of them never loads them nor pays their memory.
 *
 * `prepare` is awaited before the apps of a start or a re-adoption are touched, so that by the time an
 * app changes state its features are loaded and follow it synchronously, exactly as if loaded at start.
 * A feature is never unloaded.
 */
import type { AppSpec, NotifyHook, NotifyTestResult } from '../protocol.js';
import type { App } from './app.js';
import type { EventBus } from './events.js';
import type { HealthChecks } from './health.js';
import type { Notifier } from './notify.js';
import type { RestartSchedules } from './schedule.js';
import type { Watchers, WatchHost } from './watch.js';

export interface FeatureHost extends WatchHost {
  readonly home: string;
  readonly events: EventBus;
  /** The current definition of an app, if the daemon has it. */
  specOf(app: string): AppSpec | undefined;
  /** The global alert hooks (DaemonSettings.notify), read at each delivery. */
  globalHooks(): readonly NotifyHook[];
  /** The app of this name, if the daemon has it. */
  appOf(name: string): App | null;
}

interface Loaded {
  watchers?: Watchers;
  health?: HealthChecks;
  schedules?: RestartSchedules;
  notifier?: Notifier;
}

type Feature = keyof Loaded;

/** The features a definition uses. */
function usedBy(spec: AppSpec): Feature[] {
  const used: Feature[] = [];
  if (spec.watch !== null) used.push('watchers');
  if (spec.health !== null || spec.hangTimeoutMs !== null) used.push('health');
  if (spec.cronRestart !== null) used.push('schedules');
  if (spec.notify.length > 0) used.push('notifier');
  return used;
}

export class AppFeatures {
  private readonly loaded: Loaded = {};
  private readonly loading = new Map<Feature, Promise<void>>();
  private closed = false;

  constructor(private readonly host: FeatureHost) {}

  /**
   * Loads what these definitions use (and the alerter, if there are global hooks), before their apps
   * change state. Null when all of it is loaded already: the caller then goes on without yielding, so a
   * request is handled in one piece as before.
   */
  prepare(specs: Iterable<AppSpec>, globalHooks: readonly NotifyHook[] = []): Promise<void> | null {
    const wanted = new Set<Feature>([...specs].flatMap(usedBy));
    if (globalHooks.length > 0) wanted.add('notifier');
    const missing = [...wanted].filter((feature) => this.loaded[feature] === undefined);
    return missing.length === 0 ? null : Promise.all(missing.map((feature) => this.load(feature))).then(() => undefined);
  }

  /** On every change of an app: each feature it uses (or used) follows its state. */
  sync(app: App): void {
    const { watchers, health, schedules } = this.loaded;
    watchers?.sync(app); // watch while an app with `watch` is meant to run
    health?.sync(app); // health checks and hang detection while it is online
    schedules?.sync(app); // armed while its definition has a cronRestart
    // Not prepared (cannot happen for a started or restored app): loaded now, then follows the app.
    for (const feature of usedBy(app.spec)) {
      if (this.loaded[feature] === undefined) void this.load(feature).then(() => this.sync(app));
    }
  }

  /** The app is deleted. */
  forget(name: string): void {
    this.loaded.watchers?.close(name);
    this.loaded.health?.stop(name);
    this.loaded.schedules?.stop(name);
  }

  closeAll(): void {
    this.closed = true;
    this.loaded.watchers?.closeAll();
    this.loaded.notifier?.close();
    this.loaded.health?.closeAll();
    this.loaded.schedules?.closeAll();
  }

  /** Once these apps' watchers have scanned their paths (bounded), a change to a watched file is seen. */
  async ready(names: string[]): Promise<void> {
    await this.loaded.watchers?.ready(names);
  }

  /** On every monitor tick: apps whose logs have not grown for their hangTimeout are hung. */
  checkHangs(apps: Iterable<App>, now: number): void {
    this.loaded.health?.checkHangs(apps, now);
  }

  /** The next restart by the app's cronRestart (ms since the epoch), or null. */
  nextScheduledRestart(name: string): number | null {
    return this.loaded.schedules?.nextRun(name) ?? null;
  }

  /** `agentpm notify test`: loads the alerter if nothing did yet (it then finds no hook, or the ones just set). */
  async notifyTest(app: string | null): Promise<NotifyTestResult> {
    await this.load('notifier');
    const notifier = this.loaded.notifier;
    return notifier ? notifier.test(app) : { deliveries: [] };
  }

  private load(feature: Feature): Promise<void> {
    if (this.loaded[feature] !== undefined) return Promise.resolve();
    let loading = this.loading.get(feature);
    if (!loading) {
      loading = this.create(feature).finally(() => this.loading.delete(feature));
      this.loading.set(feature, loading);
    }
    return loading;
  }

  private async create(feature: Feature): Promise<void> {
    const { host } = this;
    switch (feature) {
      case 'watchers': {
        const { Watchers } = await import('./watch.js');
        if (!this.closed) this.loaded.watchers ??= new Watchers(host, host.home);
        return;
      }
      case 'health': {
        const { HealthChecks } = await import('./health.js');
        if (!this.closed) this.loaded.health ??= new HealthChecks(host, host.home);
        return;
      }
      case 'schedules': {
        const { RestartSchedules } = await import('./schedule.js');
        if (!this.closed) this.loaded.schedules ??= new RestartSchedules((name, message) => host.log(host.appOf(name), message));
        return;
      }
      case 'notifier': {
        const { Notifier, parseNotifyRate } = await import('./notify.js');
        if (this.closed) return;
        this.loaded.notifier ??= new Notifier(
          host.events,
          { home: host.home, specOf: (name) => host.specOf(name), globalHooks: () => host.globalHooks(), log: (message) => host.log(null, message) },
          { rate: parseNotifyRate(process.env['AGENTPM_NOTIFY_RATE']) },
        );
        return;
      }
    }
  }
}
