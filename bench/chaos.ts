/**
 * `npm run chaos -- --minutes 10 [--seed N]`: agentpm under random abuse, judged by /proc alone (issue
 * 14). At random moments: kill -9 of the daemon (then a new one is started, as systemd would), SIGKILL
 * of a random process of an app's tree, CLI restart/stop/start/delete of a random app, and re-applying
 * the config. A sampler independent of agentpm checks, every 25 ms:
 *
 *   two-trees   one app never has two live instances (by their AGENTPM_INSTANCE tags);
 *   stray       no tagged process of an instance whose root is gone outlives one sweep (+ grace) while a
 *               daemon runs (apps with `reap: false` are excepted by design);
 *   down        every app that should run has a live root again within its bound while a daemon runs;
 *   registry    registry.json always parses;
 *   daemons     never two daemons of the home.
 *
 * Prints the number of actions of each kind and of violations (goal 0), and keeps a log in the temp
 * directory (one JSON line per action, violation and note, with the seed): `--seed N` replays the same
 * sequence of actions (their timing against the daemon's is not replayed). Everything is bounded and cleaned up, also
 * after Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlivePid, liveProcesses, type SeenProcess } from '../test/helpers/procs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin', 'agentpm');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const SAMPLE_MS = 25;
const SWEEP_MS = 2000;
/** A stray may live one sweep, plus the time a sweep's kill takes (kill timeout 2 s) and a scan. */
const STRAY_BOUND_MS = SWEEP_MS + 4000;
/** maxRestartDelay 3 s + the crasher's 1.5 s life + a restart's stop (kill timeout 2 s) + a daemon start. */
const DOWN_BOUND_MS = 12_000;
/** After a daemon (re)starts, what it must do takes this long at most: adoption, sweep, revival. */
const DAEMON_SETTLE_MS = 3000;
/** A daemon that finds the home's lock held exits within this (it checks the lock first thing). */
const DAEMON_LOSER_MS = 1500;

type Action = 'kill9-daemon' | 'kill-member' | 'restart' | 'stop' | 'start' | 'delete' | 'apply';
const WEIGHTS: [Action, number][] = [
  ['kill9-daemon', 1],
  ['kill-member', 4],
  ['restart', 2],
  ['stop', 1],
  ['start', 2],
  ['delete', 1],
  ['apply', 1],
];

interface AppPlan {
  name: string;
  reap: boolean;
}

const APPS: AppPlan[] = [
  ...Array.from({ length: 6 }, (_, i) => ({ name: `tree-${i}`, reap: true })),
  { name: 'crasher', reap: true },
  { name: 'detacher', reap: false },
];

