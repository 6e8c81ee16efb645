import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentEvent } from '../src/protocol.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');
const MEMORY_TREE = join(FIXTURES, 'memory-tree.mjs');

function writeConfig(rig: Rig, config: Record<string, unknown>): string {
  const file = join(rig.home, 'ecosystem.config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

async function eventsOf(rig: Rig, app: string | null): Promise<AgentEvent[]> {
  const args = ['events', '--json', '--lines', '1000', ...(app ? ['--app', app] : [])];
  return (await rig.ok(args)).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AgentEvent);
}

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health` };
}

test('an HTTP health check failing `retries` times in a row restarts the app with reason health-failed', async (t) => {
  let status = 200;
  const { server, url } = await listen((_request, response) => {
    response.writeHead(status);
    response.end();
  });
  const rig = await Rig.create();
  t.after(async () => {
    await rig.dispose();
    server.close();
  });
  await rig.ok(['start', writeConfig(rig, { apps: [{ name: 'bot', script: IDLE, restartDelay: '30s', health: { http: url, interval: '200ms', timeout: '1s', retries: 3, startPeriod: '0s' } }] })]);
  await waitFor(async () => (await rig.app('bot')).health === 'healthy' || undefined, 'healthy');
  status = 503;
  const app = await waitFor(async () => {
    const summary = await rig.app('bot');
    return summary.lastExit ? summary : undefined;
  }, 'the restart');
  assert.equal(app.lastExit?.reason, 'health-failed');
  assert.equal(app.status, 'backoff', 'the backoff applies');
  const health = (await eventsOf(rig, 'bot')).filter((event) => event.type === 'health');
  assert.deepEqual(health.map((event) => event.reason), ['healthy', 'unhealthy', 'failed']);
  assert.equal(health[2]?.data['failures'], 3);
  assert.equal(health[2]?.data['message'], 'HTTP 503');
});

test('a silent app trips hangTimeout; a talking one does not', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const talker = join(rig.home, 'talker.mjs');
  writeFileSync(talker, "setInterval(() => console.log('tick'), 100);");
  await rig.ok(['start', writeConfig(rig, { apps: [
    { name: 'silent', script: IDLE, hangTimeout: '1s', restartDelay: '30s' },
    { name: 'talker', script: talker, hangTimeout: '1s' },
  ] })]);
  const silent = await waitFor(async () => {
    const summary = await rig.app('silent');
    return summary.lastExit ? summary : undefined;
  }, 'the silent app to be restarted');
  assert.equal(silent.lastExit?.reason, 'hung');
  const talking = await rig.app('talker');
  assert.equal(talking.restarts, 0);
  assert.equal(talking.lastExit, null, 'an app that keeps writing output is not hung');
});

test('the memory guard picks the lowest priority, then the largest tree, and acts once until memory recovers', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const total = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'latin1'))?.[1]) * 1024;
  const apps = [
    { name: 'important', script: MEMORY_TREE, priority: 5, env: { CHILD_MB: '40' } },
    { name: 'small', script: IDLE, priority: 1 },
    { name: 'large', script: MEMORY_TREE, priority: 1, env: { CHILD_MB: '20' }, restartDelay: '100ms' },
  ];
  await rig.ok(['start', writeConfig(rig, { apps })]);
  await waitFor(async () => {
    const list = await rig.ls();
    const memory = (name: string): number => list.find((app) => app.name === name)?.memory ?? 0;
    return memory('large') > memory('small') + 20 * 1024 * 1024 && memory('important') > memory('large') ? true : undefined;
  }, 'the trees to reach their size');
  // Then a threshold above all the memory there is: the machine is "under pressure" from now on.
  // Re-running start applies the new settings and leaves the unchanged apps running.
  await rig.ok(['start', writeConfig(rig, { guard: { minAvailable: total + 1024 * 1024 * 1024 }, apps })]);
  const guard = await waitFor(async () => (await eventsOf(rig, null)).find((event) => event.type === 'guard'), 'the guard to act');
  assert.equal(guard.reason, 'memory-pressure');
  assert.equal(guard.data['victim'], 'large');
  assert.equal(guard.data['action'], 'restart');
  await waitFor(async () => (await rig.app('large')).status === 'online' && (await rig.app('large')).restarts === 1 || undefined, 'the victim to be back');
  // Several ticks later, still under "pressure": no second victim, no loop.
  const until = Date.now() + 2000;
  await waitFor(() => Date.now() > until || undefined, 'a few monitor ticks', 3000, 100);
  const list = await rig.ls();
  assert.deepEqual(list.map((app) => [app.name, app.restarts]), [['important', 0], ['small', 0], ['large', 1]]);
  assert.equal((await eventsOf(rig, null)).filter((event) => event.type === 'guard').length, 1);
  assert.equal((await rig.show('large')).exits[0]?.reason, 'memory-pressure');
  const log = readFileSync(join(rig.home, 'daemon.log'), 'utf8');
  assert.match(log, /memory guard: available memory \d+ bytes < \d+; restarting large/);
});

test('oomScoreAdj is written for the root process', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', writeConfig(rig, { apps: [{ name: 'expendable', script: IDLE, oomScoreAdj: 500 }, { name: 'plain', script: IDLE }] })]);
  const list = await rig.ls();
  const score = (name: string): string => readFileSync(`/proc/${list.find((app) => app.name === name)?.pid}/oom_score_adj`, 'latin1').trim();
  assert.equal(score('expendable'), '500');
  assert.equal(score('plain'), '0', "an app does not inherit the daemon's protection");
});

test('a command health check: exit 0 is healthy, anything else or a timeout is not, and nothing it started survives', async () => {
  const { probe } = await import('../src/daemon/health.js');
  const check = { http: null, intervalMs: 1000, timeoutMs: 300, retries: 1, startPeriodMs: 0 };
  const never = new AbortController().signal;
  assert.deepEqual(await probe({ ...check, command: 'exit 0' }, FIXTURES, never), { ok: true });
  assert.deepEqual(await probe({ ...check, command: 'exit 3' }, FIXTURES, never), { ok: false, message: 'exited with code 3' });
  const slow = await probe({ ...check, command: 'sleep 30' }, FIXTURES, never);
  assert.equal(slow.ok, false);
  assert.match(slow.ok ? '' : slow.message, /did not finish within 300 ms/);
});
