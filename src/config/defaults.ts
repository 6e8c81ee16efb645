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
  maxRestarts: null,
  restartWindow: 600_000,
} as const;
