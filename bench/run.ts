/**
 * Benchmarks of agentpm against its goals, side by side with PM2, printed as one table. Run with
 * `npm run bench`.
 *
 * agentpm runs against a fresh AGENTPM_HOME (mkdtemp, prefix agentpm-bench-) through the real, compiled
 * CLI; PM2 (the dev dependency, node_modules/pm2) against its own fresh PM2_HOME (prefix pm2-bench-),
 * never ~/.pm2. Everything the bench starts carries AGENTPM_BENCH_RUN=<random id> in its environment
 * (both managers pass their environment on to apps and their children). At the end, whatever happens:
 * `agentpm kill`, `pm2 kill`, then SIGKILL by pid any process whose initial environment carries that
 * marker or the agentpm home (never by name), then both homes are removed.
 *
 * The limit cases are timed against the bench's own view of the tree: a worker thread (sampler.mjs)
 * samples /proc every 10-20 ms, so the blocking CLI calls of the main thread never pause it.
 *
 * To add a case, write a function `(ctx) => Promise<Row[]>` and append it to `cases`. BENCH_CASES=a,b
 * (function names) runs only those. Each limit run's raw figures go to stderr.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { PROTOCOL_VERSION, type AgentEvent, type AppSummary, type TickCost } from '../src/protocol.js';
import { isAlivePid, liveProcesses, readProcess } from '../test/helpers/procs.js';
import { footprint } from './footprint.js';
import { scale200 } from './scale.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(ROOT, 'bin', 'agentpm');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const BENCH_FIXTURES = join(ROOT, 'bench', 'fixtures');
const PM2_BIN = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
/** In the environment of everything the bench starts; cleanup SIGKILLs by it. */
export const MARKER = 'AGENTPM_BENCH_RUN';
const OVERALL_LIMIT_MS = 40 * 60_000;

export type Row = { case: string; agentpm: string; pm2: string; goal: string };
interface Pm2Ctx {
  home: string;
  env: NodeJS.ProcessEnv;
  /** The PM2 daemon may have been started (so `pm2 kill` is due at cleanup). */
  started: boolean;
  /** null while PM2 works; otherwise what the pm2 column says instead of figures. */
  unusable: string | null;
}
export interface Ctx {
  home: string;
  env: NodeJS.ProcessEnv;
  runId: string;
  /** null: PM2 is not installed. */
  pm2: Pm2Ctx | null;
}
type Case = (ctx: Ctx) => Promise<Row[]>;
const PM2_MISSING = 'pm2 not installed';

// ---------------------------------------------------------------------------------------- helpers

export interface RunResult {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs node with `args` to completion (killed after timeoutMs) and measures its wall time. */
export function runNode(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 30_000): RunResult {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 2 ** 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`node ${args.join(' ')}: ${r.error.message}`);
  return { ms, code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI and fails with its output unless it exits 0. */
export function cli(ctx: Ctx, args: string[], timeoutMs = 30_000): RunResult {
  const r = runNode(ctx.env, [CLI, ...args], timeoutMs);
  if (r.code !== 0) throw new Error(`agentpm ${args.join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`);
  return r;
}

/** Runs the PM2 CLI (under its own PM2_HOME) and fails with its output unless it exits 0. */
function pm2(p: Pm2Ctx, args: string[], timeoutMs = 60_000): RunResult {
  p.started = true; // any pm2 command starts its daemon
  const r = runNode(p.env, [PM2_BIN, ...args], timeoutMs);
  if (r.code !== 0) throw new Error(`pm2 ${args.join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`);
  return r;
}

interface Pm2Proc {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number };
}

/** `pm2 jlist`; the JSON is its last line (a first command may print PM2's banner before it). */
function pm2List(p: Pm2Ctx): Pm2Proc[] {
  const lines = pm2(p, ['jlist']).stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? '[]') as Pm2Proc[];
}

/** Starts apps through an ecosystem file written into the PM2 home. */
function pm2Start(p: Pm2Ctx, apps: Record<string, unknown>[]): void {
  const file = join(p.home, `ecosystem-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify({ apps }));
  pm2(p, ['start', file]);
}

async function pm2Online(p: Pm2Ctx, name: string): Promise<Pm2Proc> {
  return waitFor(`${name} online under pm2`, () => pm2List(p).find((proc) => proc.name === name && proc.pm2_env.status === 'online' && proc.pid > 0), 15_000, 100);
}

const ls = (ctx: Ctx): AppSummary[] => JSON.parse(cli(ctx, ['ls', '--json']).stdout) as AppSummary[];

export async function waitFor<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall time of `fn` over `runs` runs after `warmup` unmeasured ones. */
function timed(fn: () => RunResult, runs = 15, warmup = 2): number {
  for (let i = 0; i < warmup; i += 1) fn();
  return median(Array.from({ length: runs }, () => fn().ms));
}

/**
 * Median wall times of `fn` and of `baseline`, run alternately (after `warmup` of each), so that a
 * ratio between them does not depend on what the machine was doing a few seconds earlier.
 */
export function timedAgainst(fn: () => RunResult, baseline: () => RunResult, runs = 15, warmup = 2): { t: number; base: number } {
  for (let i = 0; i < warmup; i += 1) fn(), baseline();
  const t: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    base.push(baseline().ms);
    t.push(fn().ms);
  }
  return { t: median(t), base: median(base) };
}

export const ms = (value: number): string => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`);
const secs = (value: number): string => `${(value / 1000).toFixed(2)} s`;
export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** A cell's text, or the error that stopped it (the rest of the table still gets measured). */
export async function attempt(what: string, measure: () => Promise<string>): Promise<string> {
  try {
    return await measure();
  } catch (error) {
    console.error(`${what} failed: ${(error as Error)?.stack ?? String(error)}`);
    return `error: ${((error as Error)?.message ?? String(error)).split('\n')[0]}`;
  }
}

/** The same, for a PM2 cell: 'pm2 not installed' without PM2. */
function attemptPm2(ctx: Ctx, what: string, measure: (p: Pm2Ctx) => Promise<string>): Promise<string> {
  const p = ctx.pm2;
  if (!p) return Promise.resolve(PM2_MISSING);
  return p.unusable === null ? attempt(what, () => measure(p)) : Promise.resolve(p.unusable);
}

// ------------------------------------------------------------------------------------------ /proc

// The suite's own /proc reader (independent of agentpm's process table) serves the bench too.

/** Live pids (not this process) whose initial environment satisfies `test`. */
function livePidsWhere(test: (env: Map<string, string>) => boolean): number[] {
  return liveProcesses((proc) => proc.pid !== process.pid && test(proc.env)).map((proc) => proc.pid);
}

/** Start time of a live pid as /proc prints it, or undefined. */
const startOf = (pid: number): string | undefined => {
  const proc = readProcess(pid);
  return proc ? String(proc.startTime) : undefined;
};

/** Live pids (not this process) whose initial environment has AGENTPM_HOME=home, and AGENTPM_APP=app if given. */
function tagged(home: string, app?: string): number[] {
  return livePidsWhere((env) => env.get('AGENTPM_HOME') === home && (app === undefined || env.get('AGENTPM_APP') === app));
}

/** Live pids whose initial environment has name=value. */
const taggedBy = (name: string, value: string): number[] => livePidsWhere((env) => env.get(name) === value);

/** SIGKILLs by pid (never by name); returns how many were signalled. */
function killPids(pids: number[]): number {
  let killed = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      killed += 1;
    } catch {
      // already gone
    }
  }
  return killed;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return '';
  }
}

function vmRssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

// ---------------------------------------------------------------------------------------- sampler

/** What sampler.mjs reports; times are Date.now() values, comparable with the daemon's event times. */
interface TreeStats {
  samples: number;
  firstAt: number | null;
  lastAt: number | null;
  maxGapMs: number;
  maxMemory: number;
  maxRootMemory: number;
  maxCount: number;
  count: number;
  crossAt: number | null;
  breachAt: number | null;
  zeroAt: number | null;
  rootGoneAt: number | null;
}

interface SamplerOptions {
  rootPid: number;
  rootStart: string;
  /** Processes with one of these environment pairs belong to the tree even when no longer descendants. */
  env: [string, string][];
  intervalMs: number;
  limitBytes?: number | null;
  childrenLimit?: number | null;
  /** The sampler stops by itself after this long, whatever happens. */
  maxMs?: number;
}

