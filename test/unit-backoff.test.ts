import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EMPTY_HISTORY, backoffDelay, decideRestart, type RestartDecision, type RestartHistory, type RestartPolicy } from '../src/daemon/backoff.js';

const POLICY: RestartPolicy = {
  restartDelayMs: 1_000,
  maxRestartDelayMs: 60_000,
  minUptimeMs: 30_000,
  maxRestarts: null,
  restartWindowMs: 600_000,
};

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Feeds exits (uptime, time of exit) through decideRestart, threading the history like the daemon does. */
function run(policy: RestartPolicy, exits: readonly { uptimeMs: number; at: number }[], start: RestartHistory = EMPTY_HISTORY): RestartDecision[] {
  let history = start;
  const decisions: RestartDecision[] = [];
  for (const exit of exits) {
    const decision = decideRestart(policy, history, exit.uptimeMs, exit.at);
    decisions.push(decision);
    history = decision.history;
  }
  return decisions;
}

function delays(decisions: readonly RestartDecision[]): (number | 'give-up')[] {
  return decisions.map((decision) => (decision.action === 'restart' ? decision.delayMs : 'give-up'));
}

/** n exits that each came `uptimeMs` after a start, `gapMs` apart, from `from`. */
function exitsEvery(n: number, gapMs: number, uptimeMs: number, from = 0): { uptimeMs: number; at: number }[] {
  return Array.from({ length: n }, (_, index) => ({ uptimeMs, at: from + index * gapMs }));
}

describe('backoffDelay', () => {
  test('starts at restartDelayMs and doubles per unstable exit in a row', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((consecutive) => backoffDelay(POLICY, consecutive)),
      [1_000, 2_000, 4_000, 8_000, 16_000, 32_000],
    );
  });

  test('is capped at maxRestartDelayMs', () => {
    assert.equal(backoffDelay(POLICY, 7), 60_000); // 64 s uncapped
    assert.equal(backoffDelay(POLICY, 8), 60_000);
  });

  test('stays finite and capped for a huge count of consecutive exits', () => {
    const delay = backoffDelay(POLICY, 10_000);
    assert.ok(Number.isFinite(delay));
    assert.equal(delay, 60_000);
  });

  test('a count of 0 (no exit yet) gives the base delay, not half of it', () => {
    assert.equal(backoffDelay(POLICY, 0), 1_000);
  });
});

