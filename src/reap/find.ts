/**
 * Finding orphans in one snapshot of the process table.
 *
 * Managed orphans carry an AGENTPM_INSTANCE tag of a home whose registry no longer has that instance
 * live: the instance stopped, crashed or was replaced, or the app is gone. Their untagged descendants
 * go with them. Unmanaged orphans were never agentpm's: processes of this user whose parent is init
 * (or a user-level subreaper such as `systemd --user`), whose command matches the user's pattern and
 * that are old enough; they are only ever looked for with an explicit --match.
 *
 * Never listed: what the reap's guard protects (pid 1, the reaper, the caller and their ancestors, every
 * agentpm daemon), members of live instances of any home, other users' processes, and processes tagged
 * with a home the guard does not allow (another home, unless allHomes and no live daemon answers for it).
 * That holds for what is listed as a descendant of an orphan too.
 */
import type { OrphanInfo, OrphanReason, UnmanagedReap } from '../protocol.js';
import { attribute, childrenByParent, type InstanceRef } from '../proc/tree.js';
import { isAlive, type ProcInfo, type ProcSnapshot, type ProcessTable } from '../proc/table.js';
import { commandPattern, type CommandPattern } from './pattern.js';

/** What one home's registry says is alive. */
export interface HomeView {
  home: string;
  /** Apps the registry knows. */
  apps: ReadonlySet<string>;
  /** Live instances (their processes are not orphans, detached ones included). */
  live: readonly InstanceRef[];
}

export interface FindOptions {
  /** The home this reap is for. */
  home: string;
  /** Another home's registry view, for processes tagged with it (only used with allHomes). */
  viewOf: (home: string) => HomeView | null;
  app: string | null;
  unmanaged: { pattern: CommandPattern; olderThanMs: number } | null;
  /** pids never to list (see ReapGuard). */
  protectedPids: ReadonlySet<number>;
  /** Whether processes tagged with this home may be listed (see ReapGuard). */
  homeAllowed: (home: string) => boolean;
  uid: number | null;
  now: number;
}

export function compileUnmanaged(unmanaged: UnmanagedReap | null): FindOptions['unmanaged'] {
  return unmanaged ? { pattern: commandPattern(unmanaged.match), olderThanMs: unmanaged.olderThanMs } : null;
}

export function findOrphans(snapshot: ProcSnapshot, table: ProcessTable, options: FindOptions): OrphanInfo[] {
  const tagsOf = (proc: ProcInfo) => table.tags(proc);
  const views = new Map<string, HomeView | null>();
  const viewFor = (home: string): HomeView | null => {
    if (!views.has(home)) views.set(home, options.viewOf(home));
    return views.get(home) ?? null;
  };

  // Members of live instances of every home seen: never orphans, whichever homes this reap lists (an
  // untagged member of another home's instance carries no home to be told apart by).
  const liveMembers = new Set<number>();
  const homes = new Set<string>([options.home]);
  for (const proc of snapshot.byPid.values()) {
    const home = tagsOf(proc)?.home;
    if (home) homes.add(home);
  }
  for (const home of homes) {
    const view = viewFor(home);
    if (!view) continue;
    const members = attribute(snapshot, view.live.map((ref) => ({ ...ref, followDetached: true })), tagsOf, home);
    for (const list of members.values()) for (const proc of list) liveMembers.add(proc.pid);
  }

  const eligible = (proc: ProcInfo): boolean =>
    isAlive(proc) && proc.pid !== 1 && !options.protectedPids.has(proc.pid) && !liveMembers.has(proc.pid) && (options.uid === null || table.uid(proc) === options.uid);

  const found = new Map<number, OrphanInfo>();
  const describe = (proc: ProcInfo, why: OrphanReason, app: string | null, instance: string | null, home: string | null, via: number | null = null): OrphanInfo => {
    const startedAtMs = table.startedAtMs(proc);
    return {
      pid: proc.pid,
      ppid: proc.ppid,
      startTime: proc.startTime,
      app,
      instance,
      home,
      startedAt: new Date(startedAtMs).toISOString(),
      ageMs: Math.max(0, options.now - startedAtMs),
      rss: proc.rssBytes,
      cmd: table.cmdline(proc),
      why,
      via,
    };
  };

  for (const proc of snapshot.byPid.values()) {
    const tags = tagsOf(proc);
    if (!tags?.instance || !tags.home || !eligible(proc) || !options.homeAllowed(tags.home)) continue;
    if (options.app !== null && tags.app !== options.app) continue;
    const view = viewFor(tags.home);
    // A home whose registry cannot be read is another daemon's business: leave it alone.
    if (!view) continue;
    const why: OrphanReason = tags.app !== null && view.apps.has(tags.app) ? 'instance-ended' : 'app-unknown';
    found.set(proc.pid, describe(proc, why, tags.app, tags.instance, tags.home));
  }

  if (options.unmanaged) {
    const { pattern, olderThanMs } = options.unmanaged;
    for (const proc of snapshot.byPid.values()) {
      if (found.has(proc.pid) || !eligible(proc)) continue;
      const tags = tagsOf(proc);
      if (tags?.instance) continue; // agentpm's: a managed orphan or a live member, never "unmanaged"
      if (tags?.home && !options.homeAllowed(tags.home)) continue;
      if (!isOrphaned(proc, snapshot)) continue;
      const info = describe(proc, 'unmanaged-match', null, null, null);
      if (info.ageMs < olderThanMs || !pattern.test(info.cmd)) continue;
      found.set(proc.pid, info);
    }
  }

  // Untagged descendants (a child that cleared its environment) go with their orphaned ancestor.
  const children = childrenByParent(snapshot);
  const queue = [...found.values()];
  for (let next = queue.shift(); next; next = queue.shift()) {
    for (const child of children.get(next.pid) ?? []) {
      const tags = tagsOf(child);
      if (found.has(child.pid) || !eligible(child) || tags?.instance || (tags?.home && !options.homeAllowed(tags.home))) continue;
      const info = describe(child, next.why, next.app, next.instance, tags?.home ?? next.home, next.via ?? next.pid);
      found.set(child.pid, info);
      queue.push(info);
    }
  }
  return [...found.values()].sort((a, b) => (a.app ?? '').localeCompare(b.app ?? '') || a.startTime - b.startTime || a.pid - b.pid);
}

/**
 * Orphaned: reparented to init, or to a user-level subreaper (`systemd --user` adopts its user's
 * orphans). The kernel does not expose the subreaper flag, so a parent named systemd that is not pid 1
 * stands for it.
 */
function isOrphaned(proc: ProcInfo, snapshot: ProcSnapshot): boolean {
  if (proc.ppid === 1) return true;
  const parent = snapshot.byPid.get(proc.ppid);
  return parent !== undefined && parent.comm === 'systemd';
}
