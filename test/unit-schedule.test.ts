import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { MISSED_AFTER_MS, RestartSchedules, type Clock, type Schedulable, type ScheduledOutcome } from '../src/daemon/schedule.js';
import { App, type AppHost, type Instance } from '../src/daemon/app.js';
import { cronProblem } from '../src/cron.js';
import { ROOT } from './helpers/rig.js';
import type { AppSpec, CronRestart, EventType } from '../src/protocol.js';

/** Time moves only when the test says so; due timers run in order of their time. */
class FakeClock implements Clock {
  private timers: { at: number; seq: number; callback: () => void }[] = [];
  private seq = 0;
  constructor(public current: number) {}
  now(): number {
    return this.current;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { at: this.current + ms, seq: (this.seq += 1), callback };
    this.timers.push(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer !== handle);
  }
  /** Moves time forward, running every timer that falls due on the way (bounded). */
  advance(ms: number): void {
    const end = this.current + ms;
    for (let guard = 0; guard < 10_000; guard += 1) {
      const next = [...this.timers].sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next || next.at > end) break;
      this.timers = this.timers.filter((timer) => timer !== next);
      this.current = Math.max(this.current, next.at);
      next.callback();
    }
    this.current = end;
  }
  /** Jumps time without running anything on the way (a suspended machine); what is due runs after. */
  jump(ms: number): void {
    this.current += ms;
  }
  get pending(): number {
    return this.timers.length;
  }
}

class FakeApp implements Schedulable {
  calls: number[] = [];
  outcome: ScheduledOutcome = 'restarting';
  desired: 'running' | 'stopped' = 'running';
  constructor(
    readonly name: string,
    public spec: { cronRestart: CronRestart | null },
    private readonly clock: FakeClock,
  ) {}
  restartOnSchedule(): ScheduledOutcome {
    this.calls.push(this.clock.now());
    return this.outcome;
  }
}

const at = (iso: string): number => Date.parse(iso);
const daily4 = (timezone: string | null = 'UTC'): { cronRestart: CronRestart } => ({ cronRestart: { schedule: '0 4 * * *', timezone } });

function setup(start: string, spec = daily4()): { clock: FakeClock; app: FakeApp; schedules: RestartSchedules; logs: string[] } {
  const clock = new FakeClock(at(start));
  const logs: string[] = [];
  const schedules = new RestartSchedules((_app, message) => logs.push(message), clock);
  const app = new FakeApp('bot', spec, clock);
  schedules.sync(app);
  return { clock, app, schedules, logs };
}

describe('scheduled restarts (fake clock)', () => {
  test('restarts at the scheduled time, once, then arms the next day', () => {
    const { clock, app, schedules } = setup('2026-03-01T03:59:00Z');
    assert.equal(schedules.nextRun('bot'), at('2026-03-01T04:00:00Z'));
    clock.advance(59_999);
    assert.deepEqual(app.calls, []);
    clock.advance(1);
    assert.deepEqual(app.calls, [at('2026-03-01T04:00:00Z')]);
    assert.equal(schedules.nextRun('bot'), at('2026-03-02T04:00:00Z'));
    clock.advance(24 * 3600_000);
    assert.equal(app.calls.length, 2);
  });

  test('a time zone is honoured, across a DST change', () => {
    // Berlin switches to summer time on 2026-03-29: 04:00 local is 03:00 UTC before, 02:00 UTC after.
    const { clock, schedules } = setup('2026-03-28T00:00:00Z', daily4('Europe/Berlin'));
    assert.equal(schedules.nextRun('bot'), at('2026-03-28T03:00:00Z'));
    clock.advance(4 * 3600_000);
    assert.equal(schedules.nextRun('bot'), at('2026-03-29T02:00:00Z'));
  });

  test('a restart still under way is not stacked on: the run is skipped, not queued, and the next one is as planned', () => {
    const { clock, app, schedules, logs } = setup('2026-03-01T03:59:00Z', { cronRestart: { schedule: '*/10 * * * * *', timezone: null } });
    app.outcome = 'busy';
    clock.advance(10_000);
    assert.equal(app.calls.length, 1);
    assert.match(logs.join('\n'), /skipped: another operation .* is under way/);
    // Nothing retried in between: the next call is the next slot, 10 s later.
    clock.advance(9_999);
    assert.equal(app.calls.length, 1);
    app.outcome = 'restarting';
    clock.advance(1);
    assert.equal(app.calls.length, 2);
    assert.equal(schedules.nextRun('bot'), clock.now() + 10_000);
  });

  test('no catch-up: a daemon started after the time waits for the next run', () => {
    // The daemon was down at 04:00; it starts at 04:30 and must not restart the app now.
    const { clock, app, schedules } = setup('2026-03-01T04:30:00Z');
    assert.equal(schedules.nextRun('bot'), at('2026-03-02T04:00:00Z'));
    clock.advance(3600_000);
    assert.deepEqual(app.calls, []);
  });

  test('no catch-up burst: runs missed while the machine slept are skipped, not run late one after another', () => {
    const { clock, app, schedules, logs } = setup('2026-03-01T03:59:00Z', { cronRestart: { schedule: '*/10 * * * * *', timezone: null } });
    clock.jump(3600_000); // an hour asleep: 360 runs missed, the timer fires once, late
    clock.advance(0);
    assert.deepEqual(app.calls, []);
    assert.match(logs.join('\n'), /skipped: missed by 3590 s/);
    assert.ok((schedules.nextRun('bot') ?? 0) > clock.now());
    assert.equal(clock.pending, 1);
    clock.advance(10_000);
    assert.equal(app.calls.length, 1);
    assert.ok(MISSED_AFTER_MS >= 10_000);
  });

  test('a stopped app is not armed and shows no next run; a schedule removed or changed re-arms', () => {
    const { clock, app, schedules } = setup('2026-03-01T03:59:00Z');
    app.desired = 'stopped';
    schedules.sync(app);
    assert.equal(schedules.nextRun('bot'), null);
    assert.equal(clock.pending, 0);
    clock.advance(24 * 3600_000);
    assert.deepEqual(app.calls, []);
    app.desired = 'running';
    app.spec = { cronRestart: { schedule: '30 4 * * *', timezone: 'UTC' } };
    schedules.sync(app);
    assert.equal(schedules.nextRun('bot'), at('2026-03-02T04:30:00Z'));
    app.spec = { cronRestart: null };
    schedules.sync(app);
    assert.equal(schedules.nextRun('bot'), null);
    assert.equal(clock.pending, 0);
  });

  test('a monthly schedule beyond setTimeout’s 24.8 days is reached in steps, and runs once', () => {
    const { clock, app, schedules } = setup('2026-01-01T00:00:00Z', { cronRestart: { schedule: '0 4 31 * *', timezone: 'UTC' } });
    assert.equal(schedules.nextRun('bot'), at('2026-01-31T04:00:00Z'));
    clock.advance(29 * 24 * 3600_000);
    assert.deepEqual(app.calls, []);
    clock.advance(2 * 24 * 3600_000);
    assert.deepEqual(app.calls, [at('2026-01-31T04:00:00Z')]);
  });
});

