/**
 * The monitor tick: one scan of the process table, attribution of every process to its instance (its
 * cgroup's members, or the /proc inference), per-app tree figures, exits of adopted roots and the
 * per-app limits. `ls` and `show` read the figures of the last scan, fresh enough or re-scanned.
 */
import type { EventType, TickCost } from '../protocol.js';
import type { InstanceContainment } from '../cgroup/supervision.js';
import { kernelLimitsFor } from '../cgroup/limits.js';
import type { InstanceCgroup } from '../cgroup/types.js';
import type { MemberFinder } from '../proc/kill.js';
import { attribute, type InstanceRef } from '../proc/tree.js';
import type { ProcInfo, ProcSnapshot, ProcessTable } from '../proc/table.js';
import type { App, Instance } from './app.js';
import { readOomKillCount } from './forensics.js';
import { evaluateLimits, FRESH_BREACH_STATE, type BreachState } from './limits.js';
import { CpuMeter, EMPTY_FIGURES, measureTree, type TreeFigures } from './monitor.js';

/** A snapshot younger than this answers `ls` without a new scan. */
const FRESH_SNAPSHOT_MS = 200;
/** Tick durations kept for `daemon status` (a minute at the default tick). */
const TICK_COSTS_KEPT = 120;

export interface TickHost {
  readonly table: ProcessTable;
  readonly home: string;
  readonly cgroups: InstanceContainment;
  /** Never a member of any tree (the daemon itself). */
  readonly untouchable: ReadonlySet<number>;
  apps(): Iterable<App>;
  log(app: App | null, message: string): void;
  emit(type: EventType, app: App, instance: string | null, reason: string | null, data?: Record<string, unknown>): void;
  /** After the figures of a monitor tick are in: what else decides on them (readiness, hangs, the guard). */
  afterTick(at: number): void;
}

export class MonitorTick {
  private figures = new Map<string, TreeFigures>();
  private readonly breaches = new Map<string, { instance: string; state: BreachState }>();
  private readonly cpu: CpuMeter;
  private tickDurations: number[] = [];
  private lastScanProcesses = 0;
  private lastScanAt = 0;
  private oomKillSamples: (number | null)[] = [];

  constructor(private readonly host: TickHost) {
    this.cpu = new CpuMeter(host.table.clockTicksPerSecond);
  }

  tick(): void {
    this.oomKillSamples = [...this.oomKillSamples, readOomKillCount()].slice(-2);
    try {
      const started = performance.now();
      this.scan(true);
      this.tickDurations = [...this.tickDurations.slice(1 - TICK_COSTS_KEPT), performance.now() - started];
    } catch (error) {
      // e.g. EMFILE: a scan that cannot read /proc decides nothing this tick, rather than seeing every tree gone.
      this.host.log(null, `monitor tick skipped: ${(error as Error).message}`);
    }
  }

  tickCost(): TickCost {
    const sorted = [...this.tickDurations].sort((a, b) => a - b);
    const round = (value: number): number => Math.round(value * 100) / 100;
    return { samples: sorted.length, medianMs: round(sorted[Math.floor(sorted.length / 2)] ?? 0), maxMs: round(sorted.at(-1) ?? 0), processes: this.lastScanProcesses };
  }

  /** The figures of the last scan (re-scanned first if older than FRESH_SNAPSHOT_MS). */
  fresh(): void {
    if (Date.now() - this.lastScanAt > FRESH_SNAPSHOT_MS) this.scan(false);
  }

  figuresOf(app: string): TreeFigures {
    return this.figures.get(app) ?? EMPTY_FIGURES;
  }

  /** The app has no instance now (or is gone): its figures and breach state go with it. */
  forget(app: string): void {
    this.figures.delete(app);
    this.breaches.delete(app);
  }

  /** A tree changed: the next `ls` must see it, not the last scan. */
  invalidate(): void {
    this.lastScanAt = 0;
  }

  oomKillRose(instance: Instance): boolean {
    // Inside the instance's own cgroup the count is exact: no other process's OOM kill is mistaken for its.
    const own = this.host.cgroups.oomKills(instance);
    if (own !== null) return own > 0;
    const now = readOomKillCount();
    const before = this.oomKillSamples[0];
    return now !== null && before !== null && before !== undefined && now > before;
  }

  finderFor(instance: Instance): MemberFinder {
    return (snapshot: ProcSnapshot) => this.attribute(snapshot, [instance]).get(instance.id) ?? [];
  }

  /**
   * Members of each instance: its cgroup's when it has one, else the /proc inference's. Notes which roots
   * were seen alive (that bounds their sessions, see tree.ts).
   */
  private attribute(snapshot: ProcSnapshot, instances: Instance[]): Map<string, ProcInfo[]> {
    const { table, home, cgroups, untouchable } = this.host;
    const inferred = instances.filter((instance) => !isContained(instance));
    const members = attribute(snapshot, inferred.map(instanceRef), (proc) => table.tags(proc), home, { exclude: untouchable });
    for (const instance of instances) if (isContained(instance)) members.set(instance.id, cgroups.members(snapshot, instance));
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
   * One pass over the process table: per-app tree figures, exits of adopted roots and, on monitor ticks,
   * CPU and the limits. Costs one /proc scan plus attribution, whatever the number of apps.
   */
  private scan(tick: boolean): void {
    const snapshot = this.host.table.scan();
    this.lastScanAt = snapshot.at;
    this.lastScanProcesses = snapshot.byPid.size;
    const live = [...this.host.apps()].filter((app) => app.instance !== null);
    const members = this.attribute(snapshot, live.map((app) => app.instance as Instance));
    const figures = new Map<string, TreeFigures>();
    for (const app of live) {
      const instance = app.instance as Instance;
      const { newOomKills } = tick ? this.host.cgroups.tick(snapshot, app.spec, instance, (message) => this.host.log(app, message)) : { newOomKills: 0 };
      if (newOomKills > 0) this.host.emit('limit-breach', app, instance.id, 'memory-limit', { action: 'kernel-oom-kill', kills: newOomKills, limit: kernelLimitsFor(app.spec, null).memoryMaxBytes });
      const tree = measureTree(members.get(instance.id) ?? [], instance.pid, app.spec.memoryMetric, this.host.table, this.cpu, snapshot.at, tick);
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
      this.host.afterTick(snapshot.at);
    }
  }

  private checkLimits(app: App, instance: Instance, tree: TreeFigures): void {
    if (app.spec.maxMemoryBytes === null && app.spec.maxChildren === null) return;
    const previous = this.breaches.get(app.name);
    const state = previous?.instance === instance.id ? previous.state : FRESH_BREACH_STATE;
    const { state: next, decision } = evaluateLimits(app.spec, tree, state);
    this.breaches.set(app.name, { instance: instance.id, state: next });
    if (decision.kind !== 'none') app.enforceLimit(instance.id, decision);
  }
}

export function isContained(instance: Instance): instance is Instance & { cgroup: InstanceCgroup } {
  return instance.cgroup !== undefined;
}

/** The clock (ticks since boot) for rootSeenAlive, or the fallback when /proc cannot tell. */
export function ticksNowOr(table: ProcessTable, fallback: number): number {
  try {
    return table.ticksNow();
  } catch {
    return fallback;
  }
}

export function instanceRef(instance: Instance): InstanceRef {
  return {
    id: instance.id,
    rootPid: instance.pid,
    rootStartTime: instance.startTime,
    rootIsChild: instance.exited !== null,
    followDetached: instance.followDetached,
    rootSeenAlive: instance.rootSeenAlive,
  };
}
