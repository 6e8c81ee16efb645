import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildPayload, hookEnv, hookLabel, hooksFor, notifyAppOf, notifyKindOf, parseNotifyRate, RateLimiter } from '../src/daemon/notify.js';
import type { AgentEvent, EventType, NotifyHook } from '../src/protocol.js';

function event(type: EventType, reason: string | null, data: Record<string, unknown> = {}, app: string | null = 'bot'): AgentEvent {
  return { type, app, instance: app ? 'abc123def456' : null, at: '2025-01-01T00:00:00.000Z', reason, data };
}

function hook(partial: Partial<NotifyHook>): NotifyHook {
  return { command: null, webhook: null, events: null, timeoutMs: 10_000, ...partial };
}

describe('event → notify kind', () => {
  test('exits map by reason; ordinary ends are not alerted on', () => {
    const cases: [string, string | null][] = [
      ['crashed', 'crash'],
      ['oom-killed', 'oom-killed'],
      ['killed-by-signal', 'killed-by-signal'],
      ['health-failed', 'health-failed'],
      ['hung', 'hung'],
      ['memory-pressure', 'memory-pressure'],
      ['exited', null],
      ['stopped', null],
      ['vanished', null],
      ['spawn-failed', null],
      ['memory-limit', null], // the limit-breach event is the alert (limit-restart), not its exit
      ['children-limit', null],
    ];
    for (const [reason, kind] of cases) assert.equal(notifyKindOf(event('exit', reason)), kind, reason);
  });

  test('limit breaches alert when they restart or contain the tree, not when only an offender is ended', () => {
    assert.equal(notifyKindOf(event('limit-breach', 'memory-limit', { action: 'restart' })), 'limit-restart');
    assert.equal(notifyKindOf(event('limit-breach', 'children-limit', { action: 'contain' })), 'limit-restart');
    assert.equal(notifyKindOf(event('limit-breach', 'memory-limit', { action: 'kill-offender' })), null);
  });

  test('backoff, give-up, orphans, the guard', () => {
    assert.equal(notifyKindOf(event('backoff', null, { delayMs: 100 })), 'backoff');
    assert.equal(notifyKindOf(event('give-up', null)), 'errored');
    assert.equal(notifyKindOf(event('orphans-reaped', 'instance-ended', { count: 2 })), 'orphans-reaped');
    assert.equal(notifyKindOf(event('orphans-reaped', 'unmanaged-match', { count: 2 }, null)), 'orphans-reaped');
    assert.equal(notifyKindOf(event('guard', 'memory-pressure', { victim: 'bot' })), 'memory-pressure');
    assert.equal(notifyKindOf(event('guard', 'recovered', {}, null)), null);
  });

  test('notify-failed is never notified (no loops), nor are routine events', () => {
    for (const type of ['notify-failed', 'state', 'spawn', 'adopt', 'daemon', 'health', 'watch', 'offender-killed', 'leftovers-killed'] as const) {
      assert.equal(notifyKindOf(event(type, 'timeout')), null, type);
    }
  });

  test("the guard's victim is the app an alert is about", () => {
    assert.equal(notifyAppOf(event('guard', 'memory-pressure', { victim: 'worker' }, null)), 'worker');
    assert.equal(notifyAppOf(event('guard', 'memory-pressure', { victim: 'worker' }, 'worker')), 'worker');
    assert.equal(notifyAppOf(event('orphans-reaped', 'unmanaged-match', {}, null)), null);
  });
});

