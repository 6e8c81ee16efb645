import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FIXTURES, Rig } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');
const CRASHER = join(FIXTURES, 'crasher.mjs');

function writeConfig(rig: Rig, apps: Record<string, unknown>[]): string {
  const file = join(rig.home, 'ecosystem.config.json');
  writeFileSync(file, JSON.stringify({ apps }));
  return file;
}

test('restart --wait: one at a time, waits for ready (not the crash-loop window), and fails with a per-app summary', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // The defaults: minUptime 30s, readyAfter 3s. Waiting for minUptime took 30 s per app, and a 30 s
  // --timeout could never be met.
  const config = writeConfig(rig, [
    { name: 'steady', script: IDLE },
    { name: 'other', script: IDLE },
    { name: 'broken', script: CRASHER, env: { LIFETIME_MS: 300 }, restartDelay: '10s' },
  ]);
  await rig.ok(['start', config]);
  const good = await rig.cli(['restart', 'steady', 'other', '--wait', '--timeout', '30s', '--json']);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  const summary = JSON.parse(good.stdout) as { ok: boolean; apps: { name: string; ok: boolean; waitedMs: number }[] };
  assert.equal(summary.ok, true);
  assert.deepEqual(summary.apps.map((app) => [app.name, app.ok]), [['steady', true], ['other', true]]);
  assert.ok(summary.apps.every((app) => app.waitedMs >= 3000 && app.waitedMs < 30_000), `each waited for its readyAfter, not minUptime: ${good.stdout}`);

  const bad = await rig.cli(['restart', 'all', '--wait', '--timeout', '5s']);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /broken\s+FAILED\s+backoff.*did not stay up: backoff, last exit crashed \(code 1\)/);
  assert.match(bad.stdout, /steady\s+ok\s+online/);
  assert.match(bad.stdout, /1 of 3 app\(s\) did not come up/);

  const misuse = await rig.cli(['restart', 'steady', '--parallel', '2']);
  assert.equal(misuse.code, 1);
  assert.match(misuse.stderr, /--timeout and --parallel go with --wait/);
  const reload = await rig.cli(['reload', 'steady']);
  assert.equal(reload.code, 0, 'reload is restart');
});

test('restart --wait-stable waits for minUptime; a --timeout no app could meet is refused before anything restarts', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', writeConfig(rig, [{ name: 'steady', script: IDLE, minUptime: '2s', readyAfter: '500ms' }])]);
  const before = await rig.app('steady');

  const short = await rig.cli(['restart', 'steady', '--wait-stable', '--timeout', '1s']);
  assert.equal(short.code, 1);
  assert.match(short.stderr, /--timeout 1s is shorter than steady needs online for 2s \(minUptime\); nothing was restarted\. Raise --timeout, or drop --wait-stable/);
  const tooShort = await rig.cli(['restart', 'steady', '--wait', '--timeout', '100ms']);
  assert.equal(tooShort.code, 1);
  assert.match(tooShort.stderr, /shorter than steady needs online for 500ms \(readyAfter\)/);
  assert.equal((await rig.app('steady')).pid, before.pid, 'nothing was restarted');

  const stable = await rig.cli(['restart', 'steady', '--wait-stable', '--json']);
  assert.equal(stable.code, 0, stable.stdout + stable.stderr);
  const [app] = (JSON.parse(stable.stdout) as { apps: { waitedMs: number }[] }).apps;
  assert.ok(app && app.waitedMs >= 2000, 'waited for minUptime');
});

