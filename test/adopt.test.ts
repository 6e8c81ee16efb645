import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RegistryFile } from '../src/daemon/registry.js';
import { isAlivePid, readPids, readProcess } from './helpers/procs.js';
import { CLI, FIXTURES, Rig, waitFor } from './helpers/rig.js';

const TREE = join(FIXTURES, 'tree.mjs');
const IDLE = join(FIXTURES, 'idle.mjs');

function readLog(rig: Rig, app: string): string {
  try {
    return readFileSync(join(rig.home, 'logs', `${app}.out.log`), 'utf8');
  } catch {
    return '';
  }
}


test('kill -9 of the daemon, then any command: the same apps run once each, none twice, none lost', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', TREE, '--name', 'a', '--env', 'CHILDREN=3']);
  await rig.ok(['start', TREE, '--name', 'b', '--env', 'CHILDREN=1', '--env', 'SETSID=1']);
  await rig.ok(['start', join(FIXTURES, '..', '..', 'examples', 'flaky.ts'), '--name', 'c', '--env', 'CRASH_AFTER_MS=600000']);
  // tsx with a cold transform cache (a fresh CI machine) starts a long-lived esbuild service child
  // while loading the script: wait until `c` has run its first line, so its tree is settled.
  await waitFor(() => readLog(rig, 'c').includes('flaky worker up'), 'c to have loaded');
  const before = await waitFor(async () => {
    const list = await rig.ls();
    const trees = list.map((app) => [app.status, app.processes >= 1 ? 'some' : 'none']);
    // The daemon's figures come from a scan up to a tick old: c's count must match /proc now (tsx may
    // have started its esbuild service child since).
    const cNow = rig.tagged().filter((proc) => proc.app === 'c').length;
    const ready = list.find((app) => app.name === 'a')?.processes === 4 && list.find((app) => app.name === 'b')?.processes === 3 && list.find((app) => app.name === 'c')?.processes === cNow;
    return ready && trees.every(([status, procs]) => status === 'online' && procs === 'some') ? list : undefined;
  }, 'three apps online with their trees');
  const taggedBefore = rig.tagged().map((proc) => proc.pid).sort();

  process.kill(rig.daemonPid() as number, 'SIGKILL');
  await waitFor(() => rig.daemonPid() === undefined, 'the daemon to die');
  assert.deepEqual(rig.tagged().map((proc) => proc.pid).sort(), taggedBefore, 'the apps keep running without the daemon');

  const after = await rig.ls();
  assert.deepEqual(
    after.map((app) => [app.name, app.status, app.pid, app.processes]),
    before.map((app) => [app.name, 'online', app.pid, app.processes]),
    'the new daemon adopted every app with its pid and tree',
  );
  assert.deepEqual(rig.tagged().map((proc) => proc.pid).sort(), taggedBefore, 'nothing was started twice or killed');
  for (const [app, instances] of rig.instancesByApp()) assert.equal(instances.size, 1, `${app} has one instance`);

  // An adopted app is still supervised: its exit is seen by polling, and it is restarted.
  const adopted = after.find((app) => app.name === 'a');
  await rig.ok(['signal', 'SIGKILL', 'a']);
  const restarted = await waitFor(async () => {
    const app = await rig.app('a');
    return app.status === 'online' && app.pid !== adopted?.pid ? app : undefined;
  }, 'the adopted app to be restarted');
  assert.equal(restarted.lastExit?.reason, 'vanished', 'an adopted root is not our child: its status is unknown');
  assert.equal(rig.instancesByApp().get('a')?.size, 1, 'its old children were killed before the new instance');
});

