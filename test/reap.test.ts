import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DaemonClient } from '../src/cli/client.js';
import type { AgentpmError } from '../src/errors.js';
import { homePaths } from '../src/home.js';
import type { OrphanInfo, ReapOptions, ReapResult } from '../src/protocol.js';
import { noteTreeName, removeTreeOf } from './helpers/cgroups.js';
import { isAlivePid, liveProcesses, readPids, readProcess, TEST_HOME_PREFIX } from './helpers/procs.js';
import { CLI, FIXTURES, ROOT, Rig, waitFor } from './helpers/rig.js';

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
  // Durations no other run of this test shares: a pattern must name this test's processes alone.
  const suffix = randomInt(1e9);
  const old = orphan(rig, `sleep 6011.${suffix}`, marker);
  const other = orphan(rig, `sleep 6022.${suffix}`, marker);
  await waitFor(() => (readProcess(old)?.ppid === 1 ? true : undefined), 'the orphans to be reparented');
  await new Promise((resolve) => setTimeout(resolve, 2100)); // age the old ones past --older-than 2s
  const young = orphan(rig, `sleep 6011.${suffix}`, marker);

  const refused = await rig.cli(['reap', '--unmanaged']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--unmanaged needs --match/);

  const listed = await reapJson(rig, ['--unmanaged', '--match', `^sleep 6011\\.${suffix}$`, '--older-than', '2s', '--dry-run']);
  assert.deepEqual(listed.result.found.map((item) => item.pid), [old]);
  assert.equal(listed.result.found[0]?.why, 'unmanaged-match');

  await reapJson(rig, ['--unmanaged', '--match', `^sleep 6011\\.${suffix}$`, '--older-than', '2s']);
  assert.equal(isAlivePid(old), false);
  assert.ok(isAlivePid(other), 'a non-matching orphan is left alone');
  assert.ok(isAlivePid(young), 'a young orphan is left alone');
});

/** A rig, and another home's directory whose tagged processes the test makes and ends itself. */
async function rigWithAnotherHome(t: { after: (fn: () => Promise<void>) => void }): Promise<{ rig: Rig; otherHome: string }> {
  const rig = await Rig.create();
  const otherHome = mkdtempSync(join(tmpdir(), TEST_HOME_PREFIX));
  noteTreeName(otherHome);
  t.after(async () => {
    await rig.dispose();
    killTaggedWith(otherHome);
    await removeTreeOf(otherHome);
    rmSync(otherHome, { recursive: true, force: true });
  });
  return { rig, otherHome };
}

test('processes of another AGENTPM_HOME are not touched unless --all-homes', async (t) => {
  const { rig, otherHome } = await rigWithAnotherHome(t);
  const foreign = orphan(rig, 'sleep 600', { AGENTPM_HOME: otherHome, AGENTPM_APP: 'x', AGENTPM_INSTANCE: 'abcabcabcabc' });
  const mine = await reapJson(rig, ['--dry-run']);
  assert.deepEqual(mine.result.found, []);
  // Other homes on this machine may have orphans too: list them all, end only the one this test made.
  const all = await reapJson(rig, ['--all-homes', '--dry-run']);
  const listed = all.result.found.find((item) => item.pid === foreign);
  assert.equal(listed?.home, otherHome, JSON.stringify(all.result.found));
  const ended = await reapJson(rig, ['--all-homes', '--pid', `${foreign}:${listed.startTime}`]);
  assert.deepEqual(ended.result.found.map((item) => item.pid), [foreign]);
  assert.equal(isAlivePid(foreign), false);
});

