/**
 * Scheduled restarts (`cronRestart`). Each app with a schedule has one timer, armed for its next run as
 * computed from now: a run missed while no daemon was running (or while the machine slept) is not made
 * up for later, so a daemon that comes back never restarts everything in a burst. A run that fires more
 * than MISSED_AFTER_MS late is skipped the same way. At its time, the app is restarted through the normal
 * path (whole tree, exit reason `scheduled`, events and alerts) only if it is online with no other
 * operation under way: a scheduled restart never stacks on a running one, never starts a stopped or
 * errored app, and never cuts a backoff or a wait for dependencies short.
 */
import type { CronRestart } from '../protocol.js';
import { nextRunAfter } from '../cron.js';

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export type ScheduledOutcome = 'restarting' | 'busy' | 'not-online';

/** What the scheduler needs of an app (App implements it). */
export interface Schedulable {
  readonly name: string;
  readonly spec: { cronRestart: CronRestart | null };
  /** Armed only while the app is meant to run: a stopped app shows no next restart, and gets none. */
  readonly desired: 'running' | 'stopped';
  restartOnSchedule(): ScheduledOutcome;
}

/** Later than this after its time, a run counts as missed (the machine slept, the clock jumped) and is skipped. */
export const MISSED_AFTER_MS = 60_000;
/** setTimeout's limit is about 24.8 days; a monthly schedule is re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Armed {
  schedule: CronRestart;
  /** The planned run, ms since the epoch; null: the schedule runs no more. */
  at: number | null;
  timer: unknown;
}

export class RestartSchedules {
  private readonly armed = new Map<string, Armed>();

  constructor(
    private readonly log: (app: string, message: string) => void,
    private readonly clock: Clock = SYSTEM_CLOCK,
  ) {}

  /** Follows an app: armed while it has a schedule and is meant to run, re-armed when the schedule changes. */
  sync(app: Schedulable): void {
    const schedule = app.desired === 'running' ? app.spec.cronRestart : null;
    const current = this.armed.get(app.name);
    if (current && schedule && sameSchedule(current.schedule, schedule)) return;
    if (current) this.stop(app.name);
    if (schedule) this.arm(app, schedule, this.clock.now());
  }

  /** The next planned run (ms since the epoch), or null. */
  nextRun(name: string): number | null {
    return this.armed.get(name)?.at ?? null;
  }

  stop(name: string): void {
    const current = this.armed.get(name);
    if (current?.timer !== undefined) this.clock.clearTimeout(current.timer);
    this.armed.delete(name);
  }

  closeAll(): void {
    for (const name of [...this.armed.keys()]) this.stop(name);
  }

  private arm(app: Schedulable, schedule: CronRestart, after: number): void {
    let at: number | null = null;
    try {
      at = nextRunAfter(schedule, new Date(after))?.getTime() ?? null;
    } catch (error) {
      // Validated before it got here; a schedule croner rejects now is reported, never thrown at the daemon.
      this.log(app.name, `cronRestart '${schedule.schedule}' cannot be scheduled: ${(error as Error).message}`);
    }
    const armed: Armed = { schedule, at, timer: undefined };
    this.armed.set(app.name, armed);
    if (at !== null) this.wait(app, armed, at);
  }

  private wait(app: Schedulable, armed: Armed, at: number): void {
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.clock.now()));
    armed.timer = this.clock.setTimeout(() => this.fire(app, armed, at), delay);
  }

  private fire(app: Schedulable, armed: Armed, at: number): void {
    if (this.armed.get(app.name) !== armed) return; // stopped or re-armed meanwhile
    const now = this.clock.now();
    if (now < at) return this.wait(app, armed, at); // a long wait in steps, or a clock set back
    if (now - at > MISSED_AFTER_MS) {
      this.log(app.name, `scheduled restart of ${new Date(at).toISOString()} skipped: missed by ${Math.round((now - at) / 1000)} s (the machine slept or the clock jumped); next one as planned`);
    } else {
      const outcome = app.restartOnSchedule();
      if (outcome === 'busy') this.log(app.name, `scheduled restart of ${new Date(at).toISOString()} skipped: another operation (a restart, a stop) is under way`);
    }
    // From the later of the two, so that one time is never run twice.
    this.arm(app, armed.schedule, Math.max(now, at));
  }
}

function sameSchedule(a: CronRestart, b: CronRestart): boolean {
  return a.schedule === b.schedule && a.timezone === b.timezone;
}