test('an app whose root died while no daemon ran is cleaned up and started once', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'pids');
  await rig.ok(['start', TREE, '--name', 'tree', '--env', 'CHILDREN=3', '--env', `PIDFILE=${pidfile}`]);
  const pids = await waitFor(() => readPids(pidfile, 4), 'the tree');
  await rig.ok(['daemon', 'stop']);
  const [root, ...children] = pids as [number, ...number[]];
  assert.equal(readProcess(root)?.env.get('AGENTPM_HOME'), rig.home, 'the root is ours: tagged with this home');
  process.kill(root, 'SIGKILL');
  await waitFor(() => !isAlivePid(root), 'the root to die');
  assert.ok(children.every(isAlivePid), 'its children are orphaned, still running');

  const [first] = await rig.ls();
  assert.deepEqual(children.filter(isAlivePid), [], 'the orphaned children were killed before anything started');
  // An exit like any other: recorded, and restarted through the backoff (not at once, which would let
  // every daemon restart reset a crash loop).
  assert.equal(first?.status, 'backoff');
  assert.equal(first?.lastExit?.reason, 'vanished');
  const app = await waitFor(async () => ((await rig.app('tree')).status === 'online' ? rig.app('tree') : undefined), 'the app to be started again');
  assert.notEqual(app.pid, root);
  assert.equal(rig.instancesByApp().get('tree')?.size, 1);
});

test('a daemon launched by a CLI inside an app is not part of that app: restarting the app leaves the daemon running', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const trigger = join(rig.home, 'go');
  const script = join(rig.home, 'inside.sh');
  // An agent that drives agentpm itself: once told, it runs a long-lived CLI (events --follow) which,
  // with no daemon running, launches one as its own child.
  writeFileSync(script, `for i in $(seq 600); do [ -e "${trigger}" ] && break; sleep 0.1; done\n"${CLI}" events --follow > /dev/null &\nwait\n`);
  await rig.ok(['start', script, '--name', 'inside']);
  const first = await rig.app('inside');
  await rig.ok(['daemon', 'stop']);
  writeFileSync(trigger, '');
  const daemon = await waitFor(() => rig.daemonPid(), 'the CLI inside the app to launch a daemon');
  const launcher = readProcess(readProcess(daemon)?.ppid ?? 0);
  assert.equal(launcher?.env.get('AGENTPM_APP'), 'inside', "the daemon's parent is the CLI, a member of the app");

  await rig.ok(['restart', 'inside']);
  const restarted = await rig.app('inside');
  assert.equal(restarted.status, 'online');
  assert.notEqual(restarted.pid, first.pid, 'the app was restarted');
  assert.equal(rig.daemonPid(), daemon, 'the daemon was not signalled as a member of the tree it supervises');
});

test('a daemon killed in the middle of a stop: the next one finishes the stop instead of adopting the tree as online', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'pids');
  await rig.ok(['start', TREE, '--name', 'stubborn', '--kill-timeout', '2s', '--env', 'CHILDREN=2', '--env', 'STUBBORN=1', '--env', 'IGNORE_TERM=1', '--env', `PIDFILE=${pidfile}`]);
  const pids = await waitFor(() => readPids(pidfile, 4), 'the tree');
  const stopping = rig.cli(['stop', 'stubborn']);
  await waitFor(async () => (await rig.app('stubborn')).status === 'stopping', 'the stop to begin');
  process.kill(rig.daemonPid() as number, 'SIGKILL');
  await stopping;
  assert.ok(isAlivePid(pids[0] as number), 'the TERM-ignoring root outlived the first daemon');

  const app = await waitFor(async () => {
    const now = await rig.app('stubborn');
    return now.status === 'stopped' ? now : undefined;
  }, 'the new daemon to finish the stop');
  assert.equal(app.pid, null);
  assert.deepEqual(pids.filter(isAlivePid), [], 'and nothing of the tree is left');
});

