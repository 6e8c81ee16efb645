/**
 * One instance's cgroup as the process layer sees it: its members, its stop, and its removal. A member
 * of a cgroup agentpm created for the instance is the instance's by construction (no process can leave
 * a cgroup by itself, and only the daemon moves processes); the identity check before each signal stays
 * (pid + start time, never pid 1 or the daemon).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { signalIfSameProcess, terminateTree, type MemberFinder } from '../proc/kill.js';
import { isAlive, type ProcInfo, type ProcSnapshot, type ProcessTable } from '../proc/table.js';
import { canKillAtOnce, dirsEntries, frozenNow, killAtOnce, membersOf, moveProcess, removeTree, setFrozen } from './cgroupfs.js';
import type { CgroupDirs, InstanceCgroup } from './types.js';
import { readOomKillsV1, readOomKillsV2, readTasks, writeLimitsV1, writeLimitsV2, type LimitWriteResult } from './limit-files.js';
import type { KernelLimits } from './limits.js';

const KILL_WINDOW_MS = 5000;
const FREEZE_WAIT_MS = 1000;
const REMOVE_TRIES = 40;

/** The live members of the cgroup, root first, as processes of `snapshot` (newer ones wait for the next scan). */
export function cgroupMembers(snapshot: ProcSnapshot, cgroup: InstanceCgroup, root: { pid: number; startTime: number }, exclude: ReadonlySet<number>): ProcInfo[] {
  const members: ProcInfo[] = [];
  for (const pid of membersOf(cgroup)) {
    const proc = snapshot.byPid.get(pid);
    if (!proc || !isAlive(proc) || exclude.has(pid)) continue;
    if (proc.pid === root.pid && proc.startTime === root.startTime) members.unshift(proc);
    else members.push(proc);
  }
  return members;
}

/**
 * The table with its scan narrowed to the cgroup's members, each read from /proc by pid. What a
 * contained stop polls (every 50 ms) needs only them, while a pass over all of /proc costs as much as
 * the machine has processes: at 3,000, ten stops at once (`restart --parallel 10`) each polling every
 * /proc/<pid>/stat kept the daemon busy and made every stop take seconds. A process forked after the
 * membership was read waits for the next poll, as it would after a full scan.
 */
export function scopedToCgroup(table: ProcessTable, cgroup: InstanceCgroup): ProcessTable {
  return {
    scan: (): ProcSnapshot => {
      const byPid = new Map<number, ProcInfo>();
      for (const pid of membersOf(cgroup)) {
        const proc = table.read(pid);
        if (proc) byPid.set(pid, proc);
      }
      return { at: Date.now(), byPid };
    },
    read: (pid) => table.read(pid),
    tags: (proc, fresh) => table.tags(proc, fresh),
    cmdline: (proc, fresh) => table.cmdline(proc, fresh),
    ticksNow: () => table.ticksNow(),
    startedAtMs: (proc) => table.startedAtMs(proc),
    pss: (proc) => table.pss(proc),
    uid: (proc) => table.uid(proc),
    clockTicksPerSecond: table.clockTicksPerSecond,
    bootId: table.bootId,
  };
}

/**
 * Members that left the root's session and are not descended from a process still in it: what an app
 * with `reap: false` detaches (a daemonised helper). Moved to the app's `detached` cgroup, which its
 * stop does not end.
 */
export function detachedMembers(members: readonly ProcInfo[], rootPid: number): ProcInfo[] {
  const byPid = new Map(members.map((proc) => [proc.pid, proc]));
  const attached = new Map<number, boolean>();
  const isAttached = (proc: ProcInfo, depth = 0): boolean => {
    const known = attached.get(proc.pid);
    if (known !== undefined) return known;
    const parent = byPid.get(proc.ppid);
    const result = proc.sid === rootPid || (parent !== undefined && parent !== proc && depth < 1000 && isAttached(parent, depth + 1));
    attached.set(proc.pid, result);
    return result;
  };
  return members.filter((proc) => !isAttached(proc));
}

export function moveDetached(snapshot: ProcSnapshot, cgroup: InstanceCgroup, rootPid: number, to: CgroupDirs, exclude: ReadonlySet<number>): number {
  let moved = 0;
  for (const proc of detachedMembers(cgroupMembers(snapshot, cgroup, { pid: rootPid, startTime: -1 }, exclude), rootPid)) if (moveProcess(proc.pid, to)) moved += 1;
  return moved;
}

export interface ContainedStop {
  signal: NodeJS.Signals;
  graceMs: number;
  exclude: ReadonlySet<number>;
  /** Where a `reap: false` app's detached processes go before the stop; null to end them too. */
  keepDetached: { rootPid: number; dirs: CgroupDirs } | null;
}

