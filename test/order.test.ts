import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentEvent } from '../src/protocol.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');
const CRASHER = join(FIXTURES, 'crasher.mjs');
const READY_AFTER_MS = 1500;

/** A JSON config in a temporary directory, removed after the test. */
function config(t: TestContext, apps: Record<string, unknown>[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-order-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agents.json');
  writeFileSync(file, JSON.stringify({ apps }));
  return file;
}

async function events(rig: Rig): Promise<AgentEvent[]> {
  const out = await rig.ok(['events', '--json', '--lines', '1000']);
  return out.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AgentEvent);
}

const GATEWAY_AND_BOT = [
  // bot first: the file's order is not the start order.
  { name: 'bot', script: IDLE, dependsOn: ['gateway'], readyAfter: '0s' },
  { name: 'gateway', script: IDLE, readyAfter: `${READY_AFTER_MS}ms` },
];

test('bot starts only once gateway is ready, is shown waiting meanwhile, and stop all stops bot before gateway', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const file = config(t, GATEWAY_AND_BOT);
  const started = await rig.cli(['start', file]);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /bot\s+waiting \(gateway\)/, started.stdout);

  const early = await rig.ls();
  const bot = early.find((app) => app.name === 'bot');
  assert.equal(bot?.status, 'waiting');
  assert.deepEqual(bot?.waitingFor, ['gateway']);
  assert.equal(bot?.pid, null);
  assert.equal(bot?.ready, false);
  assert.equal(early.find((app) => app.name === 'gateway')?.waitingFor, null);
  assert.match((await rig.cli(['show', 'bot'])).stdout, /depends on\s+gateway \(waiting for gateway\)/);

  await waitFor(async () => (await rig.app('bot')).status === 'online', 'bot online', 10_000);
  const all = await events(rig);
  const waiting = all.find((event) => event.app === 'bot' && event.type === 'state' && event.data['to'] === 'waiting');
  assert.deepEqual(waiting?.data['waitingFor'], ['gateway'], 'the event says what bot waits for');
  const spawns = all.filter((event) => event.type === 'spawn');
  const gatewayAt = Date.parse(spawns.find((event) => event.app === 'gateway')?.at ?? '');
  const botAt = Date.parse(spawns.find((event) => event.app === 'bot')?.at ?? '');
  assert.ok(botAt - gatewayAt >= READY_AFTER_MS, `bot's root started ${botAt - gatewayAt} ms after gateway's; gateway is ready after ${READY_AFTER_MS} ms`);
  assert.equal(spawns.filter((event) => event.app === 'bot').length, 1, 'bot was spawned once, never before gateway was ready');
  assert.equal((await rig.app('gateway')).ready, true);

  // A dependency's restart leaves its running dependents alone.
  const botPid = (await rig.app('bot')).pid;
  await rig.ok(['restart', 'gateway']);
  const gatewayAgain = await rig.app('gateway');
  assert.equal(gatewayAgain.status, 'online');
  assert.equal(gatewayAgain.ready, false, 'just restarted: not ready for readyAfter');
  const botAfter = await rig.app('bot');
  assert.equal(botAfter.status, 'online');
  assert.equal(botAfter.pid, botPid, 'bot kept its tree');
  assert.equal(botAfter.restarts, 0);

  const mark = (await events(rig)).length;
  const stopped = await rig.cli(['stop', 'all']);
  assert.equal(stopped.code, 0, stopped.stderr);
  const after = (await events(rig)).slice(mark);
  const botExit = after.findIndex((event) => event.app === 'bot' && event.type === 'exit' && event.reason === 'stopped');
  const gatewayStopping = after.findIndex((event) => event.app === 'gateway' && event.type === 'state' && event.data['to'] === 'stopping');
  assert.ok(botExit >= 0 && gatewayStopping >= 0, JSON.stringify(after.slice(-8)));
  assert.ok(botExit < gatewayStopping, 'bot had exited before gateway began to stop');
});

test('restart all --wait follows the order: bot restarts once gateway is ready again', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const file = config(t, GATEWAY_AND_BOT);
  await rig.ok(['start', file]);
  await waitFor(async () => (await rig.app('bot')).status === 'online', 'bot online', 10_000);
  const before = (await events(rig)).length;
  const result = await rig.cli(['restart', 'all', '--wait', '--parallel', '2', '--json'], { timeoutMs: 60_000 });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const summary = JSON.parse(result.stdout) as { ok: boolean; apps: { name: string; ok: boolean }[] };
  assert.deepEqual(summary.apps.map((app) => app.name), ['gateway', 'bot'], 'dependencies first, in batches of their own despite --parallel 2');
  const fresh = (await events(rig)).slice(before);
  const gatewaySpawn = Date.parse(fresh.find((event) => event.app === 'gateway' && event.type === 'spawn')?.at ?? '');
  const botStop = Date.parse(fresh.find((event) => event.app === 'bot' && event.type === 'exit')?.at ?? '');
  assert.ok(botStop - gatewaySpawn >= READY_AFTER_MS, `bot was restarted ${botStop - gatewaySpawn} ms after gateway's new start`);
});