type Sampling = Omit<SamplerOptions, 'rootPid' | 'rootStart' | 'env'>;

/** A worker thread sampling one tree from /proc (see sampler.mjs). */
class TreeSampler {
  private latest: TreeStats | null = null;
  private readonly listeners = new Set<() => void>();
  private readonly finished: Promise<TreeStats>;
  private ended = false;

  private constructor(private readonly worker: Worker) {
    this.finished = new Promise<TreeStats>((resolve, reject) => {
      worker.on('message', (message: { stats: TreeStats; final?: boolean }) => {
        this.latest = message.stats;
        if (message.final) {
          this.ended = true;
          resolve(message.stats);
        }
        for (const listener of this.listeners) listener();
      });
      worker.on('error', reject);
      worker.on('exit', () => {
        this.ended = true;
        for (const listener of this.listeners) listener();
        if (this.latest) resolve(this.latest);
        else reject(new Error('the sampler exited before its first sample'));
      });
    });
    this.finished.catch(() => undefined);
  }

  /** Starts sampling; resolves after the first sample. */
  static async start(options: SamplerOptions): Promise<TreeSampler> {
    const worker = new Worker(new URL('./sampler.mjs', import.meta.url), { workerData: { limitBytes: null, childrenLimit: null, maxMs: 120_000, ...options } });
    const sampler = new TreeSampler(worker);
    if (!(await sampler.until(() => true, 5000))) {
      await sampler.stop();
      throw new Error('the sampler took no sample within 5 s');
    }
    return sampler;
  }

  /** Waits until `test` holds for the latest stats; false after timeoutMs or when the sampler has ended. */
  until(test: (stats: TreeStats) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (this.latest && test(this.latest)) done(true);
        else if (this.ended) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (value: boolean): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(value);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Stops sampling and returns the final stats. */
  async stop(): Promise<TreeStats> {
    this.worker.postMessage({ type: 'stop' });
    const timeout = sleep(5000).then(() => null);
    const stats = await Promise.race([this.finished.catch(() => null), timeout]);
    await this.worker.terminate();
    if (!stats) throw new Error('the sampler did not report its final stats');
    return stats;
  }
}

interface Observed {
  stats: TreeStats;
  /** When the bench told the fixture to start. */
  goAt: number;
}

/** Says go to a fixture and waits, bounded: first for the crossing (memory) or breach (children), then for `until`. */
async function observe(
  sampler: TreeSampler,
  goFile: string,
  wait: { crossWithinMs: number; afterMs: number; until: (stats: TreeStats) => boolean },
): Promise<Observed> {
  const goAt = Date.now();
  try {
    writeFileSync(goFile, '');
    const crossed = await sampler.until((s) => s.crossAt !== null || s.breachAt !== null, wait.crossWithinMs);
    if (crossed) await sampler.until(wait.until, wait.afterMs);
  } catch (error) {
    await sampler.stop().catch(() => undefined);
    throw error;
  }
  return { stats: await sampler.stop(), goAt };
}

// ------------------------------------------------------------------------------------------ apps

async function startIdle(ctx: Ctx, names: string[]): Promise<void> {
  for (const name of names) cli(ctx, ['start', join(FIXTURES, 'idle.mjs'), '--name', name]);
  await waitFor(`${names.length} idle apps online`, () => {
    const online = new Set(ls(ctx).filter((a) => a.status === 'online').map((a) => a.name));
    return names.every((n) => online.has(n));
  });
}

async function startIdlePm2(p: Pm2Ctx, names: string[]): Promise<void> {
  pm2Start(p, names.map((name) => ({ name, script: join(FIXTURES, 'idle.mjs') })));
  await waitFor(`${names.length} idle apps online under pm2`, () => {
    const online = new Set(pm2List(p).filter((a) => a.pm2_env.status === 'online').map((a) => a.name));
    return names.every((n) => online.has(n));
  }, 30_000, 200);
}

const idleNames = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `idle-${from + i}`);

interface AgentpmRun extends Observed {
  instance: string;
  /** The daemon's 'limit-breach' event of this instance, if it acted. */
  breach: AgentEvent | null;
}

/**
 * Starts `script` under agentpm (restart delay 10s, so no new instance appears while it is observed),
 * samples its tree (by descent from the root and by its AGENTPM_INSTANCE), says go, waits until the
 * limit was crossed and then until nothing of the tree is alive; then reads the events and deletes it.
 */
async function agentpmLimitRun(ctx: Ctx, name: string, script: string, flags: string[], sampling: Sampling, wait: { crossWithinMs: number; afterMs: number }): Promise<AgentpmRun> {
  const go = join(ctx.home, `${name}.go`);
  const list = JSON.parse(cli(ctx, ['start', script, '--name', name, '--restart-delay', '10s', ...flags, '--env', `GO_FILE=${go}`, '--json']).stdout) as AppSummary[];
  try {
    const pid = list.find((app) => app.name === name)?.pid;
    const start = pid ? startOf(pid) : undefined;
    const instance = pid ? readProcess(pid)?.env.get('AGENTPM_INSTANCE') : undefined;
    if (!pid || !start || !instance) throw new Error(`${name}: no live root with an AGENTPM_INSTANCE after start`);
    const sampler = await TreeSampler.start({ rootPid: pid, rootStart: start, env: [['AGENTPM_INSTANCE', instance]], ...sampling });
    const observed = await observe(sampler, go, { ...wait, until: (s) => s.zeroAt !== null });
    const events = cli(ctx, ['events', '--json', '--app', name, '--lines', '1000'])
      .stdout.split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AgentEvent);
    const breach = events.find((event) => event.type === 'limit-breach' && event.instance === instance) ?? null;
    logRun(`agentpm ${name}`, observed, breach ? Date.parse(breach.at) : null);
    return { ...observed, instance, breach };
  } finally {
    cli(ctx, ['delete', name]);
  }
}

/** The run's raw figures on stderr, relative to go, so that a surprising cell can be checked. */
function logRun(what: string, { stats, goAt }: Observed, actedAt: number | null): void {
  const at = (value: number | null): string => (value === null ? '-' : `+${value - goAt} ms`);
  console.error(
    `  ${what}: crossed ${at(stats.crossAt)}, children over ${at(stats.breachAt)}, acted ${at(actedAt)}, root gone ${at(stats.rootGoneAt)}, ` +
      `zero ${at(stats.zeroAt)}; peak ${stats.maxCount} procs / ${mib(stats.maxMemory)} (root ${mib(stats.maxRootMemory)}); ` +
      `${stats.samples} samples, max gap ${stats.maxGapMs} ms`,
  );
}

interface Pm2Run extends Observed {
  /** Processes of the app still alive after `pm2 delete`, SIGKILLed by the bench. */
  leaked: number;
}

/** The same under PM2 (autorestart on, its defaults otherwise): the tree is the root's descendants and BENCH_TAG. */
async function pm2Run(
  p: Pm2Ctx,
  name: string,
  script: string,
  app: Record<string, unknown>,
  sampling: Sampling,
  wait: { crossWithinMs: number; afterMs: number; until: (stats: TreeStats) => boolean },
): Promise<Pm2Run> {
  const tag = `${name}-${randomBytes(4).toString('hex')}`;
  const go = join(p.home, `${name}.go`);
  pm2Start(p, [{ name, script, autorestart: true, ...app, env: { GO_FILE: go, BENCH_TAG: tag } }]);
  try {
    const proc = await pm2Online(p, name);
    const start = startOf(proc.pid);
    if (!start) throw new Error(`${name}: pm2 reports pid ${proc.pid}, which is not alive`);
    const sampler = await TreeSampler.start({ rootPid: proc.pid, rootStart: start, env: [['BENCH_TAG', tag]], ...sampling });
    const observed = await observe(sampler, go, wait);
    logRun(`pm2 ${name}`, observed, null);
    return { ...observed, leaked: pm2Delete(p, name, tag) };
  } catch (error) {
    pm2Delete(p, name, tag);
    throw error;
  }
}

