/**
 * 12. agentpm at 200 agents (issue 14, "Scale"): 200 apps of 15 light processes each (an `sh` root
 * waiting on 14 `sleep`s; 3,000 processes, a few MB each), started from one generated ecosystem config
 * by a daemon at a 1 s tick. Measured, in this order, on that one daemon:
 * - `start <config>`: the CLI's return, and until all 200 are online with their whole trees;
 * - the tick against the floor (one bare read of every /proc/<pid>/stat), the daemon's CPU and RSS;
 * - `ls --json` against `node -e 0`;
 * - `restart all --parallel 10 --wait`, with readyAfter 250ms so that it times agentpm, not the settle;
 * - a `monit` frame with the 200 apps and a 300-process tree selected: the real dashboard in tmux,
 *   which logs each frame's cost (AGENTPM_MONIT_FRAME_LOG).
 * Everything runs under the bench's home and marker, so the bench's cleanup ends it whatever happens
 * (Ctrl-C, an error, the watchdog); on the way out the case deletes its apps and stops its daemon.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FrameLogEntry } from '../src/tui/monit.js';
import type { AppSummary } from '../src/protocol.js';
import { waitFor } from '../test/helpers/rig.js';
import { Tmux, tmuxTerm } from '../test/helpers/tmux.js';
import { attempt, CLI, cli, CLOCK_TICKS_PER_SECOND, cpuPercent, cpuTicks, daemonFigures, MARKER, median, mib, ms, procStatFloorMs, runNode, timedAgainst, type Ctx, type Row } from './run.js';

const APPS = 200;
const CHILDREN = 14; // 15 processes per app, 3,000 in all
const BIG_TREE = 300;
const TICK_MS = 1000;
/** The daemon's CPU (and the ticks the median is taken over) at steady state. */
const CPU_WINDOW_MS = 45_000;
const PARALLEL = 10;
const READY_AFTER = '250ms';
const MONIT_WINDOW_MS = 12_000;
const MONIT_SIZE = { cols: 160, rows: 48 };

/** An `sh` that starts `children` sleeps and waits on them: the lightest tree of that size. */
function treeApp(name: string, children: number): Record<string, unknown> {
  return {
    name,
    script: 'sh',
    interpreter: 'none',
    args: ['-c', `i=0; while [ $i -lt ${children} ]; do sleep 3600 & i=$((i + 1)); done; wait`],
    readyAfter: READY_AFTER,
  };
}

function writeConfig(dir: string, file: string, apps: Record<string, unknown>[]): string {
  const path = join(dir, file);
  writeFileSync(path, `export default ${JSON.stringify({ apps }, null, 1)};\n`);
  return path;
}

/** CPU seconds (user + system) a process used since it had used `since` clock ticks. */
const cpuSeconds = (pid: number, since: number): number => (cpuTicks(pid) - since) / CLOCK_TICKS_PER_SECOND;

const load = (): string => loadavg().map((value) => value.toFixed(2)).join(' ');

/** Connects the package's client (lighter than a CLI per poll, so polling does not load the machine it times). */
async function client(ctx: Ctx): Promise<{ ls(): Promise<AppSummary[]>; close(): void }> {
  const { connect } = await import('../src/index.js');
  return connect({ home: ctx.home, autostart: false });
}

const complete = (apps: AppSummary[], processes: number): number => apps.filter((app) => app.status === 'online' && app.processes === processes).length;

