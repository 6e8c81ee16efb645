/**
 * The registry of apps in memory, and everything the apps need from the machine: spawning, ending
 * trees, the monitor tick over the process table, limits, events, and persistence after every change.
 */
import { appendOwnedFile, readOwnedFile } from '../safe-files.js';
import { AgentpmError } from '../errors.js';
import { maskCommand, maskDefinition, maskText } from '../secrets.js';
import { appLogPaths, type HomePaths } from '../home.js';
import { streamSizes, truncateStreamFiles } from '../logs/maintenance.js';
import { RelayLink } from './relay-link.js';
import { openLogSink } from './log-sink.js';
import type {
  AgentEvent,
  AppDetail,
  AppLogInfo,
  AppSpec,
  AppSummary,
  DaemonSettings,
  EventType,
  FlushResult,
  LogStream,
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
  TreeProcess,
} from '../protocol.js';
import { parseAppSpec, sameDefinition } from './requests.js';
import { findIntendedRoot } from './intent.js';
import { DEFAULT_REAP_INTERVAL_MS } from '../config/defaults.js';
import type { HomeView } from '../reap/find.js';
import { OrphanSweeper } from './sweeper.js';
import { freezeAndKill } from '../proc/contain.js';
import { subtreesFinder, terminateTree, type MemberFinder } from '../proc/kill.js';
import { attribute, treeOrder, type InstanceRef } from '../proc/tree.js';
import { isAlive, type ProcInfo, type ProcSnapshot, type ProcessTable } from '../proc/table.js';
import { App, type AppHost, type Instance } from './app.js';
import type { EventBus } from './events.js';
import { readOomKillCount } from './forensics.js';
import { evaluateLimits, FRESH_BREACH_STATE, type BreachState } from './limits.js';
import { CpuMeter, EMPTY_FIGURES, measureTree, type TreeFigures } from './monitor.js';
import { REGISTRY_VERSION, saveRegistry, unwritable, upgradeSpec, writeAtomically, type PersistedInstance, type RegistryFile } from './registry.js';
import { spawnInstance } from './spawn.js';
import { Watchers } from './watch.js';
import { Notifier, parseNotifyRate } from './notify.js';
import { HealthChecks } from './health.js';
import { pickVictim, underPressure, type GuardPhase } from './guard.js';
import { readMachineMemory } from '../proc/machine.js';
import { graphOfApps, notReady, orderStart, refuseOrphaningDelete } from './dependencies.js';
import { startOrder, stopWaves } from './order.js';
import { isReady } from './readiness.js';
import { RestartSchedules } from './schedule.js';
import { InstanceContainment } from '../cgroup/supervision.js';
import { kernelLimitsFor } from '../cgroup/limits.js';
import type { Containment, ContainmentInfo, InstanceCgroup } from '../cgroup/types.js';

export interface SupervisorOptions {
  paths: HomePaths;
  table: ProcessTable;
  events: EventBus;
  tickMs: number;
  containment: Containment;
}

/** A snapshot younger than this answers `ls` without a new scan. */
const FRESH_SNAPSHOT_MS = 200;
/** Tick durations kept for `daemon status` (a minute at the default tick). */
const TICK_COSTS_KEPT = 120;

export class Supervisor implements AppHost {
  readonly table: ProcessTable;
  readonly events: EventBus;
  private readonly apps = new Map<string, App>();
  private tickDurations: number[] = [];
  private lastScanProcesses = 0;
  /** Never a member of any tree: a CLI run inside an app may have launched this daemon as its child. */
  private readonly untouchable: ReadonlySet<number> = new Set([process.pid]);
  private readonly paths: HomePaths;
  private figures = new Map<string, TreeFigures>();
  private breaches = new Map<string, { instance: string; state: BreachState }>();
  private readonly cpu: CpuMeter;
  private lastScanAt = 0;
  private oomKillSamples: (number | null)[] = [];
  private ticker: NodeJS.Timeout | undefined;
  private readonly sweeper: OrphanSweeper;
  private settings: DaemonSettings = { reapIntervalMs: DEFAULT_REAP_INTERVAL_MS, unmanaged: [], notify: [], guard: null, metrics: null };
  private persistEnabled = false;
  /** Why the last write of the registry failed; null once one succeeds. */
  private persistFailure: AgentpmError | null = null;
  private readonly watchers: Watchers;
  private readonly notifier: Notifier;
  private readonly health: HealthChecks;
  private readonly schedules = new RestartSchedules((name, message) => this.log(this.apps.get(name) ?? null, message));
  private guardPhase: GuardPhase = 'watching';
  /** The home's log relay: it owns the apps' log files. */
  readonly relay: RelayLink;
  /** Instances whose logs are written directly (no relay), and why: `show` says so. */
  private readonly unrotated = new Map<string, { instance: string; why: string }>();
  private readonly cgroups: InstanceContainment;

