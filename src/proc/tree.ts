/**
 * Attribution: which live processes belong to which instance. Pure: it works on one snapshot, so it is
 * unit-tested on fixtures and serves stop, `ls`, limits and reap alike.
 *
 * A process belongs to an instance when it is
 *   1. the instance's root (same pid and start time; pid + start time name one process within a boot,
 *      and a root that overwrote its environment, as setproctitle does, is still found),
 *   2. tagged with the instance's id in its initial environment (AGENTPM_INSTANCE, with this home's
 *      AGENTPM_HOME): this finds processes that called setsid and were reparented to init,
 *   3. in the root's session (spawned with setsid, so sid = root pid): this finds children that cleared
 *      their environment, even after the root died. Once the root is gone its pid could be reused by a
 *      new session leader, but the kernel hands out no pid that still names a session with members:
 *      so a dead root's session is ours only if one of its processes started while the root was last
 *      known alive (`rootSeenAlive`, else its start), proving the session never emptied since; or
 *   4. a descendant (by ppid) of any of the above.
 * Zombies are dead: they are never members, and nothing waits on them. A process tagged with another
 * instance (or another home) is never claimed through session or ancestry: it is that instance's.
 */
import { isAlive, type ProcInfo, type ProcSnapshot, type ProcTags } from './table.js';

export interface InstanceRef {
  id: string;
  rootPid: number;
  rootStartTime: number;
  /**
   * The root is this daemon's own child: until it is reaped its pid cannot be reused, so pid + start
   * time prove it is ours even if it overwrote its environment (as setproctitle does). A root known only
   * from the registry must also carry the instance's tag.
   */
  rootIsChild: boolean;
  /**
   * Claim processes by their tag even when they left the tree (setsid, reparented to init). False for
   * apps with `reap: false`, which deliberately leave daemons behind: those are left to live.
   */
  followDetached?: boolean;
  /** The latest moment (clock ticks since boot, like start times) the root was known alive. */
  rootSeenAlive?: number;
}

export interface AttributeOptions {
  /**
   * Never members, nor is anything reached only through them: the daemon itself, which a CLI run inside
   * an app may have launched as a child of the app's tree.
   */
  exclude?: ReadonlySet<number>;
}

export type TagReader = (proc: ProcInfo) => ProcTags | null;

export function childrenByParent(snapshot: ProcSnapshot): Map<number, ProcInfo[]> {
  const children = new Map<number, ProcInfo[]>();
  for (const proc of snapshot.byPid.values()) {
    const list = children.get(proc.ppid);
    if (list) list.push(proc);
    else children.set(proc.ppid, [proc]);
  }
  return children;
}

