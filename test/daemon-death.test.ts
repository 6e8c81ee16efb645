/**
 * The daemon dies (kill -9, a full disk, an upgrade) at any moment of an operation: the next daemon
 * still runs every app exactly once, loses none, and keeps each app's backoff. "Two trees" is judged
 * from /proc by a sampler independent of agentpm: two instance ids of one app alive at one moment.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RegistryFile } from '../src/daemon/registry.js';
import type { AppDetail, AppSummary } from '../src/protocol.js';
import { isAlivePid, liveProcesses, TEST_HOME_PREFIX } from './helpers/procs.js';
import { CLI, ROOT, Rig, waitFor } from './helpers/rig.js';

/** Watches /proc until stopped: every moment at which one app of `home` had two live instances. */
class TwoTreeSampler {
  readonly violations: string[] = [];
  samples = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly home: string) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const byApp = new Map<string, Set<string>>();
      for (const proc of liveProcesses((candidate) => candidate.env.get('AGENTPM_HOME') === this.home && candidate.env.has('AGENTPM_INSTANCE'))) {
        const app = proc.env.get('AGENTPM_APP') ?? '?';
        const instances = byApp.get(app) ?? new Set<string>();
        instances.add(proc.env.get('AGENTPM_INSTANCE') ?? '?');
        byApp.set(app, instances);
      }
      for (const [app, instances] of byApp) if (instances.size > 1) this.violations.push(`${app}: ${[...instances].join(', ')}`);
      this.samples += 1;
      await sleep(15);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** A small deterministic generator, so that a failing run can be replayed from the seed it prints. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const APPS = 20;

function writeConfig(rig: Rig): string {
  const script = join(rig.home, 'agent.sh');
  writeFileSync(script, 'sleep 600 &\nwait\n');
  const config = join(rig.home, 'ecosystem.config.json');
  // Half of them with `reap: false`: nothing sweeps an unrecorded copy of those away later.
  const apps = Array.from({ length: APPS }, (_, index) => ({ name: `app${index}`, script, killTimeout: '2s', reap: index % 2 === 0 }));
  writeFileSync(config, JSON.stringify({ apps }));
  return config;
}

function launch(rig: Rig, args: string[]): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: rig.env, stdio: 'ignore', cwd: ROOT });
  return { child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}


function registeredApps(rig: Rig): string[] {
  try {
    return (JSON.parse(readFileSync(join(rig.home, 'registry.json'), 'utf8')) as RegistryFile).apps.map((app) => app.spec.name);
  } catch {
    return [];
  }
}

/** Every app online, each with exactly one live instance. */
async function allRunningOnce(rig: Rig, names: string[], what: string): Promise<void> {
  await waitFor(async () => {
    const list = await rig.ls();
    const online = names.every((name) => list.find((app) => app.name === name)?.status === 'online');
    const instances = rig.instancesByApp();
    return online && names.every((name) => instances.get(name)?.size === 1);
  }, what, 20_000, 100);
}

/**
 * One crash-consistency run: `operation` is launched, the daemon is SIGKILLed at a random moment
 * between 0 and 1.5 s after the launch, then `ls` brings up a new daemon.
 */
async function killDuring(iterations: number, seed: number, operation: 'start' | 'restart-all'): Promise<void> {
  const next = random(seed);
  const problems: string[] = [];
  for (let round = 0; round < iterations; round += 1) {
    const rig = await Rig.create();
    const sampler = new TwoTreeSampler(rig.home);
    try {
      const config = writeConfig(rig);
      const names = Array.from({ length: APPS }, (_, index) => `app${index}`);
      if (operation === 'restart-all') {
        await rig.ok(['start', config]);
        await allRunningOnce(rig, names, 'the config to start');
      }
      const delayMs = Math.floor(next() * 1500);
      const launched = Date.now();
      const run = launch(rig, operation === 'start' ? ['start', config] : ['restart', 'all']);
      await sleep(delayMs);
      // The daemon is launched by the start command itself: kill it as soon as it exists after the delay.
      const daemon = await waitFor(() => rig.daemonPid(), 'a daemon to kill', 10_000, 5);
      process.kill(daemon, 'SIGKILL');
      const killedAfter = Date.now() - launched;
      await waitFor(() => !isAlivePid(daemon), 'the daemon to die');
      const registered = registeredApps(rig);
      await Promise.race([run.exited, sleep(30_000)]);
      if (run.child.exitCode === null) run.child.kill('SIGKILL');

      await rig.ls(); // any command: a new daemon takes over
      // Whatever the registry held when the daemon died runs again, once; nothing it held is lost.
      await allRunningOnce(rig, operation === 'start' ? registered : names, `round ${round}: every registered app running once`);
      // The start that was cut short is completed by running it again: all 20, still once each.
      if (operation === 'start') {
        await rig.ok(['start', config]);
        await allRunningOnce(rig, names, `round ${round}: all apps after re-running start`);
      }
      await sampler.stop();
      if (sampler.violations.length > 0) problems.push(`round ${round} (killed after ${killedAfter} ms): two live trees of ${[...new Set(sampler.violations)].join('; ')}`);
      if (sampler.samples < 5) problems.push(`round ${round}: only ${sampler.samples} samples of /proc were taken`);
    } catch (error) {
      problems.push(`round ${round}: ${(error as Error).message}`);
    } finally {
      await sampler.stop();
      // A leftover found here is a failure too, reported beside (not instead of) the round's own.
      await rig.dispose().catch((error: unknown) => problems.push(`round ${round}: ${(error as Error).message}`));
    }
    if (problems.length > 0) break;
  }
  assert.deepEqual(problems, [], `seed ${seed}`);
}

