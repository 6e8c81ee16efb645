/**
 * What the supervisor asks of containment, per instance: the cgroup a new instance gets, its members,
 * its stop, and the cleanup of cgroups no live instance owns. An instance without a cgroup (the `proc`
 * backend, or one adopted from a registry that recorded none) is the /proc inference's, as before.
 */
import type { ProcInfo, ProcSnapshot, ProcessTable } from '../proc/table.js';
import { isFrozen, membersOf } from './cgroupfs.js';
import { applyLimits, cgroupMembers, killContained, moveDetached, oomKillsIn, removeCgroup, tasksIn, terminateContained } from './instance.js';
import { kernelLimitsFor, type KernelLimitSpec } from './limits.js';
import type { Containment, ContainmentInfo, InstanceCgroup } from './types.js';

/** An instance as containment needs it (a subset of the daemon's Instance). */
export interface ContainedInstance {
  id: string;
  pid: number;
  startTime: number;
  cgroup?: InstanceCgroup;
  /** false for apps with `reap: false`: what the instance detaches is left to live. */
  followDetached: boolean;
  startedAt: number;
  /** pids.max was derived again from the tasks the instance had once started (see limits.ts). */
  tasksCounted?: boolean;
  /** OOM kills in its cgroup already reported. */
  oomKillsSeen?: number;
}

/** What containment needs of an app's definition. */
export type ContainedSpec = KernelLimitSpec & { name: string; reap: boolean; readyAfterMs: number };

export class InstanceContainment {
  constructor(
    private readonly containment: Containment,
    private readonly table: ProcessTable,
    /** Never a member: the daemon itself. */
    private readonly exclude: ReadonlySet<number>,
  ) {}

  get info(): ContainmentInfo {
    return this.containment.info;
  }

  /**
   * The cgroup for a new instance, created with the app's kernel caps in force before the app runs (the
   * task cap from the root's allowance until the instance has started); undefined under `proc`.
   */
  create(spec: ContainedSpec, instanceId: string, log: (message: string) => void): InstanceCgroup | undefined {
    const cgroup = this.containment.create(spec.name, instanceId) ?? undefined;
    if (cgroup) this.limit(spec, cgroup, null, log);
    return cgroup;
  }

  /**
   * On each tick: what a `reap: false` instance detached leaves its cgroup for the app's `detached` one;
   * once the instance is ready (readyAfter), pids.max is derived again from the tasks it started with.
   */
  tick(snapshot: ProcSnapshot, spec: ContainedSpec, instance: ContainedInstance, log: (message: string) => void): { newOomKills: number } {
    if (!instance.cgroup) return { newOomKills: 0 };
    const keep = this.keepDetached(spec.name, instance);
    if (keep) moveDetached(snapshot, instance.cgroup, instance.pid, keep, this.exclude);
    if (!instance.tasksCounted && Date.now() - instance.startedAt >= spec.readyAfterMs) {
      instance.tasksCounted = true;
      if (spec.maxTasks === null && spec.maxChildren !== null) this.limit(spec, instance.cgroup, tasksIn(instance.cgroup), log);
    }
    // A process the kernel killed at the hard cap while the app lives on (a child): said, never silent.
    const kills = oomKillsIn(instance.cgroup) ?? 0;
    const newOomKills = kills - (instance.oomKillsSeen ?? 0);
    instance.oomKillsSeen = kills;
    return { newOomKills: Math.max(0, newOomKills) };
  }

  /** OOM kills inside the instance's own cgroup (null: not known there, use the machine's counter). */
  oomKills(instance: ContainedInstance): number | null {
    return instance.cgroup ? oomKillsIn(instance.cgroup) : null;
  }

  private limit(spec: ContainedSpec, cgroup: InstanceCgroup, tasks: number | null, log: (message: string) => void): void {
    const result = applyLimits(cgroup, kernelLimitsFor(spec, tasks));
    const problems = [
      ...(result.unavailable.length > 0 ? [`${result.unavailable.join(', ')} not available in this cgroup (controller not enabled)`] : []),
      ...result.failed.map((failure) => `${failure.limit}: ${failure.file} refused it (${failure.message})`),
    ];
    if (problems.length > 0) log(`kernel caps not enforced: ${problems.join('; ')}; the graceful limits still apply`);
  }

  /** The cgroup of an instance a dead daemon spawned but never recorded, if it exists. */
  expected(app: string, instanceId: string): InstanceCgroup | undefined {
    const cgroup = this.containment.expected(app, instanceId);
    return cgroup && membersOf(cgroup).length > 0 ? cgroup : undefined;
  }

  members(snapshot: ProcSnapshot, instance: ContainedInstance & { cgroup: InstanceCgroup }): ProcInfo[] {
    return cgroupMembers(snapshot, instance.cgroup, instance, this.exclude);
  }

  async terminate(app: string, instance: ContainedInstance & { cgroup: InstanceCgroup }, signal: NodeJS.Signals, graceMs: number): Promise<{ seen: number; survivors: number }> {
    const keep = this.keepDetached(app, instance);
    return terminateContained(this.table, instance.cgroup, { signal, graceMs, exclude: this.exclude, keepDetached: keep ? { rootPid: instance.pid, dirs: keep } : null });
  }

  async contain(instance: { cgroup: InstanceCgroup }): Promise<{ seen: number; survivors: number }> {
    const result = await killContained(this.table, instance.cgroup, this.exclude);
    await removeCgroup(instance.cgroup);
    return result;
  }

  isFrozen(instance: { cgroup: InstanceCgroup }): boolean {
    return isFrozen(instance.cgroup.dirs);
  }

  /** Ends and removes the cgroups of instances that are gone (a daemon that died mid-stop, an abandoned intent). */
  async endStale(live: ReadonlySet<string>): Promise<number> {
    let ended = 0;
    for (const cgroup of this.containment.stale(live)) {
      ended += (await killContained(this.table, cgroup, this.exclude)).seen;
      await removeCgroup(cgroup);
    }
    return ended;
  }

  removeApp(app: string): void {
    this.containment.removeApp(app);
  }

  shutdown(everything: boolean): void {
    this.containment.shutdown(everything);
  }

  private keepDetached(app: string, instance: ContainedInstance): ReturnType<Containment['detachedDirs']> {
    if (instance.followDetached || !instance.cgroup || !app) return null;
    return this.containment.detachedDirs(app);
  }
}
