/**
 * 6. The daemons' footprint side by side: the resident memory of agentpm's daemon (and of its log
 * relay, reported apart: PM2 has no such process) and of PM2's daemon, idle, with 20 apps × 15
 * processes and with 200 apps × 15 processes, at agentpm's 1 s tick.
 *
 * The apps are light (a `sh` root with 14 `sleep 300` children), so that 3,000 processes fit in any
 * machine; each manager runs them alone (the other's are gone), since agentpm's tick reads every process
 * of the machine. Each figure is the median of 5 samples 1 s apart, after the apps settled. Everything
 * started carries the bench's marker in its environment (both managers pass their environment on), so
 * the bench's cleanup, Ctrl-C included, SIGKILLs by pid whatever a manager left behind.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { liveProcesses } from '../test/helpers/procs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin', 'agentpm');
const PM2_BIN = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const TREE = join(ROOT, 'bench', 'fixtures', 'sh-tree.sh');
const CHILDREN = 14; // 15 processes per app
const SIZES = [20, 200] as const;
const SAMPLES = 5;
const SETTLE_MS = 3000;

type Row = { case: string; agentpm: string; pm2: string; goal: string };
/** What this case needs of the bench's context (run.ts's Ctx has it). */
export interface FootprintCtx {
  home: string;
  env: NodeJS.ProcessEnv;
  pm2: { home: string; env: NodeJS.ProcessEnv; started: boolean; unusable: string | null } | null;
}
type Pm2 = NonNullable<FootprintCtx['pm2']>;

/** Resident memory at one moment: the daemon's, and the relay's for agentpm. */
interface Figures {
  rss: number;
  relay: number | null;
}