test('a tree left frozen by a containment the dead daemon never finished is killed frozen, not continued for a grace period', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'pids');
  // Everything ignores TERM and the kill timeout is long: only the freeze-and-kill path ends it quickly.
  await rig.ok(['start', TREE, '--name', 'storm', '--kill-timeout', '60s', '--env', 'CHILDREN=0', '--env', 'STUBBORN=3', '--env', 'IGNORE_TERM=1', '--env', `PIDFILE=${pidfile}`]);
  const pids = await waitFor(() => readPids(pidfile, 4), 'the tree');
  await waitFor(async () => (await rig.app('storm')).processes === 7 || undefined, 'the whole tree (each stubborn child is sh + sleep)');
  await rig.ok(['daemon', 'stop']);
  // What the dead daemon's containment left: every member stopped, the registry saying `stopping`.
  const members = rig.tagged().map((proc) => proc.pid);
  for (const pid of members) process.kill(pid, 'SIGSTOP');
  const registryPath = join(rig.home, 'registry.json');
  const registry = JSON.parse(readFileSync(registryPath, 'utf8')) as RegistryFile;
  for (const saved of registry.apps) saved.status = 'stopping';
  writeFileSync(registryPath, JSON.stringify(registry));

  await rig.ok(['ls']);
  await waitFor(() => !members.some(isAlivePid), 'the frozen tree to be killed, well within its 60 s kill timeout', 10_000);
  assert.ok(!pids.some(isAlivePid));
  const restarted = await waitFor(async () => {
    const app = await rig.app('storm');
    return app.status === 'online' && app.pid !== pids[0] ? app : undefined;
  }, 'the app to be started again (it is meant to run)', 15_000);
  assert.equal(restarted.restarts, 1);
  // The new tree ignores TERM for 60 s too: end it by pid rather than make the cleanup wait that long.
  await rig.ok(['daemon', 'stop']);
  for (const proc of rig.tagged()) process.kill(proc.pid, 'SIGKILL');
});

test('a root that rewrote its environment (setproctitle): its children are no orphans, and a new daemon never starts a second copy', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'pids');
  await rig.ok(['start', join(FIXTURES, 'proctitle.py'), '--name', 'titled', '--env', `PIDFILE=${pidfile}`]);
  const pids = await waitFor(() => readPids(pidfile, 3), 'the tree');
  const [root, ...children] = pids as [number, ...number[]];
  rig.ownPids.add(root); // its tag is gone: the rig's cleanup could not find it otherwise
  assert.equal(readProcess(root)?.env.size, 0, 'the root no longer shows any environment');
  assert.ok(children.every((pid) => readProcess(pid)?.env.get('AGENTPM_APP') === 'titled'), 'its children are tagged');
  await waitFor(async () => (await rig.app('titled')).processes === 3 || undefined, 'the daemon to count the whole tree');

  await rig.ok(['daemon', 'stop']);
  const dry = await rig.cli(['reap', '--dry-run', '--json']);
  assert.deepEqual((JSON.parse(dry.stdout) as { found: unknown[] }).found, [], 'without a daemon, the live instance (pid + start time) protects its children');

  const app = await rig.app('titled');
  assert.equal(app.status, 'errored', 'not adopted without its tag');
  const swept = await rig.cli(['reap', '--dry-run', '--json']);
  assert.deepEqual((JSON.parse(swept.stdout) as { found: unknown[] }).found, [], "the daemon's reaper protects its children too");
  const second = await rig.cli(['restart', 'titled']);
  assert.notEqual(second.code, 0, 'no second copy while the old root lives');
  assert.match(second.stderr, new RegExp(`pid ${root}, which may be titled's previous root .* still runs: end it yourself \\(kill ${root}\\)`));
  await rig.ok(['daemon', 'stop']);
  assert.equal((await rig.app('titled')).status, 'errored', 'still held after another daemon restart');
  assert.ok(pids.every(isAlivePid), 'nothing was signalled');
  assert.deepEqual(rig.tagged().map((proc) => proc.instance).filter((id, index, all) => all.indexOf(id) === index).length, 1, 'no second copy was started');

  // As the message says: the user ends it, then restarts the app.
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await waitFor(() => !pids.some(isAlivePid), 'the old tree to be gone');
  await rig.ok(['restart', 'titled']);
  assert.equal((await rig.app('titled')).status, 'online');
});

