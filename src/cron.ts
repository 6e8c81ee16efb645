/**
 * Cron schedules (`cronRestart`), through croner. Loaded on first use only: a daemon with no scheduled
 * app, and every command that resolves no schedule, never loads it.
 */
import { createRequire } from 'node:module';
import type { Cron as CronClass } from 'croner';
import type { CronRestart } from './protocol.js';

type CronModule = { Cron: typeof CronClass };
let loaded: CronModule | null = null;

function croner(): CronModule {
  loaded ??= createRequire(import.meta.url)('croner') as CronModule;
  return loaded;
}

/** Whether croner has been loaded in this process (for tests of the lazy loading). */
export function cronLoaded(): boolean {
  return loaded !== null;
}

function cronOf(schedule: CronRestart): CronClass {
  // paused: only the computation is used; agentpm arms its own timers (see daemon/schedule.ts).
  return new (croner().Cron)(schedule.schedule, { paused: true, ...(schedule.timezone !== null ? { timezone: schedule.timezone } : {}) });
}

/** The first run strictly after `after`, or null if the schedule never runs again (e.g. February 31st). */
export function nextRunAfter(schedule: CronRestart, after: Date): Date | null {
  return cronOf(schedule).nextRun(after);
}

/** What is wrong with a schedule, for a message naming the field; null when it is valid and runs. */
export function cronProblem(schedule: CronRestart): string | null {
  if (schedule.timezone !== null) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: schedule.timezone });
    } catch {
      return `unknown time zone '${schedule.timezone}'; use an IANA name such as 'Europe/Berlin' or 'UTC'`;
    }
  }
  try {
    if (nextRunAfter(schedule, new Date()) === null) return `'${schedule.schedule}' never runs (no such date); check the day and month fields`;
  } catch (error) {
    const message = (error as Error).message.replace(/^CronPattern: /, '');
    return `'${schedule.schedule}' is not a cron schedule (${message}); e.g. '0 4 * * *' (04:00 every day), or with seconds first '*/30 * * * * *'`;
  }
  return null;
}