export async function scale200(ctx: Ctx): Promise<Row[]> {
  const dir = mkdtempSync(join(ctx.home, 'scale-'));
  const names = Array.from({ length: APPS }, (_, i) => `scale-${String(i).padStart(3, '0')}`);
  const config = writeConfig(dir, 'ecosystem.config.js', names.map((name) => treeApp(name, CHILDREN)));
  const rows: Row[] = [];
  cli(ctx, ['kill']);
  const started = runNode({ ...ctx.env, AGENTPM_TICK_MS: String(TICK_MS) }, [CLI, 'daemon', 'start']);
  if (started.code !== 0) throw new Error(`agentpm daemon start exited ${started.code}: ${started.stderr}`);
  const empty = daemonFigures(ctx);
  const nodeE0 = () => runNode(ctx.env, ['-e', '0']);
  // The same daemon with no app: what of ls --json at 200 apps is the CLI's start and what is the apps'.
  const lsEmpty = timedAgainst(() => cli(ctx, ['ls', '--json']), nodeE0);
  const api = await client(ctx);
  try {
    // -------------------------------------------------------------------------------- start
    const startLoad = load();
    console.error(`  scale: starting ${APPS} apps x ${CHILDREN + 1} processes (load ${startLoad})`);
    const startCpu = cpuTicks(empty.pid);
    const t0 = Date.now();
    const startRun = cli(ctx, ['start', config], 180_000);
    let online: number | null = null;
    let whole: number | null = null;
    for (const deadline = Date.now() + 180_000; Date.now() < deadline && whole === null; await sleep(100)) {
      const apps = await api.ls();
      if (online === null && apps.filter((app) => app.status === 'online').length === APPS) online = Date.now() - t0;
      if (complete(apps, CHILDREN + 1) === APPS) whole = Date.now() - t0;
    }
    if (online === null || whole === null) throw new Error(`${APPS} apps not online with whole trees within 180 s`);
    // The daemon's own CPU is what the load of other work on the machine changes least.
    const startDaemonCpu = cpuSeconds(empty.pid, startCpu);
    console.error(`  scale: start returned after ${ms(startRun.ms)}, all online ${ms(online)}, all trees whole ${ms(whole)}; daemon CPU ${startDaemonCpu.toFixed(2)} s (load ${load()})`);
    rows.push({
      case: `12. scale: start of a ${APPS}-app config (${APPS} x ${CHILDREN + 1} procs)`,
      agentpm: `CLI returns ${ms(startRun.ms)}; all online ${ms(online)}; all ${APPS * (CHILDREN + 1)} procs up ${ms(whole)}; daemon CPU ${startDaemonCpu.toFixed(1)} s`,
      pm2: '-',
      goal: `seconds, not minutes: generated ecosystem.config.js, a fresh daemon; online = ls (package client, every 100 ms); load average ${startLoad} before`,
    });

    // ----------------------------------------------------------------- tick, CPU and RSS
    // A fresh window at steady state: the tick figures are the daemon's last 120 ticks, and the
    // CPU window is longer than what the start left in them, so the median is the steady state's.
    await sleep(3000);
    const cpuLoad = load();
    const cpu = await cpuPercent(empty.pid, CPU_WINDOW_MS);
    const loaded = daemonFigures(ctx);
    if (loaded.pid !== empty.pid) throw new Error('the daemon changed during the measurement');
    const floor = procStatFloorMs();
    const { tickCost } = loaded;
    console.error(
      `  scale: tick ${tickCost.medianMs} ms (max ${tickCost.maxMs}, ${tickCost.samples} ticks) over ${tickCost.processes} processes; floor ${floor.toFixed(2)} ms; ` +
        `CPU ${cpu.toFixed(2)} % over ${CPU_WINDOW_MS / 1000} s (load before ${cpuLoad}, after ${load()}); RSS ${mib(loaded.rss)} (empty ${mib(empty.rss)})`,
    );
    rows.push(
      {
        case: `12. scale: tick cost, ${APPS} apps (${tickCost.processes} procs on the machine)`,
        agentpm: `${tickCost.medianMs.toFixed(2)} ms = ${(tickCost.medianMs / floor).toFixed(2)}x the floor (${floor.toFixed(2)} ms); max ${tickCost.maxMs.toFixed(1)} ms`,
        pm2: '-',
        goal: `<= 2x a bare pass reading every /proc/<pid>/stat once; median of the daemon's own tick timings (${tickCost.samples} ticks, daemon status)`,
      },
      {
        case: `12. scale: daemon CPU and RSS, ${APPS} apps, 1 s tick`,
        agentpm: `CPU ${cpu.toFixed(2)} % of a core; RSS ${mib(loaded.rss)} (${mib(empty.rss)} with none)`,
        pm2: '-',
        goal: `utime+stime from /proc over ${CPU_WINDOW_MS / 1000} s; load average ${cpuLoad} before (2 cores, shared)`,
      },
    );

    // ------------------------------------------------------------------------- ls --json
    const lsLoad = load();
    const lsTimes = timedAgainst(() => cli(ctx, ['ls', '--json']), nodeE0);
    const ratio = ({ t, base }: { t: number; base: number }): string => `${ms(t)} = ${(t / base).toFixed(2)}x node -e 0 (${ms(base)})`;
    rows.push({
      case: `12. scale: ls --json, ${APPS} apps`,
      agentpm: `${ratio(lsTimes)}; with no app ${ratio(lsEmpty)}`,
      pm2: '-',
      goal: `<= 1.5x node -e 0; median of 15, alternated with node -e 0 (CLI wall time); load average ${lsLoad} before`,
    });

    // ------------------------------------------------------------ restart all --parallel
    const restartLoad = load();
    const restartCpu = cpuTicks(empty.pid);
    const restartRun = cli(ctx, ['restart', 'all', '--wait', '--parallel', String(PARALLEL), '--json'], 300_000);
    const restartDaemonCpu = cpuSeconds(empty.pid, restartCpu);
    const outcomes = (JSON.parse(restartRun.stdout) as { ok: boolean; apps: { ok: boolean; waitedMs: number }[] }).apps;
    const failed = outcomes.filter((outcome) => !outcome.ok).length;
    const batches = Math.ceil(APPS / PARALLEL);
    const waited = median(outcomes.map((outcome) => outcome.waitedMs));
    console.error(`  scale: restart all --parallel ${PARALLEL} --wait ${ms(restartRun.ms)}, ${failed} failed, per app waited median ${ms(waited)}; daemon CPU ${restartDaemonCpu.toFixed(2)} s (load ${load()})`);
    rows.push({
      case: `12. scale: restart all --parallel ${PARALLEL} --wait, ${APPS} apps`,
      agentpm: `${ms(restartRun.ms)} (${ms(restartRun.ms / batches)} per batch of ${PARALLEL}; each app ready ${ms(waited)} after its restart, median); daemon CPU ${restartDaemonCpu.toFixed(1)} s${failed > 0 ? `; ${failed} failed` : ''}`,
      pm2: '-',
      goal: `readyAfter ${READY_AFTER} in the config, so that it times agentpm, not the settle; ${batches} batches (CLI wall time, one run); load average ${restartLoad} before`,
    });
    await waitFor(async () => complete(await api.ls(), CHILDREN + 1) === APPS, 'every tree whole after the restart', 60_000, 250);

    // ------------------------------------------------------------------------------ monit
    rows.push({
      case: `12. scale: monit frame, ${APPS} apps, a ${BIG_TREE}-process tree selected`,
      agentpm: await attempt('scale: monit frame', () => monitFrame(ctx, dir, names, api)),
      pm2: '-',
      goal: `<= 100 ms; agentpm monit in tmux ${MONIT_SIZE.cols}x${MONIT_SIZE.rows}, AGENTPM_MONIT_FRAME_LOG: view model + blessed render per frame over ${MONIT_WINDOW_MS / 1000} s`,
    });
  } finally {
    api.close();
    const deleted = runNode(ctx.env, [CLI, 'delete', 'all'], 120_000);
    if (deleted.code !== 0) console.error(`scale: delete all exited ${deleted.code}: ${deleted.stderr}`);
    else console.error(`  scale: delete all of ${APPS} apps took ${ms(deleted.ms)}`);
    runNode(ctx.env, [CLI, 'kill'], 30_000);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Replaces the last app by one of BIG_TREE processes, selects it in a real `monit`, and reads the frames it logged. */
async function monitFrame(ctx: Ctx, dir: string, names: string[], api: { ls(): Promise<AppSummary[]> }): Promise<string> {
  const big = 'scale-big';
  cli(ctx, ['delete', names[names.length - 1]!], 60_000);
  cli(ctx, ['start', writeConfig(dir, 'big.config.js', [treeApp(big, BIG_TREE - 1)])], 60_000);
  await waitFor(async () => complete((await api.ls()).filter((app) => app.name === big), BIG_TREE) === 1, `${big} with ${BIG_TREE} processes`, 60_000, 250);
  const frameLog = join(dir, 'frames.jsonl');
  // The bench's marker and home are in the tmux server's environment too: the bench's cleanup ends it.
  const tmux = await Tmux.start({ ...MONIT_SIZE, env: { AGENTPM_HOME: ctx.home, AGENTPM_MONIT_FRAME_LOG: frameLog, [MARKER]: ctx.runId } });
  try {
    await tmux.type(`TERM=${tmuxTerm()} ${process.execPath} ${CLI} monit`);
    await tmux.keys('Enter');
    await tmux.waitForScreen((screen) => screen.includes(`apps (${APPS})`), `monit showing ${APPS} apps`, 30_000);
    // Selected through the filter, which Esc then clears: the whole table again, with the selection kept.
    await tmux.keys('/');
    await tmux.type(big);
    await tmux.keys('Enter');
    await tmux.waitForScreen((screen) => screen.includes(`of ${BIG_TREE}`), `the tree of ${big}`, 30_000);
    await tmux.keys('Escape');
    await tmux.waitForScreen((screen) => screen.includes(`apps (${APPS})`) && screen.includes(`of ${BIG_TREE}`), 'the whole table with the tree selected', 30_000);
    const from = readFileSync(frameLog, 'utf8').length;
    await sleep(MONIT_WINDOW_MS);
    const entries = readFileSync(frameLog, 'utf8')
      .slice(from)
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as FrameLogEntry)
      .filter((entry) => entry.apps === APPS && entry.selected === big && entry.treeRows === BIG_TREE);
    await tmux.keys('q');
    const frames = entries.filter((entry) => entry.kind === 'frame').map((entry) => entry.buildMs + entry.drawMs);
    const builds = entries.filter((entry) => entry.kind === 'frame').map((entry) => entry.buildMs);
    const snapshots = entries.filter((entry) => entry.kind === 'snapshot').map((entry) => entry.buildMs);
    if (frames.length === 0) throw new Error(`monit logged no frame with ${APPS} apps and ${big} selected`);
    console.error(
      `  scale: monit ${frames.length} frames: ${frames.map((value) => value.toFixed(1)).join(', ')} ms (view model ${builds.map((value) => value.toFixed(1)).join(', ')}); ` +
        `${snapshots.length} refreshes taken in: ${snapshots.map((value) => value.toFixed(1)).join(', ')} ms (load ${load()})`,
    );
    return (
      `frame ${median(frames).toFixed(1)} ms median, max ${Math.max(...frames).toFixed(1)} (view model ${median(builds).toFixed(1)}, blessed the rest; ${frames.length} frames); ` +
      `a refresh taken in ${median(snapshots).toFixed(1)} ms`
    );
  } finally {
    await tmux.kill();
  }
}