/** `pm2 delete`, then SIGKILL (by pid) whatever of the app it left alive; returns how many that was. */
function pm2Delete(p: Pm2Ctx, name: string, tag: string): number {
  try {
    pm2(p, ['delete', name]);
  } catch (error) {
    console.error((error as Error).message);
  }
  sleepSync(300);
  return killPids(taggedBy('BENCH_TAG', tag));
}

// ----------------------------------------------------------------------------------------- cases

/** Limit crossed (bench) to kill start (the daemon's limit-breach event), or null when it never acted. */
function breachLatency(run: AgentpmRun): number | null {
  if (run.stats.crossAt === null && run.stats.breachAt === null) throw new Error(`the tree never crossed the limit (peak ${mib(run.stats.maxMemory)}, ${run.stats.maxCount} processes)`);
  return run.breach ? Date.parse(run.breach.at) - (run.stats.crossAt ?? run.stats.breachAt ?? 0) : null;
}

const MEMORY_LIMIT_CHILD = 200 * 2 ** 20;
const MEMORY_LIMIT_MAIN = 300 * 2 ** 20;

async function memoryInChild(ctx: Ctx): Promise<Row[]> {
  const script = join(BENCH_FIXTURES, 'mem-children.mjs');
  const sampling: Sampling = { intervalMs: 20, limitBytes: MEMORY_LIMIT_CHILD };
  const agentpm = await attempt('agentpm: memory breach in a child', async () => {
    const latencies: (number | null)[] = [];
    const gone: number[] = [];
    for (let run = 0; run < 3; run += 1) {
      const result = await agentpmLimitRun(ctx, `memchild-${run}`, script, ['--max-memory', '200M'], sampling, { crossWithinMs: 10_000, afterMs: 10_000 });
      latencies.push(breachLatency(result));
      if (result.breach && result.stats.zeroAt !== null) gone.push(result.stats.zeroAt - Date.parse(result.breach.at));
    }
    const acted = latencies.filter((value): value is number => value !== null);
    if (acted.length < latencies.length) return `never in ${latencies.length - acted.length} of 3 runs (10 s each)`;
    return `${secs(median(acted))} (${acted.map(secs).join(', ')}); tree gone ${secs(median(gone))} later`;
  });
  const pm2Cell = await attemptPm2(ctx, 'pm2: memory breach in a child', async (p) => {
    const result = await pm2Run(p, 'memchild', script, { max_memory_restart: '200M' }, sampling, { crossWithinMs: 10_000, afterMs: 40_000, until: (s) => s.rootGoneAt !== null });
    const { stats } = result;
    if (stats.crossAt === null) throw new Error(`the tree never crossed the limit (peak ${mib(stats.maxMemory)})`);
    const seen = `tree ${mib(stats.maxMemory)}, root ${mib(stats.maxRootMemory)}`;
    if (stats.rootGoneAt === null) return `never (40 s; ${seen})`;
    return `${secs(stats.rootGoneAt - stats.crossAt)} (root gone; ${seen})`;
  });
  return [{ case: '1. memory breach in a child (5 x 60 MB, limit 200M)', agentpm, pm2: pm2Cell, goal: '<= 1.5 s from crossing (bench /proc, 20 ms) to kill start (agentpm: limit-breach event; pm2: root gone); agentpm 3 runs; pm2 watched 40 s (>= 1 of its 30 s checks, root pid only)' }];
}

async function memoryInMain(ctx: Ctx): Promise<Row[]> {
  const script = join(BENCH_FIXTURES, 'mem-grow.mjs');
  const sampling: Sampling = { intervalMs: 20, limitBytes: MEMORY_LIMIT_MAIN };
  const agentpm = await attempt('agentpm: memory breach in the main process', async () => {
    const result = await agentpmLimitRun(ctx, 'memmain', script, ['--max-memory', '300M'], sampling, { crossWithinMs: 25_000, afterMs: 10_000 });
    const latency = breachLatency(result);
    if (latency === null) return 'never (10 s after crossing)';
    const gone = result.breach && result.stats.zeroAt !== null ? `; tree gone ${secs(result.stats.zeroAt - Date.parse(result.breach.at))} later` : '';
    return `${secs(latency)} (1 run${gone})`;
  });
  const pm2Cell = await attemptPm2(ctx, 'pm2: memory breach in the main process', async (p) => {
    const result = await pm2Run(p, 'memmain', script, { max_memory_restart: '300M' }, sampling, { crossWithinMs: 25_000, afterMs: 35_000, until: (s) => s.rootGoneAt !== null });
    const { stats } = result;
    if (stats.crossAt === null) throw new Error(`the tree never crossed the limit (peak ${mib(stats.maxMemory)})`);
    if (stats.rootGoneAt === null) return `never (35 s after crossing; root ${mib(stats.maxRootMemory)})`;
    return `${secs(stats.rootGoneAt - stats.crossAt)} (1 run; root gone at ${mib(stats.maxRootMemory)})`;
  });
  return [
    {
      case: '2. memory breach in main (+20 MB/s, limit 300M)',
      agentpm,
      pm2: pm2Cell,
      goal: '<= 1.5 s, same measure; pm2 polls memory every 30 s, so one run is one draw from ~0-30 s (issue: median 17.8 s)',
    },
  ];
}

async function forkStorm(ctx: Ctx): Promise<Row[]> {
  const script = join(BENCH_FIXTURES, 'fork-storm.mjs');
  const sampling: Sampling = { intervalMs: 10, childrenLimit: 50 };
  const agentpm = await attempt('agentpm: fork storm', async () => {
    const peaks: number[] = [];
    const zeros: (number | null)[] = [];
    const actions = new Set<string>();
    for (let run = 0; run < 3; run += 1) {
      const result = await agentpmLimitRun(ctx, `storm-${run}`, script, ['--max-children', '50'], sampling, { crossWithinMs: 10_000, afterMs: 10_000 });
      const { stats } = result;
      if (stats.breachAt === null) throw new Error(`the tree never had more than 50 children (peak ${stats.maxCount})`);
      peaks.push(stats.maxCount);
      zeros.push(stats.zeroAt === null ? null : stats.zeroAt - stats.breachAt);
      actions.add(String(result.breach?.data['action'] ?? 'no limit-breach event'));
    }
    const zeroText = zeros.map((value) => (value === null ? 'never (10 s)' : secs(value))).join(', ');
    return `peak ${Math.max(...peaks)} (${peaks.join(', ')}); zero in ${zeroText} [${[...actions].join(', ')}]`;
  });
  const pm2Cell = await attemptPm2(ctx, 'pm2: fork storm', async (p) => {
    // No limit exists: watch it for ~17 s from go (the storm reaches 300 children at 15 s).
    const result = await pm2Run(p, 'storm', script, {}, sampling, { crossWithinMs: 10_000, afterMs: 14_500, until: () => false });
    const { stats } = result;
    const alive = stats.rootGoneAt === null ? 'root alive' : 'root gone';
    return `peak ${stats.maxCount}, ${stats.count} alive at ${secs((stats.lastAt ?? 0) - result.goAt)}, ${alive}; pm2 delete left ${result.leaked}`;
  });
  return [
    {
      case: '3. fork storm (sleep x 20/s to 300; max-children 50)',
      agentpm,
      pm2: pm2Cell,
      goal: 'peak <= 75 tree processes (bench /proc, 10 ms), zero alive <= 2 s after children > 50 first seen; pm2 has no such limit; agentpm 3 runs',
    },
  ];
}

