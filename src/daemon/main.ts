/**
 * The daemon process: takes the lock for its home, restores the registry (adopting live instances),
 * serves the socket, and on SIGTERM/SIGINT or `daemon stop` leaves every app running for the next
 * daemon. Started detached by the CLI; its own output goes to AGENTPM_HOME/daemon.log.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { AgentpmError } from '../errors.js';
import { ensurePrivateHome, resolveHome } from '../home.js';
import { isAlive, type ProcInfo, type ProcessTable } from '../proc/table.js';
import { createProcessTable } from '../proc/platform.js';
import { isAgentpmDaemon } from '../reap/guard.js';
import { writeOwnedFileAtomic } from '../safe-files.js';
import { VERSION } from '../version.js';
import { DEFAULT_TICK_MS } from '../config/defaults.js';
import { DaemonLogBound, daemonLogLimits } from './daemon-log.js';
import { EventBus } from './events.js';
import { acquireDaemonLock } from './lock.js';
import { MetricsEndpoint } from './metrics.js';
import { loadRegistry, removeStaleTempFiles } from './registry.js';
import { ControlServer, type ExitMode } from './server.js';
import { Supervisor } from './supervisor.js';
import { createContainment } from '../cgroup/index.js';


/** How often the daemon checks that its socket file still exists. */
const SOCKET_CHECK_MS = 2000;
/** How often daemon.log's size is checked (an fstat): it may pass its limit by what is written in between. */
const DAEMON_LOG_CHECK_MS = 1000;
const DAEMON_OOM_SCORE_ADJ = -900;

async function main(): Promise<void> {
  const paths = ensurePrivateHome(resolveHome());
  const table = await createProcessTable();
  refuseBesideAnotherDaemon(paths.home, table);
  const lock = await acquireDaemonLock(paths.home);
  protectFromOomKiller();
  // Left by a daemon killed mid-write; under the lock no other writer is alive.
  const stale = [...removeStaleTempFiles(paths.registry), ...removeStaleTempFiles(paths.dump)];
  const pidFileProblem = writePidFile(paths.pidFile, table);
  const loaded = loadRegistry(paths.registry);
  if (!loaded.ok) {
    throw new AgentpmError(
      'internal',
      `${loaded.problem}. Nothing was changed. Move the file aside to start with an empty registry ` +
        `(its apps' processes may still run; \`agentpm reap\` finds them).`,
    );
  }
  // Bounded: a timer armed for more than 2^31 ms fires after 1 ms, and a tiny tick would spin on /proc.
  const tickMs = Number(process.env['AGENTPM_TICK_MS'] ?? DEFAULT_TICK_MS);
  const events = new EventBus({ file: paths.events });
  // Under the lock: one daemon per home builds and moves into the home's cgroup tree.
  const containment = createContainment(paths.home);
  const supervisor = new Supervisor({ paths, table, events, containment, tickMs: Number.isInteger(tickMs) && tickMs >= 10 && tickMs <= 60_000 ? tickMs : DEFAULT_TICK_MS });
  // A bug in handling one request or one exit must not take supervision of every app down with it.
  // Installed before re-adoption, which already handles exits and connections.
  process.on('uncaughtException', (error) => supervisor.log(null, `uncaught: ${error.stack ?? String(error)}`));
  process.on('unhandledRejection', (error) => supervisor.log(null, `unhandled rejection: ${String((error as Error)?.stack ?? error)}`));
  // Before re-adoption, whose exits count too.
  const metrics = new MetricsEndpoint({ source: supervisor, events, log: (message) => supervisor.log(null, message) });
  let exiting = false;
  const exit = (mode: ExitMode | 'signal'): void => {
    if (exiting) return;
    exiting = true;
    events.emit('daemon', null, null, 'exiting', { pid: process.pid, mode, appsLeftRunning: mode !== 'kill' });
    supervisor.shutdown(mode === 'kill');
    metrics.close();
    server.close();
    rmSync(paths.pidFile, { force: true });
    lock.release();
    // Give the last replies a moment to flush before the process ends.
    setTimeout(() => process.exit(0), 50).unref();
  };
  // Listen first, so that clients connect at once; requests wait until re-adoption is done, which can
  // take a kill timeout when a dead instance left processes behind.
  const restored = supervisor.restore(loaded.registry);
  const server = new ControlServer(paths, supervisor, exit, restored, metrics);
  await server.listen();
  await restored;
  supervisor.startTicking();
  await metrics.apply(loaded.registry.settings?.metrics ?? null);
  const socketCheck = setInterval(() => {
    server.ensureReachable().catch((error: unknown) => supervisor.log(null, `cannot re-create the socket: ${(error as Error).message}`));
    try {
      lock.restoreKeyFile();
    } catch (error) {
      supervisor.log(null, `cannot restore the lock key: ${(error as Error).message}`);
    }
  }, SOCKET_CHECK_MS);
  socketCheck.unref();
  boundDaemonLog(paths.daemonLog, (message) => supervisor.log(null, message));
  process.on('SIGTERM', () => exit('signal'));
  process.on('SIGINT', () => exit('signal'));
  process.on('SIGHUP', () => undefined);
  events.emit('daemon', null, null, 'started', { pid: process.pid, version: VERSION, socket: paths.socket, tickMs: supervisor.tickMs });
  if (pidFileProblem) supervisor.log(null, pidFileProblem);
  if (stale.length > 0) supervisor.log(null, `removed temp files of an interrupted write: ${stale.join(', ')}`);
}

