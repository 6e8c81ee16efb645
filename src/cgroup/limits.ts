/**
 * The one place where the limits the kernel enforces on an instance are derived from its app's spec. The
 * cgroup backends write them (limit-files.ts); an export to systemd (`MemoryMax`, `TasksMax`, `CPUQuota`) or
 * Kubernetes uses the same numbers, so a unit file and agentpm never disagree.
 *
 * These are backstops beside agentpm's graceful limits, never replacements: `maxMemory` and `maxChildren`
 * keep acting first (stop signal, grace, restart with a reason), the kernel caps sit above them and stop
 * what a tick is too slow for (a spike between two ticks, a fork storm).
 *
 * Memory (`memory.max`, v1 `memory.limit_in_bytes`): `hardMemory`, default 1.25 × `maxMemory` (rounded up to
 * whole pages), none without `maxMemory`; `hardMemory: false` for none. Never below `maxMemory`: a hard cap
 * under the graceful limit would OOM-kill the app before agentpm could restart it cleanly.
 *
 * Tasks (`pids.max`): the kernel counts tasks, i.e. threads, not processes, and a process that cannot
 * create a thread usually aborts (Node does). So the cap is a process budget turned into a thread budget:
 *
 *     pids.max = max(tasks at start, 32) + maxChildren × 16 + 64
 *
 * - the root's own threads: what the instance had once started, at least 32 (an idle Node process has
 *   7–11, an agent CLI with worker threads 20–30), so it can be written before the root's first instruction;
 * - 16 tasks per allowed child: a Node MCP server has 7–11 threads, a shell or `git` one; the budget is a
 *   total, so a heavy child (a Go or Python server with a thread pool) borrows from the many light ones;
 * - 64 more: the root's lazily started threads (libuv's pool, worker threads) and the short overshoot the
 *   graceful `maxChildren` enforcement tolerates before it acts.
 *
 * An agent with 14 MCP servers (each behind an `npx` wrapper: 28 Node processes, ~310 tasks) fits easily in
 * the cap of `maxChildren: 50` (896), while a fork storm stops at the cap whatever its rate. Single-threaded
 * children reach about 16 × maxChildren processes before the kernel refuses a fork: far above maxChildren,
 * so the graceful limit still acts first and says why. `maxTasks` sets the cap explicitly (it must leave
 * room for maxChildren children), `maxTasks: false` removes it; none without maxChildren or maxTasks.
 *
 * CPU (`cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`): `maxCpu`, in percent of one core ('150%' or
 * 1.5 cores), as a quota per 100 ms period.
 */
import { formatBytes } from '../config/units.js';
import { AgentpmError } from '../errors.js';
import type { AppSpec } from '../protocol.js';

export interface KernelLimits {
  /** memory.max / memory.limit_in_bytes; null: no cap ("max"). */
  memoryMaxBytes: number | null;
  /**
   * memory.oom.group (v2 only): true kills the whole instance when the cap is hit, as the graceful limit
   * would have restarted it; false (onLimit 'kill-offender') lets the kernel kill the largest task, as
   * kill-offender would have.
   */
  memoryOomGroup: boolean;
  /** pids.max; null: no cap ("max"). */
  pidsMax: number | null;
  /** cpu.max / cpu.cfs_quota_us + cpu.cfs_period_us; null: no quota. */
  cpu: { quotaUs: number; periodUs: number } | null;
}

export type KernelLimitSpec = Pick<AppSpec, 'maxMemoryBytes' | 'hardMemoryBytes' | 'maxChildren' | 'maxTasks' | 'maxCpuPercent' | 'onLimit'>;

/** The default hard memory cap, as a factor of maxMemory. */
export const HARD_MEMORY_FACTOR = 1.25;
/** The root's thread allowance when fewer tasks were counted at start (or none yet). */
export const ROOT_TASKS = 32;
/** Tasks (threads) allowed per allowed child. */
export const TASKS_PER_CHILD = 16;
/** Tasks beyond the root's and the children's. */
export const TASKS_HEADROOM = 64;
/** The CFS period: quotas are per 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;
/** The kernel refuses a CPU quota below 1 ms per period: 1 % of a core at this period. */
export const MIN_CPU_PERCENT = 1;
/** 1,000 cores: far above any machine. */
export const MAX_CPU_PERCENT = 100_000;
/** PID_MAX_LIMIT on 64-bit Linux: pids.max accepts nothing larger, and nothing larger could matter. */
export const PIDS_MAX_LIMIT = 4_194_304;