function readProcessCmd(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '?';
  }
}

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} expects a number, e.g. ${name} ${fallback}`);
  return value;
}

function writeConfig(home: string): string {
  const detacher = join(home, 'detacher.sh');
  writeFileSync(detacher, 'setsid sleep 600 >/dev/null 2>&1 &\nsleep 600\n');
  const common = { restartDelay: '200ms', maxRestartDelay: '3s', maxRestarts: null, killTimeout: '2s' };
  const apps = APPS.map((app) => {
    if (app.name === 'crasher') return { ...common, name: app.name, script: join(FIXTURES, 'crasher.mjs'), env: { LIFETIME_MS: '1500', CHILDREN: '2' } };
    if (app.name === 'detacher') return { ...common, name: app.name, script: detacher, reap: false };
    return { ...common, name: app.name, script: join(FIXTURES, 'tree.mjs'), env: { CHILDREN: '3' } };
  });
  const file = join(home, 'chaos.config.json');
  writeFileSync(file, JSON.stringify({ reap: { interval: `${SWEEP_MS}ms` }, apps }));
  return file;
}

class Judge {
  readonly violations = new Map<string, number>();
  samples = 0;
  /** When each stray (pid:start) was first seen. */
  private readonly strays = new Map<string, number>();
  /** Since when each app that should run has had no live root. */
  private readonly down = new Map<string, number>();
  private readonly reported = new Set<string>();
  /** Each daemon process seen (pid:start), since when. */
  private readonly daemonsSeen = new Map<string, number>();
  /** When the current daemon started (0: none runs). */
  daemonSince = 0;

  constructor(
    private readonly home: string,
    private readonly desired: Map<string, boolean>,
    private readonly log: (entry: Record<string, unknown>) => void,
  ) {}

  private violation(kind: string, key: string, detail: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.violations.set(kind, (this.violations.get(kind) ?? 0) + 1);
    this.log({ violation: kind, detail });
    console.error(`  VIOLATION ${kind}: ${detail}`);
  }

  sample(now: number): void {
    this.samples += 1;
    const mine = liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === this.home);
    // A daemon that loses the home's lock exits at once (a CLI's autostart racing a running daemon):
    // two daemon processes count only when both were seen for longer than that.
    // A daemon's child between fork and exec still shows the daemon's command line: not a daemon.
    const daemonLike = mine.filter((proc) => proc.cmd.includes('daemon/main.js'));
    const daemons = daemonLike.filter((proc) => !daemonLike.some((parent) => parent.pid === proc.ppid));
    const keys = new Set(daemons.map((proc) => `${proc.pid}:${proc.startTime}`));
    for (const key of this.daemonsSeen.keys()) if (!keys.has(key)) this.daemonsSeen.delete(key);
    for (const key of keys) if (!this.daemonsSeen.has(key)) this.daemonsSeen.set(key, now);
    if (daemons.length > 1) {
      const key = `second:${daemons.map((proc) => proc.pid).sort().join(',')}`;
      if (!this.reported.has(key)) {
        this.reported.add(key);
        this.log({ note: 'second daemon process', daemons: daemons.map((proc) => ({ pid: proc.pid, ppid: proc.ppid, parent: readProcessCmd(proc.ppid) })) });
      }
    }
    const lasting = [...this.daemonsSeen].filter(([, since]) => now - since > DAEMON_LOSER_MS);
    if (lasting.length > 1) {
      const detail = daemons.map((proc) => `pid ${proc.pid} (ppid ${proc.ppid}, seen ${now - (this.daemonsSeen.get(`${proc.pid}:${proc.startTime}`) ?? now)} ms)`).join(', ');
      this.violation('daemons', `daemons:${lasting.map(([key]) => key).sort().join(',')}`, `${lasting.length} daemons: ${detail}`);
    }
    const settled = this.daemonSince > 0 && now - this.daemonSince > DAEMON_SETTLE_MS;
    const tagged = mine.filter((proc) => proc.env.has('AGENTPM_INSTANCE'));
    const byApp = new Map<string, SeenProcess[]>();
    for (const proc of tagged) byApp.set(proc.env.get('AGENTPM_APP') ?? '?', [...(byApp.get(proc.env.get('AGENTPM_APP') ?? '?') ?? []), proc]);
    const liveRoots = new Set(tagged.filter((proc) => proc.pid === proc.sid).map((proc) => proc.env.get('AGENTPM_INSTANCE')));
    for (const app of APPS) {
      const procs = byApp.get(app.name) ?? [];
      if (app.reap) {
        const instances = new Set(procs.map((proc) => proc.env.get('AGENTPM_INSTANCE')));
        if (instances.size > 1) this.violation('two-trees', `two:${[...instances].sort().join(',')}`, `${app.name}: instances ${[...instances].join(', ')} alive at once`);
        for (const proc of procs) {
          const key = `${proc.pid}:${proc.startTime}`;
          if (liveRoots.has(proc.env.get('AGENTPM_INSTANCE'))) continue;
          const since = this.strays.get(key) ?? now;
          this.strays.set(key, since);
          if (settled && now - Math.max(since, this.daemonSince) > STRAY_BOUND_MS) this.violation('stray', `stray:${key}`, `${app.name}: pid ${proc.pid} (${proc.cmd}) outlived its instance's root by ${now - since} ms`);
        }
      }
      const hasRoot = procs.some((proc) => proc.pid === proc.sid);
      if (this.desired.get(app.name) && !hasRoot) {
        const since = this.down.get(app.name) ?? now;
        this.down.set(app.name, since);
        if (settled && now - Math.max(since, this.daemonSince) > DOWN_BOUND_MS) this.violation('down', `down:${app.name}:${since}`, `${app.name}: should run, no live root for ${now - since} ms`);
      } else this.down.delete(app.name);
    }
    for (const key of this.strays.keys()) if (!tagged.some((proc) => `${proc.pid}:${proc.startTime}` === key)) this.strays.delete(key);
    try {
      JSON.parse(readFileSync(join(this.home, 'registry.json'), 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.violation('registry', `registry@${now}`, `registry.json unreadable: ${(error as Error).message}`);
    }
  }

  /** Forget what the desired state no longer asks for (a stopped app is not "down"). */
  reset(app: string): void {
    this.down.delete(app);
  }
}