describe('hooks for an alert', () => {
  const appHook = hook({ command: 'app-hook', events: ['crash'] });
  const everything = hook({ webhook: 'https://example.org/hook' });
  const errorsOnly = hook({ command: 'pager', events: ['errored', 'oom-killed'] });

  test("the app's hooks first, then the global ones, filtered by events", () => {
    assert.deepEqual(hooksFor('crash', [appHook], [everything, errorsOnly]), [appHook, everything]);
    assert.deepEqual(hooksFor('errored', [appHook], [everything, errorsOnly]), [everything, errorsOnly]);
    assert.deepEqual(hooksFor('backoff', [appHook], []), []);
  });

  test('a hook configured for the app and globally gets an alert once; no kind (a test) ignores the filter', () => {
    assert.deepEqual(hooksFor('crash', [everything], [{ ...everything }]), [everything]);
    assert.deepEqual(hooksFor(null, [appHook], [errorsOnly]), [appHook, errorsOnly]);
  });
});

describe('rate limiting and coalescing (injected clock)', () => {
  test('at most `limit` per window; the rest are counted into one summary when the window ends', () => {
    const limiter = new RateLimiter<string>(3, 60_000);
    const t0 = 1_000_000;
    const admitted = Array.from({ length: 15 }, (_, index) => limiter.admit('bot/crash', `crash ${index}`, t0 + index * 1000));
    assert.deepEqual(admitted.filter(Boolean).length, 3);
    assert.deepEqual(admitted.slice(0, 3), [true, true, true]);
    assert.equal(limiter.nextExpiry(), t0 + 60_000);
    assert.deepEqual(limiter.expire(t0 + 59_999), [], 'nothing is due before the window ends');
    assert.deepEqual(limiter.expire(t0 + 60_000), [{ key: 'bot/crash', count: 12, windowMs: 60_000, last: 'crash 14' }]);
  });

  test('while a loop goes on, each further window gives one summary only; when it stops, alerts flow again', () => {
    const limiter = new RateLimiter<number>(2, 1000);
    let now = 0;
    assert.equal(limiter.admit('k', 1, now), true);
    assert.equal(limiter.admit('k', 2, (now += 100)), true);
    assert.equal(limiter.admit('k', 3, (now += 100)), false);
    assert.equal(limiter.expire((now = 1000))[0]?.count, 1);
    // The loop goes on: the next window starts full.
    assert.equal(limiter.admit('k', 4, (now += 100)), false);
    assert.equal(limiter.admit('k', 5, (now += 100)), false);
    assert.deepEqual(limiter.expire((now = 2000)), [{ key: 'k', count: 2, windowMs: 1000, last: 5 }]);
    // Quiet for a whole window: it ends with nothing held back and is forgotten.
    assert.deepEqual(limiter.expire((now = 3000)), []);
    assert.equal(limiter.openWindows, 0);
    assert.equal(limiter.nextExpiry(), null);
    assert.equal(limiter.admit('k', 6, (now += 10)), true, 'a new incident alerts at once');
  });

  test('keys are independent: another app or another kind has its own budget', () => {
    const limiter = new RateLimiter<string>(1, 1000);
    assert.equal(limiter.admit('bot\0crash', 'a', 0), true);
    assert.equal(limiter.admit('bot\0crash', 'b', 1), false);
    assert.equal(limiter.admit('bot\0backoff', 'c', 2), true);
    assert.equal(limiter.admit('worker\0crash', 'd', 3), true);
    const due = limiter.expire(5000);
    assert.deepEqual(due.map((item) => [item.key, item.count]), [['bot\0crash', 1]]);
  });

  test('a window whose end was never processed does not swallow a new incident', () => {
    const limiter = new RateLimiter<string>(1, 1000);
    assert.equal(limiter.admit('k', 'a', 0), true);
    assert.equal(limiter.admit('k', 'b', 5000), true);
  });

  test('AGENTPM_NOTIFY_RATE', () => {
    assert.deepEqual(parseNotifyRate(undefined), { limit: 3, windowMs: 60_000 });
    assert.deepEqual(parseNotifyRate('5/2m'), { limit: 5, windowMs: 120_000 });
    assert.deepEqual(parseNotifyRate('2 / 1500ms'), { limit: 2, windowMs: 1500 });
    assert.deepEqual(parseNotifyRate('lots'), { limit: 3, windowMs: 60_000 });
    assert.deepEqual(parseNotifyRate('0/1s'), { limit: 3, windowMs: 60_000 });
  });
});

