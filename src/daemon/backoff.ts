/**
 * Crash-loop backoff, pure. Delays double from restartDelayMs to maxRestartDelayMs for each exit that came
 * sooner than minUptimeMs after its start, and start over after a stable run (as Kubernetes and Docker
 * do). Give-up counts restarts in a sliding window, so a loop that begins hours after launch is caught
 * as surely as one at launch (PM2 anchors its window at the first start and misses late loops).
 */
import type { AppSpec } from '../protocol.js';

export type RestartPolicy = Pick<
  AppSpec,
  'restartDelayMs' | 'maxRestartDelayMs' | 'minUptimeMs' | 'maxRestarts' | 'restartWindowMs'
>;

export interface RestartHistory {
  /** Unstable exits in a row, the one being decided included once decided. */
  consecutive: number;
  /** Times (ms since the epoch) of automatic restarts still inside the window. */
  recent: number[];
}

export type RestartDecision =
  | { action: 'restart'; delayMs: number; history: RestartHistory }
  | { action: 'give-up'; history: RestartHistory; restartsInWindow: number };

export const EMPTY_HISTORY: RestartHistory = { consecutive: 0, recent: [] };

export function backoffDelay(policy: RestartPolicy, consecutive: number): number {
  const exponent = Math.max(0, consecutive - 1);
  // 2 ** 60 overflows nothing in float math, but cap the exponent to keep the value finite and exact.
  return Math.min(policy.maxRestartDelayMs, policy.restartDelayMs * 2 ** Math.min(exponent, 40));
}

export function decideRestart(policy: RestartPolicy, history: RestartHistory, uptimeMs: number, now: number): RestartDecision {
  const consecutive = uptimeMs >= policy.minUptimeMs ? 1 : history.consecutive + 1;
  const recent = history.recent.filter((at) => at > now - policy.restartWindowMs);
  if (policy.maxRestarts !== null && recent.length >= policy.maxRestarts) {
    return { action: 'give-up', history: { consecutive, recent }, restartsInWindow: recent.length };
  }
  return {
    action: 'restart',
    delayMs: backoffDelay(policy, consecutive),
    history: { consecutive, recent: [...recent, now] },
  };
}