  constructor(private readonly options: SupervisorOptions) {
    this.paths = options.paths;
    this.table = options.table;
    this.events = options.events;
    this.cpu = new CpuMeter(options.table.clockTicksPerSecond);
    this.cgroups = new InstanceContainment(options.containment, options.table, this.untouchable);
    this.watchers = new Watchers(this, options.paths.home);
    this.notifier = new Notifier(
      options.events,
      {
        home: options.paths.home,
        specOf: (name) => this.apps.get(name)?.spec,
        globalHooks: () => this.settings.notify,
        log: (message) => this.log(null, message),
      },
      { rate: parseNotifyRate(process.env['AGENTPM_NOTIFY_RATE']) },
    );
    this.health = new HealthChecks(this, options.paths.home);
    this.relay = new RelayLink({
      home: options.paths.home,
      daemonLog: options.paths.daemonLog,
      event: (reason, data) => this.events.emit('relay', null, null, reason, data),
      log: (message) => this.log(null, message),
      policies: () => Object.fromEntries([...this.apps.values()].map((app) => [app.name, app.spec.logs])),
    });
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
   * Rebuilds the apps from the registry: adopts live instances (registered, or only intended: see
   * SpawnIntent), ends what is left of dead ones and every other tree of this home that is not live,
   * and only then starts what should run. Exactly one tree per app, whenever the last daemon died.
   */
  async restore(registry: RegistryFile): Promise<void> {
    this.settings = { ...this.settings, ...registry.settings };
    // Found (or started) at once, in parallel with re-adoption; a relay of another version hands over
    // now. Every spawn waits for it (see log-sink.ts).
    void this.relay.ensure();
    const revive: App[] = [];
    const resume: { app: App; previous: PersistedInstance }[] = [];
    const sameBoot = registry.bootId === null || registry.bootId === this.table.bootId;
    const snapshot = this.table.scan();
    for (const saved of registry.apps) {
      if (!sameBoot) {
        saved.instance = null;
        saved.spawning = null;
      }
      const app = new App(saved.spec, this);
      app.desired = saved.desired;
      app.restarts = saved.restarts;
      app.history = saved.history;
      app.exits = saved.exits;
      this.apps.set(app.name, app);
      const identity = saved.instance ? this.identify(saved.instance.id, saved.instance.pid, saved.instance.startTime) : 'gone';
      if (saved.instance && identity === 'unproven') {
        // Never signalled without its tag, and never a second tree beside what may be the first.
        const message =
          `pid ${saved.instance.pid} has the start time recorded for ${app.name}'s root but not agentpm's tag (a root that ` +
          `rewrites its environment, as setproctitle does, or a registry that is not this daemon's). It was neither adopted ` +
          `nor signalled, and no second copy was started. If it is ${app.name}, end it yourself, then run \`agentpm restart ${app.name}\`.`;
        this.log(app, message);
        this.emit('adopt', app, saved.instance.id, 'unproven', { pid: saved.instance.pid, message });
        app.hold(saved.instance);
        continue;
      }
      const intended = saved.spawning ? findIntendedRoot(this.table, snapshot, this.paths.home, app.spec, saved.spawning) : null;
      if (saved.instance && identity === 'ours') {
        // A tree the previous daemon was in the middle of ending (a stop, a restart, freezing a fork
        // storm) is adopted as `stopping`: the first tick finishes the job, rather than the tree running
        // on, perhaps frozen, as if online.
        const ending = saved.desired === 'stopped' || saved.status === 'stopping';
        app.adopt({ ...saved.instance, exited: null, followDetached: saved.spec.reap, rootSeenAlive: this.ticksNowOr(saved.instance.startTime) }, ending);
        // Cannot happen (a spawn waits for the old tree to be gone), but if it did: one tree per app.
        if (saved.spawning) await this.killLeftovers(app, { id: saved.spawning.id, pid: intended?.pid ?? 0, startTime: intended?.startTime ?? 0, startedAt: saved.spawning.at, cgroup: this.cgroups.expected(app.name, saved.spawning.id) }, true);
        continue;
      }
      if (saved.instance) await this.killLeftovers(app, saved.instance);
      if (intended && saved.spawning) {
        // The previous daemon died between the spawn and recording it: the tree its tags name is adopted.
        const cgroup = this.cgroups.expected(app.name, saved.spawning.id);
        const instance: Instance = { id: saved.spawning.id, pid: intended.pid, startTime: intended.startTime, startedAt: this.table.startedAtMs(intended), exited: null, followDetached: saved.spec.reap, rootSeenAlive: this.ticksNowOr(intended.startTime), ...(cgroup ? { cgroup } : {}) };
        this.log(app, `adopted instance ${instance.id} (pid ${instance.pid}), spawned by the previous daemon just before it died`);
        app.adopt(instance, saved.desired === 'stopped');
        continue;
      }
      if (saved.status === 'errored') app.state = { id: 'errored' };
      else if (saved.desired !== 'running') continue;
      else if (saved.nextStartAt && saved.nextStartAt > Date.now()) app.resumeBackoff(saved.nextStartAt);
      else if (saved.instance) resume.push({ app, previous: saved.instance });
      else revive.push(app);
    }
    this.persistEnabled = true;
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
    this.watchers.closeAll();
    this.notifier.close();
    this.health.closeAll();
    this.schedules.closeAll();
    this.persist();
    this.persistEnabled = false;
    this.cgroups.shutdown(everything);
  }

  // ---- requests ----

  start(specs: AppSpec[], ifRunning: IfRunning): Promise<StartResult> {
    return this.saved(this.startApps(specs, ifRunning));
  }

  private async startApps(unordered: AppSpec[], ifRunning: IfRunning): Promise<StartResult> {
    const names = unordered.map((spec) => spec.name);
    const duplicate = names.find((name, index) => names.indexOf(name) !== index);
    if (duplicate) throw new AgentpmError('invalid-argument', `app name ${duplicate} appears twice in one start; names must be unique`);
    const specs = orderStart(unordered, this.apps);
    if (ifRunning === 'refuse') {
      const running = specs.filter((spec) => this.apps.get(spec.name)?.active);
      if (running.length > 0) {
        const list = running.map((spec) => spec.name).join(', ');
        throw new AgentpmError('already-running', `${list} already running; use \`agentpm restart ${list}\`, or start with --replace`);
      }
    }
    const result: StartResult = { apps: names, started: [], restarted: [], unchanged: [] };
    // Every new app is on disk, meant to run, before the first spawn: a daemon that dies half-way
    // through a 20-app config leaves none of them lost (the next daemon starts what did not start yet).
    const added = specs.filter((spec) => !this.apps.has(spec.name)).map((spec) => new App(spec, this));
    for (const app of added) {
      app.desired = 'running';
      this.apps.set(app.name, app);
    }
    if (added.length > 0) {
      try {
        this.persistNow();
      } catch (error) {
        for (const app of added) this.apps.delete(app.name);
        throw error;
      }
    }
    for (const spec of specs) {
      const fresh = added.find((app) => app.name === spec.name);
      if (fresh) {
        try {
          await fresh.start();
        } catch (error) {
          // A start that failed outright registers nothing, nor do the new apps after it (as if the
          // start had stopped there); what was queued behind them is refused.
          for (const app of added.slice(added.indexOf(fresh))) {
            if (app !== fresh && app.status !== 'stopped') continue;
            app.dispose();
            if (this.apps.get(app.name) === app) this.apps.delete(app.name);
          }
          this.persist();
          throw error;
        }
        result.started.push(spec.name);
        continue;
      }
      const existing = this.apps.get(spec.name);
      if (existing?.active) {
        if (ifRunning === 'apply' && sameDefinition(existing.spec, spec)) {
          result.unchanged.push(spec.name);
          continue;
        }
        // A new definition of a running app: its whole tree ends before the new one starts.
        await existing.restart(spec);
        result.restarted.push(spec.name);
      } else if (existing) {
        await existing.start(spec);
        result.started.push(spec.name);
      }
    }
    await this.watchers.ready(names); // once start answers, a change to a watched file is seen
    return result;
  }

  /**
   * `agentpm start <name>` of a known app: its saved definition and environment, unchanged. A running
   * app is refused (`restart` is the word for it) unless --replace asks for its tree to be replaced.
   */
  startSaved(names: string[], ifRunning: 'refuse' | 'replace'): Promise<StartResult> {
    return this.saved(this.startSavedApps(names, ifRunning));
  }

  private async startSavedApps(names: string[], ifRunning: 'refuse' | 'replace'): Promise<StartResult> {
    const apps = this.resolve({ names });
    const running = apps.filter((app) => app.active).map((app) => app.name);
    if (ifRunning === 'refuse' && running.length > 0) {
      const list = running.join(', ');
      throw new AgentpmError('already-running', `${list} already running; use \`agentpm restart ${list}\``);
    }
    const result: StartResult = { apps: names, started: [], restarted: [], unchanged: [] };
    for (const app of apps) {
      if (app.active) {
        await app.restart();
        result.restarted.push(app.name);
      } else {
        await app.start();
        result.started.push(app.name);
      }
    }
    await this.watchers.ready(names);
    return result;
  }

  /** `agentpm save`: a snapshot of the app list (definitions and whether each should run). */
  save(): SaveResult {
    const apps = [...this.apps.values()].map((app) => ({ spec: app.spec, desired: app.active ? 'running' : app.desired }));
    try {
      writeAtomically(this.paths.dump, JSON.stringify({ version: 1, savedAt: new Date().toISOString(), apps }, null, 1));
    } catch (error) {
      throw unwritable(this.paths.dump, error, 'The previous dump, if any, is unchanged.');
    }
    return { file: this.paths.dump, apps: apps.map((app) => app.spec.name) };
  }

  /** `agentpm resurrect`: starts the saved apps that should run, never a second tree of a running one. */
  resurrect(): Promise<ResurrectResult> {
    return this.saved(this.resurrectSaved());
  }

  private async resurrectSaved(): Promise<ResurrectResult> {
    let saved: { apps: { spec: AppSpec; desired: string }[] };
    try {
      saved = JSON.parse(readOwnedFile(this.paths.dump).toString('utf8')) as typeof saved;
    } catch (error) {
      throw new AgentpmError('invalid-argument', `cannot read ${this.paths.dump} (${(error as Error).message}); run \`agentpm save\` first`);
    }
    const result: ResurrectResult = { file: this.paths.dump, started: [], skipped: [] };
    // Dependencies first (dependsOn), whatever order the dump has them in.
    const dumped = saved.apps.filter((app) => app.desired === 'running').map((app) => ({ ...app, name: String(app.spec?.name) }));
    const wanted = startOrder(dumped, new Map(dumped.map((app) => [app.name, Array.isArray(app.spec?.dependsOn) ? app.spec.dependsOn : []])));
    for (const { spec } of wanted) {
      const parsed = parseAppSpec(upgradeSpec(spec));
      if (!parsed) {
        this.log(null, `resurrect: skipped an invalid saved definition (${String(spec?.name)})`);
        continue;
      }
      if (this.apps.get(parsed.name)?.active) {
        result.skipped.push(parsed.name);
        continue;
      }
      await this.startApps([parsed], 'refuse');
      result.started.push(parsed.name);
    }
    return result;
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
      this.watchers.close(app.name);
      this.health.stop(app.name);
      this.schedules.stop(app.name);
      this.cgroups.removeApp(app.name);
      this.apps.delete(app.name);
      this.figures.delete(app.name);
      this.breaches.delete(app.name);
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
    this.refreshIfStale();
    return [...this.apps.values()].map((app) => this.summary(app));
  }

  async show(name: string): Promise<AppDetail> {
    this.refreshIfStale();
    const [app] = this.resolve({ names: [name] });
    if (!app) throw new AgentpmError('unknown-app', `no app named ${name}`);
    const figures = this.figures.get(app.name) ?? EMPTY_FIGURES;
    const byPid = new Map(figures.members.map((item) => [item.proc.pid, item]));
    const tree: TreeProcess[] = treeOrder(figures.members.map((item) => item.proc)).map(({ proc }) => ({
      pid: proc.pid,
      ppid: proc.ppid,
      rss: byPid.get(proc.pid)?.memory ?? proc.rssBytes,
      cpu: byPid.get(proc.pid)?.cpu ?? 0,
      cmd: maskCommand(this.table.cmdline(proc)),
    }));
    const { baseEnv: _hidden, ...spec } = app.spec;
    return {
      ...this.summary(app),
      instance: app.instance?.id ?? null,
      definition: maskDefinition(spec),
      logs: appLogPaths(this.paths.home, app.name),
      logFiles: await this.logInfo(app),
      tree,
      exits: app.exits,
      nextScheduledRestart: isoOrNull(this.schedules.nextRun(app.name)),
    };
  }

  /** Each stream's files and sizes, the policy, and whether the current instance's logs go through the relay. */
  private async logInfo(app: App): Promise<AppLogInfo> {
    const status = await this.relay.status();
    const paths = appLogPaths(this.paths.home, app.name);
    const unrotated = this.unrotated.get(app.name);
    const notRotatedWhy = unrotated && unrotated.instance === app.instance?.id ? unrotated.why : null;
    const stream = (name: LogStream) => ({
      path: paths[name],
      ...streamSizes(paths[name]),
      dropped: status ? (status.streams.find((entry) => entry.app === app.name && entry.stream === name)?.dropped ?? 0) : null,
    });
    return { policy: app.spec.logs, rotated: notRotatedWhy === null, notRotatedWhy, out: stream('out'), err: stream('err') };
  }

  /** The relay for `daemon status`, or why there is none. */
  async relayStatus(): Promise<{ relay: RelayStatus | null; relayProblem: string | null; unrotated: { app: string; instance: string; why: string }[] }> {
    const relay = await this.relay.status();
    const unrotated = [...this.unrotated.entries()]
      .filter(([name, entry]) => this.apps.get(name)?.instance?.id === entry.instance)
      .map(([app, entry]) => ({ app, ...entry }));
    return { relay, relayProblem: relay ? null : (this.relay.problem ?? 'no log relay is connected'), unrotated };
  }

  /** `agentpm flush`: by the relay, which owns the files; by the daemon itself when there is none. */
  async flush(target: Target): Promise<FlushResult> {
    const names = this.resolve(target).map((app) => app.name);
    try {
      await this.relay.request({ type: 'flush', apps: names });
      return { apps: names, by: 'relay' };
    } catch (error) {
      this.log(null, `flush without the relay (${(error as Error).message})`);
    }
    for (const name of names) {
      const paths = appLogPaths(this.paths.home, name);
      truncateStreamFiles(paths.out);
      truncateStreamFiles(paths.err);
    }
    return { apps: names, by: 'daemon' };
  }

  /** `agentpm reap`: by hand, so apps with `reap: false` are included. */
  async reap(options: ReapOptions): Promise<ReapResult> {
    if (options.app !== null) this.resolve({ names: [options.app] });
    const result = await this.sweeper.reapNow(options);
    if (!options.dryRun) await this.endStaleCgroups();
    return result;
  }

  updateSettings(update: Partial<DaemonSettings>): DaemonSettings {
    this.settings = { ...this.settings, ...update };
    this.persistNow();
    if (this.ticker) this.sweeper.every(this.settings.reapIntervalMs);
    return this.settings;
  }

  /** `agentpm notify test`: a sample event through the app's hooks and the global ones. */
  async notifyTest(app: string | null): Promise<NotifyTestResult> {
    if (app !== null) this.resolve({ names: [app] });
    return this.notifier.test(app);
  }

  recentEvents(app: string | null, limit: number): AgentEvent[] {
    if (app !== null) this.resolve({ names: [app] });
    return this.events.recent(app, limit);
  }

  // ---- AppHost ----

  async spawn(spec: AppSpec, instanceId: string): Promise<Instance> {
    const cgroup = this.cgroups.create(spec, instanceId, (message) => this.log(this.apps.get(spec.name) ?? null, message));
    const sink = await openLogSink(this.relay, this.paths.home, spec.name, instanceId, spec.logs);
    let spawned;
    try {
      spawned = await spawnInstance(spec, this.paths.home, this.table, instanceId, sink, cgroup);
    } catch (error) {
      if (cgroup) await this.cgroups.contain({ cgroup });
      throw error;
    } finally {
      sink.release();
    }
    if (sink.notRotatedWhy === null) this.unrotated.delete(spec.name);
    else {
      this.unrotated.set(spec.name, { instance: instanceId, why: sink.notRotatedWhy });
      this.log(null, `${spec.name}: instance ${instanceId} writes its logs directly, unrotated: ${sink.notRotatedWhy}`);
    }
    const instance: Instance = { id: spawned.id, pid: spawned.pid, startTime: spawned.startTime, startedAt: spawned.startedAt, exited: spawned.exited, followDetached: spec.reap, rootSeenAlive: spawned.startTime, ...(cgroup ? { cgroup } : {}) };
    // The exit is reported right after the root was reaped: until then its pid was not free for reuse,
    // so its session is ours up to now.
    void spawned.exited.then(() => {
      instance.rootSeenAlive = this.ticksNowOr(instance.rootSeenAlive ?? instance.startTime);
    });
    return instance;
  }

  async terminate(instance: Instance, signal: NodeJS.Signals, graceMs: number, app = this.appOf(instance)): Promise<{ seen: number; survivors: number }> {
    if (isContained(instance)) return this.cgroups.terminate(app, instance, signal, graceMs);
    const result = await terminateTree(this.table, this.finderFor(instance), { signal, graceMs, rememberMembers: instance.followDetached });
    return { seen: result.seen, survivors: result.survivors.length };
  }

  isFrozen(instance: Instance): boolean {
    if (isContained(instance) && this.cgroups.isFrozen(instance)) return true;
    return this.finderFor(instance)(this.table.scan()).some((proc) => proc.state === 'T');
  }

  async contain(instance: Instance): Promise<{ seen: number; survivors: number }> {
    if (isContained(instance)) return this.cgroups.contain(instance);
    const result = await freezeAndKill(this.table, this.finderFor(instance));
    return { seen: result.frozen, survivors: result.survivors };
  }

  async terminateSubtrees(instance: Instance, roots: { pid: number; startTime: number }[], graceMs: number): Promise<number> {
    const finder = subtreesFinder(this.finderFor(instance), roots);
    const result = await terminateTree(this.table, finder, { signal: 'SIGTERM', graceMs });
    return result.seen;
  }

  waitingFor(app: App): string[] {
    return notReady(app, this.apps, Date.now());
  }

  oomKillRose(instance: Instance): boolean {
    // Inside the instance's own cgroup the count is exact: no other process's OOM kill is mistaken for its.
    const own = this.cgroups.oomKills(instance);
    if (own !== null) return own > 0;
    const now = readOomKillCount();
    const before = this.oomKillSamples[0];
    return now !== null && before !== null && before !== undefined && now > before;
  }

  changed(app: App): void {
    if (app.instance === null) {
      this.figures.delete(app.name);
      this.breaches.delete(app.name);
      // After every stop, restart and crash: sweep for whatever may have escaped the instance.
      if (this.persistEnabled && this.ticker) this.sweeper.schedule(250);
    }
    this.lastScanAt = 0; // the next `ls` must see the new tree
    this.watchers.sync(app); // watch while an app with `watch` is meant to run
    this.health.sync(app); // health checks and hang detection while it is online
    this.schedules.sync(app); // armed while its definition has a cronRestart
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

  private ticksNowOr(fallback: number): number {
    try {
      return this.table.ticksNow();
    } catch {
      return fallback;
    }
  }

  private finderFor(instance: Instance): MemberFinder {
    return (snapshot: ProcSnapshot) => this.attribute(snapshot, [instance]).get(instance.id) ?? [];
  }

  /**
   * Members of each instance: its cgroup's when it has one, else the /proc inference's. Notes which roots
   * were seen alive (that bounds their sessions, see tree.ts).
   */
  private attribute(snapshot: ProcSnapshot, instances: Instance[]): Map<string, ProcInfo[]> {
    const inferred = instances.filter((instance) => !isContained(instance));
    const members = attribute(snapshot, inferred.map(instanceRef), (proc) => this.table.tags(proc), this.paths.home, { exclude: this.untouchable });
    for (const instance of instances) if (isContained(instance)) members.set(instance.id, this.cgroups.members(snapshot, instance));
    // Every process in the snapshot started before the scan, during which the root was alive.
    let latestStart = 0;
    for (const proc of snapshot.byPid.values()) latestStart = Math.max(latestStart, proc.startTime);
    for (const instance of instances) {
      const root = members.get(instance.id)?.[0];
      if (root && root.pid === instance.pid && root.startTime === instance.startTime) instance.rootSeenAlive = Math.max(instance.rootSeenAlive ?? 0, latestStart);
    }
    return members;
  }

  /**
   * pid + start time + tag: the only proof that a remembered process is still the one agentpm started.
   * `unproven`: the pid and start time match (so it is no reuse of the pid within this boot) but the tag
   * is missing.
   */
  private identify(id: string, pid: number, startTime: number): 'ours' | 'gone' | 'unproven' {
    const proc = this.table.read(pid);
    if (!proc || !isAlive(proc) || proc.startTime !== startTime) return 'gone';
    const tags = this.table.tags(proc, true);
    return tags?.instance === id && tags.home === this.paths.home ? 'ours' : 'unproven';
  }

  /** `unregistered`: a tree only an intent names: all of it goes, whatever the app's `reap` setting. */
  private async killLeftovers(app: App, instance: PersistedInstance, unregistered = false): Promise<void> {
    const ref: Instance = { ...instance, exited: null, followDetached: unregistered || app.spec.reap };
    const { seen } = await this.terminate(ref, app.spec.stopSignal as NodeJS.Signals, app.spec.killTimeoutMs, app.name);
    if (seen > 0) this.emit('leftovers-killed', app, instance.id, 'daemon-down', { count: seen });
  }

  private refreshIfStale(): void {
    if (Date.now() - this.lastScanAt > FRESH_SNAPSHOT_MS) this.scan(false);
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
    const sorted = [...this.tickDurations].sort((a, b) => a - b);
    const round = (value: number): number => Math.round(value * 100) / 100;
    return { samples: sorted.length, medianMs: round(sorted[Math.floor(sorted.length / 2)] ?? 0), maxMs: round(sorted.at(-1) ?? 0), processes: this.lastScanProcesses };
  }

  private tick(): void {
    if (this.persistFailure) this.persist();
    this.oomKillSamples = [...this.oomKillSamples, readOomKillCount()].slice(-2);
    try {
      const started = performance.now();
      this.scan(true);
      this.tickDurations = [...this.tickDurations.slice(1 - TICK_COSTS_KEPT), performance.now() - started];
    } catch (error) {
      // e.g. EMFILE: a scan that cannot read /proc decides nothing this tick, rather than seeing every tree gone.
      this.log(null, `monitor tick skipped: ${(error as Error).message}`);
    }
  }

  /**
   * One pass over the process table: per-app tree figures, exits of adopted roots and, on monitor ticks,
   * CPU and the limits. Costs one /proc scan plus attribution, whatever the number of apps.
   */
  private scan(tick: boolean): void {
    const snapshot = this.table.scan();
    this.lastScanAt = snapshot.at;
    this.lastScanProcesses = snapshot.byPid.size;
    const live = [...this.apps.values()].filter((app) => app.instance !== null);
    const members = this.attribute(snapshot, live.map((app) => app.instance as Instance));
    const figures = new Map<string, TreeFigures>();
    for (const app of live) {
      const instance = app.instance as Instance;
      const { newOomKills } = tick ? this.cgroups.tick(snapshot, app.spec, instance, (message) => this.log(app, message)) : { newOomKills: 0 };
      if (newOomKills > 0) this.emit('limit-breach', app, instance.id, 'memory-limit', { action: 'kernel-oom-kill', kills: newOomKills, limit: kernelLimitsFor(app.spec, null).memoryMaxBytes });
      const tree = measureTree(members.get(instance.id) ?? [], instance.pid, app.spec.memoryMetric, this.table, this.cpu, snapshot.at, tick);
      figures.set(app.name, tree);
      const rootAlive = tree.members.some((item) => item.proc.pid === instance.pid && item.proc.startTime === instance.startTime);
      // A root we spawned reports its own exit through the child handle; an adopted root is not our
      // child, so its exit is seen here.
      if (!rootAlive && instance.exited === null && app.status === 'online') app.rootExited(instance.id, null);
      if (tick && rootAlive && app.status === 'online' && !app.enforcing) this.checkLimits(app, instance, tree);
    }
    this.figures = figures;
    if (tick) {
      this.cpu.rotate();
      for (const app of this.apps.values()) app.recoverIfStuck();
      for (const app of this.apps.values()) app.releaseIfReady();
      this.health.checkHangs(this.apps.values(), snapshot.at);
      this.checkGuard();
    }
  }

  /** The memory-pressure guard (see guard.ts): one victim, then wait for memory to recover. */
  private checkGuard(): void {
    const guard = this.settings.guard;
    if (!guard) return;
    const memory = readMachineMemory();
    const pressure = underPressure(memory, guard);
    if (this.guardPhase === 'waiting-for-recovery') {
      if (pressure === null) {
        this.guardPhase = 'watching';
        this.events.emit('guard', null, null, 'recovered', { availableBytes: memory.availableBytes });
      }
      return;
    }
    if (pressure === null) return;
    const online = [...this.apps.values()].filter((app) => app.status === 'online' && !app.enforcing && app.instance);
    const victim = pickVictim(online.map((app) => ({ name: app.name, priority: app.spec.priority, memory: this.figures.get(app.name)?.memory ?? 0 })));
    const app = victim ? this.apps.get(victim.name) : undefined;
    const instance = app?.instance;
    if (!app || !instance) return;
    const action = app.spec.guardAction;
    this.log(null, `memory guard: ${pressure}; ${action === 'stop' ? 'stopping' : 'restarting'} ${app.name} (priority ${app.spec.priority}, tree ${victim?.memory} bytes), then waiting for memory to recover`);
    this.events.emit('guard', app.name, instance.id, 'memory-pressure', {
      availableBytes: memory.availableBytes,
      pressure: memory.pressureSomeAvg10,
      why: pressure,
      action,
      victim: app.name,
      treeBytes: victim?.memory ?? 0,
    });
    this.guardPhase = 'waiting-for-recovery';
    app.endFor(instance.id, 'memory-pressure', action);
  }

  private checkLimits(app: App, instance: Instance, tree: TreeFigures): void {
    if (app.spec.maxMemoryBytes === null && app.spec.maxChildren === null) return;
    const previous = this.breaches.get(app.name);
    const state = previous?.instance === instance.id ? previous.state : FRESH_BREACH_STATE;
    const { state: next, decision } = evaluateLimits(app.spec, tree, state);
    this.breaches.set(app.name, { instance: instance.id, state: next });
    if (decision.kind !== 'none') app.enforceLimit(instance.id, decision);
  }

  private summary(app: App): AppSummary {
    const figures = this.figures.get(app.name) ?? EMPTY_FIGURES;
    const instance = app.instance;
    return {
      name: app.name,
      status: app.status,
      pid: instance?.pid ?? null,
      restarts: app.restarts,
      uptimeMs: instance && app.status === 'online' ? Date.now() - instance.startedAt : null,
      memory: figures.memory,
      processes: figures.processes,
      children: figures.children,
      cpu: figures.cpu,
      health: app.spec.health && app.instance ? app.health : null,
      limits: { memory: app.spec.maxMemoryBytes, children: app.spec.maxChildren },
      lastExit: app.exits[0] ?? null,
      containment: instance ? (instance.cgroup?.backend ?? 'proc') : this.cgroups.info.backend,
      nextStartAt: app.nextStartAt ? new Date(app.nextStartAt).toISOString() : null,
      waitingFor: app.waitingFor,
      ready: isReady(app, Date.now()),
    };
  }

  /** Writes the registry; a failure is remembered (and retried every tick) for the request to report. */
  private persist(): void {
    if (!this.persistEnabled) return;
    try {
      this.persistNow();
    } catch {
      // remembered in persistFailure
    }
  }

  persistNow(): void {
    if (!this.persistEnabled) return;
    try {
      saveRegistry(this.paths.registry, {
        version: REGISTRY_VERSION,
        bootId: this.table.bootId,
        apps: [...this.apps.values()].map((app) => app.toPersisted()),
        settings: this.settings,
      });
      if (this.persistFailure) this.log(null, 'the registry is written again');
      this.persistFailure = null;
    } catch (error) {
      const first = this.persistFailure === null;
      this.persistFailure = unwritable(
        this.paths.registry,
        error,
        'Nothing new is started until it can be written (a spawn it could not record could run twice); the daemon retries on every tick, and what it did meanwhile is saved then.',
      );
      if (first) {
        this.log(null, this.persistFailure.message);
        this.events.emit('daemon', null, null, 'registry-unwritable', { message: this.persistFailure.message });
      }
      throw this.persistFailure;
    }
  }

  /**
   * A request whose changes could not be written fails, even though the daemon acted on them: the
   * caller must know that a daemon restart now would go back to the last registry on disk.
   */
  private async saved<T>(operation: Promise<T>): Promise<T> {
    const result = await operation;
    if (this.persistFailure) throw this.persistFailure;
    return result;
  }
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function isContained(instance: Instance): instance is Instance & { cgroup: InstanceCgroup } {
  return instance.cgroup !== undefined;
}

function instanceRef(instance: Instance): InstanceRef {
  return {
    id: instance.id,
    rootPid: instance.pid,
    rootStartTime: instance.startTime,
    rootIsChild: instance.exited !== null,
    followDetached: instance.followDetached,
    rootSeenAlive: instance.rootSeenAlive,
  };
}