test('re-running start with a changed config restarts only the apps whose definition changed', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const same = { name: 'same', script: IDLE };
  const edited = { name: 'edited', script: IDLE, env: { MODE: 'a' } };
  await rig.ok(['start', writeConfig(rig, [same, edited])]);
  const before = await rig.ls();
  const out = await rig.ok(['start', writeConfig(rig, [same, { ...edited, env: { MODE: 'b' } }, { name: 'added', script: IDLE }])]);
  assert.match(out, /restarted with a changed definition: edited/);
  assert.match(out, /unchanged, left as they are: same \(online\)/);
  const after = await rig.ls();
  const pid = (list: typeof before, name: string): number | null => list.find((app) => app.name === name)?.pid ?? null;
  assert.equal(pid(after, 'same'), pid(before, 'same'), 'the unchanged app was not touched');
  assert.notEqual(pid(after, 'edited'), pid(before, 'edited'));
  assert.equal((await rig.show('edited')).definition.env['MODE'], 'b');
  assert.equal(after.find((app) => app.name === 'added')?.status, 'online');
  assert.equal(rig.tagged().length, 3, 'one tree per app, none twice');
});

test('daemon restart under 10 running apps keeps every pid; save and resurrect never duplicate', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const names = Array.from({ length: 10 }, (_, index) => `app${index}`);
  await rig.ok(['start', writeConfig(rig, names.map((name) => ({ name, script: IDLE })))]);
  const before = await rig.ls();
  const pidsBefore = rig.tagged().map((proc) => proc.pid).sort();
  const oldDaemon = rig.daemonPid();
  const out = await rig.ok(['daemon', 'restart']);
  assert.match(out, new RegExp(`daemon ${oldDaemon} replaced by pid \\d+ \\(agentpm [^)]+\\); 10 app\\(s\\) online`));
  assert.notEqual(rig.daemonPid(), oldDaemon);
  const after = await rig.ls();
  assert.deepEqual(after.map((app) => [app.name, app.pid, app.restarts]), before.map((app) => [app.name, app.pid, 0]), 'no agent was restarted');
  assert.deepEqual(rig.tagged().map((proc) => proc.pid).sort(), pidsBefore, 'every process is the same one');

  assert.match(await rig.ok(['save']), /saved 10 app\(s\)/);
  assert.match(await rig.ok(['resurrect']), /started nothing; already running: app0, app1/);
  assert.equal(rig.tagged().length, 10);
  await rig.ok(['delete', 'app3']);
  assert.match(await rig.ok(['resurrect']), /started app3; already running: app0/);
  assert.equal(rig.tagged().length, 10);
});

test('startup systemd prints a unit with KillMode=control-group and installs a user unit', async (t) => {
  const rig = await Rig.create();
  const fakeHome = mkdtempSync(join(tmpdir(), 'agentpm-unit-'));
  t.after(async () => {
    await rig.dispose();
    rmSync(fakeHome, { recursive: true, force: true });
  });
  const unit = await rig.ok(['startup', 'systemd', '--user', '--tasks-max', '2048', '--memory-max', '12G']);
  for (const line of ['KillMode=control-group', 'Delegate=yes', 'Restart=on-failure', 'TimeoutStopSec=150', 'OOMScoreAdjust=-500', 'TasksMax=2048', 'MemoryMax=12G', `Environment=AGENTPM_HOME=${rig.home}`, 'WantedBy=default.target']) {
    assert.ok(unit.split('\n').includes(line), `the unit has ${line}`);
  }
  assert.match(unit, /^ExecStart=\S+node (?:--\S+ )*\S+dist\/daemon\/main\.js$/m);
  // Structurally a unit file: sections in order, and every other line a comment or Key=value.
  const lines = unit.split('\n').filter((line) => line.trim() !== '');
  assert.deepEqual(lines.filter((line) => line.startsWith('[')), ['[Unit]', '[Service]', '[Install]']);
  assert.ok(lines.every((line) => line.startsWith('[') || line.startsWith('#') || /^[A-Z][A-Za-z]+=\S/.test(line)), 'every line parses');
  const installed = await rig.cli(['startup', 'systemd', '--user', '--install'], { env: { HOME: fakeHome } });
  assert.equal(installed.code, 0, installed.stderr);
  const file = join(fakeHome, '.config', 'systemd', 'user', 'agentpm.service');
  assert.match(installed.stdout, new RegExp(`wrote ${file}`));
  assert.match(readFileSync(file, 'utf8'), /KillMode=control-group/);
  const unknown = await rig.cli(['startup', 'upstart']);
  assert.equal(unknown.code, 1);
});
