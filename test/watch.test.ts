import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentEvent, AppSummary } from '../src/protocol.js';
import { Rig, waitFor } from './helpers/rig.js';

/** Debounce used by these tests; "no restart" is checked by waiting well past it. */
const DELAY_MS = 400;
const QUIET_MS = DELAY_MS * 3;

/** A project directory outside the rig's home (which is always ignored), removed after the test. */
function project(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-watch-project-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

const IDLE = 'setInterval(() => {}, 60_000);\n';

async function startWatched(t: TestContext, files: Record<string, string>, app: Record<string, unknown>): Promise<{ rig: Rig; dir: string; first: AppSummary }> {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = project(t, { 'app.mjs': IDLE, ...files });
  const config = join(dir, 'ecosystem.config.json');
  writeFileSync(config, JSON.stringify({ apps: [{ name: 'w', script: 'app.mjs', watch: true, watchDelay: DELAY_MS, ...app }] }));
  await rig.ok(['start', config]);
  const first = await waitFor(async () => {
    const summary = await rig.app('w');
    return summary.status === 'online' ? summary : undefined;
  }, 'the app online');
  return { rig, dir, first };
}

async function onlineAfter(rig: Rig, restarts: number): Promise<AppSummary> {
  return waitFor(async () => {
    const summary = await rig.app('w');
    return summary.restarts === restarts && summary.status === 'online' ? summary : undefined;
  }, `restart #${restarts}`, 15_000);
}

async function watchEvents(rig: Rig, reason = 'restart'): Promise<AgentEvent[]> {
  const lines = (await rig.ok(['events', '--json', '--app', 'w', '--lines', '1000'])).trim().split('\n').filter(Boolean);
  return lines.map((line) => JSON.parse(line) as AgentEvent).filter((event) => event.type === 'watch' && event.reason === reason);
}

test('a change to a watched file restarts the app once, after the debounce; a stopped app is not watched', async (t) => {
  const { rig, dir, first } = await startWatched(t, {}, {});
  const changedAt = Date.now();
  appendFileSync(join(dir, 'app.mjs'), '// edited\n');
  const second = await onlineAfter(rig, 1);
  assert.notEqual(second.pid, first.pid, 'a new instance');
  assert.equal(second.lastExit?.reason, 'stopped', 'through the normal stop path');
  const [event, ...more] = await watchEvents(rig);
  assert.deepEqual(more, []);
  assert.equal(event?.reason, 'restart');
  assert.deepEqual(event?.data['files'], ['app.mjs']);
  assert.ok(Date.parse(event?.at ?? '') - changedAt >= DELAY_MS - 50, `restarted ${Date.parse(event?.at ?? '') - changedAt} ms after the change`);

  await sleep(QUIET_MS);
  assert.equal((await rig.app('w')).restarts, 1, 'once');

  await rig.ok(['stop', 'w']);
  appendFileSync(join(dir, 'app.mjs'), '// edited while stopped\n');
  await sleep(QUIET_MS);
  const stopped = await rig.app('w');
  assert.equal(stopped.status, 'stopped');
  assert.equal(stopped.restarts, 1);
});

test('a burst of 20 changes gives one restart', async (t) => {
  const { rig, dir } = await startWatched(t, { 'lib/a.mjs': '', 'lib/b.mjs': '' }, {});
  for (let i = 0; i < 20; i += 1) {
    appendFileSync(join(dir, 'lib', i % 2 === 0 ? 'a.mjs' : 'b.mjs'), `// ${i}\n`);
    await sleep(15);
  }
  await onlineAfter(rig, 1);
  await sleep(QUIET_MS);
  assert.equal((await rig.app('w')).restarts, 1);
  const events = await watchEvents(rig);
  assert.equal(events.length, 1);
  assert.ok(Number(events[0]?.data['changes']) >= 2, 'the changes of the burst are counted in one restart');
});

test('node_modules, .git, *.log and the agentpm home never restart the app, even with a user ignoreWatch', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = project(t, { 'app.mjs': IDLE, 'node_modules/pkg/index.js': '', '.git/HEAD': '', 'src/index.mjs': '', 'tmp/x': '' });
  const config = join(dir, 'ecosystem.config.json');
  // The home is watched too, explicitly: the daemon writes its registry, events and logs there all the time.
  writeFileSync(config, JSON.stringify({ apps: [{ name: 'w', script: 'app.mjs', watch: ['.', rig.home], ignoreWatch: ['tmp'], watchDelay: DELAY_MS }] }));
  await rig.ok(['start', config]);
  await waitFor(async () => (await rig.app('w')).status === 'online', 'the app online');

  appendFileSync(join(dir, 'node_modules', 'pkg', 'index.js'), '// upgraded\n');
  writeFileSync(join(dir, 'node_modules', 'new.js'), '');
  appendFileSync(join(dir, '.git', 'HEAD'), 'ref\n');
  writeFileSync(join(dir, 'agent.log'), 'a line\n');
  mkdirSync(join(dir, 'logs'));
  writeFileSync(join(dir, 'logs', 'today.log'), 'a line\n');
  appendFileSync(join(dir, 'tmp', 'x'), 'scratch\n');
  writeFileSync(join(rig.home, 'scratch.json'), '{}'); // anything in the home, besides the daemon's own writes
  await sleep(QUIET_MS);
  const app = await rig.app('w');
  assert.equal(app.restarts, 0, 'nothing ignored restarted the app');
  assert.equal(app.status, 'online');

  // And the watcher does work: a source file restarts it.
  appendFileSync(join(dir, 'src', 'index.mjs'), '// edited\n');
  await onlineAfter(rig, 1);
});

test('a restart under way is not stacked: changes during it give exactly one more restart', async (t) => {
  // Ignores SIGTERM, so each restart takes the whole kill timeout.
  const slow = "process.on('SIGTERM', () => {}); setInterval(() => {}, 60_000);\n";
  const { rig, dir } = await startWatched(t, { 'app.mjs': slow, 'lib/a.mjs': '' }, { killTimeout: '1500ms', watchDelay: 200 });
  appendFileSync(join(dir, 'lib', 'a.mjs'), '// first\n');
  await waitFor(async () => (await rig.app('w')).status === 'stopping', 'the first restart to be under way');
  for (let i = 0; i < 6; i += 1) {
    appendFileSync(join(dir, 'lib', 'a.mjs'), `// during ${i}\n`);
    await sleep(120);
  }
  await onlineAfter(rig, 2);
  await sleep(QUIET_MS);
  assert.equal((await rig.app('w')).restarts, 2);
  assert.equal((await watchEvents(rig)).length, 2);
});

test('an app adopted by a new daemon is watched again', async (t) => {
  const { rig, dir, first } = await startWatched(t, {}, {});
  assert.equal((await watchEvents(rig, 'ready')).length, 1, 'watching, from the start');
  await rig.ok(['daemon', 'stop']);
  const replacedAt = Date.now();
  // Any command starts a new daemon, which adopts the running app and watches it again.
  await waitFor(async () => (await watchEvents(rig, 'ready')).some((event) => Date.parse(event.at) >= replacedAt), 'the new daemon to watch');
  assert.equal((await rig.app('w')).pid, first.pid, 'adopted, not restarted');
  appendFileSync(join(dir, 'app.mjs'), '// edited\n');
  const second = await onlineAfter(rig, 1);
  assert.notEqual(second.pid, first.pid);
});
