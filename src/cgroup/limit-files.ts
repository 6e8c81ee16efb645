/**
 * Writing kernel limits into a cgroup's files and reading its counters back, given the directories: which
 * cgroup, and whether agentpm may create it, is the backend's concern. Synchronous on purpose: cgroupfs
 * reads and writes are in-kernel, and the spawn path needs the limits in force before the app's first
 * instruction.
 *
 * A controller that is not enabled in a cgroup (v2 `cgroup.subtree_control`, or a v1 hierarchy not mounted)
 * shows as missing files: that limit is reported unavailable, never thrown, so a host without the pids or
 * cpu controller still gets the others. A null limit is written as "no limit" (`max`, v1 memory `-1`), so a
 * cgroup re-used after a config change never keeps a stale cap.
 */
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { KernelLimits } from './limits.js';

export type LimitName = 'memory' | 'pids' | 'cpu';

export interface LimitWriteResult {
  /** Limits written and now enforced by the kernel (null limits cleared to "no limit" are not listed). */
  applied: LimitName[];
  /** Limits asked for whose controller file does not exist in this cgroup: not enforced. */
  unavailable: LimitName[];
  /** Limits whose file exists but refused the value (EACCES, EINVAL, EBUSY...): not enforced. */
  failed: { limit: LimitName; file: string; message: string }[];
}

/** v1 hierarchies hold one controller each (cpu is often co-mounted as `cpu,cpuacct`): absent ones are unavailable. */
export interface V1Dirs {
  memory?: string | null;
  pids?: string | null;
  cpu?: string | null;
}

/** v1 reads an unlimited memory cgroup as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 with 4 KiB pages). */
const V1_UNLIMITED_BYTES = 2 ** 62;

type WriteOutcome = 'written' | 'missing' | { message: string };

function writeValue(file: string, value: string): WriteOutcome {
  try {
    // Without O_CREAT: a missing file means a missing controller, and must stay missing. One write() call,
    // as cgroupfs takes a value per write; O_TRUNC as a shell's `>` does (kernfs accepts it).
    const fd = openSync(file, constants.O_WRONLY | constants.O_TRUNC);
    try {
      writeSync(fd, value);
    } finally {
      closeSync(fd);
    }
    return 'written';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    return { message: `${code ?? 'error'}: ${(error as Error).message}` };
  }
}

class Outcomes {
  readonly result: LimitWriteResult = { applied: [], unavailable: [], failed: [] };

  /** Writes the files of one limit in order; the first missing or failing file decides for the limit. */
  record(limit: LimitName, wanted: boolean, writes: [file: string, value: string][]): void {
    for (const [file, value] of writes) {
      const outcome = writeValue(file, value);
      if (outcome === 'missing') {
        if (wanted) this.result.unavailable.push(limit);
        return;
      }
      if (outcome !== 'written') {
        this.result.failed.push({ limit, file, message: outcome.message });
        return;
      }
    }
    if (wanted) this.result.applied.push(limit);
  }

  unavailable(limit: LimitName, wanted: boolean): void {
    if (wanted) this.result.unavailable.push(limit);
  }
}

/**
 * cgroup v2: memory.max, memory.oom.group, pids.max, cpu.max in one directory. memory.oom.group is a
 * refinement of the memory cap (kernel 4.19+): written only when the cap is, and its absence changes nothing
 * reported.
 */
export function writeLimitsV2(dir: string, limits: KernelLimits): LimitWriteResult {
  const outcomes = new Outcomes();
  const memory = limits.memoryMaxBytes;
  outcomes.record('memory', memory !== null, [[join(dir, 'memory.max'), memory === null ? 'max' : String(memory)]]);
  if (memory !== null && outcomes.result.applied.includes('memory')) writeValue(join(dir, 'memory.oom.group'), limits.memoryOomGroup ? '1' : '0');
  outcomes.record('pids', limits.pidsMax !== null, [[join(dir, 'pids.max'), limits.pidsMax === null ? 'max' : String(limits.pidsMax)]]);
  const cpu = limits.cpu;
  outcomes.record('cpu', cpu !== null, [[join(dir, 'cpu.max'), cpu === null ? 'max' : `${cpu.quotaUs} ${cpu.periodUs}`]]);
  return outcomes.result;
}

/**
 * cgroup v1: memory.limit_in_bytes (not memory.memsw: swap stays the host's policy, as with the graceful
 * limit, which measures resident memory), pids.max, cpu.cfs_period_us then cpu.cfs_quota_us (the period
 * first, so the quota is checked against the period it is meant for). v1 has no oom.group: the kernel kills
 * one task, and the daemon sees what is left of the tree.
 */