async function lsLatency(ctx: Ctx): Promise<Row[]> {
  const nodeE0 = (): RunResult => runNode(ctx.env, ['-e', '0']);
  const node = timed(nodeE0);
  const rows: Row[] = [{ case: '5. node -e 0 (baseline)', agentpm: ms(node), pm2: ms(node), goal: 'reference, median of 15; each ratio below is against node -e 0 runs alternated with it' }];
  const counts = [[0, 1], [1, 20]] as const;
  const ratio = ({ t, base }: { t: number; base: number }): string => `${ms(t)} (${(t / base).toFixed(2)}x)`;
  // One manager at a time: the other's idle apps are not running while one is measured.
  const agentpm: string[] = [];
  for (const [from, to] of counts) {
    agentpm.push(
      await attempt(`agentpm ls with ${to} apps`, async () => {
        await startIdle(ctx, idleNames(from, to));
        return ratio(timedAgainst(() => cli(ctx, ['ls', '--json']), nodeE0));
      }),
    );
  }
  cli(ctx, ['delete', 'all']);
  const pm2Cells: string[] = [];
  for (const [from, to] of counts) {
    pm2Cells.push(
      await attemptPm2(ctx, `pm2 jlist with ${to} apps`, async (p) => {
        await startIdlePm2(p, idleNames(from, to));
        return ratio(timedAgainst(() => pm2(p, ['jlist']), nodeE0));
      }),
    );
  }
  if (ctx.pm2 && ctx.pm2.unusable === null) pm2(ctx.pm2, ['delete', 'all']);
  counts.forEach(([, to], i) => {
    rows.push({ case: `5. ls --json / pm2 jlist, ${to} app${to > 1 ? 's' : ''}`, agentpm: agentpm[i]!, pm2: pm2Cells[i]!, goal: '<= 1.5x node -e 0; median of 15 (CLI wall time)' });
  });
  return rows;
}

interface TreeKind {
  label: string;
  env: string[];
  extra: string[];
  /** Processes the tree has once complete (a stubborn child is `sh` plus its `sleep`). */
  processes: number;
  goal: string;
}

const TREES: TreeKind[] = [
  {
    label: '4. stop 15-process tree, TERM obeyed',
    env: ['CHILDREN=14'],
    extra: [],
    processes: 15,
    goal: "well under kill timeout (10s default); 0 survivors. pm2 counts zombies as alive (kill(pid, 0)) and this VM's pid 1 reaps orphans ~1.5 s late",
  },
  {
    label: '4. stop tree, all ignore TERM',
    env: ['CHILDREN=0', 'STUBBORN=14', 'IGNORE_TERM=1'],
    extra: ['--kill-timeout', '1s'],
    processes: 29,
    goal: 'agentpm --kill-timeout 1s, pm2 kill_timeout 1600ms (default): timeout + SIGKILL round; 0 survivors. Both send SIGTERM (PM2_KILL_SIGNAL=SIGTERM; its default SIGINT would just kill this tree)',
  },
];

/** Waits until tree.mjs wrote its pidfile and every member has exec'd; returns the listed pids. */
async function treeComplete(what: string, pidfile: string, kind: TreeKind, members: () => number[]): Promise<number[]> {
  return waitFor(`tree ${what} complete`, () => {
    if (!existsSync(pidfile)) return null;
    const listed = readFileSync(pidfile, 'utf8').split('\n').filter(Boolean).map(Number);
    const found = members();
    const sleeps = found.filter((pid) => cmdline(pid).startsWith('sleep\0'));
    return listed.length === 15 && sleeps.length === 14 && found.length === kind.processes ? listed : null;
  });
}

/** Times `stop` and counts what survived it: listed pids still the same process, and members still found. */
function timeStop(pids: number[], stop: () => RunResult, members: () => number[]): { ms: number; survivors: number } {
  const before = new Map(pids.map((pid) => [pid, startOf(pid)]));
  const took = stop().ms;
  const fromPidfile = pids.filter((pid) => isAlivePid(pid) && startOf(pid) === before.get(pid));
  return { ms: took, survivors: new Set([...fromPidfile, ...members()]).size };
}

async function stopTime(ctx: Ctx): Promise<Row[]> {
  const rows: Row[] = [];
  const summary = (times: number[], survivors: number): string => `${ms(median(times))}, ${survivors} survivors`;
  for (const [k, kind] of TREES.entries()) {
    const agentpm = await attempt(`agentpm: ${kind.label}`, async () => {
      const times: number[] = [];
      let maxSurvivors = 0;
      for (let run = 0; run < 3; run += 1) {
        const name = `tree-${k}-${run}`;
        const pidfile = join(ctx.home, `${name}.pids`);
        const envFlags = [...kind.env, `PIDFILE=${pidfile}`].flatMap((pair) => ['--env', pair]);
        cli(ctx, ['start', join(FIXTURES, 'tree.mjs'), '--name', name, '--no-autorestart', ...kind.extra, ...envFlags]);
        const members = (): number[] => tagged(ctx.home, name);
        const pids = await treeComplete(name, pidfile, kind, members);
        const result = timeStop(pids, () => cli(ctx, ['stop', name]), members);
        times.push(result.ms);
        maxSurvivors = Math.max(maxSurvivors, result.survivors);
        cli(ctx, ['delete', name]);
      }
      return summary(times, maxSurvivors);
    });
    const pm2Cell = await attemptPm2(ctx, `pm2: ${kind.label}`, async (p) => {
      const times: number[] = [];
      let maxSurvivors = 0;
      for (let run = 0; run < 3; run += 1) {
        const name = `tree-${k}-${run}`;
        const tag = `${name}-${randomBytes(4).toString('hex')}`;
        const pidfile = join(p.home, `${name}.pids`);
        const env = Object.fromEntries([...kind.env, `PIDFILE=${pidfile}`, `BENCH_TAG=${tag}`].map((pair) => pair.split('=') as [string, string]));
        pm2Start(p, [{ name, script: join(FIXTURES, 'tree.mjs'), autorestart: false, env }]);
        try {
          const members = (): number[] => taggedBy('BENCH_TAG', tag);
          const pids = await treeComplete(`${name} (pm2)`, pidfile, kind, members);
          const result = timeStop(pids, () => pm2(p, ['stop', name]), members);
          times.push(result.ms);
          maxSurvivors = Math.max(maxSurvivors, result.survivors);
        } finally {
          pm2Delete(p, name, tag);
        }
      }
      return summary(times, maxSurvivors);
    });
    rows.push({ case: `${kind.label} (${kind.processes} procs)`, agentpm, pm2: pm2Cell, goal: `${kind.goal}; 3 runs: median CLI wall time, max survivors` });
  }
  return rows;
}

const SCALE_APPS = 20;
const SCALE_CHILDREN = 14; // 15 processes per app
const LARGE_APPS = 10;
const LARGE_CHILDREN = 99; // 10 × 100 = 1,000 managed processes, the bound this case keeps to
const CPU_WINDOW_MS = 10_000;
export const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU time of a process, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** CPU a process used over a window, in % of one core. */
export async function cpuPercent(pid: number, windowMs = CPU_WINDOW_MS): Promise<number> {
  const ticks = cpuTicks(pid);
  const started = Date.now();
  await sleep(windowMs);
  return ((cpuTicks(pid) - ticks) / CLOCK_TICKS_PER_SECOND / ((Date.now() - started) / 1000)) * 100;
}

/**
 * The floor for a tick: one bare pass that reads every /proc/<pid>/stat once, the cheapest way Node
 * can (open, one read into a reused buffer, close; as the daemon does), median of 15 passes.
 */
export function procStatFloorMs(): number {
  const buffer = Buffer.alloc(4096);
  const pass = (): number => {
    const t0 = performance.now();
    for (const entry of readdirSync('/proc')) {
      if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
      try {
        const fd = openSync(`/proc/${entry}/stat`, 'r');
        try {
          readSync(fd, buffer, 0, buffer.length, 0);
        } finally {
          closeSync(fd);
        }
      } catch {
        // gone meanwhile
      }
    }
    return performance.now() - t0;
  };
  pass();
  return median(Array.from({ length: 15 }, pass));
}

interface DaemonFigures {
  pid: number;
  rss: number;
  tickCost: TickCost;
}

export function daemonFigures(ctx: Ctx): DaemonFigures {
  return JSON.parse(cli(ctx, ['daemon', 'status', '--json']).stdout) as DaemonFigures;
}

/** Starts `apps` trees of 1 + `children` processes under agentpm and waits until every one is complete. */
async function startTrees(ctx: Ctx, prefix: string, apps: number, children: number): Promise<void> {
  for (let i = 0; i < apps; i += 1) cli(ctx, ['start', join(FIXTURES, 'tree.mjs'), '--name', `${prefix}-${i}`, '--env', `CHILDREN=${children}`]);
  await waitFor(`${apps} trees of ${children + 1} processes`, () => {
    const list = ls(ctx).filter((app) => app.name.startsWith(`${prefix}-`));
    return list.length === apps && list.every((app) => app.status === 'online' && app.processes === children + 1);
  }, 60_000, 250);
}

