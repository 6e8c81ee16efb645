import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ExitRecord } from '../src/protocol.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const CRASHER = join(FIXTURES, 'crasher.mjs');

function writeConfig(rig: Rig, app: Record<string, unknown>): string {
  const file = join(rig.home, 'crash.config.json');
  writeFileSync(file, JSON.stringify({ apps: [{ name: 'crasher', script: CRASHER, ...app }] }));
  return file;
}

function starts(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => Number(line.split(' ')[1]));
  } catch {
    return [];
  }
}

test('a parent with 5 children that crashes leaves no orphans across 5 restarts', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const config = writeConfig(rig, {
    env: { CHILDREN: 5, LIFETIME_MS: 400 },
    restartDelay: '50ms',
    maxRestartDelay: '100ms',
    killTimeout: '2s',
  });
  await rig.ok(['start', config]);
  let maxAlive = 0;
  await waitFor(
    async () => {
      const tagged = rig.tagged();
      const instances = new Set(tagged.map((proc) => proc.instance));
      assert.ok(instances.size <= 1, `at most one instance alive at any time, saw ${[...instances].join(', ')}`);
      maxAlive = Math.max(maxAlive, tagged.length);
      return (await rig.app('crasher')).restarts >= 5;
    },
    '5 restarts',
    20_000,
  );
  assert.ok(maxAlive <= 6, `never more than one tree (root + 5 children) alive, saw ${maxAlive}`);
  const detail = await rig.show('crasher');
  const crashes = detail.exits.filter((exit) => exit.reason === 'crashed');
  assert.ok(crashes.length >= 5, 'each exit is recorded as crashed');
  assert.ok(crashes.every((exit) => exit.code === 1));
  assert.ok(crashes.every((exit) => exit.leftovers === 5), 'the 5 children of each crashed instance were killed');
});

/**
 * Pauses between one exit and the next start, from the daemon's own exit records (oldest first). These
 * exclude node's start-up time, which varies with the machine's load; the backoff delay does not.
 */
function pausesOf(exits: ExitRecord[]): number[] {
  const oldestFirst = [...exits].reverse();
  return oldestFirst.slice(1).map((exit, index) => {
    const started = Date.parse(exit.at) - exit.uptimeMs;
    return started - Date.parse((oldestFirst[index] as ExitRecord).at);
  });
}

test('backoff delays double for unstable exits and start over after a stable run', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // Runs 1-4 crash at once, run 5 is stable (longer than minUptime), runs 6+ crash at once again.
  const config = writeConfig(rig, {
    env: { LIFETIMES: '50,50,50,50,1300,50', COUNTER: join(rig.home, 'counter') },
    restartDelay: '200ms',
    maxRestartDelay: '5s',
    minUptime: '1s',
  });
  await rig.ok(['start', config]);
  const detail = await waitFor(async () => {
    const show = await rig.show('crasher');
    return show.exits.length >= 6 ? show : undefined;
  }, 'six exits', 20_000);
  const [p1, p2, p3, p4, afterStable] = pausesOf(detail.exits) as [number, number, number, number, number];
  const pauses = [p1, p2, p3, p4, afterStable].join(', ');
  assert.ok(p1 >= 200 && p1 < 400, `first delay is restartDelay: ${pauses}`);
  assert.ok(p2 >= 400 && p3 >= 800 && p4 >= 1600, `delays double: ${pauses}`);
  assert.ok(p2 > p1 * 1.5 && p3 > p2 * 1.5 && p4 > p3 * 1.5, `delays double: ${pauses}`);
  assert.ok(afterStable >= 200 && afterStable < 400, `after a stable run the delay starts over: ${pauses}`);
});

test('a crash loop that begins long after launch is backed off, and maxRestarts gives up in a sliding window', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const startsFile = join(rig.home, 'starts');
  const config = writeConfig(rig, {
    env: { LIFETIMES: '1500,30', COUNTER: join(rig.home, 'counter'), STARTS: startsFile },
    restartDelay: '100ms',
    maxRestartDelay: '10s',
    minUptime: '1s',
    maxRestarts: 4,
    restartWindow: '1m',
  });
  await rig.ok(['start', config]);
  const app = await waitFor(async () => {
    const summary = await rig.app('crasher');
    return summary.status === 'errored' ? summary : undefined;
  }, 'the app to give up', 20_000);
  assert.equal(starts(startsFile).length, 5, 'the first run and 4 restarts, then no more');
  assert.equal(app.restarts, 4);
  const pauses = pausesOf((await rig.show('crasher')).exits);
  assert.equal(pauses.length, 4);
  assert.ok(pauses.every((pause, index) => index === 0 || pause > (pauses[index - 1] as number) * 1.5), `late loop backed off: ${pauses.join(', ')}`);
  assert.deepEqual(rig.tagged(), [], 'nothing runs once errored');

  // A manual restart clears errored.
  await rig.ok(['restart', 'crasher']);
  assert.notEqual((await rig.app('crasher')).status, 'errored');
});

test('--no-autorestart leaves a crashed app stopped, with its exit recorded', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', CRASHER, '--name', 'once', '--no-autorestart', '--env', 'EXIT_CODE=3', '--env', 'CHILDREN=2']);
  const app = await waitFor(async () => {
    const summary = await rig.app('once');
    return summary.status === 'stopped' && summary.lastExit ? summary : undefined;
  }, 'the app to exit');
  assert.equal(app.lastExit?.reason, 'crashed');
  assert.equal(app.lastExit?.code, 3);
  assert.equal(app.restarts, 0);
  assert.deepEqual(rig.tagged(), [], 'its children were killed');
});

test('an app killed by a signal from outside is recorded as killed-by-signal', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', join(FIXTURES, 'idle.mjs'), '--name', 'victim', '--restart-delay', '100ms']);
  const before = await rig.app('victim');
  // What earlyoom does: a SIGTERM agentpm did not send. (`signal` reaches the root only.)
  await rig.ok(['signal', 'SIGTERM', 'victim']);
  const after = await waitFor(async () => {
    const summary = await rig.app('victim');
    return summary.status === 'online' && summary.pid !== before.pid ? summary : undefined;
  }, 'the restart');
  assert.equal(after.lastExit?.reason, 'killed-by-signal');
  assert.equal(after.lastExit?.signal, 'SIGTERM');
});
