/**
 * The registry of apps in memory, and what the apps need from the machine: spawning and ending trees
 * (through the containment backend, or the /proc inference), with the monitor tick (tick.ts), the
 * registry on disk (persistence.ts), re-adoption (restore.ts), the views (views.ts) and the optional
 * features (features.ts) beside it.
 */
import { appendOwnedFile } from '../safe-files.js';
import { AgentpmError } from '../errors.js';
import { maskText } from '../secrets.js';
import type { HomePaths } from '../home.js';
import { RelayLink } from './relay-link.js';
import { flushLogs } from './log-sink.js';
import type {
  AgentEvent,
  AppDetail,
  AppSpec,
  AppSummary,
  DaemonSettings,
  EventType,
  FlushResult,
  RelayStatus,
  IfRunning,
  NotifyTestResult,
  ReapOptions,
  ReapResult,
  ResurrectResult,
  SaveResult,
  StartResult,
  Target,
  TickCost,
} from '../protocol.js';
import { DEFAULT_REAP_INTERVAL_MS } from '../config/defaults.js';
import type { HomeView } from '../reap/find.js';
import { OrphanSweeper } from './sweeper.js';
import type { ProcessTable } from '../proc/table.js';
import { App, type AppHost, type Instance } from './app.js';
import type { EventBus } from './events.js';
import { REGISTRY_VERSION, type RegistryFile } from './registry.js';
import { RegistryWriter, writeDump } from './persistence.js';
import { adoptRegistry } from './restore.js';
import { instanceRef, MonitorTick } from './tick.js';
import { describe, relayStatus, summarize } from './views.js';
import { AppFeatures } from './features.js';
import { resurrectApps, startApps, startSavedApps, type StartContext } from './start.js';
import { InstanceControl } from './instances.js';
import { MemoryGuard } from './guard.js';
import { graphOfApps, notReady, refuseOrphaningDelete } from './dependencies.js';
import { startOrder, stopWaves } from './order.js';
import { InstanceContainment } from '../cgroup/supervision.js';
import type { Containment, ContainmentInfo } from '../cgroup/types.js';

export interface SupervisorOptions {
  paths: HomePaths;
  table: ProcessTable;
  events: EventBus;
  tickMs: number;
  containment: Containment;
}

export class Supervisor implements AppHost {
  readonly table: ProcessTable;
  readonly events: EventBus;
  private readonly apps = new Map<string, App>();
  /** Never a member of any tree: a CLI run inside an app may have launched this daemon as its child. */
  private readonly untouchable: ReadonlySet<number> = new Set([process.pid]);
  private readonly paths: HomePaths;
  private ticker: NodeJS.Timeout | undefined;
  private readonly sweeper: OrphanSweeper;
  private settings: DaemonSettings = { reapIntervalMs: DEFAULT_REAP_INTERVAL_MS, unmanaged: [], notify: [], guard: null, metrics: null };
  private readonly registry: RegistryWriter;
  private readonly monitor: MonitorTick;
  private readonly guard: MemoryGuard;
  private readonly features: AppFeatures;
  /** The home's log relay: it owns the apps' log files. */
  readonly relay: RelayLink;
  private readonly instances: InstanceControl;
  private readonly starting: StartContext;
  private readonly cgroups: InstanceContainment;

  constructor(private readonly options: SupervisorOptions) {
    this.paths = options.paths;
    this.table = options.table;
    this.events = options.events;
    this.cgroups = new InstanceContainment(options.containment, options.table, this.untouchable);
    const apps = (): Iterable<App> => this.apps.values();
    const log = (app: App | null, message: string): void => this.log(app, message);
    const emit: AppHost['emit'] = (...event) => this.emit(...event);
    this.monitor = new MonitorTick({
      table: this.table,
      home: this.paths.home,
      cgroups: this.cgroups,
      untouchable: this.untouchable,
      apps,
      log,
      emit,
      afterTick: (at) => this.afterTick(at),
    });
    this.guard = new MemoryGuard({ events: this.events, apps, memoryOf: (name) => this.monitor.figuresOf(name).memory, log: (message) => this.log(null, message) });
    this.registry = new RegistryWriter({
      path: this.paths.registry,
      contents: () => ({ version: REGISTRY_VERSION, bootId: this.table.bootId, apps: [...this.apps.values()].map((app) => app.toPersisted()), settings: this.settings }),
      events: this.events,
      log: (message) => this.log(null, message),
    });
    this.features = new AppFeatures({
      home: this.paths.home,
      events: this.events,
      specOf: (name) => this.apps.get(name)?.spec,
      globalHooks: () => this.settings.notify,
      appOf: (name) => this.apps.get(name) ?? null,
      emit,
      log,
    });
    this.relay = new RelayLink({
      home: options.paths.home,
      daemonLog: options.paths.daemonLog,
      event: (reason, data) => this.events.emit('relay', null, null, reason, data),
      log: (message) => this.log(null, message),
      policies: () => Object.fromEntries([...this.apps.values()].map((app) => [app.name, app.spec.logs])),
    });
    this.instances = new InstanceControl({
      table: this.table,
      home: this.paths.home,
      relay: this.relay,
      cgroups: this.cgroups,
      finderFor: (instance) => this.monitor.finderFor(instance),
      log: (name, message) => this.log(name === null ? null : (this.apps.get(name) ?? null), message),
    });
    this.starting = {
      host: this,
      apps: this.apps,
      features: this.features,
      persist: () => this.persist(),
      persistNow: () => this.persistNow(),
      resolve: (target) => this.resolve(target),
      log,
    };
    this.sweeper = new OrphanSweeper({
      table: this.table,
      events: this.events,
      home: this.paths.home,
      ownView: () => this.ownView(),
      optedOut: () => new Set([...this.apps.values()].filter((app) => !app.spec.reap).map((app) => app.name)),
      unmanagedPatterns: () => this.settings.unmanaged,
      log: (message) => this.log(null, message),
    });
  }

