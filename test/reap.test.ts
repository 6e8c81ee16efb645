import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ReapResult } from '../src/protocol.js';
import { isAlivePid, liveProcesses, readPids, readProcess, TEST_HOME_PREFIX } from './helpers/procs.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const TREE = join(FIXTURES, 'tree.mjs');

/** Starts `command` so that it ends up orphaned (reparented to init), with extra environment; returns its pid. */
function orphan(rig: Rig, command: string, env: Record<string, string> = {}): number {
  const out = spawnSync('sh', ['-c', `${command} >/dev/null 2>&1 & echo $!`], { encoding: 'utf8', env: { ...rig.env, ...env } });
  const pid = Number(out.stdout.trim());
  rig.ownPids.add(pid);
  return pid;
}

async function reapJson(rig: Rig, args: string[]): Promise<{ code: number | null; result: ReapResult }> {
  const run = await rig.cli(['reap', '--json', ...args]);
  assert.ok(run.code === 0 || run.code === 2, `reap failed (${run.code}): ${run.stderr}`);
  return { code: run.code, result: JSON.parse(run.stdout) as ReapResult };
}

test('without a daemon: orphans of a crashed instance, setsid grandchild included, are listed, then ended', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'pids');
  await rig.ok(['start', TREE, '--name', 'agent', '--env', 'CHILDREN=2', '--env', 'SETSID=1', '--env', `PIDFILE=${pidfile}`]);
  const [root, ...left] = (await waitFor(() => readPids(pidfile, 4), 'the tree')) as [number, ...number[]];
  await rig.ok(['daemon', 'stop']);
  assert.equal(readProcess(root)?.env.get('AGENTPM_HOME'), rig.home);
  process.kill(root, 'SIGKILL'); // the agent's CLI dies while no daemon watches
  await waitFor(() => !isAlivePid(root), 'the root to die');

  const listed = await reapJson(rig, ['--dry-run']);
  assert.equal(listed.code, 2, 'exit status 2: orphans found');
  assert.equal(listed.result.daemon, false, 'done without a daemon');
  assert.equal(listed.result.dryRun, true);
  assert.deepEqual(listed.result.found.map((item) => item.pid).sort(), [...left].sort());
  assert.ok(listed.result.found.every((item) => item.why === 'instance-ended' && item.app === 'agent'));
  assert.ok(left.every(isAlivePid), '--dry-run ends nothing');
  assert.equal(rig.daemonPid(), undefined, 'reap does not start a daemon');
  const text = await rig.cli(['reap', '--dry-run']);
  assert.match(text.stdout, /no daemon running: reaped from the process table and registry.json alone/);

  const reaped = await reapJson(rig, []);
  assert.equal(reaped.result.ended, 3);
  assert.deepEqual(left.filter(isAlivePid), []);
  const again = await rig.cli(['reap']);
  assert.equal(again.code, 0, 'exit status 0: nothing found');
  assert.match(again.stdout, /no orphans found/);
});

test('the daemon sweeps orphans by itself, with an event; an app with reap: false keeps what it detached', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const keepPids = join(rig.home, 'keep-pids');
  const config = join(rig.home, 'ecosystem.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      reap: { interval: '1s' },
      apps: [
        { name: 'sweepy', script: join(FIXTURES, 'idle.mjs') },
        { name: 'keeper', script: TREE, reap: false, env: { CHILDREN: '1', SETSID: '1', PIDFILE: keepPids } },
      ],
    }),
  );
  await rig.ok(['start', config]);
  const [, , detached] = (await waitFor(() => readPids(keepPids, 3), 'keeper tree')) as [number, number, number];

  // A leak: a process tagged with an instance of sweepy that is not live (as a dead session would leave).
  const leaked = orphan(rig, 'sleep 600', { AGENTPM_APP: 'sweepy', AGENTPM_INSTANCE: 'feedfacecafe' });
  await waitFor(() => !isAlivePid(leaked) || undefined, 'the sweep to end the leaked process', 10_000);
  const events = (await rig.ok(['events', '--json', '--app', 'sweepy'])).trim().split('\n').map((line) => JSON.parse(line) as { type: string; reason: string; data: { pids: number[] } });
  const reaped = events.find((event) => event.type === 'orphans-reaped');
  assert.deepEqual(reaped?.data.pids, [leaked], JSON.stringify(events));
  assert.equal(reaped?.reason, 'instance-ended');

  // keeper's detached process survives its restart and the sweeps that follow (reap: false)...
  await rig.ok(['restart', 'keeper']);
  const sweepsAfter = Date.now();
  await waitFor(() => Date.now() - sweepsAfter > 2500 || undefined, 'two sweep periods', 5000, 100);
  assert.ok(isAlivePid(detached), 'reap: false keeps the detached process');
  // ...and `agentpm reap` by hand still finds and ends it.
  const { result } = await reapJson(rig, ['--app', 'keeper']);
  assert.deepEqual(result.found.map((item) => item.pid), [detached]);
  assert.equal(result.daemon, true);
  assert.equal(isAlivePid(detached), false);
  // Its current instance detached one too, which a stop leaves alive by design: end it by hand.
  await rig.ok(['stop', 'keeper']);
  const last = await reapJson(rig, ['--app', 'keeper']);
  assert.equal(last.result.found.length, 1, JSON.stringify(last.result.found));
});

