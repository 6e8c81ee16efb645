/**
 * What a reap must never touch, whatever matched: the reaper and its ancestors, the caller and its
 * ancestors, every live agentpm daemon of any home, and the processes of a home whose live daemon is
 * not this reaper. That daemon answers for its home: its registry in memory (instances it just started,
 * instances whose root exited while their tree is being stopped, instances held unproven) is ahead of
 * the registry file another reaper would read, so another home's point of view can only get it wrong.
 *
 * The caller comes from the request: Node cannot read a Unix socket peer's credentials, so the CLI
 * sends its pid and start time and the daemon checks them against /proc. A claim that names no such
 * process is refused: reaping with the real caller unprotected is never the fallback.
 */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { AgentpmError } from '../errors.js';
import { homePaths, resolveHome } from '../home.js';
import type { ProcessRef } from '../protocol.js';
import { readOwnedFile } from '../safe-files.js';
import { isAlive, type ProcInfo, type ProcSnapshot, type ProcessTable } from '../proc/table.js';
import { createProcessTable } from '../proc/platform.js';

/** The daemon's entry point on its command line (dist/daemon/main.js; main.ts when run from source). */
const DAEMON_MAIN = /(?:^|[/\s])daemon\/main\.[cm]?[jt]s(?:\s|$)/;
/** The log relay's entry point (dist/logs/relay/main.js). */
const RELAY_MAIN = /(?:^|[/\s])logs\/relay\/main\.[cm]?[jt]s(?:\s|$)/;

export interface ReapGuard {
  /** Never listed, never signalled. */
  readonly protectedPids: ReadonlySet<number>;
  /** Whether processes tagged with this home may be listed by this reap. */
  homeAllowed(home: string): boolean;
  /**
   * Not protected, not a daemon, not of a home this reap may not touch. `fresh` (the last check before a
   * signal) re-reads the environment and command line instead of trusting the cache.
   */
  allows(proc: ProcInfo, fresh?: boolean): boolean;
}

export interface GuardOptions {
  /** The home this reap is for. */
  home: string;
  /** True when this home's daemon does the reap: then its own home's live daemon is the reaper. */
  daemon: boolean;
  allHomes: boolean;
  /** The reaper's own processes (the daemon, or the CLI): they and their ancestors are protected. */
  reaperPids: readonly number[];
  /** The verified caller (see verifyCaller): it and its ancestors are protected. */
  caller: ProcessRef;
  uid: number | null;
}

/** The pid and every ancestor of it: a reaper must never end its own caller's chain. */
export function ancestry(snapshot: ProcSnapshot, pid: number): Set<number> {
  const chain = new Set<number>();
  for (let current = snapshot.byPid.get(pid); current && !chain.has(current.pid); current = snapshot.byPid.get(current.ppid)) {
    chain.add(current.pid);
  }
  return chain;
}

/** This process as a reap request's caller (the CLI, the TUI), from /proc/self. */
export async function selfRef(): Promise<ProcessRef> {
  const self = (await createProcessTable()).read(process.pid);
  if (!self) throw new AgentpmError('internal', `cannot read /proc/${process.pid}/stat: without it a reap could not protect its caller`);
  return { pid: self.pid, startTime: self.startTime };
}

/** Refuses a caller that is not, right now, the live process of this user the request says it is. */
export function verifyCaller(snapshot: ProcSnapshot, table: ProcessTable, caller: ProcessRef, uid: number | null): void {
  const proc = snapshot.byPid.get(caller.pid);
  const fix = 'nothing was listed or ended; run `agentpm reap` again (an agentpm CLI of this version fills the caller in itself)';
  if (!proc || !isAlive(proc)) throw new AgentpmError('invalid-argument', `the reap request's caller (pid ${caller.pid}) is not running: ${fix}`);
  if (proc.startTime !== caller.startTime) {
    throw new AgentpmError('invalid-argument', `the reap request's caller (pid ${caller.pid}) has start time ${proc.startTime}, not ${caller.startTime} as claimed (another process holds that pid now): ${fix}`);
  }
  if (uid !== null && table.uid(proc) !== uid) throw new AgentpmError('invalid-argument', `the reap request's caller (pid ${caller.pid}) is another user's process: ${fix}`);
}

/**
 * An agentpm daemon, of any home, by its command line. Never an orphan, whatever its parent. Every
 * daemon agentpm starts carries AGENTPM_HOME; one started by hand without it is still a node process:
 * other processes' command lines are not read (nor cached by the daemon).
 */
export function isAgentpmDaemon(proc: ProcInfo, table: ProcessTable, fresh = false): boolean {
  const tags = table.tags(proc, fresh);
  if (tags?.instance) return false;
  if (!tags?.home && !/node/i.test(proc.comm)) return false;
  return DAEMON_MAIN.test(table.cmdline(proc, fresh));
}