describe('App.restartOnSchedule (the state machine side)', () => {
  /** A host whose terminate the test ends when it wants: a slow tree that takes its kill timeout. */
  function host(): { host: AppHost; spawned: number; release: () => void } {
    let release = (): void => undefined;
    const state = { spawned: 0 };
    const fake = {
      table: {} as AppHost['table'],
      spawn: async (_spec: AppSpec, id: string): Promise<Instance> => {
        state.spawned += 1;
        return { id, pid: 1000 + state.spawned, startTime: 1, startedAt: Date.now(), exited: null, followDetached: true };
      },
      persistNow: () => undefined,
      terminate: () => new Promise<{ seen: number; survivors: number }>((resolve) => (release = () => resolve({ seen: 1, survivors: 0 }))),
      contain: async () => ({ seen: 0, survivors: 0 }),
      isFrozen: () => false,
      terminateSubtrees: async () => 0,
      waitingFor: () => [],
      oomKillRose: () => false,
      changed: () => undefined,
      emit: (_type: EventType) => undefined,
      log: () => undefined,
    } satisfies AppHost;
    return {
      host: fake,
      get spawned() {
        return state.spawned;
      },
      release: () => release(),
    };
  }
  const spec = { name: 'bot', autorestart: true, stopSignal: 'SIGTERM', killTimeoutMs: 1000, dependsOn: [], cronRestart: null } as unknown as AppSpec;

  test('one under way: the next is refused as busy, never queued; a stopped app is not started', async () => {
    const fake = host();
    const app = new App(spec, fake.host);
    assert.equal(app.restartOnSchedule(), 'not-online');
    assert.equal(fake.spawned, 0);
    await app.start();
    assert.equal(fake.spawned, 1);
    assert.equal(app.restartOnSchedule(), 'restarting');
    assert.equal(app.restartOnSchedule(), 'busy');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(app.status, 'stopping');
    assert.equal(app.restartOnSchedule(), 'busy');
    fake.release();
    for (let i = 0; i < 50 && (app.status as string) !== 'online'; i += 1) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(app.status, 'online');
    assert.equal(fake.spawned, 2, 'exactly one scheduled restart happened');
    assert.equal(app.exits[0]?.reason, 'scheduled');
    assert.equal(app.restarts, 1);
    app.dispose();
  });
});

describe('cron expressions', () => {
  test('bad expressions, dates that never come and unknown zones are named', () => {
    assert.match(cronProblem({ schedule: '61 * * * *', timezone: null }) ?? '', /not a cron schedule .*minute/);
    assert.match(cronProblem({ schedule: '0 0 31 2 *', timezone: null }) ?? '', /never runs/);
    assert.match(cronProblem({ schedule: '0 4 * * *', timezone: 'Mars/Base' }) ?? '', /unknown time zone 'Mars\/Base'/);
    assert.equal(cronProblem({ schedule: '*/2 * * * * *', timezone: 'Europe/Berlin' }), null);
  });

  test('croner is not loaded by the daemon modules until a schedule needs it', () => {
    const script = `
      const { parseAppSpec } = await import('./src/daemon/requests.ts');
      await import('./src/daemon/supervisor.ts');
      const { cronLoaded } = await import('./src/cron.ts');
      parseAppSpec({});
      const before = cronLoaded();
      const { nextRunAfter } = await import('./src/cron.ts');
      nextRunAfter({ schedule: '0 4 * * *', timezone: null }, new Date());
      console.log(JSON.stringify({ before, after: cronLoaded() }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out.trim()), { before: false, after: true });
  });
});