/** Keeps daemon.log under its limit for as long as the daemon runs (see daemon-log.ts); events.log bounds itself (events.ts). */
function boundDaemonLog(path: string, log: (message: string) => void): void {
  const { limits, problem } = daemonLogLimits();
  if (problem !== null) log(problem);
  const bound = new DaemonLogBound(path, limits);
  let lastFailure: string | null = null;
  const check = (): void => {
    try {
      bound.check();
      lastFailure = null;
    } catch (error) {
      // Said once per kind of failure, not every second (the log is what cannot be rotated).
      const message = `cannot rotate ${path}: ${(error as Error).message}; it keeps growing until this is fixed`;
      if (message !== lastFailure) log(message);
      lastFailure = message;
    }
  };
  check();
  setInterval(check, DAEMON_LOG_CHECK_MS).unref();
}

/**
 * The lock's name comes from a key in the home; a home deleted and re-created under a running daemon
 * has a new key, and so a free name, until that daemon puts its key back (every 2 s). An older daemon of
 * this home seen in /proc serves it (or is about to): this one leaves, as if the lock were taken. Only
 * older ones count, so that of two daemons starting at once, which see each other, one goes on.
 */
function refuseBesideAnotherDaemon(home: string, table: ProcessTable): void {
  const self = table.read(process.pid);
  if (!self) return;
  const older = (proc: ProcInfo): boolean => proc.startTime < self.startTime || (proc.startTime === self.startTime && proc.pid < self.pid);
  for (const proc of table.scan().byPid.values()) {
    if (proc.pid === process.pid || !isAlive(proc) || !older(proc) || table.tags(proc)?.home !== home || !isAgentpmDaemon(proc, table)) continue;
    throw new AgentpmError('daemon-running', `another agentpm daemon already serves ${home} (pid ${proc.pid}); use \`agentpm daemon status\``);
  }
}

/**
 * The supervisor should be the last process the kernel's OOM killer picks: lower our own score as far as
 * privileges allow (root can; others cannot lower it and keep the default). Apps are reset at spawn.
 */
function protectFromOomKiller(): void {
  try {
    if (Number(readFileSync('/proc/self/oom_score_adj', 'latin1')) > DAEMON_OOM_SCORE_ADJ) writeFileSync('/proc/self/oom_score_adj', String(DAEMON_OOM_SCORE_ADJ));
  } catch {
    // not permitted, or not Linux
  }
}

/** Lets a CLI of another protocol version find and replace this daemon (see `agentpm daemon restart`). */
/** Best effort: a daemon on a full disk must still start and adopt its apps. Returns why it failed. */
function writePidFile(path: string, table: ProcessTable): string | null {
  try {
    writeOwnedFileAtomic(path, JSON.stringify({ pid: process.pid, startTime: table.read(process.pid)?.startTime ?? null }));
    return null;
  } catch (error) {
    return `cannot write ${path} (${(error as Error).message}); a CLI of another protocol version will not find this daemon`;
  }
}

main().catch((error: unknown) => {
  const message = error instanceof AgentpmError ? `${error.code}: ${error.message}` : String((error as Error)?.stack ?? error);
  process.stderr.write(`agentpm daemon: ${message}\n`);
  process.exit(error instanceof AgentpmError && error.code === 'daemon-running' ? 3 : 1);
});