/**
 * The stop signal to every member, the grace period, then the whole cgroup killed at once (see
 * killContained), and the cgroup removed once empty.
 */
export async function terminateContained(wholeTable: ProcessTable, cgroup: InstanceCgroup, options: ContainedStop): Promise<{ seen: number; survivors: number }> {
  const table = scopedToCgroup(wholeTable, cgroup);
  if (options.keepDetached) moveDetached(table.scan(), cgroup, options.keepDetached.rootPid, options.keepDetached.dirs, options.exclude);
  const finder: MemberFinder = (snapshot) => cgroupMembers(snapshot, cgroup, { pid: -1, startTime: -1 }, options.exclude);
  // No SIGKILL rounds here (a zero force window): what outlives the grace is killed with the cgroup.
  const graceful = await terminateTree(table, finder, { signal: options.signal, graceMs: options.graceMs, forceWindowMs: 0, rememberMembers: false });
  const left = graceful.survivors.length > 0 ? await killContained(table, cgroup, options.exclude) : { seen: 0, survivors: 0 };
  await removeCgroup(cgroup);
  return { seen: graceful.seen, survivors: left.survivors };
}

/**
 * Ends every member at once: cgroup.kill where the kernel has it (5.14+), else freeze, SIGKILL every
 * member, thaw (a frozen process cannot fork; SIGKILL takes effect at the thaw). Bounded in time.
 */
export async function killContained(table: ProcessTable, cgroup: InstanceCgroup, exclude: ReadonlySet<number>): Promise<{ seen: number; survivors: number }> {
  const seen = new Set<number>(membersOf(cgroup));
  const ends = Date.now() + KILL_WINDOW_MS;
  const useKillFile = canKillAtOnce(cgroup.dirs) && !seen.has(process.pid);
  for (let round = 0; ; round += 1) {
    const members = membersOf(cgroup).filter((pid) => !exclude.has(pid) && pid > 1);
    for (const pid of members) seen.add(pid);
    if (members.length === 0) return { seen: seen.size, survivors: 0 };
    if (Date.now() > ends) return { seen: seen.size, survivors: members.length };
    if (useKillFile) {
      if (round === 0 || round % 20 === 0) killAtOnce(cgroup.dirs);
    } else {
      const frozen = setFrozen(cgroup.dirs, true);
      const until = Date.now() + FREEZE_WAIT_MS;
      while (frozen && !frozenNow(cgroup.dirs) && Date.now() < until) await sleep(2);
      for (const pid of membersOf(cgroup)) {
        if (exclude.has(pid) || pid <= 1) continue;
        const proc = table.read(pid);
        if (proc) signalIfSameProcess(table, proc, 'SIGKILL');
      }
      setFrozen(cgroup.dirs, false);
    }
    await sleep(Math.min(5 + round * 5, 50));
  }
}

/** Removes the instance's cgroup in every hierarchy, retrying while the last members finish exiting. */
export async function removeCgroup(cgroup: InstanceCgroup): Promise<boolean> {
  for (let attempt = 0; attempt < REMOVE_TRIES; attempt += 1) {
    if (dirsEntries(cgroup.dirs).map(([, dir]) => removeTree(dir)).every(Boolean)) return true;
    await sleep(10);
  }
  return false;
}

/** A contained tree left frozen (a containment cut short by the daemon's death). */
export { isFrozen as cgroupFrozen } from './cgroupfs.js';

/** The kernel caps into the instance's cgroup: v2 files in a pure v2 tree, else the v1 controllers'. */
export function applyLimits(cgroup: InstanceCgroup, limits: KernelLimits): LimitWriteResult {
  const { dirs } = cgroup;
  if (cgroup.backend === 'cgroup2' && dirs.unified) return writeLimitsV2(dirs.unified, limits);
  return writeLimitsV1({ memory: dirs.memory ?? null, pids: dirs.pids ?? null, cpu: dirs.cpu ?? null }, limits);
}

/** OOM kills inside the instance's own cgroup since it was created; null without a memory controller there. */
export function oomKillsIn(cgroup: InstanceCgroup): number | null {
  if (cgroup.backend === 'cgroup2') return cgroup.dirs.unified ? readOomKillsV2(cgroup.dirs.unified) : null;
  return cgroup.dirs.memory ? readOomKillsV1(cgroup.dirs.memory) : null;
}

/** Tasks (threads) in the instance's cgroup now; null without a pids controller there. */
export function tasksIn(cgroup: InstanceCgroup): number | null {
  const dir = cgroup.backend === 'cgroup2' ? cgroup.dirs.unified : cgroup.dirs.pids;
  return dir ? readTasks(dir) : null;
}
