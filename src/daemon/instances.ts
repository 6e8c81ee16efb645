/**
 * Starting and ending instances on the machine: the spawn (log sink, cgroup, exec shim), and the end of
 * a whole tree, of a fork storm, or of some subtrees. A contained instance is ended through its cgroup;
 * any other through the /proc inference, members found fresh at every step.
 */
import type { InstanceContainment } from '../cgroup/supervision.js';
import { freezeAndKill } from '../proc/contain.js';
import { subtreesFinder, terminateTree, type MemberFinder } from '../proc/kill.js';
import type { ProcessTable } from '../proc/table.js';
import type { AppSpec } from '../protocol.js';
import type { Instance } from './app.js';
import { openLogSink } from './log-sink.js';
import type { RelayLink } from './relay-link.js';
import { spawnInstance } from './spawn.js';
import { isContained, ticksNowOr } from './tick.js';

export interface InstanceControlOptions {
  table: ProcessTable;
  home: string;
  relay: RelayLink;
  cgroups: InstanceContainment;
  /** The instance's members in a fresh snapshot (see tick.ts). */
  finderFor(instance: Instance): MemberFinder;
  log(app: string | null, message: string): void;
}

export class InstanceControl {
  /** Instances whose logs are written directly (no relay), and why: `show` says so. */
  readonly unrotated = new Map<string, { instance: string; why: string }>();

  constructor(private readonly options: InstanceControlOptions) {}

  async spawn(spec: AppSpec, instanceId: string): Promise<Instance> {
    const { table, home, relay, cgroups, log } = this.options;
    const cgroup = cgroups.create(spec, instanceId, (message) => log(spec.name, message));
    const sink = await openLogSink(relay, home, spec.name, instanceId, spec.logs);
    let spawned;
    try {
      spawned = await spawnInstance(spec, home, table, instanceId, sink, cgroup);
    } catch (error) {
      if (cgroup) await cgroups.contain({ cgroup });
      throw error;
    } finally {
      sink.release();
    }
    if (sink.notRotatedWhy === null) this.unrotated.delete(spec.name);
    else {
      this.unrotated.set(spec.name, { instance: instanceId, why: sink.notRotatedWhy });
      log(null, `${spec.name}: instance ${instanceId} writes its logs directly, unrotated: ${sink.notRotatedWhy}`);
    }
    const instance: Instance = { id: spawned.id, pid: spawned.pid, startTime: spawned.startTime, startedAt: spawned.startedAt, exited: spawned.exited, followDetached: spec.reap, rootSeenAlive: spawned.startTime, ...(cgroup ? { cgroup } : {}) };
    // The exit is reported right after the root was reaped: until then its pid was not free for reuse,
    // so its session is ours up to now.
    void spawned.exited.then(() => {
      instance.rootSeenAlive = ticksNowOr(table, instance.rootSeenAlive ?? instance.startTime);
    });
    return instance;
  }

  async terminate(instance: Instance, signal: NodeJS.Signals, graceMs: number, app: string): Promise<{ seen: number; survivors: number }> {
    if (isContained(instance)) return this.options.cgroups.terminate(app, instance, signal, graceMs);
    const result = await terminateTree(this.options.table, this.options.finderFor(instance), { signal, graceMs, rememberMembers: instance.followDetached });
    return { seen: result.seen, survivors: result.survivors.length };
  }

  isFrozen(instance: Instance): boolean {
    if (isContained(instance) && this.options.cgroups.isFrozen(instance)) return true;
    return this.options.finderFor(instance)(this.options.table.scan()).some((proc) => proc.state === 'T');
  }

  async contain(instance: Instance): Promise<{ seen: number; survivors: number }> {
    if (isContained(instance)) return this.options.cgroups.contain(instance);
    const result = await freezeAndKill(this.options.table, this.options.finderFor(instance));
    return { seen: result.frozen, survivors: result.survivors };
  }

  async terminateSubtrees(instance: Instance, roots: { pid: number; startTime: number }[], graceMs: number): Promise<number> {
    const finder = subtreesFinder(this.options.finderFor(instance), roots);
    const result = await terminateTree(this.options.table, finder, { signal: 'SIGTERM', graceMs });
    return result.seen;
  }
}