  // ---- lifecycle of the supervisor itself ----

  /**
   * Rebuilds the apps from the registry (see restore.ts), ends every other tree of this home that is
   * not live, and only then starts what should run.
   */
  async restore(registry: RegistryFile): Promise<void> {
    this.settings = { ...this.settings, ...registry.settings };
    // Found (or started) at once, in parallel with re-adoption; a relay of another version hands over
    // now. Every spawn waits for it (see log-sink.ts).
    void this.relay.ensure();
    await this.features.prepare(registry.apps.map((saved) => saved.spec), this.settings.notify);
    const { resume, revive } = await adoptRegistry(
      {
        host: this,
        apps: this.apps,
        table: this.table,
        home: this.paths.home,
        cgroups: this.cgroups,
        log: (app, message) => this.log(app, message),
        emit: (type, app, instance, reason, data) => this.emit(type, app, instance, reason, data),
        terminate: (instance, signal, graceMs, app) => this.terminate(instance, signal, graceMs, app),
      },
      registry,
    );
    this.registry.enable();
    // Before anything starts: what is left of instances that are not live now (an intended spawn whose
    // root already died, a tree the registry never recorded) is ended like any orphan.
    await this.sweeper.sweepNow();
    await this.endStaleCgroups();
    this.persist();
    for (const { app, previous } of resume) app.resumeAfterGone(previous);
    const finished = await Promise.allSettled(revive.map((app) => app.revive()));
    for (const outcome of finished) if (outcome.status === 'rejected') this.log(null, `after re-adoption: ${(outcome.reason as Error).message}`);
  }

  startTicking(): void {
    this.tick();
    this.ticker = setInterval(() => this.tick(), this.options.tickMs);
    this.sweeper.every(this.settings.reapIntervalMs);
  }

  /**
   * Stops timers and writes the registry; the apps' processes keep running for the next daemon, and so
   * does the relay, unless `everything` (`agentpm kill`): it then exits once the stopped apps' FIFOs are
   * drained, and the home's cgroup tree goes too.
   */
  shutdown(everything = false): void {
    if (everything) this.relay.retire();
    this.relay.close();
    if (this.ticker) clearInterval(this.ticker);
    this.sweeper.close();
    for (const app of this.apps.values()) app.dispose();
    this.features.closeAll();
    this.registry.finish();
    this.cgroups.shutdown(everything);
  }

  // ---- requests ----

  start(specs: AppSpec[], ifRunning: IfRunning): Promise<StartResult> {
    return this.saved(startApps(this.starting, specs, ifRunning));
  }

  /**
   * `agentpm start <name>` of a known app: its saved definition and environment, unchanged. A running
   * app is refused (`restart` is the word for it) unless --replace asks for its tree to be replaced.
   */
  startSaved(names: string[], ifRunning: 'refuse' | 'replace'): Promise<StartResult> {
    return this.saved(startSavedApps(this.starting, names, ifRunning));
  }

  /** `agentpm save`: a snapshot of the app list (definitions and whether each should run). */
  save(): SaveResult {
    const apps = [...this.apps.values()].map((app) => ({ spec: app.spec, desired: app.active ? 'running' : app.desired }));
    writeDump(this.paths.dump, apps);
    return { file: this.paths.dump, apps: apps.map((app) => app.spec.name) };
  }

  /** `agentpm resurrect`: starts the saved apps that should run, never a second tree of a running one. */
  resurrect(): Promise<ResurrectResult> {
    return this.saved(resurrectApps(this.starting, this.paths.dump));
  }

