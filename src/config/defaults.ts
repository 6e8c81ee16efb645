import type { AppSpec, LogPolicy } from '../protocol.js';

/**
 * Every default in one place (the README's table is generated from the same values by hand: keep them
 * in step). Chosen for agents: a generous kill timeout so a run can drain, and a backoff that never
 * gives up by default but never loops fast either (Kubernetes' CrashLoopBackOff, scaled down).
 */
export const DEFAULTS = {
  stopSignal: 'SIGTERM',
  killTimeout: 10_000,
  autorestart: true,
  restartDelay: 1_000,
  maxRestartDelay: 60_000,
  minUptime: 30_000,
  /** Long enough for a start-up crash to show, short enough for an upgrade script (`restart --wait`). */
  readyAfter: 3_000,
  maxRestarts: null,
  restartWindow: 600_000,
  memoryMetric: 'rss',
  memoryBreachTicks: 2,
  childrenBreachTicks: 1,
  onLimit: 'restart',
  reap: true,
  watchDelay: 1_000,
  priority: 0,
  guardAction: 'restart',
} as const;

/** An app's log rotation when its config says nothing (`logs: { maxSize: '10M', keep: 5, compress: false }`). */
export const DEFAULT_LOG_POLICY: LogPolicy = { maxSizeBytes: 10 * 1024 * 1024, keep: 5, compress: false };
/** The smallest `logs.maxSize`: below it, rotation would take more time than writing. */
export const MIN_LOG_MAX_SIZE = 1024;
/** The most rotated files kept per stream. */
export const MAX_LOG_KEEP = 1000;

/**
 * The resolved value of every AppSpec field added after the registry's first version, when unset. A
 * registry or `save` dump written by an older agentpm is read with these (see registry.ts), so they
 * must mean "as before the field existed".
 */
export const ADDED_SPEC_DEFAULTS = {
  memoryMetric: DEFAULTS.memoryMetric,
  memoryBreachTicks: DEFAULTS.memoryBreachTicks,
  childrenBreachTicks: DEFAULTS.childrenBreachTicks,
  onLimit: DEFAULTS.onLimit,
  reap: DEFAULTS.reap,
  watch: null,
  ignoreWatch: [],
  watchDelayMs: DEFAULTS.watchDelay,
  notify: [],
  health: null,
  hangTimeoutMs: null,
  priority: DEFAULTS.priority,
  guardAction: DEFAULTS.guardAction,
  oomScoreAdj: null,
  readyAfterMs: DEFAULTS.readyAfter,
  // The kernel caps: derived from maxMemory and maxChildren as for an app that does not set them, so an app
  // saved before they existed gets the same containment as one started today.
  hardMemoryBytes: null,
  maxTasks: null,
  maxCpuPercent: null,
  dependsOn: [],
  cronRestart: null,
  // Rotation is on by default, for apps saved before it existed too: bounded disk use needs no setup.
  logs: DEFAULT_LOG_POLICY,
} satisfies Partial<AppSpec>;

/** The daemon's automatic sweep for orphans. */
export const DEFAULT_REAP_INTERVAL_MS = 30_000;
/** Unmanaged orphans younger than this are left alone unless --older-than says otherwise. */
export const DEFAULT_UNMANAGED_MIN_AGE_MS = 60_000;
/** Grace between TERM and KILL when reaping orphans. */
export const DEFAULT_REAP_GRACE_MS = 5_000;

/** The daemon's monitor tick (AGENTPM_TICK_MS): one /proc pass per tick, limits checked per tick. */
export const DEFAULT_TICK_MS = 500;