function run(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 60_000): string {
  const r = spawnSync(process.execPath, args, { env, cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 2 ** 20 });
  if (r.error) throw new Error(`node ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const agentpm = (ctx: FootprintCtx, args: string[], timeoutMs?: number): string => run(ctx.env, [CLI, ...args], timeoutMs);
function pm2(p: Pm2, args: string[]): string {
  p.started = true;
  return run(p.env, [PM2_BIN, ...args]);
}

function vmRss(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

async function waitFor(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

/** Median of SAMPLES readings 1 s apart, after SETTLE_MS. */
async function sampled(read: () => Figures): Promise<Figures> {
  await sleep(SETTLE_MS);
  const samples: Figures[] = [];
  for (let i = 0; i < SAMPLES; i += 1) {
    if (i > 0) await sleep(1000);
    samples.push(read());
  }
  const relays = samples.map((s) => s.relay).filter((value): value is number => value !== null);
  return { rss: median(samples.map((s) => s.rss)), relay: relays.length > 0 ? median(relays) : null };
}

const tagged = (name: string, value: string): number[] => liveProcesses((proc) => proc.pid !== process.pid && proc.env.get(name) === value).map((proc) => proc.pid);

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const appNames = (apps: number): string[] => Array.from({ length: apps }, (_, i) => `fp-${i}`);

// ------------------------------------------------------------------------------------------ agentpm

function agentpmFigures(ctx: FootprintCtx): () => Figures {
  const status = JSON.parse(agentpm(ctx, ['daemon', 'status', '--json'])) as { pid: number; relay: { pid: number } | null };
  return () => ({ rss: vmRss(status.pid), relay: status.relay ? vmRss(status.relay.pid) : null });
}

async function agentpmLoaded(ctx: FootprintCtx, apps: number): Promise<Figures> {
  const config = join(ctx.home, `footprint-${apps}.config.json`);
  const tag = `fp-${randomBytes(4).toString('hex')}`;
  const definitions = appNames(apps).map((name) => ({ name, script: TREE, interpreter: 'sh', env: { CHILDREN: String(CHILDREN), BENCH_TAG: tag } }));
  writeFileSync(config, JSON.stringify({ apps: definitions }));
  try {
    agentpm(ctx, ['start', config], 300_000);
    await waitFor(`${apps} trees under agentpm`, () => tagged('BENCH_TAG', tag).length === apps * (CHILDREN + 1), 180_000);
    // And until the daemon has seen them all: before that it is still starting apps, not at rest.
    await waitFor(`agentpm to count ${apps} whole trees`, () => {
      const list = JSON.parse(agentpm(ctx, ['ls', '--json'])) as { status: string; processes: number }[];
      return list.length === apps && list.every((app) => app.status === 'online' && app.processes === CHILDREN + 1);
    }, 180_000);
    return await sampled(agentpmFigures(ctx));
  } finally {
    agentpm(ctx, ['delete', 'all'], 180_000);
    await waitFor(`the ${apps} trees to be gone`, () => tagged('BENCH_TAG', tag).length === 0, 60_000).catch(() => killPids(tagged('BENCH_TAG', tag)));
  }
}

// ---------------------------------------------------------------------------------------------- pm2

function pm2Figures(p: Pm2): () => Figures {
  const pid = Number(readFileSync(join(p.home, 'pm2.pid'), 'utf8').trim());
  return () => ({ rss: vmRss(pid), relay: null });
}

async function pm2Loaded(p: Pm2, apps: number): Promise<Figures> {
  const tag = `fp-${randomBytes(4).toString('hex')}`;
  const file = join(p.home, `footprint-${apps}.json`);
  writeFileSync(file, JSON.stringify({ apps: appNames(apps).map((name) => ({ name, script: TREE, interpreter: 'sh', env: { CHILDREN: String(CHILDREN), BENCH_TAG: tag } })) }));
  try {
    pm2(p, ['start', file]);
    await waitFor(`${apps} trees under pm2`, () => tagged('BENCH_TAG', tag).length === apps * (CHILDREN + 1), 180_000);
    return await sampled(pm2Figures(p));
  } finally {
    try {
      pm2(p, ['delete', 'all']);
    } catch (error) {
      console.error((error as Error).message);
    }
    // PM2 leaves a tree's members behind when its root goes first: those die by pid.
    await waitFor(`the ${apps} pm2 trees to be gone`, () => tagged('BENCH_TAG', tag).length === 0, 10_000).catch(() => killPids(tagged('BENCH_TAG', tag)));
  }
}

// --------------------------------------------------------------------------------------------- case

/** Each state's figures, or the error that stopped its measurement (the other states are still measured). */
interface Series {
  idle: Figures | string;
  loaded: Map<number, Figures | string>;
}

async function attempt(what: string, measure: () => Promise<Figures>): Promise<Figures | string> {
  try {
    return await measure();
  } catch (error) {
    console.error(`footprint ${what} failed: ${(error as Error)?.stack ?? String(error)}`);
    return `error: ${((error as Error)?.message ?? String(error)).split('\n')[0]}`;
  }
}

async function agentpmSeries(ctx: FootprintCtx): Promise<Series> {
  const env = { ...ctx.env, AGENTPM_TICK_MS: '1000' };
  agentpm(ctx, ['kill']);
  run(env, [CLI, 'daemon', 'start']);
  const idle = await attempt('agentpm idle', () => sampled(agentpmFigures(ctx)));
  const loaded = new Map<number, Figures | string>();
  for (const apps of SIZES) loaded.set(apps, await attempt(`agentpm ${apps} apps`, () => agentpmLoaded(ctx, apps)));
  return { idle, loaded };
}

async function pm2Series(p: Pm2): Promise<Series> {
  // A fresh PM2 daemon: the earlier cases have used this one.
  pm2(p, ['kill']);
  pm2(p, ['ping']);
  const idle = await attempt('pm2 idle', () => sampled(pm2Figures(p)));
  const loaded = new Map<number, Figures | string>();
  for (const apps of SIZES) loaded.set(apps, await attempt(`pm2 ${apps} apps`, () => pm2Loaded(p, apps)));
  return { idle, loaded };
}

type Pick = (series: Series) => Figures | string;

export async function footprint(ctx: FootprintCtx): Promise<Row[]> {
  const ours = await agentpmSeries(ctx);
  let theirs: Series | string;
  if (!ctx.pm2) theirs = 'pm2 not installed';
  else if (ctx.pm2.unusable !== null) theirs = ctx.pm2.unusable;
  else {
    try {
      theirs = await pm2Series(ctx.pm2);
    } catch (error) {
      console.error(`pm2 footprint failed: ${(error as Error).stack ?? String(error)}`);
      theirs = `error: ${(error as Error).message.split('\n')[0]}`;
    }
  }
  const pm2Of = (pick: Pick): Figures | string => (typeof theirs === 'string' ? theirs : pick(theirs));
  const pm2Cell = (pick: Pick): string => {
    const figures = pm2Of(pick);
    return typeof figures === 'string' ? figures : mb(figures.rss);
  };
  const agentpmCell = (pick: Pick): string => {
    const figures = pick(ours);
    if (typeof figures === 'string') return figures;
    const other = pm2Of(pick);
    const ratio = typeof other === 'string' ? '' : ` = ${(figures.rss / other.rss).toFixed(2)}× pm2's`;
    return `${mb(figures.rss)}${ratio}${figures.relay === null ? '' : ` (+ log relay ${mb(figures.relay)})`}`;
  };
  const states: [string, Pick][] = [['idle (no apps)', (s) => s.idle], ...SIZES.map((apps): [string, Pick] => [`${apps} apps x ${CHILDREN + 1} procs`, (s) => s.loaded.get(apps) ?? 'not measured'])];
  for (const [label, pick] of states) console.error(`  footprint ${label}: agentpm ${agentpmCell(pick)}; pm2 ${pm2Cell(pick)}`);
  const goals = [
    `median of ${SAMPLES} samples 1 s apart; a bare \`node\` idles at about 40 MB`,
    "<= pm2's daemon with the same apps (the relay apart: PM2 pipes logs in its daemon)",
    'measured, no goal set',
  ];
  return states.map(([label, pick], i) => ({
    case: `6. daemon RSS, ${label}${i === 0 ? ', 1 s tick' : ` (sh + sleeps${i === 2 ? `: ${SIZES[1] * (CHILDREN + 1)} processes` : ''})`}`,
    agentpm: agentpmCell(pick),
    pm2: pm2Cell(pick),
    goal: goals[i]!,
  }));
}
