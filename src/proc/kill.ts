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

export type SignalOutcome = 'sent' | 'gone' | 'not-ours';

/** A last check of a fresh read of the process, right before it is signalled (e.g. its command still matches). */
export type StillEligible = (fresh: ProcInfo) => boolean;

export function signalIfSameProcess(
  table: ProcessTable,
  proc: Pick<ProcInfo, 'pid' | 'startTime'>,
  signal: NodeJS.Signals,
  stillEligible?: StillEligible,
): SignalOutcome {
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
  const seen = new Set<string>();
  const signalled = new Set<string>();
  const key = (proc: ProcInfo): string => `${proc.pid}:${proc.startTime}`;

  const graceEnds = started + options.graceMs;
  for (;;) {
    const members = findMembers(table.scan()).filter(isAlive);
    if (members.length === 0) return { seen: seen.size, forced: 0, survivors: [], durationMs: Date.now() - started };
    for (const proc of members) {
      seen.add(key(proc));
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

  const forced = await killUntilGone(table, findMembers, forceWindowMs, seen, options.stillEligible);
  return { seen: seen.size, forced: forced.count, survivors: forced.survivors, durationMs: Date.now() - started };
}

/**
 * SIGKILL rounds until a scan finds no member (new ones included), or the window ends. `seen` collects
 * the pid:start keys of every member met.
 */
export async function killUntilGone(
  table: ProcessTable,
  findMembers: MemberFinder,
  windowMs: number,
  seen: Set<string> = new Set(),
  stillEligible?: StillEligible,
): Promise<{ count: number; survivors: ProcInfo[] }> {
  const killed = new Set<string>();
  const ends = Date.now() + windowMs;
  for (;;) {
    const members = findMembers(table.scan()).filter(isAlive);
    if (members.length === 0) return { count: killed.size, survivors: [] };
    if (Date.now() >= ends) return { count: killed.size, survivors: members };
    for (const proc of members) {
      const key = `${proc.pid}:${proc.startTime}`;
      seen.add(key);
      if (signalIfSameProcess(table, proc, 'SIGKILL', stillEligible) === 'sent') killed.add(key);
    }
    await sleep(10);
  }
}