async function main(): Promise<void> {
  const minutes = argument('--minutes', 10);
  const seed = argument('--seed', Date.now() % 2 ** 31);
  const home = mkdtempSync(join(tmpdir(), 'agentpm-chaos-'));
  const logFile = join(tmpdir(), `agentpm-chaos-${seed}.jsonl`);
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: home, NO_COLOR: '1' };
  delete env['AGENTPM_APP'];
  delete env['AGENTPM_INSTANCE'];
  const started = Date.now();
  const log = (entry: Record<string, unknown>): void => appendFileSync(logFile, `${JSON.stringify({ atMs: Date.now() - started, ...entry })}\n`);
  const cli = (args: string[]): number | null => spawnSync(process.execPath, [CLI, ...args], { env, stdio: 'ignore', timeout: 60_000 }).status;
  const desired = new Map(APPS.map((app) => [app.name, true]));
  const judge = new Judge(home, desired, log);
  const counts = new Map<Action, number>();
  let stopping = false;
  const cleanup = (): void => {
    stopping = true;
    cli(['kill']);
    for (const proc of liveProcesses((candidate) => candidate.env.get('AGENTPM_HOME') === home)) if (isAlivePid(proc.pid)) process.kill(proc.pid, 'SIGKILL');
    // The detacher's setsid'd sleeps carry the home too (reap: false keeps them past the kill).
    rmSync(home, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  console.error(`chaos: ${minutes} min, seed ${seed}, AGENTPM_HOME=${home}, log ${logFile}`);
  log({ seed, minutes });
  const config = writeConfig(home);
  try {
    if (cli(['start', config]) !== 0) throw new Error('the first start of the config failed');
    judge.daemonSince = Date.now();
    const sampling = (async () => {
      while (!stopping) {
        judge.sample(Date.now());
        await sleep(SAMPLE_MS);
      }
    })();
    const next = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const total = WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);
    const end = started + minutes * 60_000;
    while (Date.now() < end) {
      await sleep(200 + next() * 1300);
      let roll = next() * total;
      const action = WEIGHTS.find(([, weight]) => (roll -= weight) < 0)?.[0] ?? 'kill-member';
      const app = pick(APPS).name;
      counts.set(action, (counts.get(action) ?? 0) + 1);
      log({ action, app });
      switch (action) {
        case 'kill9-daemon': {
          const daemon = liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === home && proc.cmd.includes('daemon/main.js'))[0];
          if (daemon) process.kill(daemon.pid, 'SIGKILL');
          judge.daemonSince = 0;
          await sleep(next() * 500);
          cli(['daemon', 'start']); // as systemd's Restart= would
          judge.daemonSince = Date.now();
          break;
        }
        case 'kill-member': {
          const members = liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === home && proc.env.get('AGENTPM_APP') === app);
          if (members.length > 0) process.kill(pick(members).pid, 'SIGKILL');
          break;
        }
        case 'apply':
          if (cli(['start', config]) === 0) for (const plan of APPS) desired.set(plan.name, true);
          break;
        case 'start':
        case 'restart':
          if (cli([action, app]) === 0) desired.set(app, true);
          else if (action === 'start' && !desired.get(app) && cli(['start', config, '--only', app]) === 0) desired.set(app, true);
          break;
        case 'stop':
        case 'delete':
          if (cli([action, app]) === 0) {
            desired.set(app, false);
            judge.reset(app);
          }
          break;
      }
    }
    stopping = true;
    await sampling;
  } finally {
    cleanup();
  }
  const violations = [...judge.violations.values()].reduce((sum, count) => sum + count, 0);
  const summary = { seed, minutes, samples: judge.samples, actions: Object.fromEntries(counts), violations: Object.fromEntries(judge.violations), totalViolations: violations, log: logFile };
  log({ summary });
  console.log(JSON.stringify(summary, null, 2));
  if (violations > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(`chaos failed: ${(error as Error)?.stack ?? String(error)}`);
  process.exitCode = 1;
});