test('kill -9 of the daemon at a random moment of `start` of a 20-app config, 30 times: every app runs exactly once, none lost, never two trees', { timeout: 600_000 }, async () => {
  const seed = Number(process.env['AGENTPM_TEST_SEED'] ?? Date.now() % 100_000);
  await killDuring(Number(process.env["AGENTPM_TEST_ROUNDS"] ?? 30), seed, 'start');
});

test('kill -9 of the daemon at a random moment of `restart all` of 20 apps, 30 times: every app runs exactly once, never two trees', { timeout: 600_000 }, async () => {
  const seed = Number(process.env['AGENTPM_TEST_SEED'] ?? Date.now() % 100_000);
  await killDuring(Number(process.env["AGENTPM_TEST_ROUNDS"] ?? 30), seed, 'restart-all');
});

/**
 * An app `agent` (a shell with a sleep child) whose daemon is then stopped, with its registry rewritten
 * to what a daemon killed between the spawn and the write recording it leaves: only the intent.
 */
async function stopWithOnlyTheIntentRecorded(rig: Rig): Promise<{ before: AppSummary; intent: string }> {
  const script = join(rig.home, 'agent.sh');
  writeFileSync(script, 'sleep 600 &\nwait\n');
  await rig.ok(['start', script, '--name', 'agent']);
  const before = await rig.app('agent');
  await rig.ok(['daemon', 'stop']);
  const path = join(rig.home, 'registry.json');
  const registry = JSON.parse(readFileSync(path, 'utf8')) as RegistryFile;
  const [saved] = registry.apps;
  assert.ok(saved?.instance);
  saved.spawning = { id: saved.instance.id, at: saved.instance.startedAt };
  saved.instance = null;
  saved.status = 'starting';
  writeFileSync(path, JSON.stringify(registry));
  return { before, intent: saved.spawning.id };
}

test('a tree spawned just before the daemon died, known only by its intent in the registry, is adopted, not run twice', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const { before, intent } = await stopWithOnlyTheIntentRecorded(rig);
  // With no daemon, a reap from the registry alone leaves that tree to the daemon that will adopt it.
  const reap = await rig.cli(['reap', '--dry-run', '--json']);
  assert.equal(reap.code, 0, reap.stdout + reap.stderr);
  assert.deepEqual((JSON.parse(reap.stdout) as { found: unknown[] }).found, []);

  const after = await rig.app('agent');
  assert.equal(after.status, 'online');
  assert.equal(after.pid, before.pid, 'the intended instance was adopted');
  assert.equal(rig.instancesByApp().get('agent')?.size, 1, 'no second tree was started');
  const detail = JSON.parse(await rig.ok(['show', 'agent', '--json'])) as AppDetail;
  assert.equal(detail.instance, intent);
});

test('an intended instance whose root already died: its leftovers end before the app starts again, once', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const { before } = await stopWithOnlyTheIntentRecorded(rig);
  const [child] = rig.tagged().filter((proc) => proc.pid !== before.pid);
  assert.ok(child, 'the sleep child');
  process.kill(before.pid as number, 'SIGKILL');
  await waitFor(() => !isAlivePid(before.pid as number), 'the root to die');

  const sampler = new TwoTreeSampler(rig.home);
  try {
    await rig.ls();
    assert.equal(isAlivePid(child.pid), false, 'the leftover child was ended before anything started');
    await waitFor(async () => (await rig.app('agent')).status === 'online', 'the app to run again');
  } finally {
    await sampler.stop();
  }
  assert.deepEqual(sampler.violations, []);
  assert.equal(rig.instancesByApp().get('agent')?.size, 1);
});