const PAGE = 4096;

/**
 * @param tasksAtStart pids.current of the instance once it has started, or null before it runs (the backend
 * writes the limits before the shim execs the app, and may write pids.max again once it has counted).
 * @throws AgentpmError('invalid-config') for a spec no config could produce (see kernelLimitProblems).
 */
export function kernelLimitsFor(spec: KernelLimitSpec, tasksAtStart: number | null): KernelLimits {
  const problems = kernelLimitProblems(spec);
  if (problems.length > 0) throw new AgentpmError('invalid-config', problems.map((item) => `field \`${item.field}\`: ${item.message}`).join('; '));
  return {
    memoryMaxBytes: hardMemoryFor(spec),
    memoryOomGroup: spec.onLimit !== 'kill-offender',
    pidsMax: pidsMaxFor(spec, tasksAtStart),
    cpu: spec.maxCpuPercent === null ? null : { quotaUs: Math.round(spec.maxCpuPercent * (CPU_PERIOD_US / 100)), periodUs: CPU_PERIOD_US },
  };
}

function hardMemoryFor(spec: KernelLimitSpec): number | null {
  if (spec.hardMemoryBytes === false) return null;
  if (spec.hardMemoryBytes !== null) return spec.hardMemoryBytes;
  if (spec.maxMemoryBytes === null) return null;
  return Math.ceil((spec.maxMemoryBytes * HARD_MEMORY_FACTOR) / PAGE) * PAGE;
}

function pidsMaxFor(spec: KernelLimitSpec, tasksAtStart: number | null): number | null {
  if (spec.maxTasks === false) return null;
  // A config's counts stop at 1,000,000, below PIDS_MAX_LIMIT.
  if (spec.maxTasks !== null) return spec.maxTasks;
  if (spec.maxChildren === null) return null;
  const root = Math.max(tasksAtStart ?? 0, ROOT_TASKS);
  return Math.min(root + spec.maxChildren * TASKS_PER_CHILD + TASKS_HEADROOM, PIDS_MAX_LIMIT);
}

export interface KernelLimitProblem {
  field: 'hardMemory' | 'maxTasks' | 'maxCpu';
  message: string;
}

/**
 * What is wrong with the kernel-limit fields of a spec whose fields are each valid alone: the checks that
 * relate two fields. Config resolution and the daemon's request validation both use it, so a hand-made
 * request is held to the same rules as a config file.
 */
export function kernelLimitProblems(spec: KernelLimitSpec): KernelLimitProblem[] {
  const problems: KernelLimitProblem[] = [];
  const hard = spec.hardMemoryBytes;
  if (typeof hard === 'number' && spec.maxMemoryBytes !== null && hard < spec.maxMemoryBytes) {
    problems.push({
      field: 'hardMemory',
      message: `${formatBytes(hard)} is below maxMemory (${formatBytes(spec.maxMemoryBytes)}): the kernel would kill the app before agentpm's graceful limit could act; set hardMemory to at least maxMemory (the default is ${HARD_MEMORY_FACTOR} × maxMemory), or false for no kernel cap`,
    });
  }
  const tasks = spec.maxTasks;
  if (typeof tasks === 'number' && spec.maxChildren !== null && tasks <= spec.maxChildren) {
    problems.push({
      field: 'maxTasks',
      message: `${tasks} leaves no room for maxChildren (${spec.maxChildren}) children and the root: tasks are threads, so allow several per process (leave maxTasks unset to derive ${pidsMaxFor({ ...spec, maxTasks: null }, null)} from maxChildren), or set false for no kernel cap`,
    });
  }
  const cpu = spec.maxCpuPercent;
  if (cpu !== null && !(cpu >= MIN_CPU_PERCENT && cpu <= MAX_CPU_PERCENT)) {
    problems.push({ field: 'maxCpu', message: `expected ${MIN_CPU_PERCENT}% to ${MAX_CPU_PERCENT}% of a core, got ${cpu}%` });
  }
  return problems;
}