/** SIGKILL by pid for the live processes tagged with `home` (a test home this test created). */
function killTaggedWith(home: string): void {
  for (const proc of liveProcesses((p) => p.env.get('AGENTPM_HOME') === home)) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** A pattern no other process on the machine matches: this test's own processes carry it. */
function uniqueMatch(prefix: string): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

test('through the daemon, reap never lists nor ends its caller, the caller\'s ancestors or the CLI itself', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const match = uniqueMatch('revancestor');
  const script = join(rig.home, 'script.sh');
  // The shell running this script is orphaned (setsid -f), matches the pattern and is older than 0 s:
  // exactly what an unmanaged reap would end, were it not the CLI's own parent.
  writeFileSync(
    script,
    [
      'echo $$ > "$DIR/shell.pid"',
      '"$NODE" "$CLI" reap --unmanaged --match "$MATCH" --older-than 0s --dry-run --json > "$DIR/dry.json" 2>&1',
      'start=$(sed "s/.*) //" /proc/$$/stat | cut -d" " -f20)',
      '"$NODE" "$CLI" reap --unmanaged --match "$MATCH" --older-than 0s --grace 1s --pid "$$:$start" > "$DIR/pid.out" 2>&1',
      '"$NODE" "$CLI" reap --unmanaged --match "$MATCH" --older-than 0s --grace 1s > "$DIR/reap.out" 2>&1',
      'echo next-line-ran > "$DIR/after"',
      '',
    ].join('\n'),
  );
  const env = { ...rig.env, DIR: rig.home, NODE: process.execPath, CLI, MATCH: match };
  spawnSync('setsid', ['-f', 'bash', '-c', `exec -a ${match} bash ${script}`], { env, stdio: 'ignore' });
  const shell = await waitFor(() => Number(readFileSync(join(rig.home, 'shell.pid'), 'utf8')) || undefined, 'the script to start');
  rig.ownPids.add(shell);

  const dry = await waitFor(() => {
    try {
      return JSON.parse(readFileSync(join(rig.home, 'dry.json'), 'utf8')) as ReapResult;
    } catch {
      return undefined;
    }
  }, 'the dry run to report', 20_000);
  assert.equal(dry.daemon, true, 'done by the daemon');
  // Only the caller's chain carries this pattern: the shell (an orphan by itself) and the CLI (its child).
  assert.deepEqual(dry.found.map((item) => `${item.pid} ${item.cmd}`), []);

  const after = await waitFor(() => existsSync(join(rig.home, 'after')) || undefined, "the script's next line to run", 30_000).catch(() => false);
  const outputs = ['pid.out', 'reap.out'].map((file) => (existsSync(join(rig.home, file)) ? readFileSync(join(rig.home, file), 'utf8') : `(no ${file})`));
  assert.equal(after, true, `the script was killed by its own reap:\n${outputs.join('\n')}`);
  assert.match(outputs[0] ?? '', new RegExp(`left alone: pid ${shell} `), '--pid naming the caller is left alone');
  assert.match(outputs[1] ?? '', /no orphans found/);
  await waitFor(() => !isAlivePid(shell) || undefined, 'the script to exit');
});

test('the daemon refuses a reap whose caller it cannot find as claimed, and ends nothing', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const self = readProcess(process.pid);
  assert.ok(self);
  const options = (caller: { pid: number; startTime: number }): ReapOptions => ({ app: null, dryRun: true, allHomes: false, unmanaged: null, only: null, graceMs: 1000, caller });
  const client = await DaemonClient.connect(homePaths(rig.home), { autostart: false });
  try {
    const stale = client.request({ type: 'reap', options: options({ pid: process.pid, startTime: self.startTime + 1 }) });
    await assert.rejects(stale, (error: AgentpmError) => error.code === 'invalid-argument' && /caller \(pid \d+\).*start time/.test(error.message));
    const absent = client.request({ type: 'reap', options: options({ pid: 4_194_304 + 1, startTime: 1 }) });
    await assert.rejects(absent, (error: AgentpmError) => error.code === 'invalid-argument' && /caller \(pid \d+\) is not running/.test(error.message));
    const honest = await client.request({ type: 'reap', options: options({ pid: process.pid, startTime: self.startTime }) });
    assert.deepEqual(honest.found.filter((item) => item.pid === process.pid), []);
  } finally {
    client.close();
  }
});

test('an orphan without a home does not take along a child of another home', async (t) => {
  const { rig, otherHome } = await rigWithAnotherHome(t);
  const match = uniqueMatch('homeless');
  // $0 of the shell carries the pattern; its child carries the other home only.
  const parent = orphan(rig, `env -u AGENTPM_HOME sh -c 'AGENTPM_HOME=${otherHome} sleep 600 & wait' ${match}`);
  const child = await waitFor(() => liveProcesses((p) => p.ppid === parent && p.env.get('AGENTPM_HOME') === otherHome)[0]?.pid, 'the child of the other home');
  await waitFor(() => (readProcess(parent)?.ppid === 1 ? true : undefined), 'the parent to be orphaned');
  const listed = await reapJson(rig, ['--unmanaged', '--match', match, '--older-than', '0s', '--dry-run']);
  assert.deepEqual(listed.result.found.map((item) => item.pid), [parent], JSON.stringify(listed.result.found));
  const all = await reapJson(rig, ['--unmanaged', '--match', match, '--older-than', '0s', '--dry-run', '--all-homes']);
  // Other homes on this machine may have orphans too (managed ones are listed with --all-homes): look at ours.
  const ours = all.result.found.filter((item) => item.pid === parent || item.pid === child);
  assert.deepEqual(ours.map((item) => [item.pid, item.via]), [[parent, null], [child, parent]], 'with --all-homes it goes with its parent');
  await reapJson(rig, ['--unmanaged', '--match', match, '--older-than', '0s']);
  assert.equal(isAlivePid(parent), false);
  assert.ok(isAlivePid(child), 'the child of the other home was not signalled');
});

