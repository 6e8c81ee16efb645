/**
 * Fork-storm containment: a tree that forks faster than it can be killed is chased forever by
 * kill-then-rescan (each round finds new children). So it is frozen first: SIGSTOP every member, and
 * again for every member that appears, until two scans in a row find nobody new; a stopped process
 * cannot fork. Then SIGKILL everything (SIGKILL works on stopped processes). Bounded in rounds and time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { killUntilGone, signalIfSameProcess, type MemberFinder } from './kill.js';
import { isAlive, type ProcInfo, type ProcessTable } from './table.js';

export interface ContainResult {
  /** Distinct processes frozen. */
  frozen: number;
  /** Most members alive at one scan. */
  peak: number;
  survivors: number;
  durationMs: number;
}

const FREEZE_ROUNDS = 60;
const FREEZE_WINDOW_MS = 2000;
const QUIET_SCANS_NEEDED = 2;

export async function freezeAndKill(table: ProcessTable, findMembers: MemberFinder, killWindowMs = 3000): Promise<ContainResult> {
  const started = Date.now();
  const frozen = new Map<string, ProcInfo>();
  let peak = 0;
  let quietScans = 0;
  for (let round = 0; round < FREEZE_ROUNDS && Date.now() - started < FREEZE_WINDOW_MS; round += 1) {
    const members = findMembers(table.scan()).filter(isAlive);
    peak = Math.max(peak, members.length);
    let newcomers = 0;
    for (const proc of members) {
      const key = `${proc.pid}:${proc.startTime}`;
      if (frozen.has(key)) continue;
      frozen.set(key, proc);
      newcomers += 1;
      signalIfSameProcess(table, proc, 'SIGSTOP');
    }
    quietScans = newcomers === 0 ? quietScans + 1 : 0;
    if (quietScans >= QUIET_SCANS_NEEDED) break;
    await sleep(2);
  }
  const frozenCount = frozen.size;
  // Every frozen process is killed, attributable or not: frozen and left, it would never run again.
  const { survivors } = await killUntilGone(table, findMembers, killWindowMs, { seen: frozen });
  return { frozen: frozenCount, peak, survivors: survivors.length, durationMs: Date.now() - started };
}
