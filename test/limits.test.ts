import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentEvent, ExitRecord } from '../src/protocol.js';
import { isAlivePid } from './helpers/procs.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const MEMORY_TREE = join(FIXTURES, 'memory-tree.mjs');
const FORK_STORM = join(FIXTURES, 'fork-storm.mjs');
const MB = 1024 * 1024;

async function events(rig: Rig, app: string): Promise<AgentEvent[]> {
  return (await rig.ok(['events', '--json', '--app', app, '--lines', '1000'])).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AgentEvent);
}

function readPidLines(file: string, count: number): number[] | undefined {
  try {
    const pids = readFileSync(file, 'utf8').trim().split('\n').map((line) => Number(line.split(' ')[0]));
    return pids.length === count ? pids : undefined;
  } catch {
    return undefined;
  }
}

test('a memory breach in a child restarts the whole tree, recording memory-limit with the figure and the limit', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'children');
  // The root stays small; the tree is over the limit only because of its children (PM2 never sees this).
  await rig.ok(['start', MEMORY_TREE, '--name', 'agent', '--max-memory', '150M', '--restart-delay', '30s', '--env', 'CHILD_MB=60,60', '--env', `PIDFILE=${pidfile}`]);
  const children = await waitFor(() => readPidLines(pidfile, 2), 'the children');
  const app = await waitFor(async () => {
    const summary = await rig.app('agent');
    return summary.lastExit ? summary : undefined;
  }, 'the limit to be enforced');
  assert.equal(app.status, 'backoff', 'restarted with backoff, not in a tight loop');
  assert.equal(app.lastExit?.reason, 'memory-limit');
  assert.ok((app.lastExit?.limit?.measured ?? 0) > 150 * MB, 'the measured whole-tree figure is recorded');
  assert.equal(app.lastExit?.limit?.limit, 150 * MB);
  assert.deepEqual(children.filter(isAlivePid), [], 'the children went with the tree');
  assert.deepEqual(rig.tagged(), []);
  const breach = (await events(rig, 'agent')).find((event) => event.type === 'limit-breach');
  assert.equal(breach?.reason, 'memory-limit');
  assert.equal(breach?.data['action'], 'restart');
});

test('a tree that breaches again right after every restart is backed off, not looped', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const config = join(rig.home, 'hog.config.json');
  writeFileSync(
    config,
    // No kernel cap (hardMemory: false): under a cgroup backend it would OOM-kill the 80 MB child before a
    // tick saw it, and this is about the graceful limit's backoff.
    JSON.stringify({ apps: [{ name: 'hog', script: MEMORY_TREE, env: { CHILD_MB: '80' }, maxMemory: '60M', hardMemory: false, restartDelay: '150ms', maxRestartDelay: '10s', minUptime: '30s' }] }),
  );
  await rig.ok(['start', config]);
  const detail = await waitFor(async () => {
    const show = await rig.show('hog');
    return show.exits.length >= 4 ? show : undefined;
  }, 'four limit restarts', 20_000);
  const exits = [...detail.exits].reverse();
  assert.ok(exits.every((exit) => exit.reason === 'memory-limit'));
  const pauses = exits.slice(1).map((exit, index) => Date.parse(exit.at) - exit.uptimeMs - Date.parse((exits[index] as ExitRecord).at));
  assert.ok(pauses[0] !== undefined && pauses[0] >= 150);
  assert.ok(pauses.every((pause, index) => index === 0 || pause > (pauses[index - 1] as number) * 1.5), `pauses double: ${pauses.join(', ')}`);
});

