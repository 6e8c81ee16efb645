import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentEvent } from '../src/protocol.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');

async function events(rig: Rig): Promise<AgentEvent[]> {
  const out = await rig.ok(['events', '--json', '--lines', '1000']);
  return out.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AgentEvent);
}

test('a real cron schedule (every 2 s) restarts the whole tree with reason scheduled; a stopped app stays stopped', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-cron-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agents.json');
  const every2s = { schedule: '*/2 * * * * *', timezone: 'UTC' };
  writeFileSync(file, JSON.stringify({ apps: [{ name: 'ticker', script: IDLE, cronRestart: every2s }, { name: 'sleeper', script: IDLE, cronRestart: '*/2 * * * * *' }] }));
  await rig.ok(['start', file]);
  await rig.ok(['stop', 'sleeper']);
  const firstPid = (await rig.app('ticker')).pid;

  const detail = await rig.show('ticker');
  assert.deepEqual(detail.definition.cronRestart, every2s);
  const next = Date.parse(detail.nextScheduledRestart ?? '');
  assert.ok(next > Date.now() - 1000 && next <= Date.now() + 2000, `next run ${detail.nextScheduledRestart} within the next 2 s`);
  assert.match(await rig.ok(['show', 'ticker']), /cron restart \*\/2 \* \* \* \* \* \(UTC\), next \d{4}-/);
  assert.equal((await rig.show('sleeper')).nextScheduledRestart, null, 'a stopped app has no next scheduled restart');

  // Two scheduled restarts of ticker: sleeper's schedule came due at least as often meanwhile.
  const scheduled = await waitFor(async () => {
    const found = (await events(rig)).filter((event) => event.app === 'ticker' && event.type === 'exit' && event.reason === 'scheduled');
    return found.length >= 2 ? found : null;
  }, 'two scheduled restarts of ticker', 15_000);
  assert.equal(scheduled[0]?.reason, 'scheduled');
  await waitFor(async () => (await rig.app('ticker')).status === 'online', 'ticker online again');
  const ticker = await rig.app('ticker');
  assert.notEqual(ticker.pid, firstPid, 'a new tree');
  assert.ok(ticker.restarts >= 2);
  assert.equal(ticker.lastExit?.reason, 'scheduled');

  const sleeper = await rig.app('sleeper');
  assert.equal(sleeper.status, 'stopped');
  assert.equal(sleeper.pid, null);
  const sleeperSpawns = (await events(rig)).filter((event) => event.app === 'sleeper' && event.type === 'spawn');
  assert.equal(sleeperSpawns.length, 1, 'sleeper was spawned once (by the start), never by its schedule');
  assert.equal(rig.instancesByApp().get('sleeper'), undefined);
});

test('a bad schedule or time zone is a config error naming the field; nothing starts', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-cron-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agents.json');
  writeFileSync(file, JSON.stringify({ apps: [{ name: 'a', script: IDLE, cronRestart: '0 25 * * *' }, { name: 'b', script: IDLE, cronRestart: { schedule: '0 4 * * *', timezone: 'Europe/Berln' } }] }));
  const result = await rig.cli(['start', file]);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /\("a"\): field `cronRestart`: '0 25 \* \* \*' is not a cron schedule \(Invalid value for hour: 25\)/);
  assert.match(result.stderr, /\("b"\): field `cronRestart`: unknown time zone 'Europe\/Berln'/);
  assert.equal(rig.daemonPid(), undefined);
});
