/**
 * Benchmarks of agentpm against its goals, printed as a table. Run with `npm run bench`.
 *
 * Everything runs against a fresh AGENTPM_HOME (mkdtemp, prefix agentpm-bench-) through the real,
 * compiled CLI. At the end, whatever happens: `agentpm kill`, then SIGKILL by pid any process whose
 * initial environment carries that home (never by name), then the home is removed.
 *
 * To add a case, write a function `(ctx) => Promise<Row[]>` and append it to `cases`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppSummary } from '../src/protocol.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin', 'agentpm');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const OVERALL_LIMIT_MS = 5 * 60_000;

type Row = { case: string; agentpm: string; goal: string };
interface Ctx {
  home: string;
  env: NodeJS.ProcessEnv;
}
type Case = (ctx: Ctx) => Promise<Row[]>;

// ---------------------------------------------------------------------------------------- helpers

interface RunResult {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs node with `args` to completion (killed after timeoutMs) and measures its wall time. */
function runNode(ctx: Ctx, args: string[], timeoutMs = 30_000): RunResult {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env: ctx.env, cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`node ${args.join(' ')}: ${r.error.message}`);
  return { ms, code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI and fails with its output unless it exits 0. */
function cli(ctx: Ctx, args: string[], timeoutMs = 30_000): RunResult {
  const r = runNode(ctx, [CLI, ...args], timeoutMs);
  if (r.code !== 0) throw new Error(`agentpm ${args.join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`);
  return r;
}

const ls = (ctx: Ctx): AppSummary[] => JSON.parse(cli(ctx, ['ls', '--json']).stdout) as AppSummary[];
const daemonPid = (ctx: Ctx): number => (JSON.parse(cli(ctx, ['daemon', 'status', '--json']).stdout) as { pid: number }).pid;

async function waitFor<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall time of `fn` over `runs` runs after `warmup` unmeasured ones. */
function timed(fn: () => RunResult, runs = 15, warmup = 2): number {
  for (let i = 0; i < warmup; i += 1) fn();
  return median(Array.from({ length: runs }, () => fn().ms));
}

const ms = (value: number): string => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`);

// ------------------------------------------------------------------------------------------ /proc

/** State and start time of a pid, or null if it does not exist. */
function procStat(pid: number): { state: string; start: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', start: rest[19] ?? '' };
  } catch {
    return null;
  }
}

const isLive = (pid: number): boolean => !['Z', 'X', undefined].includes(procStat(pid)?.state);

function procEnv(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  try {
    for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
  } catch {
    // gone, or another user's
  }
  return env;
}

/** Live pids (not this process) whose initial environment has AGENTPM_HOME=home, and AGENTPM_APP=app if given. */
function tagged(home: string, app?: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      if (pid === process.pid) return false;
      const env = procEnv(pid);
      return env.get('AGENTPM_HOME') === home && (app === undefined || env.get('AGENTPM_APP') === app) && isLive(pid);
    });
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

// ------------------------------------------------------------------------------------------ apps

async function startIdle(ctx: Ctx, names: string[]): Promise<void> {
  for (const name of names) cli(ctx, ['start', join(FIXTURES, 'idle.mjs'), '--name', name]);
  await waitFor(`${names.length} idle apps online`, () => {
    const online = new Set(ls(ctx).filter((a) => a.status === 'online').map((a) => a.name));
    return names.every((n) => online.has(n));
  });
}

const idleNames = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `idle-${from + i}`);

// ----------------------------------------------------------------------------------------- cases

async function lsLatency(ctx: Ctx): Promise<Row[]> {
  const node = timed(() => runNode(ctx, ['-e', '0']));
  const rows: Row[] = [{ case: 'node -e 0 (baseline)', agentpm: ms(node), goal: 'reference, median of 15' }];
  for (const [from, to] of [[0, 1], [1, 20]] as const) {
    await startIdle(ctx, idleNames(from, to));
    const t = timed(() => cli(ctx, ['ls', '--json']));
    rows.push({ case: `ls --json, ${to} app${to > 1 ? 's' : ''}`, agentpm: `${ms(t)} (${(t / node).toFixed(2)}x)`, goal: 'about node -e 0 (ratio ~1x)' });
  }
  cli(ctx, ['delete', 'all']);
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
  { label: 'stop 15-process tree, TERM obeyed', env: ['CHILDREN=14'], extra: [], processes: 15, goal: 'well under kill timeout (10s default); 0 survivors' },
  {
    label: 'stop tree, all ignore TERM, kill-timeout 1s',
    env: ['CHILDREN=0', 'STUBBORN=14', 'IGNORE_TERM=1'],
    extra: ['--kill-timeout', '1s'],
    processes: 29,
    goal: '~1s + SIGKILL round; 0 survivors',
  },
];

async function stopTime(ctx: Ctx): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [k, kind] of TREES.entries()) {
    const times: number[] = [];
    let maxSurvivors = 0;
    for (let run = 0; run < 3; run += 1) {
      const name = `tree-${k}-${run}`;
      const pidfile = join(ctx.home, `${name}.pids`);
      const envFlags = [...kind.env, `PIDFILE=${pidfile}`].flatMap((pair) => ['--env', pair]);
      cli(ctx, ['start', join(FIXTURES, 'tree.mjs'), '--name', name, '--no-autorestart', ...kind.extra, ...envFlags]);
      // Complete: the pidfile lists root + 14, and every process has exec'd (stubborn ones have trapped TERM).
      const pids = await waitFor(`tree ${name} complete`, () => {
        if (!existsSync(pidfile)) return null;
        const listed = readFileSync(pidfile, 'utf8').split('\n').filter(Boolean).map(Number);
        const members = tagged(ctx.home, name);
        const sleeps = members.filter((pid) => cmdline(pid).startsWith('sleep\0'));
        return listed.length === 15 && sleeps.length === 14 && members.length === kind.processes ? listed : null;
      });
      const before = new Map(pids.map((pid) => [pid, procStat(pid)?.start]));
      times.push(cli(ctx, ['stop', name]).ms);
      const fromPidfile = pids.filter((pid) => isLive(pid) && procStat(pid)?.start === before.get(pid));
      const survivors = new Set([...fromPidfile, ...tagged(ctx.home, name)]);
      maxSurvivors = Math.max(maxSurvivors, survivors.size);
      cli(ctx, ['delete', name]);
    }
    rows.push({ case: kind.label, agentpm: `${ms(median(times))}, ${maxSurvivors} survivors`, goal: `${kind.goal} (${kind.processes} procs; 3 runs: median time, max survivors)` });
  }
  return rows;
}

async function daemonRss(ctx: Ctx): Promise<Row[]> {
  // A fresh daemon, so the figure does not depend on what earlier cases made it do.
  cli(ctx, ['kill']);
  cli(ctx, ['daemon', 'start']);
  const pid = daemonPid(ctx);
  const empty = vmRssBytes(pid);
  await startIdle(ctx, idleNames(0, 20));
  if (daemonPid(ctx) !== pid) throw new Error('the daemon changed while apps were starting');
  const rss = vmRssBytes(pid);
  cli(ctx, ['delete', 'all']);
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return [{ case: 'daemon RSS, 20 idle apps online', agentpm: mib(rss), goal: `VmRSS of a fresh daemon; ${mib(empty)} with 0 apps` }];
}

const cases: Case[] = [lsLatency, stopTime, daemonRss];

// ------------------------------------------------------------------------------------------ main

function printTable(rows: Row[]): void {
  const header: Row = { case: 'case', agentpm: 'agentpm', goal: 'goal / notes' };
  const keys = ['case', 'agentpm', 'goal'] as const;
  const width = keys.map((key) => Math.max(...[header, ...rows].map((row) => row[key].length)));
  const line = (row: Row): string => keys.map((key, i) => row[key].padEnd(width[i]!)).join('  ').trimEnd();
  console.log([line(header), width.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
}

const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Stops everything started under the home and removes it; returns the pids that had to be SIGKILLed.
 * Synchronous, so that nothing else (a case still running) can interleave when called from a signal.
 */
function cleanup(ctx: Ctx): number[] {
  try {
    runNode(ctx, [CLI, 'kill'], 30_000);
  } catch (error) {
    console.error(`agentpm kill failed: ${(error as Error).message}`);
  }
  // The daemon may take a moment to exit after its socket closes.
  const deadline = Date.now() + 3000;
  while (tagged(ctx.home).length > 0 && Date.now() < deadline) sleepSync(50);
  const leftovers = tagged(ctx.home);
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(ctx.home, { recursive: true, force: true });
  return leftovers;
}

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'agentpm-bench-'));
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: home, NO_COLOR: '1' };
  delete env['AGENTPM_APP'];
  delete env['AGENTPM_INSTANCE'];
  const ctx: Ctx = { home, env };
  const watchdog = setTimeout(() => {
    console.error(`bench exceeded ${OVERALL_LIMIT_MS / 1000}s; cleaning up`);
    cleanup(ctx);
    process.exit(2);
  }, OVERALL_LIMIT_MS);
  process.once('SIGINT', () => {
    cleanup(ctx);
    process.exit(130);
  });
  const rows: Row[] = [];
  try {
    for (const run of cases) {
      console.error(`running ${run.name}...`);
      rows.push(...(await run(ctx)));
    }
  } finally {
    const leftovers = cleanup(ctx);
    clearTimeout(watchdog);
    if (leftovers.length > 0) console.error(`cleanup: SIGKILLed ${leftovers.length} process(es) left under ${home}: ${leftovers.join(' ')}`);
    if (rows.length > 0) printTable(rows);
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error)?.stack ?? String(error)}`);
  process.exitCode = 1;
});
