/**
 * `npm run soak -- --minutes 30`: the daemon under a steady, busy load for a long time, to show that it
 * stays flat (issue 14). 20 apps: 5 crash-looping, 5 writing 1 MB/s of output, 10 idle trees; 4 socket
 * clients (the package's API) calling `ls` every 100 ms; one `events --follow`; one `monit` in tmux.
 * Every 10 s: the daemon's RSS, V8 heap, open descriptors, tick cost and events.log size.
 *
 * Goal: after the first 5 minutes, the least-squares slope of RSS is under 1 MB per 10 minutes, and
 * the descriptors do not grow. Writes bench/soak.svg (the samples) and bench/soak.json, and prints the
 * verdict. Everything started is bounded and cleaned up, also after Ctrl-C.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agentpm } from '../src/api.js';
import { isAlivePid, liveProcesses } from '../test/helpers/procs.js';
import { Tmux, tmuxTerm } from '../test/helpers/tmux.js';
import { leastSquaresSlope, svgPlot, type Series } from './plot.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin', 'agentpm');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const BENCH_FIXTURES = join(ROOT, 'bench', 'fixtures');
const SAMPLE_MS = 10_000;
const WARMUP_MS = 5 * 60_000;
const LS_EVERY_MS = 100;
const CLIENTS = 4;

interface Sample {
  atMs: number;
  rss: number;
  heap: number;
  heapTotal: number;
  external: number;
  fds: number;
  tickMs: number;
  eventsLog: number;
}

function minutesArgument(): number {
  const index = process.argv.indexOf('--minutes');
  const minutes = index >= 0 ? Number(process.argv[index + 1]) : 30;
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) throw new Error('--minutes expects a number of minutes between 0 and 1440, e.g. --minutes 30');
  return minutes;
}

function config(home: string): string {
  const apps: Record<string, unknown>[] = [];
  for (let i = 0; i < 10; i += 1) apps.push({ name: `idle-${i}`, script: join(FIXTURES, 'tree.mjs'), env: { CHILDREN: '2' } });
  for (let i = 0; i < 5; i += 1) {
    // Never gives up, never backs off past 2 s: a crash loop for the whole run.
    apps.push({ name: `crash-${i}`, script: join(FIXTURES, 'crasher.mjs'), env: { LIFETIME_MS: '700', CHILDREN: '1' }, restartDelay: '200ms', maxRestartDelay: '2s', maxRestarts: null });
  }
  for (let i = 0; i < 5; i += 1) apps.push({ name: `chatty-${i}`, script: join(BENCH_FIXTURES, 'chatty.mjs'), env: { BYTES_PER_SECOND: String(2 ** 20) } });
  const file = join(home, 'soak.config.mjs');
  writeFileSync(file, `export default ${JSON.stringify({ apps }, null, 2)};\n`);
  return file;
}

/** A start of 20 apps on a shared machine under a load average of 40 took over a minute. */
const CLI_TIMEOUT_MS = 5 * 60_000;

function cli(env: NodeJS.ProcessEnv, args: string[]): string {
  const result = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: CLI_TIMEOUT_MS });
  if (result.status !== 0) throw new Error(`agentpm ${args.join(' ')} exited ${result.status ?? `on ${result.signal} after ${CLI_TIMEOUT_MS / 60_000} min`}: ${result.stderr}`);
  return result.stdout;
}