describe('payload, environment, labels', () => {
  const crash = event('exit', 'crashed', { code: 3, signal: null, uptimeMs: 2500, leftovers: 0 });

  test('the payload carries the kind, the event and a one-line message', () => {
    const payload = buildPayload(crash, 'crash', { host: 'box' });
    assert.equal(payload.kind, 'crash');
    assert.equal(payload.app, 'bot');
    assert.equal(payload.instance, 'abc123def456');
    assert.equal(payload.reason, 'crashed');
    assert.equal(payload.at, crash.at);
    assert.equal(payload.message, 'bot: exited: crashed (code 3) after 2s');
    assert.equal(payload.text, 'agentpm on box: bot: exited: crashed (code 3) after 2s');
    assert.equal(payload.test, false);
    assert.equal(payload.coalesced, null);
    assert.deepEqual(payload.event, crash);
  });

  test('a summary says how many were held back, for which app, over which window', () => {
    const payload = buildPayload(crash, 'crash', { host: 'box', coalesced: { count: 12, windowMs: 60_000 } });
    assert.equal(payload.message, '12 more crash events for bot in the last 60 s');
    assert.equal(payload.reason, 'coalesced');
    assert.equal(buildPayload(crash, 'crash', { coalesced: { count: 1, windowMs: 1500 } }).message, '1 more crash event for bot in the last 1500 ms');
  });

  test('a test is marked as one', () => {
    const payload = buildPayload(crash, 'crash', { test: true });
    assert.equal(payload.test, true);
    assert.match(payload.message, /^TEST \(agentpm notify test, nothing happened\): /);
  });

  test('the environment has AGENTPM_EVENT_* and never the instance tags', () => {
    const payload = buildPayload(crash, 'crash');
    const env = hookEnv({ PATH: '/bin', AGENTPM_APP: 'bot', AGENTPM_INSTANCE: 'abc', AGENTPM_HOME: '/elsewhere', KEEP: 'x', UNSET: undefined }, payload, '/home/me/.agentpm');
    assert.equal(env['AGENTPM_APP'], undefined);
    assert.equal(env['AGENTPM_INSTANCE'], undefined);
    assert.equal(env['AGENTPM_HOME'], '/home/me/.agentpm');
    assert.equal(env['KEEP'], 'x');
    assert.equal('UNSET' in env, false);
    assert.deepEqual(
      Object.fromEntries(Object.entries(env).filter(([key]) => key.startsWith('AGENTPM_EVENT_'))),
      {
        AGENTPM_EVENT_TYPE: 'crash',
        AGENTPM_EVENT_APP: 'bot',
        AGENTPM_EVENT_REASON: 'crashed',
        AGENTPM_EVENT_AT: crash.at,
        AGENTPM_EVENT_INSTANCE: 'abc123def456',
        AGENTPM_EVENT_MESSAGE: payload.message,
      },
    );
  });

  test('labels hide URL paths and credentials, which often are the secret', () => {
    assert.equal(hookLabel(hook({ webhook: 'https://hooks.slack.com/services/T000/B000/XXXX' }), 'webhook'), 'webhook https://hooks.slack.com/…');
    assert.equal(hookLabel(hook({ webhook: 'http://127.0.0.1:8080/' }), 'webhook'), 'webhook http://127.0.0.1:8080');
    assert.equal(
      hookLabel(hook({ command: 'curl -fsS -d @- https://user:pw@api.telegram.org/bot123:ABC/sendMessage' }), 'command'),
      'command curl -fsS -d @- https://api.telegram.org/…',
    );
    assert.ok(hookLabel(hook({ command: `echo ${'x'.repeat(200)}` }), 'command').length <= 'command '.length + 80);
  });
});