/**
 * 6. The daemon's footprint at the issue's 1 s tick: RSS and CPU with 20 apps × 15 processes (PM2 with
 * the same apps), then the tick's cost with 1,000 managed processes against the floor.
 */
async function daemonScale(ctx: Ctx): Promise<Row[]> {
  const tick1s = { ...ctx.env, AGENTPM_TICK_MS: '1000' };
  cli(ctx, ['kill']);
  const started = runNode(tick1s, [CLI, 'daemon', 'start']);
  if (started.code !== 0) throw new Error(`agentpm daemon start exited ${started.code}: ${started.stderr}`);
  const empty = daemonFigures(ctx);
  await startTrees(ctx, 'scale', SCALE_APPS, SCALE_CHILDREN);
  await sleep(3000); // past the starts, into the steady state
  const cpu = await cpuPercent(empty.pid);
  const loaded = daemonFigures(ctx);
  if (loaded.pid !== empty.pid) throw new Error('the daemon changed during the measurement');
  console.error(`  agentpm ${SCALE_APPS}x${SCALE_CHILDREN + 1}: RSS ${mib(loaded.rss)} (empty ${mib(empty.rss)}), CPU ${cpu.toFixed(2)} %, tick ${loaded.tickCost.medianMs} ms over ${loaded.tickCost.processes} processes`);
  cli(ctx, ['delete', 'all'], 60_000);

  const pm2Cell = await attemptPm2(ctx, `pm2: ${SCALE_APPS} trees`, async (p) => {
    const tag = `scale-${randomBytes(4).toString('hex')}`;
    const names = Array.from({ length: SCALE_APPS }, (_, i) => `scale-${i}`);
    pm2Start(p, names.map((name) => ({ name, script: join(FIXTURES, 'tree.mjs'), env: { CHILDREN: String(SCALE_CHILDREN), BENCH_TAG: tag } })));
    try {
      await waitFor(`${SCALE_APPS} trees under pm2`, () => taggedBy('BENCH_TAG', tag).length === SCALE_APPS * (SCALE_CHILDREN + 1), 60_000, 250);
      await sleep(3000);
      const pid = Number(readFileSync(join(p.home, 'pm2.pid'), 'utf8').trim());
      const pm2Cpu = await cpuPercent(pid);
      const pm2Rss = vmRssBytes(pid);
      console.error(`  pm2 ${SCALE_APPS}x${SCALE_CHILDREN + 1}: RSS ${mib(pm2Rss)}, CPU ${pm2Cpu.toFixed(2)} %`);
      return `CPU ${pm2Cpu.toFixed(2)} % (RSS ${mib(pm2Rss)})`;
    } finally {
      try {
        pm2(p, ['delete', 'all']);
      } catch (error) {
        console.error((error as Error).message);
      }
      sleepSync(300);
      killPids(taggedBy('BENCH_TAG', tag));
    }
  });

  // The tick with 1,000 managed processes: a fresh daemon (adopting the trees), so that its tick figures
  // are of this load only.
  await startTrees(ctx, 'large', LARGE_APPS, LARGE_CHILDREN);
  const replaced = runNode(tick1s, [CLI, 'daemon', 'restart'], 60_000);
  if (replaced.code !== 0) throw new Error(`agentpm daemon restart exited ${replaced.code}: ${replaced.stderr}`);
  await sleep(CPU_WINDOW_MS);
  const large = daemonFigures(ctx);
  const floor = procStatFloorMs();
  console.error(`  agentpm 1,000 managed: tick ${large.tickCost.medianMs} ms (max ${large.tickCost.maxMs}, ${large.tickCost.samples} ticks) over ${large.tickCost.processes} processes; floor ${floor.toFixed(2)} ms`);
  cli(ctx, ['delete', 'all'], 60_000);

  return [
    // The RSS rows (idle, 20 and 200 apps, side by side) are the footprint case's (footprint.ts).
    {
      case: `6. daemon CPU, ${SCALE_APPS} apps x ${SCALE_CHILDREN + 1} procs, 1 s tick`,
      agentpm: `${cpu.toFixed(2)} % of a core (RSS ${mib(loaded.rss)})`,
      pm2: pm2Cell,
      goal: `<= 2 % of a core, over ${CPU_WINDOW_MS / 1000} s`,
    },
    {
      case: `6. tick cost, ${LARGE_APPS * (LARGE_CHILDREN + 1)} managed procs (${large.tickCost.processes} on the machine)`,
      agentpm: `${large.tickCost.medianMs.toFixed(2)} ms = ${(large.tickCost.medianMs / floor).toFixed(2)}× the floor (${floor.toFixed(2)} ms)`,
      pm2: '-',
      goal: "<= 2x a bare pass reading every /proc/<pid>/stat once; median of the daemon's own tick timings (daemon status)",
    },
  ];
}

// ------------------------------------------------------------------------------------ containment

/** Backends a daemon can be forced to (AGENTPM_CONTAINMENT); one this machine cannot offer is reported as such. */
const BACKENDS = ['proc', 'hybrid', 'cgroup1', 'cgroup2'] as const;
const BURST_CHILDREN_LIMIT = 50;
/** An explicit pids.max for the burst's second run: the derived one (16 tasks per child) lets 300 single-threaded sleeps through. */
const BURST_TASKS_CAP = 120;
const SPIKE_LIMIT = 300 * 2 ** 20;

interface BackendResult {
  backend: string;
  /** Why the daemon refused this backend; null when it ran. */
  unavailable: string | null;
  burstPeak?: number;
  burstPeakCapped?: number;
  spikePeak?: number;
  escapeSurvivors?: number;
  stop300?: { ms: number; survivors: number };
  tick1000?: { medianMs: number; processes: number };
}

/** A daemon of this home forced to one backend; null with the reason when it refuses it. */
function daemonWith(ctx: Ctx, backend: string): { ctx: Ctx; refused: string | null } {
  cli(ctx, ['kill']);
  const env = { ...ctx.env, AGENTPM_CONTAINMENT: backend };
  const started = runNode(env, [CLI, 'daemon', 'start']);
  const forced: Ctx = { ...ctx, env };
  if (started.code !== 0) return { ctx: forced, refused: (started.stderr.trim().split('\n')[0] ?? `exit ${started.code}`).slice(0, 120) };
  return { ctx: forced, refused: null };
}

