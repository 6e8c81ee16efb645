/**
 * Per-tree figures from one snapshot: memory (RSS, or PSS where asked for), process and children
 * counts, CPU. The tick computes these once for every app, and `ls`, `show`, the limits and the TUI all
 * read the same figures.
 */
import type { MemoryMetric } from '../protocol.js';
import type { ProcInfo, ProcessTable } from '../proc/table.js';

export interface ProcessFigures {
  proc: ProcInfo;
  /** Bytes by the app's memory metric. */
  memory: number;
  /** Percent of one core since the previous tick. */
  cpu: number;
}

export interface TreeFigures {
  rootPid: number;
  memory: number;
  /** Live members, root included. */
  processes: number;
  /** Live descendants of the root, root excluded (threads are not processes and are not counted). */
  children: number;
  cpu: number;
  members: ProcessFigures[];
}

export const EMPTY_FIGURES: TreeFigures = { rootPid: 0, memory: 0, processes: 0, children: 0, cpu: 0, members: [] };

/**
 * CPU percent per process from the change in its CPU ticks between two monitor ticks. Scans made in
 * between (an `ls`) reuse the last tick's figures: CPU time is counted in 10 ms units, so a percentage
 * over a few milliseconds would be noise.
 */
export class CpuMeter {
  // Keyed by pid with the start time inside (a reused pid starts from nothing): a lookup per process
  // per tick then builds no key string. One record per process holds both its sample and its percent.
  private previous = new Map<number, CpuSample>();
  private current = new Map<number, CpuSample>();

  constructor(private readonly clockTicksPerSecond: number) {}

  /** On a monitor tick (`advance`), measures; otherwise returns what the last tick measured. */
  percent(proc: ProcInfo, at: number, advance: boolean): number {
    const before = this.previous.get(proc.pid);
    const known = before !== undefined && before.startTime === proc.startTime;
    if (!advance) return known ? before.percent : 0;
    let percent = 0;
    if (known && at > before.at) {
      const seconds = (proc.cpuTicks - before.ticks) / this.clockTicksPerSecond;
      percent = Math.max(0, Math.round((seconds / ((at - before.at) / 1000)) * 1000) / 10);
    }
    this.current.set(proc.pid, { startTime: proc.startTime, ticks: proc.cpuTicks, at, percent });
    return percent;
  }

  /** Ends a tick: what was measured now is what the next tick compares against. */
  rotate(): void {
    this.previous = this.current;
    this.current = new Map();
  }
}

interface CpuSample {
  startTime: number;
  ticks: number;
  at: number;
  /** What this sample measured against the one before it: what scans until the next tick report. */
  percent: number;
}

export function measureTree(
  members: readonly ProcInfo[],
  rootPid: number,
  metric: MemoryMetric,
  table: ProcessTable,
  cpu: CpuMeter,
  at: number,
  tick: boolean,
): TreeFigures {
  const figures: ProcessFigures[] = members.map((proc) => ({
    proc,
    memory: metric === 'pss' ? table.pss(proc) ?? proc.rssBytes : proc.rssBytes,
    cpu: cpu.percent(proc, at, tick),
  }));
  return {
    rootPid,
    memory: figures.reduce((sum, item) => sum + item.memory, 0),
    processes: figures.length,
    children: figures.filter((item) => item.proc.pid !== rootPid).length,
    cpu: Math.round(figures.reduce((sum, item) => sum + item.cpu, 0) * 10) / 10,
    members: figures,
  };
}