  /** Dependents before their dependencies (dependsOn), each wave in parallel. */
  stop(target: Target): Promise<string[]> {
    const apps = this.resolve(target);
    return this.saved(
      (async () => {
        const failures: unknown[] = [];
        for (const wave of stopWaves(apps, graphOfApps(this.apps.values()))) {
          // One app that cannot be stopped does not keep the next wave running.
          for (const outcome of await Promise.allSettled(wave.map((app) => app.stop()))) if (outcome.status === 'rejected') failures.push(outcome.reason);
        }
        if (failures.length > 0) throw failures[0];
        return apps.map((app) => app.name);
      })(),
    );
  }

  /** In start order: an app restarted after its dependencies waits until they are ready again. */
  restart(target: Target): Promise<string[]> {
    const apps = startOrder(this.resolve(target), graphOfApps(this.apps.values()));
    return this.saved(
      (async () => {
        for (const app of apps) await app.restart();
        return apps.map((app) => app.name);
      })(),
    );
  }

  delete(target: Target): Promise<string[]> {
    return this.saved(this.deleteApps(target));
  }

  private async deleteApps(target: Target): Promise<string[]> {
    const apps = this.resolve(target);
    refuseOrphaningDelete(apps.map((app) => app.name), this.apps);
    const outcomes = await Promise.allSettled(apps.map((app) => app.remove()));
    for (const app of apps) {
      // Each app retired by its own remove() (or by a delete that ran first) leaves the registry.
      if (!app.disposed || this.apps.get(app.name) !== app) continue;
      this.features.forget(app.name);
      this.cgroups.removeApp(app.name);
      this.apps.delete(app.name);
      this.monitor.forget(app.name);
    }
    this.persist();
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    return apps.map((app) => app.name);
  }

  async signal(name: string, signal: NodeJS.Signals): Promise<string[]> {
    const [app] = this.resolve({ names: [name] });
    if (app) await app.signal(signal);
    return [name];
  }

  get tickMs(): number {
    return this.options.tickMs;
  }

  get appCount(): number {
    return this.apps.size;
  }

  list(): AppSummary[] {
    this.monitor.fresh();
    return [...this.apps.values()].map((app) => summarize(app, this.monitor.figuresOf(app.name), this.cgroups.info.backend));
  }

  async show(name: string): Promise<AppDetail> {
    this.monitor.fresh();
    const [app] = this.resolve({ names: [name] });
    if (!app) throw new AgentpmError('unknown-app', `no app named ${name}`);
    return describe(app, this.monitor.figuresOf(app.name), {
      home: this.paths.home,
      table: this.table,
      relay: this.relay,
      unrotated: this.instances.unrotated,
      idleContainment: this.cgroups.info.backend,
      nextScheduledRestart: () => this.features.nextScheduledRestart(app.name),
    });
  }

  /** The relay for `daemon status`, or why there is none. */
  relayStatus(): Promise<{ relay: RelayStatus | null; relayProblem: string | null; unrotated: { app: string; instance: string; why: string }[] }> {
    return relayStatus(this.relay, this.instances.unrotated, (name) => this.apps.get(name)?.instance?.id);
  }

  /** `agentpm flush`: by the relay, which owns the files; by the daemon itself when there is none. */
  async flush(target: Target): Promise<FlushResult> {
    return flushLogs(this.relay, this.paths.home, this.resolve(target).map((app) => app.name), (message) => this.log(null, message));
  }

  /** `agentpm reap`: by hand, so apps with `reap: false` are included. */
  async reap(options: ReapOptions): Promise<ReapResult> {
    if (options.app !== null) this.resolve({ names: [options.app] });
    const result = await this.sweeper.reapNow(options);
    if (!options.dryRun) await this.endStaleCgroups();
    return result;
  }

  /** Global alert hooks load the alerter before the answer, so the next event reaches them. */
  async updateSettings(update: Partial<DaemonSettings>): Promise<DaemonSettings> {
    this.settings = { ...this.settings, ...update };
    this.persistNow();
    if (this.ticker) this.sweeper.every(this.settings.reapIntervalMs);
    const preparing = this.features.prepare([], this.settings.notify);
    if (preparing) await preparing;
    return this.settings;
  }

  /** `agentpm notify test`: a sample event through the app's hooks and the global ones. */
  async notifyTest(app: string | null): Promise<NotifyTestResult> {
    if (app !== null) this.resolve({ names: [app] });
    return this.features.notifyTest(app);
  }

  recentEvents(app: string | null, limit: number): AgentEvent[] {
    if (app !== null) this.resolve({ names: [app] });
    return this.events.recent(app, limit);
  }

