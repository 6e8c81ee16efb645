/**
 * The process table: one pass over the system's processes, and the per-process facts agentpm needs to
 * attribute processes to instances and to signal them safely. Linux reads /proc directly (linux.ts);
 * another platform plugs in behind the same interface (platform.ts picks one).
 */

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /**
   * Start time in clock ticks since boot. pid + startTime names one process for its whole life:
   * a reused pid always has a later start time. This is what every identity check compares.
   */
  startTime: number;
  /** One-letter state from the kernel; Z (zombie) and X (dead) mean the process is gone. */
  state: string;
  rssBytes: number;
  /** User + system CPU time, in clock ticks. */
  cpuTicks: number;
  comm: string;
}

/** The AGENTPM_* tags a process was started with (from its initial environment). */
export interface ProcTags {
  app: string | null;
  instance: string | null;
  home: string | null;
}

export interface ProcSnapshot {
  /** Date.now() when the scan finished. */
  at: number;
  byPid: Map<number, ProcInfo>;
}

export interface ProcessTable {
  /** One pass over every process of the system. */
  scan(): ProcSnapshot;
  /** Re-reads one process right now, for the identity check that precedes every signal. */
  read(pid: number): ProcInfo | null;
  /**
   * AGENTPM_* tags of a process; null when unreadable (another user's process) or untagged. Cached per
   * process; `fresh` re-reads, for the check right before a signal.
   */
  tags(proc: ProcInfo, fresh?: boolean): ProcTags | null;
  /** Command line, space-joined; falls back to [comm]. Cached per process unless `fresh`. */
  cmdline(proc: ProcInfo, fresh?: boolean): string;
  /** Now, in clock ticks since boot: the unit of start times. */
  ticksNow(): number;
  /** Wall-clock start of a process in ms since the epoch. */
  startedAtMs(proc: ProcInfo): number;
  /** Proportional set size in bytes (shared pages divided among their users), or null if unreadable. */
  pss(proc: ProcInfo): number | null;
  /** Uid owning the process, or null if it is gone. */
  uid(proc: ProcInfo): number | null;
  readonly clockTicksPerSecond: number;
  /** Changes at every boot; pids and start times recorded under another boot name nothing now. */
  readonly bootId: string | null;
}

export function isAlive(proc: ProcInfo): boolean {
  return proc.state !== 'Z' && proc.state !== 'X' && proc.state !== 'x';
}

/** Same process (not a reuse of its pid): same pid and same start time. */
export function sameProcess(a: Pick<ProcInfo, 'pid' | 'startTime'>, b: Pick<ProcInfo, 'pid' | 'startTime'>): boolean {
  return a.pid === b.pid && a.startTime === b.startTime;
}