test('PID-reuse trap: a registry entry pointing at an unrelated process never signals it', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'stale-start']);
  await rig.ok(['start', IDLE, '--name', 'stale-tag']);
  await rig.ok(['stop', 'all']);
  await rig.ok(['daemon', 'stop']);

  // Innocent processes, not started by agentpm, each leading its own session (as a root would).
  const innocents = [0, 1].map(() => spawn('sleep', ['600'], { detached: true, stdio: 'ignore' }));
  for (const child of innocents) rig.ownPids.add(child.pid as number);
  const [a, b] = innocents.map((child) => readProcess(child.pid as number)) as [NonNullable<ReturnType<typeof readProcess>>, NonNullable<ReturnType<typeof readProcess>>];

  const registryPath = join(rig.home, 'registry.json');
  const registry = JSON.parse(readFileSync(registryPath, 'utf8')) as RegistryFile;
  for (const saved of registry.apps) {
    saved.desired = 'running';
    saved.status = 'online';
    // stale-start: same pid, different start time (the pid was reused). stale-tag: same pid and start
    // time, but the process does not carry the instance's tag.
    const target = saved.spec.name === 'stale-start' ? { pid: a.pid, startTime: a.startTime + 1 } : { pid: b.pid, startTime: b.startTime };
    saved.instance = { id: `trap${saved.spec.name}`, ...target, startedAt: Date.now() - 1000 };
  }
  writeFileSync(registryPath, JSON.stringify(registry));

  const list = await waitFor(async () => {
    const apps = await rig.ls();
    return apps.find((app) => app.name === 'stale-start')?.status === 'online' ? apps : undefined;
  }, 'the app whose pid was reused to start afresh');
  assert.ok(isAlivePid(a.pid) && isAlivePid(b.pid), 'the innocent processes were not touched');
  assert.equal(readProcess(a.pid)?.state, 'S', 'not stopped either');
  assert.ok(list.every((app) => app.pid !== a.pid && app.pid !== b.pid), 'neither was adopted');
  // Same pid and start time but no tag: it may be the app's own root that rewrote its environment, so
  // no second copy is started beside it either; the user is told what to do.
  const unproven = list.find((app) => app.name === 'stale-tag');
  assert.equal(unproven?.status, 'errored');
  const events = await rig.ok(['events', '--app', 'stale-tag']);
  assert.match(events, new RegExp(`pid ${b.pid} has the start time recorded for stale-tag's root but not agentpm's tag`));

  await rig.ok(['stop', 'all']);
  const refused = await rig.cli(['restart', 'stale-tag']);
  assert.match(refused.stderr, new RegExp(`pid ${b.pid}, which may be stale-tag's previous root`), 'no restart beside it either');
  assert.ok(isAlivePid(a.pid) && isAlivePid(b.pid), 'stopping and restarting the apps does not touch them either');
});

test('a registry written by an older agentpm (fewer definition fields) is read, and its apps adopted', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'old']);
  const [before] = await rig.ls();
  await rig.ok(['daemon', 'stop']);
  const registryPath = join(rig.home, 'registry.json');
  const registry = JSON.parse(readFileSync(registryPath, 'utf8')) as RegistryFile;
  for (const saved of registry.apps) {
    const spec = saved.spec as unknown as Record<string, unknown>;
    for (const field of ['reap', 'watch', 'ignoreWatch', 'watchDelayMs', 'notify', 'health', 'hangTimeoutMs', 'priority', 'guardAction', 'oomScoreAdj', 'onLimit', 'hardMemoryBytes', 'maxTasks', 'maxCpuPercent']) delete spec[field];
  }
  writeFileSync(registryPath, JSON.stringify(registry));
  const [after] = await rig.ls();
  assert.equal(after?.status, 'online');
  assert.equal(after?.pid, before?.pid, 'adopted, not restarted');
  await rig.ok(['restart', 'old']);
  assert.equal((await rig.app('old')).status, 'online', 'and it can be restarted with the filled-in definition');
});