  // ---- AppHost ----

  spawn(spec: AppSpec, instanceId: string): Promise<Instance> {
    return this.instances.spawn(spec, instanceId);
  }

  terminate(instance: Instance, signal: NodeJS.Signals, graceMs: number, app = this.appOf(instance)): Promise<{ seen: number; survivors: number }> {
    return this.instances.terminate(instance, signal, graceMs, app);
  }

  isFrozen(instance: Instance): boolean {
    return this.instances.isFrozen(instance);
  }

  contain(instance: Instance): Promise<{ seen: number; survivors: number }> {
    return this.instances.contain(instance);
  }

  terminateSubtrees(instance: Instance, roots: { pid: number; startTime: number }[], graceMs: number): Promise<number> {
    return this.instances.terminateSubtrees(instance, roots, graceMs);
  }

  waitingFor(app: App): string[] {
    return notReady(app, this.apps, Date.now());
  }

  oomKillRose(instance: Instance): boolean {
    return this.monitor.oomKillRose(instance);
  }

  changed(app: App): void {
    if (app.instance === null) {
      this.monitor.forget(app.name);
      // After every stop, restart and crash: sweep for whatever may have escaped the instance.
      if (this.registry.active && this.ticker) this.sweeper.schedule(250);
    }
    this.monitor.invalidate(); // the next `ls` must see the new tree
    this.features.sync(app); // watchers, health checks, cron restarts follow the app's state
    this.persist();
  }

  emit(type: EventType, app: App, instance: string | null, reason: string | null, data: Record<string, unknown> = {}): void {
    this.events.emit(type, app.name, instance, reason, data);
  }

  log(app: App | null, message: string): void {
    const line = `${new Date().toISOString()} ${app ? `[${app.name}] ` : ''}${maskText(message)}\n`;
    try {
      appendOwnedFile(this.paths.daemonLog, line);
    } catch {
      // the daemon log is best effort; supervision must go on without it
    }
  }

  // ---- internals ----

  private ownView(): HomeView {
    const live = [...this.apps.values()].flatMap((app) => {
      if (app.instance) return [instanceRef(app.instance)];
      // Protection only: the reaper never signals members of a live instance.
      if (app.held) return [{ id: app.held.id, rootPid: app.held.pid, rootStartTime: app.held.startTime, rootIsChild: true, followDetached: true }];
      // Being spawned (the exec shim entering its cgroup): its processes carry a tag no instance has yet.
      if (app.spawning) return [{ id: app.spawning.id, rootPid: 0, rootStartTime: 0, rootIsChild: false, followDetached: true }];
      return [];
    });
    return { home: this.paths.home, apps: new Set(this.apps.keys()), live };
  }

  private resolve(target: Target): App[] {
    if ('all' in target) return [...this.apps.values()];
    const missing = target.names.filter((name) => !this.apps.has(name));
    if (missing.length > 0) {
      const known = [...this.apps.keys()];
      throw new AgentpmError(
        'unknown-app',
        `no app named ${missing.join(', ')}${known.length > 0 ? ` (known: ${known.join(', ')})` : ' (no apps registered; start one with `agentpm start <script>`)'}`,
      );
    }
    return target.names.map((name) => this.apps.get(name) as App);
  }

  get containment(): ContainmentInfo {
    return this.cgroups.info;
  }

  /** Cgroups of this home no live instance owns: their processes are ended, the cgroups removed. */
  private async endStaleCgroups(): Promise<void> {
    const live = new Set([...this.apps.values()].flatMap((app) => [app.instance?.id, app.held?.id, app.spawning?.id].filter((id): id is string => id !== undefined)));
    const ended = await this.cgroups.endStale(live);
    if (ended > 0) this.log(null, `ended ${ended} process(es) in cgroups of instances that are gone`);
  }

  private appOf(instance: Instance): string {
    return [...this.apps.values()].find((app) => app.instance === instance)?.name ?? '';
  }

  tickCost(): TickCost {
    return this.monitor.tickCost();
  }

  private tick(): void {
    this.registry.retry();
    this.monitor.tick();
  }

  /** After the figures of a tick: stuck and waiting apps, hung apps, then the memory guard. */
  private afterTick(at: number): void {
    for (const app of this.apps.values()) app.recoverIfStuck();
    for (const app of this.apps.values()) app.releaseIfReady();
    this.features.checkHangs(this.apps.values(), at);
    this.guard.check(this.settings.guard);
  }

  private persist(): void {
    this.registry.persist();
  }

  persistNow(): void {
    this.registry.persistNow();
  }

  private saved<T>(operation: Promise<T>): Promise<T> {
    return this.registry.saved(operation);
  }
}
