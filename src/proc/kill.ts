/**
 * Ending process trees: TERM, grace, KILL, until nothing of the tree is alive.
 *
 * Why not `tree-kill`: it walks `ps --ppid` from one root at kill time, so it cannot see children that
 * were already reparented to init or moved to their own session, nor ones forked after its walk. Here
 * each round re-scans the process table and re-attributes (tags, session, ancestry), so a process that
 * appears mid-stop is signalled in the next round, and the stop ends only when a scan finds no member.
 *
 * Every signal is preceded by an identity check: the pid is re-read and must still have the start time
 * it had when it was attributed to the tree (by root, tag or ancestry). A pid reused by an innocent
 * process has a later start time and is never hit. Zombies are dead and are never signalled.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, type ProcInfo, type ProcSnapshot, type ProcessTable } from './table.js';
import { childrenByParent } from './tree.js';

export type SignalOutcome = 'sent' | 'gone' | 'not-ours';

/** A last check of a fresh read of the process, right before it is signalled (e.g. its command still matches). */
export type StillEligible = (fresh: ProcInfo) => boolean;

export function signalIfSameProcess(
  table: ProcessTable,
  proc: Pick<ProcInfo, 'pid' | 'startTime'>,
  signal: NodeJS.Signals,
  stillEligible?: StillEligible,
): SignalOutcome {
  // The daemon never signals itself, whatever attribution says (see AttributeOptions.exclude).
  if (proc.pid === process.pid || proc.pid <= 1) return 'not-ours';
  const now = table.read(proc.pid);
  if (!now || !isAlive(now)) return 'gone';
  if (now.startTime !== proc.startTime) return 'not-ours';
  if (stillEligible && !stillEligible(now)) return 'not-ours';
  try {
    process.kill(proc.pid, signal);
    return 'sent';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return 'gone';
    if (code === 'EPERM') return 'not-ours';
    throw error;
  }
}

export interface TerminateOptions {
  signal: NodeJS.Signals;
  graceMs: number;
  /** Interval between scans while waiting for the graceful signal to work. */
  pollMs?: number;
  /** How long SIGKILL rounds may go on before the survivors are reported. */
  forceWindowMs?: number;
  stillEligible?: StillEligible;
  /**
   * Go on ending members met earlier that can no longer be attributed (see liveMembers). Default true;
   * false for apps with `reap: false`, whose processes that detach are meant to live on.
   */
  rememberMembers?: boolean;
}

export interface TerminateResult {
  /** Distinct processes seen as members during the stop. */
  seen: number;
  /** Processes still alive when the grace period ended, which got SIGKILL. */
  forced: number;
  /** Members still alive when the force window ended (0 unless a process is stuck in the kernel). */
  survivors: ProcInfo[];
  durationMs: number;
}

export type MemberFinder = (snapshot: ProcSnapshot) => ProcInfo[];

export async function terminateTree(
  table: ProcessTable,
  findMembers: MemberFinder,
  options: TerminateOptions,
): Promise<TerminateResult> {
  const started = Date.now();
  const pollMs = options.pollMs ?? 50;
  const forceWindowMs = options.forceWindowMs ?? 5000;
  const seen = new Map<string, ProcInfo>();
  const signalled = new Set<string>();

  const graceEnds = started + options.graceMs;
  for (;;) {
    const members = liveMembers(table, table.scan(), findMembers, seen, options.rememberMembers ?? true);
    if (members.length === 0) return { seen: seen.size, forced: 0, survivors: [], durationMs: Date.now() - started };
    for (const proc of members) {
      if (signalled.has(key(proc))) continue;
      signalled.add(key(proc));
      if (signalIfSameProcess(table, proc, options.signal, options.stillEligible) === 'sent' && options.signal !== 'SIGCONT') {
        // A stopped process keeps a pending TERM until it is continued (systemd does the same).
        signalIfSameProcess(table, proc, 'SIGCONT', options.stillEligible);
      }
    }
    if (Date.now() >= graceEnds) break;
    await sleep(Math.min(pollMs, Math.max(1, graceEnds - Date.now())));
  }

  const forced = await killUntilGone(table, findMembers, forceWindowMs, { seen, stillEligible: options.stillEligible, rememberMembers: options.rememberMembers ?? true });
  return { seen: seen.size, forced: forced.count, survivors: forced.survivors, durationMs: Date.now() - started };
}