/** Members of each instance, root first when alive. Instances with no live member map to []. */
export function attribute(
  snapshot: ProcSnapshot,
  instances: readonly InstanceRef[],
  tagsOf: TagReader,
  home: string,
  options: AttributeOptions = {},
): Map<string, ProcInfo[]> {
  const result = new Map<string, ProcInfo[]>();
  if (instances.length === 0) return result;
  const exclude = options.exclude ?? new Set<number>();
  const owner = new Map<number, string>();
  for (const pid of exclude) owner.set(pid, '');
  const byId = new Map(instances.map((instance) => [instance.id, instance]));
  const seeds = new Map<string, ProcInfo[]>(instances.map((instance) => [instance.id, []]));
  const claim = (proc: ProcInfo, id: string): void => {
    if (owner.has(proc.pid) || !isAlive(proc)) return;
    owner.set(proc.pid, id);
    seeds.get(id)?.push(proc);
  };
  const foreign = (proc: ProcInfo, id: string): boolean => {
    const tags = tagsOf(proc);
    return tags?.instance != null && (tags.instance !== id || tags.home !== home);
  };

  // Roots first, then tags, then sessions: the strongest evidence claims a process.
  /** Session id (= root pid) → the instance whose session it is, for the sessions that may be used. */
  const sessions = new Map<number, InstanceRef>();
  /** Sessions of dead roots → the latest start time that proves the session is still the root's. */
  const unproven = new Map<number, number>();
  for (const instance of instances) {
    // No recorded root (an instance known only by its intent, see SpawnIntent): its tag alone names it.
    // Session 0 is the kernel's threads', never an instance's.
    if (instance.rootPid <= 1) continue;
    const holder = snapshot.byPid.get(instance.rootPid);
    const heldByRoot = holder !== undefined && holder.startTime === instance.rootStartTime;
    const isRoot = heldByRoot && !foreign(holder, instance.id) && (instance.rootIsChild || tagsOf(holder)?.instance === instance.id);
    if (isRoot) claim(holder, instance.id);
    // While the root (or its zombie, whose environment is unreadable) holds its pid, nobody else can
    // lead that session.
    if (isRoot || (heldByRoot && !isAlive(holder))) sessions.set(instance.rootPid, instance);
    else if (holder === undefined) unproven.set(instance.rootPid, instance.rootSeenAlive ?? instance.rootStartTime);
  }
  if (unproven.size > 0) {
    const byRootPid = new Map(instances.map((instance) => [instance.rootPid, instance]));
    for (const proc of snapshot.byPid.values()) {
      const provenBy = unproven.get(proc.sid);
      const instance = byRootPid.get(proc.sid);
      // A zombie counts: until reaped it still holds the session's id.
      if (provenBy === undefined || !instance || proc.startTime < instance.rootStartTime || proc.startTime > provenBy) continue;
      sessions.set(proc.sid, instance);
      unproven.delete(proc.sid);
    }
  }
  for (const proc of snapshot.byPid.values()) {
    const tags = tagsOf(proc);
    if (!tags?.instance || tags.home !== home) continue;
    const ref = byId.get(tags.instance);
    if (ref && ref.followDetached !== false) claim(proc, ref.id);
  }
  // One pass over the processes whatever the number of instances: the cost of a tick grows with the
  // processes on the machine, not with apps × processes.
  for (const proc of snapshot.byPid.values()) {
    const instance = sessions.get(proc.sid);
    if (!instance || proc.startTime < instance.rootStartTime || foreign(proc, instance.id)) continue;
    claim(proc, instance.id);
  }

  const children = childrenByParent(snapshot);
  for (const instance of instances) {
    const members: ProcInfo[] = [];
    const queue = [...(seeds.get(instance.id) ?? [])];
    for (let next = queue.shift(); next; next = queue.shift()) {
      members.push(next);
      for (const child of children.get(next.pid) ?? []) {
        if (owner.has(child.pid) || !isAlive(child) || foreign(child, instance.id)) continue;
        owner.set(child.pid, instance.id);
        queue.push(child);
      }
    }
    result.set(instance.id, members);
  }
  return result;
}

/** Orders members parent-before-child (depth first from the roots) for display. */
export function treeOrder(members: readonly ProcInfo[]): { proc: ProcInfo; depth: number }[] {
  const pids = new Set(members.map((proc) => proc.pid));
  const children = new Map<number, ProcInfo[]>();
  const tops: ProcInfo[] = [];
  for (const proc of members) {
    if (pids.has(proc.ppid) && proc.ppid !== proc.pid) {
      const list = children.get(proc.ppid);
      if (list) list.push(proc);
      else children.set(proc.ppid, [proc]);
    } else {
      tops.push(proc);
    }
  }
  const ordered: { proc: ProcInfo; depth: number }[] = [];
  const visit = (proc: ProcInfo, depth: number): void => {
    ordered.push({ proc, depth });
    for (const child of (children.get(proc.pid) ?? []).sort((a, b) => a.pid - b.pid)) visit(child, depth + 1);
  };
  for (const top of tops.sort((a, b) => a.startTime - b.startTime || a.pid - b.pid)) visit(top, 0);
  return ordered;
}