test('a fork storm is frozen and killed: contained, not chased, and nothing of it survives', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', FORK_STORM, '--name', 'storm', '--max-children', '20', '--restart-delay', '60s', '--kill-timeout', '10s']);
  let peak = 0;
  const app = await waitFor(async () => {
    peak = Math.max(peak, rig.tagged().length);
    const summary = await rig.app('storm');
    return summary.lastExit ? summary : undefined;
  }, 'the storm to be contained', 15_000, 10);
  assert.equal(app.lastExit?.reason, 'children-limit');
  assert.ok((app.lastExit?.limit?.measured ?? 0) > 20);
  assert.equal(app.lastExit?.signal, 'SIGKILL', 'frozen and killed at once: the root ignores SIGTERM and is not waited for');
  assert.deepEqual(rig.tagged(), [], 'nothing of the storm survives');
  assert.ok(peak < 100, `the storm was stopped early (peak ${peak} processes of a possible 300)`);
  const breach = (await events(rig, 'storm')).find((event) => event.type === 'limit-breach');
  assert.equal(breach?.data['action'], 'contain');
});

test('onLimit kill-offender ends only the largest descendant and keeps the agent running', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'children');
  await rig.ok(['start', MEMORY_TREE, '--name', 'agent', '--max-memory', '130M', '--on-limit', 'kill-offender', '--env', 'CHILD_MB=120,0,0', '--env', `PIDFILE=${pidfile}`]);
  const [big, small1, small2] = (await waitFor(() => readPidLines(pidfile, 3), 'the children')) as [number, number, number];
  const before = await rig.app('agent');
  await waitFor(() => !isAlivePid(big) || undefined, 'the largest child to be ended');
  const offender = await waitFor(async () => (await events(rig, 'agent')).find((event) => event.type === 'offender-killed'), 'the event');
  assert.deepEqual(offender.data['pids'], [big]);
  assert.ok(isAlivePid(small1) && isAlivePid(small2), 'the other children are untouched');
  const after = await rig.app('agent');
  assert.equal(after.status, 'online');
  assert.equal(after.pid, before.pid, 'the agent itself keeps running');
  assert.equal(after.restarts, 0);
  assert.equal(after.lastExit, null);
});

test('children limit with kill-offender ends the newest excess children only', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'children');
  const latefile = join(rig.home, 'late');
  await rig.ok([
    'start', MEMORY_TREE, '--name', 'agent', '--max-children', '5', '--on-limit', 'kill-offender',
    '--env', 'CHILD_MB=0,0,0,0,0', '--env', `PIDFILE=${pidfile}`, '--env', 'LATE_CHILDREN=2', '--env', 'LATE_AFTER_MS=1500', '--env', `LATE_PIDFILE=${latefile}`,
  ]);
  const first = await waitFor(() => readPidLines(pidfile, 5), 'the first five children');
  const late = await waitFor(() => readPidLines(latefile, 2), 'two late children');
  await waitFor(() => late.every((pid) => !isAlivePid(pid)) || undefined, 'the late children to be ended');
  assert.ok(first.every(isAlivePid), 'the first five (the long-lived MCP servers) are untouched');
  const app = await rig.app('agent');
  assert.equal(app.status, 'online');
  assert.equal(app.restarts, 0);
});

test('events: recent events per app, as JSON or text, and --follow prints new ones as they happen', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', join(FIXTURES, 'idle.mjs'), '--name', 'quiet']);
  const recent = await events(rig, 'quiet');
  assert.deepEqual(recent.map((event) => event.type), ['state', 'spawn', 'state']);
  assert.ok(recent.every((event) => event.app === 'quiet' && typeof event.at === 'string'));
  const text = await rig.ok(['events', '--app', 'quiet']);
  assert.match(text, /quiet#[0-9a-f]{6}\s+spawn\s+started, pid \d+/);

  const { spawn } = await import('node:child_process');
  const follower = spawn(process.execPath, [join(FIXTURES, '..', '..', 'bin', 'agentpm'), 'events', '--follow', '--json', '--app', 'quiet', '--lines', '1'], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'] });
  rig.ownPids.add(follower.pid as number);
  let output = '';
  follower.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(() => output.includes('"state"') || undefined, 'the backlog');
  await rig.ok(['restart', 'quiet']);
  await waitFor(() => output.split('\n').some((line) => line.includes('"exit"') && line.includes('"stopped"')) || undefined, 'the exit event, followed live');
  follower.kill('SIGTERM');

  const unknown = await rig.cli(['events', '--app', 'nope']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no app named nope/);
});