/** The escape fixture under agentpm: its helper's survival of `stop`; the helper is SIGKILLed by pid afterwards. */
async function escapeSurvivors(ctx: Ctx, name: string): Promise<number> {
  const pidfile = join(ctx.home, `${name}.pid`);
  const go = join(ctx.home, `${name}.go`);
  cli(ctx, ['start', join(BENCH_FIXTURES, 'escape.mjs'), '--name', name, '--no-autorestart', '--env', `PIDFILE=${pidfile}`, '--env', `GO_FILE=${go}`]);
  writeFileSync(go, '');
  const helper = await waitFor(`${name}: helper pid`, () => (existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8')) || null : null));
  const start = startOf(helper);
  await sleep(2000); // the issue's "two seconds later"
  cli(ctx, ['stop', name]);
  sleepSync(500);
  const survived = isAlivePid(helper) && startOf(helper) === start;
  if (survived) killPids([helper]);
  cli(ctx, ['delete', name]);
  return survived ? 1 : 0;
}

/** Stop of one tree of 300 processes: CLI wall time and survivors. */
async function stopLargeTree(ctx: Ctx, name: string): Promise<{ ms: number; survivors: number }> {
  cli(ctx, ['start', join(FIXTURES, 'tree.mjs'), '--name', name, '--no-autorestart', '--env', 'CHILDREN=299']);
  const members = (): number[] => tagged(ctx.home, name);
  await waitFor(`${name}: 300 processes`, () => members().length >= 300, 60_000, 100);
  const result = timeStop(members(), () => cli(ctx, ['stop', name], 60_000), members);
  cli(ctx, ['delete', name]);
  return result;
}

/**
 * 8. Kernel containment (issue 11), per backend: a burst of 300 spawns with no delay against
 * maxChildren 50, a tree growing at ~1 GB/s against maxMemory 300M, the `env -i setsid` escape, the
 * stop of a 300-process tree and the tick with 1,000 managed processes.
 */
async function containment(ctx: Ctx): Promise<Row[]> {
  const results: BackendResult[] = [];
  // BENCH_BACKENDS=proc,hybrid measures only those.
  const only = process.env['BENCH_BACKENDS']?.split(',').filter(Boolean);
  for (const backend of BACKENDS.filter((name) => !only || only.includes(name))) {
    const { ctx: forced, refused } = daemonWith(ctx, backend);
    if (refused !== null) {
      results.push({ backend, unavailable: refused });
      continue;
    }
    const result: BackendResult = { backend, unavailable: null };
    for (const [key, extra] of [['burstPeak', []], ['burstPeakCapped', ['--max-tasks', String(BURST_TASKS_CAP)]]] as const) {
      await attempt(`${backend}: burst ${extra.join(' ')}`, async () => {
        const run = await agentpmLimitRun(forced, `burst-${backend}`, join(BENCH_FIXTURES, 'fork-storm.mjs'), ['--max-children', String(BURST_CHILDREN_LIMIT), ...extra, '--env', 'RATE=1000000'], { intervalMs: 5, childrenLimit: BURST_CHILDREN_LIMIT }, { crossWithinMs: 10_000, afterMs: 10_000 });
        result[key] = run.stats.maxCount;
        return String(run.stats.maxCount);
      });
    }
    await attempt(`${backend}: spike`, async () => {
      const run = await agentpmLimitRun(forced, `spike-${backend}`, join(BENCH_FIXTURES, 'mem-grow.mjs'), ['--max-memory', '300M', '--env', 'RATE_MB=1024', '--env', 'MAX_MB=1500'], { intervalMs: 5, limitBytes: SPIKE_LIMIT }, { crossWithinMs: 10_000, afterMs: 10_000 });
      result.spikePeak = run.stats.maxMemory;
      return mib(run.stats.maxMemory);
    });
    await attempt(`${backend}: escape`, async () => String((result.escapeSurvivors = await escapeSurvivors(forced, `escape-${backend}`))));
    await attempt(`${backend}: stop 300`, async () => {
      result.stop300 = await stopLargeTree(forced, `big-${backend}`);
      return ms(result.stop300.ms);
    });
    await attempt(`${backend}: tick 1000`, async () => {
      await startTrees(forced, `large-${backend}`, LARGE_APPS, LARGE_CHILDREN);
      await sleep(CPU_WINDOW_MS);
      const { tickCost } = daemonFigures(forced);
      result.tick1000 = { medianMs: tickCost.medianMs, processes: tickCost.processes };
      cli(forced, ['delete', 'all'], 60_000);
      return `${tickCost.medianMs} ms`;
    });
    console.error(`  ${backend}: ${JSON.stringify(result)}`);
    results.push(result);
  }
  cli(ctx, ['kill']);
  const per = (cell: (result: BackendResult) => string): string =>
    results.map((result) => `${result.backend}: ${result.unavailable === null ? cell(result) : 'n/a'}`).join('; ');
  const known = (value: number | undefined, show: (value: number) => string): string => (value === undefined ? 'failed' : show(value));
  const unavailable = results.filter((result) => result.unavailable !== null).map((result) => `${result.backend} n/a here (${result.unavailable})`);
  const note = unavailable.length > 0 ? `; ${unavailable.join('; ')}` : '';
  return [
    {
      case: `8. burst: 300 spawns, no delay, max-children ${BURST_CHILDREN_LIMIT}`,
      agentpm: per((r) => `peak ${known(r.burstPeak, String)}, with --max-tasks ${BURST_TASKS_CAP} ${known(r.burstPeakCapped, String)}`),
      pm2: 'no such limit (see row 3)',
      goal: `peak live tree processes (bench /proc, 5 ms); cgroup backends: <= the pids.max cap (derived: 32 + 16 per child + 64 = 896 tasks, which 300 single-threaded sleeps fit in; --max-tasks ${BURST_TASKS_CAP}: <= ${BURST_TASKS_CAP})${note}`,
    },
    {
      case: '8. spike: ~1 GB/s, max-memory 300M',
      agentpm: per((r) => `peak ${known(r.spikePeak, mib)}`),
      pm2: 'polls every 30 s (see row 2)',
      goal: 'peak tree RSS (bench /proc, 5 ms); cgroup backends: <= the hard cap (hardMemory, 1.25x by default)',
    },
    { case: '8. escape: env -i + setsid + double fork, then stop', agentpm: per((r) => `${known(r.escapeSurvivors, String)} survivor(s)`), pm2: '-', goal: '0 with a cgroup backend; proc cannot see it (a known limit)' },
    { case: '8. stop of a 300-process tree', agentpm: per((r) => (r.stop300 ? `${ms(r.stop300.ms)}, ${r.stop300.survivors} survivors` : 'failed')), pm2: '-', goal: 'CLI wall time; 0 survivors' },
    { case: '8. tick, 1,000 managed processes', agentpm: per((r) => (r.tick1000 ? `${r.tick1000.medianMs.toFixed(2)} ms` : 'failed')), pm2: '-', goal: "median of the daemon's own tick timings (daemon status)" },
  ];
}

// ----------------------------------------------------------------------------------- log relay

/** Lines per second each app writes (half on stdout, half on stderr), and bytes of text per line. */
const RELAY_RATE = 5000;
const RELAY_LINE_PAD = 80;

/**
 * 11. What the log relay costs: its CPU (% of one core) and RSS while 1 and then 10 apps each write
 * RELAY_RATE lines/s (~100-byte lines, out and err), rotating at the default 10 MB.
 */
async function logRelay(ctx: Ctx): Promise<Row[]> {
  const rows: Row[] = [];
  for (const apps of [1, 10]) {
    const names = Array.from({ length: apps }, (_, i) => `relay-${i}`);
    const config = join(ctx.home, 'relay.config.json');
    const args = [String(RELAY_RATE * 3600), String(RELAY_RATE / 2), String(RELAY_LINE_PAD)];
    writeFileSync(config, JSON.stringify({ apps: names.map((name) => ({ name, script: join(FIXTURES, 'numbered.mjs'), args })) }));
    const started = cli(ctx, ['start', config], 60_000);
    if (started.code !== 0) throw new Error(`agentpm start exited ${started.code}: ${started.stderr}`);
    await waitFor(`${apps} writers online`, () => ls(ctx).filter((app) => app.status === 'online').length === apps, 30_000, 250);
    await sleep(3000); // into the steady state
    const relay = (JSON.parse(cli(ctx, ['daemon', 'status', '--json']).stdout) as { relay: { pid: number } | null }).relay;
    if (!relay) throw new Error('no log relay runs');
    const before = readdirSync(join(ctx.home, 'logs')).length;
    const cpu = await cpuPercent(relay.pid);
    const rss = vmRssBytes(relay.pid);
    console.error(`  relay with ${apps} app(s) x ${RELAY_RATE} lines/s: CPU ${cpu.toFixed(1)} %, RSS ${mib(rss)} (${before} log files)`);
    cli(ctx, ['delete', 'all'], 60_000);
    rows.push({
      case: `11. log relay, ${apps} app${apps > 1 ? 's' : ''} x ${RELAY_RATE} lines/s (${RELAY_LINE_PAD + 20}-byte lines, out + err)`,
      agentpm: `CPU ${cpu.toFixed(1)} % of a core, RSS ${mib(rss)}`,
      pm2: '-',
      goal: `what stamping, splitting and rotating every line costs; relay CPU over ${CPU_WINDOW_MS / 1000} s, RSS after`,
    });
  }
  return rows;
}

// ------------------------------------------------------------------------------- abusive clients

const PIPELINED = 2000;
const PARTIAL_CLIENTS = 300;
const ABUSE_WINDOW_MS = 15_000;

interface Abuser {
  socket: Socket;
  /** The error frame the daemon closed the connection with, if any. */
  farewell: string | null;
  closed: boolean;
}

/** A raw connection that reads nothing (the daemon's replies stay unread) but notes the daemon's last word. */
function abuser(path: string, paused: boolean): Promise<Abuser> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const client: Abuser = { socket, farewell: null, closed: false };
    let tail = '';
    socket.once('connect', () => resolve(client));
    socket.once('error', (error) => (client.closed ? undefined : reject(error)));
    socket.on('error', () => undefined);
    socket.on('close', () => (client.closed = true));
    if (paused) return;
    socket.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-2000);
      const code = /"id":null,"ok":false,"error":\{"code":"([a-z-]+)"/.exec(tail)?.[1];
      if (code !== undefined) client.farewell = code;
    });
  });
}