function key(proc: Pick<ProcInfo, 'pid' | 'startTime'>): string {
  return `${proc.pid}:${proc.startTime}`;
}

/**
 * The members alive in this snapshot: those attributed now, every one met before that is still the same
 * live process, and their descendants. A member that can no longer be attributed (it cleared its
 * environment, left the session, and its parent died) is still ours, by pid + start time, and so is
 * what it forks.
 */
function liveMembers(table: ProcessTable, snapshot: ProcSnapshot, findMembers: MemberFinder, seen: Map<string, ProcInfo>, remember: boolean): ProcInfo[] {
  const found = findMembers(snapshot).filter(isAlive);
  for (const proc of found) seen.set(key(proc), proc);
  if (!remember) return found;
  const queue = [...seen.values()].filter((proc) => {
    const now = snapshot.byPid.get(proc.pid);
    return now !== undefined && now.startTime === proc.startTime && isAlive(now);
  });
  const alive = new Map(queue.map((proc) => [key(proc), proc]));
  const children = childrenByParent(snapshot);
  for (let next = queue.shift(); next; next = queue.shift()) {
    for (const child of children.get(next.pid) ?? []) {
      // A tagged child is attribution's to judge (it is ours only if tagged for this instance); this
      // path takes only what carries no tag, as what an untraceable member forks does.
      if (!isAlive(child) || alive.has(key(child)) || child.pid === process.pid || table.tags(child)?.instance) continue;
      alive.set(key(child), child);
      seen.set(key(child), child);
      queue.push(child);
    }
  }
  return [...alive.values()];
}

/**
 * SIGKILL rounds until a scan finds no member (new ones included, and every one in `seen`), or the
 * window ends. `seen` gains the members met here.
 */
export async function killUntilGone(
  table: ProcessTable,
  findMembers: MemberFinder,
  windowMs: number,
  options: { seen?: Map<string, ProcInfo>; stillEligible?: StillEligible; rememberMembers?: boolean } = {},
): Promise<{ count: number; survivors: ProcInfo[] }> {
  const { seen = new Map<string, ProcInfo>(), stillEligible, rememberMembers = true } = options;
  const killed = new Set<string>();
  const ends = Date.now() + windowMs;
  for (;;) {
    const alive = liveMembers(table, table.scan(), findMembers, seen, rememberMembers);
    if (alive.length === 0) return { count: killed.size, survivors: [] };
    if (Date.now() >= ends) return { count: killed.size, survivors: alive };
    for (const proc of alive) {
      if (signalIfSameProcess(table, proc, 'SIGKILL', stillEligible) === 'sent') killed.add(key(proc));
    }
    await sleep(10);
  }
}

/** The given processes and whatever descends from them, and only while they are still members (by `members`). */
export function subtreesFinder(members: MemberFinder, roots: readonly Pick<ProcInfo, 'pid' | 'startTime'>[]): MemberFinder {
  return (snapshot) => {
    const keys = new Set(members(snapshot).map(key));
    const children = childrenByParent(snapshot);
    const found: ProcInfo[] = [];
    const queue = roots.map((root) => snapshot.byPid.get(root.pid)).filter((proc): proc is ProcInfo => proc !== undefined && roots.some((root) => root.pid === proc.pid && root.startTime === proc.startTime));
    for (let next = queue.shift(); next; next = queue.shift()) {
      if (!keys.has(key(next))) continue;
      found.push(next);
      queue.push(...(children.get(next.pid) ?? []));
    }
    return found;
  };
}
