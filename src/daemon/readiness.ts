/**
 * When an app counts as ready: healthy when it has a health check, otherwise online for its
 * `readyAfter`. One definition, computed by the daemon: it gates the start of the apps that depend on
 * this one (`dependsOn`), and `restart --wait` waits for it (the `ready` field of `ls --json`).
 */
import type { AppStatus, HealthState } from '../protocol.js';

/** What readiness is judged on (an App has all of it). */
export interface ReadinessFacts {
  readonly status: AppStatus;
  readonly instance: { readonly startedAt: number } | null;
  readonly health: HealthState;
  readonly spec: { readonly health: object | null; readonly readyAfterMs: number };
}

export function isReady(app: ReadinessFacts, now: number): boolean {
  if (app.status !== 'online' || app.instance === null) return false;
  if (app.spec.health !== null) return app.health === 'healthy';
  return now - app.instance.startedAt >= app.spec.readyAfterMs;
}