/**
 * A log relay of any home (logs/relay/), by its command line, as a daemon is recognised: agentpm's own,
 * never an orphan and never signalled by a reap, whatever its parent (it outlives the daemon that
 * started it, reparented to init) and whatever a --match pattern says.
 */
export function isAgentpmRelay(proc: ProcInfo, table: ProcessTable, fresh = false): boolean {
  const tags = table.tags(proc, fresh);
  if (tags?.instance) return false;
  if (!tags?.home && !/node/i.test(proc.comm)) return false;
  return RELAY_MAIN.test(table.cmdline(proc, fresh));
}

type DaemonState = { state: 'live'; pid: number | null } | { state: 'none' } | { state: 'unknown'; why: string };

/**
 * Whether `home` has a live daemon, from its pid file (written by the daemon with its pid and start
 * time): the file and the home must be this user's, and the process it names must still be that process
 * (start time), an agentpm daemon by its command line, and of this home by its AGENTPM_HOME.
 */
export function daemonOf(home: string, table: ProcessTable, uid: number | null): DaemonState {
  if (!isAbsolute(home)) return { state: 'unknown', why: 'not an absolute path' };
  try {
    if (uid !== null && statSync(home).uid !== uid) return { state: 'unknown', why: 'another user owns it' };
  } catch {
    return { state: 'unknown', why: 'it does not exist' };
  }
  const file = homePaths(home).pidFile;
  let recorded: unknown;
  try {
    // A regular file of this user's, not followed through a symlink (else: unknown, the home left alone).
    recorded = JSON.parse(readOwnedFile(file).toString('utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'none' };
    return { state: 'unknown', why: `${file}: ${(error as Error).message}` };
  }
  const { pid, startTime } = (recorded ?? {}) as { pid?: unknown; startTime?: unknown };
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1) return { state: 'unknown', why: `${file} names no pid` };
  const proc = table.read(pid);
  if (!proc || !isAlive(proc) || (typeof startTime === 'number' && proc.startTime !== startTime)) return { state: 'none' };
  if (!isAgentpmDaemon(proc, table, true)) return { state: 'none' };
  // A daemon started by hand without AGENTPM_HOME serves the default home.
  const tagged = table.tags(proc, true)?.home ?? defaultHome();
  return tagged !== null && sameHome(tagged, home) ? { state: 'live', pid } : { state: 'none' };
}

function defaultHome(): string | null {
  try {
    return resolveHome({});
  } catch {
    return null; // a default home that is not trusted serves no daemon of ours
  }
}

function sameHome(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The guard for one reap over `snapshot`. Throws when this reap runs beside a live daemon of its own
 * home that is not the reaper (the CLI alone, while the daemon lives but did not answer).
 */
export function guardReap(snapshot: ProcSnapshot, table: ProcessTable, options: GuardOptions): ReapGuard {
  const protectedPids = new Set<number>([1]);
  for (const pid of [...options.reaperPids, options.caller.pid]) for (const ancestor of ancestry(snapshot, pid)) protectedPids.add(ancestor);

  // Daemons by their command line, a daemon without a pid file included, and the homes they serve.
  const daemonHomes = new Set<string>();
  const homesSeen = new Set<string>([options.home]);
  for (const proc of snapshot.byPid.values()) {
    if (!isAlive(proc)) continue;
    const home = table.tags(proc)?.home;
    if (home) homesSeen.add(home);
    if (isAgentpmRelay(proc, table)) protectedPids.add(proc.pid);
    if (!isAgentpmDaemon(proc, table)) continue;
    protectedPids.add(proc.pid);
    if (home && isAbsolute(home)) daemonHomes.add(resolve(home));
  }

  const states = new Map<string, DaemonState>();
  const stateOf = (home: string): DaemonState => {
    let state = states.get(home);
    if (!state) {
      state = daemonOf(home, table, options.uid);
      if (state.state !== 'live' && isAbsolute(home) && daemonHomes.has(resolve(home))) state = { state: 'live', pid: null };
      states.set(home, state);
    }
    return state;
  };
  for (const home of homesSeen) stateOf(home);
  const own = stateOf(options.home);
  if (own.state === 'live' && !options.daemon) {
    throw new AgentpmError(
      'daemon-running',
      `the daemon of ${options.home}${own.pid !== null ? ` (pid ${own.pid})` : ''} is running but did not answer; reaping beside it could end what it has just started. ` +
        `Nothing was listed or ended. Try again, or see ${homePaths(options.home).daemonLog}`,
    );
  }

  const homeAllowed = (home: string): boolean => home === options.home || (options.allHomes && stateOf(home).state === 'none');
  return {
    protectedPids,
    homeAllowed,
    allows: (proc, fresh = true) => {
      if (protectedPids.has(proc.pid) || isAgentpmDaemon(proc, table, fresh) || isAgentpmRelay(proc, table, fresh)) return false;
      const home = table.tags(proc, fresh)?.home;
      return !home || homeAllowed(home);
    },
  };
}