test('unmanaged: only matching, orphaned, old-enough processes of this user; never without --match', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const marker = { AGENTPM_TEST_ORPHAN: rig.home };
  const old = orphan(rig, 'sleep 6011', marker);
  const other = orphan(rig, 'sleep 6022', marker);
  await waitFor(() => (readProcess(old)?.ppid === 1 ? true : undefined), 'the orphans to be reparented');
  await new Promise((resolve) => setTimeout(resolve, 2100)); // age the old ones past --older-than 2s
  const young = orphan(rig, 'sleep 6011', marker);

  const refused = await rig.cli(['reap', '--unmanaged']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--unmanaged needs --match/);

  const listed = await reapJson(rig, ['--unmanaged', '--match', '^sleep 6011$', '--older-than', '2s', '--dry-run']);
  assert.deepEqual(listed.result.found.map((item) => item.pid), [old]);
  assert.equal(listed.result.found[0]?.why, 'unmanaged-match');

  await reapJson(rig, ['--unmanaged', '--match', '^sleep 6011$', '--older-than', '2s']);
  assert.equal(isAlivePid(old), false);
  assert.ok(isAlivePid(other), 'a non-matching orphan is left alone');
  assert.ok(isAlivePid(young), 'a young orphan is left alone');
});

test('processes of another AGENTPM_HOME are not touched unless --all-homes', async (t) => {
  const rig = await Rig.create();
  const otherHome = mkdtempSync(join(tmpdir(), TEST_HOME_PREFIX));
  t.after(async () => {
    await rig.dispose();
    for (const proc of liveProcesses((p) => p.env.get('AGENTPM_HOME') === otherHome)) process.kill(proc.pid, 'SIGKILL');
    rmSync(otherHome, { recursive: true, force: true });
  });
  const foreign = orphan(rig, 'sleep 600', { AGENTPM_HOME: otherHome, AGENTPM_APP: 'x', AGENTPM_INSTANCE: 'abcabcabcabc' });
  const mine = await reapJson(rig, ['--dry-run']);
  assert.deepEqual(mine.result.found, []);
  const all = await reapJson(rig, ['--all-homes']);
  assert.deepEqual(all.result.found.map((item) => [item.pid, item.home]), [[foreign, otherHome]]);
  assert.equal(isAlivePid(foreign), false);
});

test('JSON output is stable', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  orphan(rig, 'sleep 600', { AGENTPM_APP: 'gone', AGENTPM_INSTANCE: '0123456789ab' });
  const { result } = await reapJson(rig, ['--dry-run']);
  assert.deepEqual(Object.keys(result).sort(), ['daemon', 'dryRun', 'ended', 'found', 'skipped', 'survivors']);
  assert.deepEqual(Object.keys(result.found[0] ?? {}).sort(), ['ageMs', 'app', 'cmd', 'home', 'instance', 'pid', 'ppid', 'rss', 'startTime', 'startedAt', 'via', 'why']);
  assert.equal(result.found[0]?.why, 'app-unknown');
  await reapJson(rig, []);
});

function canSetNextPid(): boolean {
  try {
    accessSync('/proc/sys/kernel/ns_last_pid', constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

test('PID-reuse trap: an orphan listed earlier whose pid now belongs to an innocent process is left alone', { skip: canSetNextPid() ? false : 'needs a writable /proc/sys/kernel/ns_last_pid (root)' }, async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const victim = orphan(rig, 'sleep 600', { AGENTPM_APP: 'gone', AGENTPM_INSTANCE: '0123456789ab' });
  const { result } = await reapJson(rig, ['--dry-run']);
  const listed = result.found.find((item) => item.pid === victim);
  assert.ok(listed);
  process.kill(victim, 'SIGKILL');
  await waitFor(() => !isAlivePid(victim) || undefined, 'the orphan to die');
  // Hand its pid to an innocent process: the next pid the kernel gives out is ns_last_pid + 1.
  let innocent: number | undefined;
  for (let attempt = 0; attempt < 20 && innocent !== victim; attempt += 1) {
    if (readProcess(victim)) await new Promise((resolve) => setTimeout(resolve, 100)); // still a zombie: wait for it to be reaped
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(victim - 1));
    const child = spawn('sleep', ['600'], { stdio: 'ignore', env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
    rig.ownPids.add(child.pid as number);
    if (child.pid === victim) innocent = child.pid;
    else child.kill('SIGKILL');
  }
  assert.equal(innocent, victim, 'could not reuse the pid');
  const run = await rig.cli(['reap', '--pid', `${listed.pid}:${listed.startTime}`]);
  assert.ok(isAlivePid(victim), 'the innocent process holding the reused pid was not signalled');
  assert.match(run.stdout, new RegExp(`left alone: pid ${victim} \\(not an orphan now, or the pid belongs to another process\\)`));
});

test('opt-in: the daemon sweeps unmanaged orphans matching a configured pattern, and only those', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const marker = { AGENTPM_TEST_ORPHAN: rig.home };
  const leaked = orphan(rig, 'sleep 6033', marker);
  const unrelated = orphan(rig, 'sleep 6044', marker);
  const config = join(rig.home, 'ecosystem.config.json');
  writeFileSync(config, JSON.stringify({ reap: { interval: '1s', unmanaged: [{ match: '^sleep 6033$', olderThan: '1s' }] }, apps: [{ name: 'idle', script: join(FIXTURES, 'idle.mjs') }] }));
  await rig.ok(['start', config]);
  await waitFor(() => !isAlivePid(leaked) || undefined, 'the periodic sweep to end the matching orphan', 10_000);
  assert.ok(isAlivePid(unrelated), 'a process not matching the pattern is left alone');
  const swept = (await rig.ok(['events', '--json'])).trim().split('\n').map((line) => JSON.parse(line) as { type: string; reason: string; data: { pids: number[]; match?: string } }).find((event) => event.type === 'orphans-reaped');
  assert.equal(swept?.reason, 'unmanaged-match');
  assert.deepEqual(swept?.data.pids, [leaked]);
  assert.equal(swept?.data.match, '^sleep 6033$');
});