describe('decideRestart: delays', () => {
  test('delays double from restartDelayMs for quick exits, capped at maxRestartDelayMs', () => {
    const decisions = run(POLICY, exitsEvery(9, 2 * SECOND, 100));
    assert.deepEqual(delays(decisions), [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    assert.deepEqual(
      decisions.map((decision) => decision.history.consecutive),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  test('a run of exactly minUptimeMs resets the backoff to the base delay', () => {
    const decisions = run(POLICY, [
      { uptimeMs: 10, at: 1 * SECOND },
      { uptimeMs: 10, at: 3 * SECOND },
      { uptimeMs: 10, at: 7 * SECOND },
      { uptimeMs: POLICY.minUptimeMs, at: 50 * SECOND },
      { uptimeMs: 10, at: 52 * SECOND },
    ]);
    assert.deepEqual(delays(decisions), [1_000, 2_000, 4_000, 1_000, 2_000]);
    assert.equal(decisions[3]?.history.consecutive, 1);
  });

  test('a run just shorter than minUptimeMs does not reset the backoff', () => {
    const decisions = run(POLICY, [
      { uptimeMs: 10, at: 1 * SECOND },
      { uptimeMs: 10, at: 3 * SECOND },
      { uptimeMs: POLICY.minUptimeMs - 1, at: 40 * SECOND },
    ]);
    assert.deepEqual(delays(decisions), [1_000, 2_000, 4_000]);
  });

  test('a stable run after hitting the cap goes straight back to the base delay', () => {
    const decisions = run(POLICY, [...exitsEvery(10, 2 * SECOND, 100), { uptimeMs: HOUR, at: 2 * HOUR }]);
    assert.equal(delays(decisions).at(-2), 60_000);
    assert.equal(delays(decisions).at(-1), 1_000);
  });

  test('records the restart time in the history and does not mutate the history passed in', () => {
    const before: RestartHistory = Object.freeze({ consecutive: 2, recent: Object.freeze([5_000, 6_000]) as number[] });
    const decision = decideRestart(POLICY, before, 10, 9_000);
    assert.equal(decision.action, 'restart');
    assert.deepEqual(decision.history, { consecutive: 3, recent: [5_000, 6_000, 9_000] });
    assert.deepEqual(before, { consecutive: 2, recent: [5_000, 6_000] });
    assert.deepEqual(EMPTY_HISTORY, { consecutive: 0, recent: [] });
  });
});

describe('decideRestart: giving up', () => {
  const limited: RestartPolicy = { ...POLICY, maxRestarts: 3, restartWindowMs: MINUTE };

  test('gives up on the exit after maxRestarts restarts inside the window', () => {
    const decisions = run(limited, exitsEvery(4, SECOND, 100));
    assert.deepEqual(
      decisions.map((decision) => decision.action),
      ['restart', 'restart', 'restart', 'give-up'],
    );
    const last = decisions[3];
    assert.ok(last?.action === 'give-up');
    assert.equal(last.restartsInWindow, 3);
    // A give-up is not a restart: it is not recorded as one.
    assert.deepEqual(last.history.recent, [0, SECOND, 2 * SECOND]);
  });

  test('the window slides: restarts older than restartWindowMs no longer count', () => {
    // Restarts at 0 s, 30 s and 50 s; the exit at 61 s sees only the last two inside the minute.
    const decisions = run(limited, [
      { uptimeMs: 100, at: 0 },
      { uptimeMs: 100, at: 30 * SECOND },
      { uptimeMs: 100, at: 50 * SECOND },
      { uptimeMs: 100, at: 61 * SECOND },
    ]);
    assert.deepEqual(
      decisions.map((decision) => decision.action),
      ['restart', 'restart', 'restart', 'restart'],
    );
    assert.deepEqual(decisions[3]?.history.recent, [30 * SECOND, 50 * SECOND, 61 * SECOND]);
  });

  test('restarts spread wider than the window never give up', () => {
    const decisions = run(limited, exitsEvery(50, 2 * MINUTE, 100));
    assert.ok(decisions.every((decision) => decision.action === 'restart'));
  });

  test('maxRestarts null never gives up, however fast the loop', () => {
    const decisions = run(POLICY, exitsEvery(500, 10, 1));
    assert.ok(decisions.every((decision) => decision.action === 'restart'));
  });

  test('a crash loop that starts hours after launch is caught (window not anchored at the first start)', () => {
    const policy: RestartPolicy = { ...POLICY, maxRestarts: 5, restartWindowMs: 10 * MINUTE };
    // Early life: a few restarts close together at launch, then stable runs ending hourly for 5 hours.
    const early = [...exitsEvery(3, SECOND, 100), ...exitsEvery(5, HOUR, HOUR, HOUR)];
    // Then a loop: exits 2 s apart, starting at 6 h.
    const loop = exitsEvery(10, 2 * SECOND, 100, 6 * HOUR);
    const decisions = run(policy, [...early, ...loop]);
    const earlyDecisions = decisions.slice(0, early.length);
    const loopDecisions = decisions.slice(early.length);
    assert.ok(earlyDecisions.every((decision) => decision.action === 'restart'));
    assert.deepEqual(
      loopDecisions.map((decision) => decision.action),
      ['restart', 'restart', 'restart', 'restart', 'restart', 'give-up', 'give-up', 'give-up', 'give-up', 'give-up'],
    );
    const giveUp = loopDecisions[5];
    assert.ok(giveUp?.action === 'give-up');
    assert.equal(giveUp.restartsInWindow, 5);
  });
});