const helloFrame = (id: number): string => `${JSON.stringify({ id, type: 'hello', protocol: PROTOCOL_VERSION, version: 'bench' })}\n`;

/**
 * 7. Clients that would take the daemon down (issue 10): one pipelines 2,000 `events` requests of 1,000
 * events each (about 200 KB a reply) and never reads; 300 others each hold a 1 MiB partial request,
 * half before their hello, half after. Measured: the daemon's RSS (VmRSS every 250 ms) against its idle
 * RSS just before, and `ls` through the CLI every 2 s while they hold on. Every client is closed at the end.
 */
async function abusiveClients(ctx: Ctx): Promise<Row[]> {
  cli(ctx, ['kill']);
  cli(ctx, ['daemon', 'start']);
  const pid = daemonFigures(ctx).pid;
  // A full event ring, so that each pipelined `events` reply is as large as it gets.
  const script = join(ctx.home, 'crash.sh');
  writeFileSync(script, 'exit 1\n');
  cli(ctx, ['start', script, '--name', 'crash-loop', '--interpreter', 'bash', '--restart-delay', '0']);
  await waitFor('1,000 events', () => cli(ctx, ['events', '--lines', '1000', '--json']).stdout.trim().split('\n').length >= 1000, 30_000, 250);
  cli(ctx, ['delete', 'crash-loop']);
  await sleep(3000);
  const idle = vmRssBytes(pid);
  const socketPath = join(ctx.home, 'agentpm.sock');

  const clients: Abuser[] = [];
  try {
    const pipeliner = await abuser(socketPath, true);
    clients.push(pipeliner);
    const requests = [helloFrame(1)];
    for (let id = 2; id < PIPELINED + 2; id += 1) requests.push(`${JSON.stringify({ id, type: 'events', app: null, limit: 1000 })}\n`);
    pipeliner.socket.write(requests.join(''));
    const partial = `{"id":2,"type":"events","pad":"${'x'.repeat(2 ** 20 - 64)}`;
    for (let index = 0; index < PARTIAL_CLIENTS; index += 1) {
      const client = await abuser(socketPath, false);
      clients.push(client);
      client.socket.write(index % 2 === 0 ? partial : `${helloFrame(1)}${partial}`);
    }
    const rss: number[] = [];
    const lsMs: number[] = [];
    const lsFailures: string[] = [];
    const until = Date.now() + ABUSE_WINDOW_MS;
    let nextLs = Date.now();
    while (Date.now() < until) {
      rss.push(vmRssBytes(pid));
      if (Date.now() >= nextLs) {
        const r = runNode(ctx.env, [CLI, 'ls', '--json'], 10_000);
        lsMs.push(r.ms);
        if (r.code !== 0) lsFailures.push(r.stderr.trim());
        nextLs = Date.now() + 2000;
      }
      await sleep(250);
    }
    const peak = Math.max(...rss);
    const codes = new Map<string, number>();
    for (const client of clients.slice(1)) {
      const key = client.closed ? (client.farewell ?? 'closed without a reason') : 'still open';
      codes.set(key, (codes.get(key) ?? 0) + 1);
    }
    const partialOutcome = [...codes].map(([code, count]) => `${count} ${code}`).join(', ');
    const pipelinerOutcome = pipeliner.closed ? 'dropped' : `still connected with ${pipeliner.socket.writableLength} bytes of requests unread`;
    for (const client of clients) client.socket.destroy();
    await sleep(5000);
    const after = vmRssBytes(pid);
    console.error(
      `  agentpm abuse: idle RSS ${mib(idle)}, peak ${mib(peak)} (${(peak / idle).toFixed(2)}x), 5 s after the clients left ${mib(after)}; ` +
        `ls ${lsMs.map((value) => value.toFixed(0)).join(', ')} ms${lsFailures.length > 0 ? `; ls failed: ${lsFailures.join(' | ')}` : ''}; ` +
        `pipeliner ${pipelinerOutcome}; partial-frame clients: ${partialOutcome}`,
    );
    return [
      {
        case: `7. abusive clients: ${PIPELINED} pipelined events requests unread + ${PARTIAL_CLIENTS} clients holding 1 MiB partial frames`,
        agentpm:
          `peak RSS ${mib(peak)} = ${(peak / idle).toFixed(2)}x idle (${mib(idle)}), ${mib(after)} after; ` +
          `ls max ${ms(Math.max(...lsMs))}${lsFailures.length > 0 ? `, ${lsFailures.length} of ${lsMs.length} failed` : ''}`,
        pm2: '-',
        goal: `< 2x idle RSS and ls within 1 s, over ${ABUSE_WINDOW_MS / 1000} s of abuse (RSS every 250 ms, ls every 2 s)`,
      },
    ];
  } finally {
    for (const client of clients) client.socket.destroy();
  }
}

// ------------------------------------------------------------------------- 9. config start time

/**
 * 9. `start` of an unchanged config, `.ts` against the same apps as `.js` (issue 12): a `.ts` config is
 * type-checked before it runs, which took seconds; the check is now remembered by content. Timed: the
 * whole CLI run of `start <config>` with its app already running (the daemon answers "unchanged"), so
 * what differs is loading the config. Cold: the home's type-check cache removed before each run.
 */
async function configStart(ctx: Ctx): Promise<Row[]> {
  const dir = mkdtempSync(join(ctx.home, 'config-'));
  const idle = join(FIXTURES, 'idle.mjs');
  writeFileSync(join(dir, 'ecosystem.config.js'), `export default { apps: [{ name: 'cfg-js', script: ${JSON.stringify(idle)}, killTimeout: '5s' }] };\n`);
  writeFileSync(
    join(dir, 'ecosystem.config.ts'),
    `import { defineConfig } from 'agentpm';\nexport default defineConfig({ apps: [{ name: 'cfg-ts', script: ${JSON.stringify(idle)}, killTimeout: '5s' }] });\n`,
  );
  const cache = join(ctx.home, 'typecheck-cache.json');
  const start = (file: string): RunResult => cli(ctx, ['start', join(dir, file)], 120_000);
  start('ecosystem.config.js');
  start('ecosystem.config.ts');
  await waitFor('both config apps online', () => ls(ctx).filter((app) => app.name.startsWith('cfg-') && app.status === 'online').length === 2);
  const coldRuns = Array.from({ length: 5 }, () => {
    rmSync(cache, { force: true });
    const run = start('ecosystem.config.ts');
    if (!run.stderr.includes('type-checking')) throw new Error(`a cold start did not type-check: ${run.stderr}`);
    return run.ms;
  });
  const cold = median(coldRuns);
  const { t: cached, base: js } = timedAgainst(() => start('ecosystem.config.ts'), () => start('ecosystem.config.js'), 15, 1);
  const hit = runNode({ ...ctx.env, AGENTPM_DEBUG_CONFIG: '1' }, [CLI, 'start', join(dir, 'ecosystem.config.ts')], 120_000);
  if (hit.stderr.includes('type-checking')) throw new Error('an unchanged .ts config was type-checked again');
  if (!hit.stderr.includes('running the compiled copy')) throw new Error(`an unchanged .ts config did not run its compiled copy: ${hit.stderr}`);
  cli(ctx, ['delete', 'cfg-js', 'cfg-ts']);
  const goal = 'issue 12: an unchanged .ts config starts as fast as a .js one; CLI wall time of start <config> with its app running, median (cold 5 runs, others 15 alternated)';
  return [
    { case: '9. start ecosystem.config.js (unchanged app)', agentpm: ms(js), pm2: '-', goal },
    { case: '9. start ecosystem.config.ts, type-checked (cold)', agentpm: `${ms(cold)} (${(cold / js).toFixed(2)}x .js)`, pm2: '-', goal: 'the type-check cache removed before each run; prints "type-checking ecosystem.config.ts…"' },
    { case: '9. start ecosystem.config.ts, check remembered', agentpm: `${ms(cached)} (${(cached / js).toFixed(2)}x .js)`, pm2: '-', goal: '<= ~1.1x .js: the config and what it imports unchanged since a successful check; runs the config compiled then, without tsx' },
  ];
}