test("--all-homes never lists another home's live daemon, nor the processes that daemon answers for", async (t) => {
  const rig = await Rig.create();
  const other = await Rig.create();
  t.after(async () => {
    await other.dispose();
    await rig.dispose();
  });
  await other.ok(['daemon', 'start']);
  const otherDaemon = other.daemonPid();
  assert.ok(otherDaemon);
  await waitFor(() => (readProcess(otherDaemon)?.ppid === 1 ? true : undefined), "the other home's daemon to be reparented to init");
  // A leak of the other home: its daemon sweeps it (or keeps it, for reap: false); it is not ours to end.
  const leaked = orphan(other, 'sleep 600', { AGENTPM_APP: 'x', AGENTPM_INSTANCE: 'abcabcabcabc' });
  const daemonCmd = readProcess(otherDaemon)?.cmd ?? '';
  const pattern = `^${daemonCmd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
  for (const daemon of [false, true]) {
    if (daemon) await rig.ok(['daemon', 'start']);
    const managed = await reapJson(rig, ['--all-homes', '--dry-run']);
    const unmanaged = await reapJson(rig, ['--all-homes', '--dry-run', '--unmanaged', '--match', pattern, '--older-than', '0s']);
    for (const { result } of [managed, unmanaged]) {
      assert.equal(result.daemon, daemon);
      const theirs: OrphanInfo[] = result.found.filter((item) => item.pid === otherDaemon || item.pid === leaked || item.home === other.home);
      assert.deepEqual(theirs, [], JSON.stringify(theirs));
    }
  }
  assert.ok(isAlivePid(leaked) && isAlivePid(otherDaemon));
  // Its own home still finds it: the leak was left to the daemon that answers for it.
  const own = await reapJson(other, []);
  assert.deepEqual(own.result.found.map((item) => item.pid), [leaked]);
  assert.equal(isAlivePid(leaked), false);
});

test('an agentpm daemon is never an orphan, not even one without AGENTPM_HOME: neither reap nor the sweep ends it', async (t) => {
  const rig = await Rig.create();
  const user = mkdtempSync(join(tmpdir(), TEST_HOME_PREFIX));
  noteTreeName(join(user, '.agentpm'));
  t.after(async () => {
    await rig.dispose();
    await removeTreeOf(join(user, '.agentpm'));
    rmSync(user, { recursive: true, force: true });
  });
  const match = uniqueMatch('untaggeddaemon');
  // Started by hand, as `node dist/daemon/main.js` with no AGENTPM_HOME: its home is $HOME/.agentpm.
  // The extra argument (ignored by the daemon) makes its command line this test's alone.
  const daemon = orphan(rig, `env -u AGENTPM_HOME HOME=${user} ${process.execPath} ${join(ROOT, 'dist', 'daemon', 'main.js')} ${match}`);
  await waitFor(() => existsSync(join(user, '.agentpm', 'agentpm.sock')) || undefined, 'the untagged daemon to listen');
  await waitFor(() => (readProcess(daemon)?.ppid === 1 ? true : undefined), 'the untagged daemon to be orphaned');

  const listed = await reapJson(rig, ['--unmanaged', '--match', match, '--older-than', '0s', '--dry-run']);
  assert.deepEqual(listed.result.found, [], 'not listed by the CLI alone');
  const config = join(rig.home, 'ecosystem.config.json');
  writeFileSync(config, JSON.stringify({ reap: { interval: '1s', unmanaged: [{ match, olderThan: '0s' }] }, apps: [{ name: 'idle', script: join(FIXTURES, 'idle.mjs') }] }));
  await rig.ok(['start', config]);
  const viaDaemon = await reapJson(rig, ['--unmanaged', '--match', match, '--older-than', '0s', '--dry-run']);
  assert.equal(viaDaemon.result.daemon, true);
  assert.deepEqual(viaDaemon.result.found, [], 'not listed through the daemon');
  const sweepsAfter = Date.now();
  await waitFor(() => Date.now() - sweepsAfter > 2500 || undefined, 'two sweep periods', 5000, 100);
  assert.ok(isAlivePid(daemon), 'the sweep with a pattern matching it left the daemon alone');
  const events = (await rig.ok(['events', '--json'])).trim().split('\n').map((line) => JSON.parse(line) as { type: string });
  assert.deepEqual(events.filter((event) => event.type === 'orphans-reaped'), []);
});

test("without an answering daemon, reap refuses while the home's daemon is alive, and ends nothing", async (t) => {
  const rig = await Rig.create();
  let stopped: number | undefined;
  t.after(async () => {
    if (stopped) process.kill(stopped, 'SIGCONT');
    await rig.dispose();
  });
  await rig.ok(['start', join(FIXTURES, 'idle.mjs'), '--name', 'idle']);
  const daemon = rig.daemonPid();
  assert.ok(daemon);
  // A daemon that cannot answer right now (stopped, and its socket gone): the CLI falls back to the
  // registry file, which may lag behind what the daemon has just started.
  process.kill(daemon, 'SIGSTOP');
  stopped = daemon;
  rmSync(join(rig.home, 'agentpm.sock'));
  const leak = orphan(rig, 'sleep 600', { AGENTPM_APP: 'idle', AGENTPM_INSTANCE: 'feedfacecafe' });
  const run = await rig.cli(['reap']);
  assert.equal(run.code, 1, run.stdout);
  assert.match(run.stderr, new RegExp(`the daemon of ${rig.home} \\(pid ${daemon}\\) is running but did not answer`));
  assert.ok(isAlivePid(leak), 'nothing was ended');
  process.kill(daemon, 'SIGCONT');
  stopped = undefined;
  await waitFor(() => existsSync(join(rig.home, 'agentpm.sock')) || undefined, 'the daemon to re-create its socket');
  // Once it answers, the leak is its to end (its sweep may have been first).
  const reaped = await reapJson(rig, []);
  assert.equal(reaped.result.daemon, true);
  assert.equal(isAlivePid(leak), false);
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
  const suffix = randomInt(1e9);
  const match = `^sleep 6033\\.${suffix}$`;
  const leaked = orphan(rig, `sleep 6033.${suffix}`, marker);
  const unrelated = orphan(rig, `sleep 6044.${suffix}`, marker);
  const config = join(rig.home, 'ecosystem.config.json');
  writeFileSync(config, JSON.stringify({ reap: { interval: '1s', unmanaged: [{ match, olderThan: '1s' }] }, apps: [{ name: 'idle', script: join(FIXTURES, 'idle.mjs') }] }));
  await rig.ok(['start', config]);
  await waitFor(() => !isAlivePid(leaked) || undefined, 'the periodic sweep to end the matching orphan', 10_000);
  assert.ok(isAlivePid(unrelated), 'a process not matching the pattern is left alone');
  const swept = (await rig.ok(['events', '--json'])).trim().split('\n').map((line) => JSON.parse(line) as { type: string; reason: string; data: { pids: number[]; match?: string } }).find((event) => event.type === 'orphans-reaped');
  assert.equal(swept?.reason, 'unmanaged-match');
  assert.deepEqual(swept?.data.pids, [leaked]);
  assert.equal(swept?.data.match, match);
});

test('a --match pattern that backtracks for ever is cut off with the reason; the daemon keeps answering', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  // A command line the pattern (a+)+$ needs 2^40 steps to reject: it ends in b after 40 a's.
  orphan(rig, `sh -c 'sleep 600' ${'a'.repeat(40)}b`);
  const started = Date.now();
  const run = await rig.cli(['reap', '--unmanaged', '--match', '(a+)+$', '--older-than', '0s', '--dry-run'], { timeoutMs: 20_000 });
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.match(run.stderr, /took more than 200 ms on one command line.*nothing was ended/s);
  assert.ok(Date.now() - started < 10_000, 'refused quickly, not after the backtracking ran its course');
  await rig.ls(); // the daemon still answers
});
