/**
 * Re-adoption: the apps of the registry a previous daemon wrote, matched against what runs now. A live
 * instance is adopted only on proof (pid + start time + tag); what is left of a dead one is ended; a
 * tree only a spawn intent names is adopted or ended. Exactly one tree per app, whenever the last daemon
 * died.
 */
import type { InstanceContainment } from '../cgroup/supervision.js';
import type { EventType } from '../protocol.js';
import { isAlive, type ProcessTable } from '../proc/table.js';
import { App, type AppHost, type Instance } from './app.js';
import { findIntendedRoot } from './intent.js';
import type { PersistedInstance, RegistryFile } from './registry.js';
import { ticksNowOr } from './tick.js';

export interface RestoreContext {
  /** What the restored apps act through (the supervisor). */
  host: AppHost;
  apps: Map<string, App>;
  table: ProcessTable;
  home: string;
  cgroups: InstanceContainment;
  log(app: App | null, message: string): void;
  emit(type: EventType, app: App, instance: string | null, reason: string | null, data?: Record<string, unknown>): void;
  terminate(instance: Instance, signal: NodeJS.Signals, graceMs: number, app: string): Promise<{ seen: number; survivors: number }>;
}

/** What re-adoption leaves to start once the leftovers of this home are swept. */
export interface Adopted {
  /** Apps whose registered instance is gone: started again as after an exit (restart policy, backoff). */
  resume: { app: App; previous: PersistedInstance }[];
  /** Apps meant to run that had no instance: started. */
  revive: App[];
}

/** Fills `context.apps` from the registry: adopts live instances, ends what is left of dead ones. */
export async function adoptRegistry(context: RestoreContext, registry: RegistryFile): Promise<Adopted> {
  const { table, home, cgroups } = context;
  const revive: App[] = [];
  const resume: { app: App; previous: PersistedInstance }[] = [];
  const sameBoot = registry.bootId === null || registry.bootId === table.bootId;
  const snapshot = table.scan();
  for (const saved of registry.apps) {
    if (!sameBoot) {
      saved.instance = null;
      saved.spawning = null;
    }
    const app = new App(saved.spec, context.host);
    app.desired = saved.desired;
    app.restarts = saved.restarts;
    app.history = saved.history;
    app.exits = saved.exits;
    context.apps.set(app.name, app);
    const identity = saved.instance ? identify(table, home, saved.instance.id, saved.instance.pid, saved.instance.startTime) : 'gone';
    if (saved.instance && identity === 'unproven') {
      // Never signalled without its tag, and never a second tree beside what may be the first.
      const message =
        `pid ${saved.instance.pid} has the start time recorded for ${app.name}'s root but not agentpm's tag (a root that ` +
        `rewrites its environment, as setproctitle does, or a registry that is not this daemon's). It was neither adopted ` +
        `nor signalled, and no second copy was started. If it is ${app.name}, end it yourself, then run \`agentpm restart ${app.name}\`.`;
      context.log(app, message);
      context.emit('adopt', app, saved.instance.id, 'unproven', { pid: saved.instance.pid, message });
      app.hold(saved.instance);
      continue;
    }
    const intended = saved.spawning ? findIntendedRoot(table, snapshot, home, app.spec, saved.spawning) : null;
    if (saved.instance && identity === 'ours') {
      // A tree the previous daemon was in the middle of ending (a stop, a restart, freezing a fork
      // storm) is adopted as `stopping`: the first tick finishes the job, rather than the tree running
      // on, perhaps frozen, as if online.
      const ending = saved.desired === 'stopped' || saved.status === 'stopping';
      app.adopt({ ...saved.instance, exited: null, followDetached: saved.spec.reap, rootSeenAlive: ticksNowOr(table, saved.instance.startTime) }, ending);
      // Cannot happen (a spawn waits for the old tree to be gone), but if it did: one tree per app.
      if (saved.spawning) await killLeftovers(context, app, { id: saved.spawning.id, pid: intended?.pid ?? 0, startTime: intended?.startTime ?? 0, startedAt: saved.spawning.at, cgroup: cgroups.expected(app.name, saved.spawning.id) }, true);
      continue;
    }
    if (saved.instance) await killLeftovers(context, app, saved.instance);
    if (intended && saved.spawning) {
      // The previous daemon died between the spawn and recording it: the tree its tags name is adopted.
      const cgroup = cgroups.expected(app.name, saved.spawning.id);
      const instance: Instance = { id: saved.spawning.id, pid: intended.pid, startTime: intended.startTime, startedAt: table.startedAtMs(intended), exited: null, followDetached: saved.spec.reap, rootSeenAlive: ticksNowOr(table, intended.startTime), ...(cgroup ? { cgroup } : {}) };
      context.log(app, `adopted instance ${instance.id} (pid ${instance.pid}), spawned by the previous daemon just before it died`);
      app.adopt(instance, saved.desired === 'stopped');
      continue;
    }
    if (saved.status === 'errored') app.state = { id: 'errored' };
    else if (saved.desired !== 'running') continue;
    else if (saved.nextStartAt && saved.nextStartAt > Date.now()) app.resumeBackoff(saved.nextStartAt);
    else if (saved.instance) resume.push({ app, previous: saved.instance });
    else revive.push(app);
  }
  return { resume, revive };
}

/**
 * pid + start time + tag: the only proof that a remembered process is still the one agentpm started.
 * `unproven`: the pid and start time match (so it is no reuse of the pid within this boot) but the tag
 * is missing.
 */
function identify(table: ProcessTable, home: string, id: string, pid: number, startTime: number): 'ours' | 'gone' | 'unproven' {
  const proc = table.read(pid);
  if (!proc || !isAlive(proc) || proc.startTime !== startTime) return 'gone';
  const tags = table.tags(proc, true);
  return tags?.instance === id && tags.home === home ? 'ours' : 'unproven';
}

/** `unregistered`: a tree only an intent names: all of it goes, whatever the app's `reap` setting. */
async function killLeftovers(context: RestoreContext, app: App, instance: PersistedInstance, unregistered = false): Promise<void> {
  const ref: Instance = { ...instance, exited: null, followDetached: unregistered || app.spec.reap };
  const { seen } = await context.terminate(ref, app.spec.stopSignal as NodeJS.Signals, app.spec.killTimeoutMs, app.name);
  if (seen > 0) context.emit('leftovers-killed', app, instance.id, 'daemon-down', { count: seen });
}