export function writeLimitsV1(dirs: V1Dirs, limits: KernelLimits): LimitWriteResult {
  const outcomes = new Outcomes();
  const memory = limits.memoryMaxBytes;
  if (dirs.memory) outcomes.record('memory', memory !== null, [[join(dirs.memory, 'memory.limit_in_bytes'), memory === null ? '-1' : String(memory)]]);
  else outcomes.unavailable('memory', memory !== null);
  if (dirs.pids) outcomes.record('pids', limits.pidsMax !== null, [[join(dirs.pids, 'pids.max'), limits.pidsMax === null ? 'max' : String(limits.pidsMax)]]);
  else outcomes.unavailable('pids', limits.pidsMax !== null);
  const cpu = limits.cpu;
  if (dirs.cpu) {
    outcomes.record('cpu', cpu !== null, cpu === null ? [[join(dirs.cpu, 'cpu.cfs_quota_us'), '-1']] : [
      [join(dirs.cpu, 'cpu.cfs_period_us'), String(cpu.periodUs)],
      [join(dirs.cpu, 'cpu.cfs_quota_us'), String(cpu.quotaUs)],
    ]);
  } else outcomes.unavailable('cpu', cpu !== null);
  return outcomes.result;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** A whole number of a one-value file; 'max' (no limit) and an absent or unreadable file read as null. */
function readCount(file: string): number | null {
  const text = readText(file)?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return null;
  return Number(text);
}

/** The value of `key N` in a flat keyed file (memory.events, memory.oom_control); null without that line. */
function readKeyed(file: string, key: string): number | null {
  const text = readText(file);
  if (text === null) return null;
  for (const line of text.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name === key && value !== undefined && /^\d+$/.test(value)) return Number(value);
  }
  return null;
}

/**
 * OOM kills inside the cgroup and its descendants since it was created (memory.events `oom_kill`): exact for
 * this instance, unlike the machine-wide counter. null when the memory controller is not enabled here.
 */
export function readOomKillsV2(dir: string): number | null {
  return readKeyed(join(dir, 'memory.events'), 'oom_kill');
}

/** The same from v1's memory.oom_control; null before kernel 4.13, which has no `oom_kill` line. */
export function readOomKillsV1(memoryDir: string): number | null {
  return readKeyed(join(memoryDir, 'memory.oom_control'), 'oom_kill');
}

/** Tasks (threads) in the cgroup now: pids.current, the same file in v1 and v2; null without the pids controller. */
export function readTasks(pidsDir: string): number | null {
  return readCount(join(pidsDir, 'pids.current'));
}

/** What a cgroup enforces now, read back from its files: null for "no limit" and for an absent controller. */
export function readLimitsV2(dir: string): Omit<KernelLimits, 'memoryOomGroup'> & { memoryOomGroup: boolean | null } {
  const group = readCount(join(dir, 'memory.oom.group'));
  return {
    memoryMaxBytes: readCount(join(dir, 'memory.max')),
    memoryOomGroup: group === null ? null : group === 1,
    pidsMax: readCount(join(dir, 'pids.max')),
    cpu: parseCpuMax(readText(join(dir, 'cpu.max'))),
  };
}

/** cpu.max is `<quota|max> <period>`. */
function parseCpuMax(text: string | null): KernelLimits['cpu'] {
  const match = /^(\d+|max)\s+(\d+)\s*$/.exec(text?.trim() ?? '');
  if (!match || match[1] === 'max') return null;
  return { quotaUs: Number(match[1]), periodUs: Number(match[2]) };
}

/** The same for v1 (no oom.group there); memory's "unlimited" is a huge page count rather than a word. */
export function readLimitsV1(dirs: V1Dirs): Omit<KernelLimits, 'memoryOomGroup'> {
  const memory = dirs.memory ? readCount(join(dirs.memory, 'memory.limit_in_bytes')) : null;
  const quota = dirs.cpu ? readText(join(dirs.cpu, 'cpu.cfs_quota_us'))?.trim() : undefined;
  const period = dirs.cpu ? readCount(join(dirs.cpu, 'cpu.cfs_period_us')) : null;
  return {
    memoryMaxBytes: memory === null || memory >= V1_UNLIMITED_BYTES ? null : memory,
    pidsMax: dirs.pids ? readCount(join(dirs.pids, 'pids.max')) : null,
    cpu: quota !== undefined && /^\d+$/.test(quota) && period !== null ? { quotaUs: Number(quota), periodUs: period } : null,
  };
}