async function main(): Promise<void> {
  const minutes = minutesArgument();
  const home = mkdtempSync(join(tmpdir(), 'agentpm-soak-'));
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: home, NO_COLOR: '1' };
  delete env['AGENTPM_APP'];
  delete env['AGENTPM_INSTANCE'];
  process.env['AGENTPM_HOME'] = home;
  const started: ChildProcess[] = [];
  const clients: Agentpm[] = [];
  let tmux: Tmux | null = null;
  let stopping = false;
  const cleanup = async (): Promise<void> => {
    stopping = true;
    for (const client of clients) client.close();
    await tmux?.kill().catch(() => undefined);
    for (const child of started) if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
    spawnSync(process.execPath, [CLI, 'kill'], { env, timeout: CLI_TIMEOUT_MS });
    const left = liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === home).map((proc) => proc.pid);
    for (const pid of left) if (isAlivePid(pid)) process.kill(pid, 'SIGKILL');
    rmSync(home, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    console.error(`soak: ${minutes} min, AGENTPM_HOME=${home}`);
    cli(env, ['start', config(home)]);
    const { connect } = await import('../src/index.js');
    for (let i = 0; i < CLIENTS; i += 1) clients.push(await connect({ home, autostart: false }));
    const polling = clients.map(async (client) => {
      while (!stopping) {
        await client.ls().catch(() => undefined);
        await sleep(LS_EVERY_MS);
      }
    });
    started.push(spawn(process.execPath, [CLI, 'events', '--follow'], { env, stdio: 'ignore' }));
    tmux = await Tmux.start({ cols: 160, rows: 48, env: { AGENTPM_HOME: home, NO_COLOR: '1' } });
    await tmux.type(`TERM=${tmuxTerm()} ${process.execPath} ${CLI} monit`);
    await tmux.keys('Enter');

    const samples: Sample[] = [];
    const begin = Date.now();
    const end = begin + minutes * 60_000;
    while (Date.now() < end) {
      const status = await clients[0]!.status();
      samples.push({
        atMs: Date.now() - begin,
        rss: status.rss,
        heap: status.heapUsed,
        heapTotal: status.heapTotal,
        external: status.external,
        fds: readdirSync(`/proc/${status.pid}/fd`).length,
        tickMs: status.tickCost.medianMs,
        eventsLog: statSync(join(home, 'events.log')).size,
      });
      const last = samples.at(-1)!;
      console.error(`  +${(last.atMs / 60_000).toFixed(1)} min: RSS ${(last.rss / 2 ** 20).toFixed(1)} MB, heap ${(last.heap / 2 ** 20).toFixed(1)} of ${(last.heapTotal / 2 ** 20).toFixed(1)} MB, external ${(last.external / 2 ** 20).toFixed(1)} MB, ${last.fds} fds, tick ${last.tickMs} ms, events.log ${(last.eventsLog / 1024).toFixed(0)} KB`);
      await sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
    }
    stopping = true;
    await Promise.all(polling);
    report(samples, minutes);
  } finally {
    await cleanup();
  }
}

function report(samples: Sample[], minutes: number): void {
  const steady = samples.filter((sample) => sample.atMs >= Math.min(WARMUP_MS, (minutes * 60_000) / 2));
  const mb = (bytes: number): number => bytes / 2 ** 20;
  const slope = leastSquaresSlope(steady.map((sample) => [sample.atMs / 600_000, mb(sample.rss)])); // MB per 10 min
  const heapSlope = leastSquaresSlope(steady.map((sample) => [sample.atMs / 600_000, mb(sample.heap)]));
  const fdsFirst = steady[0]?.fds ?? 0;
  const fdsLast = steady.at(-1)?.fds ?? 0;
  const fdsMax = Math.max(...steady.map((sample) => sample.fds));
  const verdict = {
    minutes,
    samples: samples.length,
    rssSlopeMbPer10Min: Number(slope.toFixed(3)),
    heapSlopeMbPer10Min: Number(heapSlope.toFixed(3)),
    fdsAtSteadyStart: fdsFirst,
    fdsAtEnd: fdsLast,
    fdsMax,
    rssGoalMet: slope < 1,
    // A connection or a relay restart holds a descriptor for a moment: growth is the end against the start.
    fdsGoalMet: fdsLast <= fdsFirst + 2,
  };
  const series: Series[] = [
    { name: 'RSS (MB)', points: samples.map((sample) => [sample.atMs / 60_000, mb(sample.rss)]) },
    { name: 'heap in use (MB)', points: samples.map((sample) => [sample.atMs / 60_000, mb(sample.heap)]) },
    { name: 'heap committed (MB)', points: samples.map((sample) => [sample.atMs / 60_000, mb(sample.heapTotal)]) },
    { name: 'external (MB)', points: samples.map((sample) => [sample.atMs / 60_000, mb(sample.external)]) },
    { name: 'open fds', points: samples.map((sample) => [sample.atMs / 60_000, sample.fds]) },
  ];
  writeFileSync(join(ROOT, 'bench', 'soak.svg'), svgPlot(`agentpm daemon, ${minutes} min soak`, 'minutes', series));
  writeFileSync(join(ROOT, 'bench', 'soak.json'), `${JSON.stringify({ verdict, samples }, null, 1)}\n`);
  console.log(JSON.stringify(verdict, null, 2));
  console.error('wrote bench/soak.svg and bench/soak.json');
}

main().catch((error: unknown) => {
  console.error(`soak failed: ${(error as Error)?.stack ?? String(error)}`);
  process.exitCode = 1;
});