test('a dependency that crash-loops into errored leaves its dependent waiting, never started nor restarting', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const file = config(t, [
    { name: 'gateway', script: CRASHER, restartDelay: '100ms', maxRestarts: 2, env: { LIFETIME_MS: '50' } },
    { name: 'bot', script: IDLE, dependsOn: ['gateway'] },
  ]);
  await rig.ok(['start', file]);
  await waitFor(async () => (await rig.app('gateway')).status === 'errored', 'gateway errored', 15_000);
  // Several monitor ticks (200 ms each) after gateway gave up: bot is still waiting, with no process.
  await sleep(1000);
  const bot = await rig.app('bot');
  assert.equal(bot.status, 'waiting');
  assert.deepEqual(bot.waitingFor, ['gateway']);
  assert.equal(bot.restarts, 0);
  assert.equal(bot.pid, null);
  const botEvents = (await events(rig)).filter((event) => event.app === 'bot');
  assert.equal(botEvents.filter((event) => event.type === 'spawn' || event.type === 'backoff').length, 0, 'bot never spawned nor backed off');
  assert.equal(rig.instancesByApp().get('bot'), undefined, 'no process of bot');
  assert.match(await rig.ok(['ls']), /bot\s+waiting \(gateway\)/);
  // A dependency and its dependents may go together.
  await rig.ok(['delete', 'gateway', 'bot']);
  assert.deepEqual(await rig.ls(), []);
});

test('a cycle is refused naming the apps, and nothing is started', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const file = config(t, [
    { name: 'a', script: IDLE, dependsOn: ['b'] },
    { name: 'b', script: IDLE, dependsOn: ['a'] },
    { name: 'c', script: IDLE },
  ]);
  const result = await rig.cli(['start', file]);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /`dependsOn` forms a cycle: (a → b → a|b → a → b); none of (a, b|b, a) could ever start/);
  assert.match(result.stderr, /nothing was started/);
  assert.equal(rig.daemonPid(), undefined, 'a config with an error starts no daemon');
  assert.deepEqual(rig.tagged(), []);
});

test('--only bot brings gateway along and says so; deleting gateway alone is refused', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const file = config(t, [...GATEWAY_AND_BOT, { name: 'other', script: IDLE }]);
  const result = await rig.cli(['start', file, '--only', 'bot']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /--only: also starting gateway, which bot depends on/);
  assert.deepEqual((await rig.ls()).map((app) => app.name).sort(), ['bot', 'gateway']);
  const refused = await rig.cli(['delete', 'gateway']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /bot depends on gateway.*agentpm delete gateway bot/);
  assert.deepEqual((await rig.ls()).map((app) => app.name).sort(), ['bot', 'gateway'], 'nothing was deleted');
});

test('across a daemon restart bot keeps waiting, then starts by itself once its dependency is ready', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const file = config(t, [
    { name: 'gateway', script: CRASHER, restartDelay: '100ms', maxRestarts: 1, env: { LIFETIME_MS: '50' } },
    { name: 'bot', script: IDLE, dependsOn: ['gateway'] },
  ]);
  await rig.ok(['start', file]);
  await waitFor(async () => (await rig.app('gateway')).status === 'errored', 'gateway errored', 15_000);
  await rig.ok(['daemon', 'restart']);
  const bot = await rig.app('bot');
  assert.equal(bot.status, 'waiting', 'the new daemon revives bot into waiting, not into a start');
  assert.equal(rig.instancesByApp().get('bot'), undefined);
  // The dependency fixed (a definition that stays up): bot follows, once gateway has been up for readyAfter.
  await rig.ok(['start', IDLE, '--name', 'gateway']);
  const online = await waitFor(async () => {
    const app = await rig.app('bot');
    return app.status === 'online' ? app : null;
  }, 'bot online after gateway is ready', 15_000);
  assert.equal(online.waitingFor, null);
  const spawns = (await events(rig)).filter((event) => event.type === 'spawn');
  const gatewayAt = Date.parse(spawns.filter((event) => event.app === 'gateway').at(-1)?.at ?? '');
  const botAt = Date.parse(spawns.find((event) => event.app === 'bot')?.at ?? '');
  assert.ok(botAt - gatewayAt >= 3000, `bot started ${botAt - gatewayAt} ms after the fixed gateway (readyAfter 3 s)`);
});