// ----------------------------------------------------------------------- 10. restart all --wait

/**
 * 10. `restart all --wait` of 3 healthy apps without health checks, one at a time (issue 12: it took
 * 90 s and failed). Ready = online and not exited for readyAfter (3 s by default). PM2's `restart`
 * returns without waiting (its --wait-ready needs the app to send 'ready'), so it has no column here.
 */
async function restartAllWait(ctx: Ctx): Promise<Row[]> {
  const names = ['wait-a', 'wait-b', 'wait-c'];
  await startIdle(ctx, names);
  const runs = Array.from({ length: 3 }, () => cli(ctx, ['restart', 'all', '--wait'], 120_000).ms);
  cli(ctx, ['delete', ...names]);
  return [
    {
      case: '10. restart all --wait, 3 healthy apps, no health check',
      agentpm: `${ms(median(runs))} (${runs.map(ms).join(', ')})`,
      pm2: 'no equivalent',
      goal: '< 15 s (issue 12); one app at a time, each ready after 3 s online (readyAfter); 3 runs, median (CLI wall time)',
    },
  ];
}

const cases: Case[] = [memoryInChild, memoryInMain, forkStorm, stopTime, lsLatency, daemonScale, footprint, abusiveClients, containment, configStart, restartAllWait, logRelay, scale200];
/** Cases that measure agentpm alone: with only these selected, PM2 is not started. */
const AGENTPM_ONLY = new Set<Case>([abusiveClients, containment, configStart, restartAllWait, logRelay, scale200]);

// ------------------------------------------------------------------------------------------ main

function printTable(rows: Row[]): void {
  const header: Row = { case: 'case', agentpm: 'agentpm', pm2: 'pm2', goal: 'goal / notes' };
  const keys = ['case', 'agentpm', 'pm2', 'goal'] as const;
  const width = keys.map((key) => Math.max(...[header, ...rows].map((row) => row[key].length)));
  const line = (row: Row): string => keys.map((key, i) => row[key].padEnd(width[i]!)).join('  ').trimEnd();
  console.log([line(header), width.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
}

/** bench/RESULTS.md: the latest full run, as a Markdown table with the machine it ran on. */
function writeResults(rows: Row[], tookMs: number): void {
  const cell = (text: string): string => text.replaceAll('|', '\\|');
  const lines = [
    '# Latest `npm run bench` results',
    '',
    `Written by \`npm run bench\` (all cases) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} CPUs, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; ` +
      `the run took ${(tookMs / 1000).toFixed(0)} s, load average after it ${loadavg().map((value) => value.toFixed(2)).join(' ')}. Each run's raw figures go to stderr.`,
    '',
    '| case | agentpm | pm2 | goal / notes |',
    '|---|---|---|---|',
    ...rows.map((row) => `| ${cell(row.case)} | ${cell(row.agentpm)} | ${cell(row.pm2)} | ${cell(row.goal)} |`),
    '',
  ];
  writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), lines.join('\n'));
  console.error('wrote bench/RESULTS.md');
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Everything this run started: the marker, or (for anything that lost it) the agentpm home. */
const benchProcesses = (ctx: Ctx): number[] => livePidsWhere((env) => env.get(MARKER) === ctx.runId || env.get('AGENTPM_HOME') === ctx.home);

/**
 * Stops everything the bench started and removes both homes; returns the pids that had to be
 * SIGKILLed. Synchronous, so that nothing else (a case still running) can interleave when called from
 * a signal.
 */
function cleanup(ctx: Ctx): number[] {
  try {
    runNode(ctx.env, [CLI, 'kill'], 30_000);
  } catch (error) {
    console.error(`agentpm kill failed: ${(error as Error).message}`);
  }
  if (ctx.pm2?.started) {
    try {
      runNode(ctx.pm2.env, [PM2_BIN, 'kill'], 30_000);
    } catch (error) {
      console.error(`pm2 kill failed: ${(error as Error).message}`);
    }
  }
  // The daemons may take a moment to exit after their sockets close.
  const deadline = Date.now() + 3000;
  while (benchProcesses(ctx).length > 0 && Date.now() < deadline) sleepSync(50);
  const leftovers = benchProcesses(ctx);
  killPids(leftovers);
  const gone = Date.now() + 2000;
  while (benchProcesses(ctx).length > 0 && Date.now() < gone) sleepSync(50);
  const stuck = benchProcesses(ctx);
  if (stuck.length > 0) console.error(`cleanup: ${stuck.length} process(es) still alive after SIGKILL: ${stuck.join(' ')}`);
  rmSync(ctx.home, { recursive: true, force: true });
  if (ctx.pm2) rmSync(ctx.pm2.home, { recursive: true, force: true });
  return leftovers;
}

function pm2Context(runId: string): Pm2Ctx | null {
  if (!existsSync(PM2_BIN)) return null;
  const home = mkdtempSync(join(tmpdir(), 'pm2-bench-'));
  // PM2_KILL_SIGNAL: PM2 stops with SIGINT by default; SIGTERM makes both managers send the same signal
  // (the "ignore TERM" tree would otherwise simply die of SIGINT).
  const env: NodeJS.ProcessEnv = { ...process.env, PM2_HOME: home, PM2_KILL_SIGNAL: 'SIGTERM', [MARKER]: runId };
  for (const name of ['AGENTPM_HOME', 'AGENTPM_APP', 'AGENTPM_INSTANCE']) delete env[name];
  return { home, env, started: false, unusable: null };
}

async function main(): Promise<void> {
  const runId = randomBytes(8).toString('hex');
  const home = mkdtempSync(join(tmpdir(), 'agentpm-bench-'));
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: home, NO_COLOR: '1', [MARKER]: runId };
  delete env['AGENTPM_APP'];
  delete env['AGENTPM_INSTANCE'];
  const ctx: Ctx = { home, env, runId, pm2: pm2Context(runId) };
  console.error(`load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}`);
  console.error(`bench run ${MARKER}=${runId}; AGENTPM_HOME=${home}${ctx.pm2 ? `; PM2_HOME=${ctx.pm2.home}` : `; ${PM2_MISSING}`}`);
  const watchdog = setTimeout(() => {
    console.error(`bench exceeded ${OVERALL_LIMIT_MS / 1000}s; cleaning up`);
    cleanup(ctx);
    process.exit(2);
  }, OVERALL_LIMIT_MS);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup(ctx);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  const rows: Row[] = [];
  const started = Date.now();
  try {
    // BENCH_CASES=memoryInChild,forkStorm runs only those (by function name).
    const only = process.env['BENCH_CASES']?.split(',').filter(Boolean);
    const selected = cases.filter((item) => !only || only.includes(item.name));
    if (ctx.pm2 && selected.every((item) => AGENTPM_ONLY.has(item))) ctx.pm2.unusable = 'not run';
    if (ctx.pm2 && ctx.pm2.unusable === null) {
      try {
        pm2(ctx.pm2, ['ping']); // starts PM2's daemon now, not inside the first measurement
      } catch (error) {
        console.error(`pm2 does not start; its column is left out: ${(error as Error).message}`);
        ctx.pm2.unusable = 'pm2 failed to start';
      }
    }
    for (const run of selected) {
      console.error(`running ${run.name}... (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      rows.push(...(await run(ctx)));
    }
  } finally {
    const leftovers = cleanup(ctx);
    clearTimeout(watchdog);
    if (leftovers.length > 0) console.error(`cleanup: SIGKILLed ${leftovers.length} process(es) left by the run: ${leftovers.join(' ')}`);
    console.error(`bench took ${((Date.now() - started) / 1000).toFixed(0)} s; load average now ${loadavg().map((value) => value.toFixed(2)).join(' ')} (timings are noisy when other work shares the machine)`);
    if (rows.length > 0) printTable(rows);
    if (rows.length > 0 && !process.env['BENCH_CASES']) writeResults(rows, Date.now() - started);
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error)?.stack ?? String(error)}`);
  process.exitCode = 1;
});
