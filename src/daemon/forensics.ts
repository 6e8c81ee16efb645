/**
 * Why did an instance end? Every exit gets a reason, so that a dead backend is never silent.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { ExitReason } from '../protocol.js';

export interface ExitFacts {
  code: number | null;
  signal: string | null;
  /** agentpm itself was stopping the instance (stop, restart, delete, or a limit). */
  stopReason: ExitReason | null;
  /** The kernel's oom_kill counter rose around the time of the exit. */
  oomKillRose: boolean;
  /** The exit status is known (the instance was our child, not adopted from an earlier daemon). */
  statusKnown: boolean;
}

/**
 * Shells report a child killed by signal N as exit code 128 + N; earlyoom's SIGTERM of an agent started
 * through a wrapper shows up as 143. Those codes are read as deaths by signal.
 */
const SIGNAL_EXIT_CODES = new Map<number, string>(
  (['SIGHUP', 'SIGINT', 'SIGKILL', 'SIGTERM'] as const).map((name) => [128 + constants.signals[name], name]),
);

export function classifyExit(facts: ExitFacts): { reason: ExitReason; signal: string | null } {
  if (facts.stopReason) return { reason: facts.stopReason, signal: facts.signal };
  if (!facts.statusKnown) return { reason: 'vanished', signal: null };
  const signal = facts.signal ?? (facts.code !== null ? SIGNAL_EXIT_CODES.get(facts.code) ?? null : null);
  if (signal === 'SIGKILL' && facts.oomKillRose) return { reason: 'oom-killed', signal };
  if (signal) return { reason: 'killed-by-signal', signal };
  if (facts.code === 0) return { reason: 'exited', signal: null };
  return { reason: 'crashed', signal: null };
}

/** The kernel's count of OOM kills since boot, from /proc/vmstat; null where it is not available. */
export function readOomKillCount(): number | null {
  try {
    const match = /^oom_kill (\d+)$/m.exec(readFileSync('/proc/vmstat', 'latin1'));
    return match?.[1] ? Number(match[1]) : null;
  } catch {
    return null;
  }
}