test('daemon restart while a crashed app is being cleaned up keeps its 60 s backoff; restarts and exits carry over', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const script = join(rig.home, 'crash.sh');
  // Crashes at once, leaving a child that ignores SIGTERM: the cleanup takes the kill timeout.
  writeFileSync(script, 'sh -c \'trap "" TERM; sleep 600\' &\nsleep 0.3\nexit 1\n');
  await rig.ok(['start', script, '--name', 'crashy', '--restart-delay', '60s', '--kill-timeout', '3s']);
  await waitFor(async () => (await rig.app('crashy')).status === 'stopping', 'the crash cleanup to begin');
  await rig.ok(['daemon', 'restart']);
  const after = await rig.show('crashy');
  assert.equal(after.status, 'backoff', 'not started at once by the new daemon');
  assert.ok(after.nextStartAt && Date.parse(after.nextStartAt) - Date.now() > 50_000, `next start ${after.nextStartAt}`);
  assert.equal(after.exits.length, 1, 'the crash is recorded once');

  // A backoff that was already pending survives a second replacement unchanged.
  await rig.ok(['daemon', 'restart']);
  const again = await rig.show('crashy');
  assert.equal(again.status, 'backoff');
  assert.equal(again.nextStartAt, after.nextStartAt);
  assert.equal(again.restarts, after.restarts);
  assert.deepEqual(again.exits, after.exits);
});

test('a temp file left by a registry write cut short is removed by the next daemon', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const stale = join(rig.home, 'registry.json.424242.tmp');
  writeFileSync(stale, '{"half": ', { mode: 0o600 });
  const unrelated = join(rig.home, 'registry.json.notes');
  writeFileSync(unrelated, 'mine', { mode: 0o600 });
  await rig.ok(['daemon', 'start']);
  assert.equal(existsSync(stale), false);
  assert.equal(existsSync(unrelated), true, 'only temp files of interrupted writes are removed');
});

test('a full disk: a restart that cannot be recorded fails with a message naming the disk, and never leads to two trees', async (t) => {
  const mount = mkdtempSync(join(tmpdir(), `${TEST_HOME_PREFIX}disk-`));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mount]);
  if (mounted.status !== 0) {
    rmSync(mount, { recursive: true, force: true });
    t.skip(`cannot mount a small tmpfs here (${mounted.stderr.toString().trim()})`);
    return;
  }
  const home = join(mount, 'home');
  mkdirSync(home, { mode: 0o700 });
  chmodSync(home, 0o700);
  const rig = await Rig.create({}, { home });
  t.after(async () => {
    await rig.dispose();
    spawnSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  });
  const script = join(rig.home, 'agent.sh');
  writeFileSync(script, 'sleep 600 &\nwait\n');
  await rig.ok(['start', script, '--name', 'd1']);
  const before = await rig.app('d1');
  const sampler = new TwoTreeSampler(rig.home);
  try {
    // Fill the disk: every block the filesystem has left.
    const filler = join(mount, 'filler');
    spawnSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=4k 2>/dev/null; true`]);
    const restart = await rig.cli(['restart', 'd1']);
    assert.notEqual(restart.code, 0, 'a restart that cannot be recorded is an error');
    assert.match(restart.stderr, /registry\.json.*full \(ENOSPC\).*free space/s);
    assert.ok(rig.instancesByApp().get('d1') === undefined || rig.instancesByApp().get('d1')?.size === 1);
    const save = await rig.cli(['save']);
    assert.notEqual(save.code, 0);
    assert.match(save.stderr, /dump\.json.*full \(ENOSPC\)/s);

    process.kill(rig.daemonPid() as number, 'SIGKILL');
    await waitFor(() => rig.daemonPid() === undefined, 'the daemon to die');
    // A new daemon starts on the full disk and answers, but starts nothing it cannot record.
    const list = await rig.ls();
    assert.deepEqual(list.map((app) => app.name), ['d1']);
    await sleep(1500);
    assert.equal(rig.instancesByApp().get('d1'), undefined, 'nothing was spawned unrecorded');
    rmSync(filler);
    // Once there is room, the restart the daemon retries through the backoff goes through by itself.
    await waitFor(async () => (await rig.app('d1')).status === 'online', 'd1 to run again', 15_000);
    assert.equal(rig.instancesByApp().get('d1')?.size, 1, 'one tree');
    assert.notEqual((await rig.app('d1')).pid, before.pid);
  } finally {
    await sampler.stop();
  }
  assert.deepEqual(sampler.violations, [], 'never two trees of d1');
});
