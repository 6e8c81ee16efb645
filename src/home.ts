/**
 * AGENTPM_HOME and the files in it. The home holds the socket, the registry (which includes the apps'
 * environments) and the logs, so it must be private to its user.
 */
import { lstatSync, mkdirSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AgentpmError } from './errors.js';
import { trustedRealPath, type TrustOptions } from './path-trust.js';

const HOME_TRUST: TrustOptions = { what: "agentpm's socket and your apps' environments" };

export interface HomePaths {
  home: string;
  socket: string;
  registry: string;
  daemonLog: string;
  events: string;
  logs: string;
  /** `agentpm save` snapshot of the app list, for `agentpm resurrect`. */
  dump: string;
  /** pid and start time of the running daemon, to replace one that speaks another protocol. */
  pidFile: string;
}

/**
 * The home's real path, checked (see path-trust.ts): no component on the way may be another user's, and
 * a symlink on the way is followed once, here, so that the daemon's lock, its socket and the tags on
 * every app's processes all name the one real directory however the home was reached. Throws
 * `home-unsafe` with the fix. A home that does not exist yet is returned as it will be created.
 */
export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env['AGENTPM_HOME'];
  return trustedRealPath(configured && configured !== '' ? configured : join(homedir(), '.agentpm'), HOME_TRUST);
}

export function homePaths(home: string): HomePaths {
  return {
    home,
    socket: join(home, 'agentpm.sock'),
    registry: join(home, 'registry.json'),
    daemonLog: join(home, 'daemon.log'),
    events: join(home, 'events.log'),
    logs: join(home, 'logs'),
    dump: join(home, 'dump.json'),
    pidFile: join(home, 'daemon.pid'),
  };
}

export function appLogPaths(home: string, app: string): { out: string; err: string } {
  const dir = homePaths(home).logs;
  return { out: join(dir, `${app}.out.log`), err: join(dir, `${app}.err.log`) };
}

/**
 * Creates the home (0700) if needed and refuses one that another user could tamper with, then the same
 * for logs/ (which a daemon of root's appends app output to). Returns the paths under the real home.
 */
export function ensurePrivateHome(home: string): HomePaths {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // Checked after mkdir: a missing component could have been created by someone else in between.
  const paths = homePaths(trustedRealPath(home, HOME_TRUST));
  mkdirSync(paths.logs, { recursive: true, mode: 0o700 });
  trustedRealPath(paths.logs, { what: "your apps' log files, which the daemon appends their output to" });
  return paths;
}

/**
 * What the CLI checks before it connects, since it sends the caller's environment to whatever listens:
 * the home as resolveHome does, and the socket, which must be a socket of the caller's own (a symlink,
 * or a socket another user made while the home was open to them, would receive it). A missing
 * socket passes: no daemon runs, and one is started or reported.
 */
export function checkBeforeConnect(paths: HomePaths): void {
  trustedRealPath(paths.home, HOME_TRUST);
  let info: Stats;
  try {
    info = lstatSync(paths.socket);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AgentpmError('home-unsafe', `cannot check ${paths.socket}: ${(error as Error).message}; nothing was sent to it`);
  }
  const uid = process.getuid?.();
  const problem = info.isSymbolicLink()
    ? 'is a symbolic link, not the socket of an agentpm daemon'
    : !info.isSocket()
      ? 'is not a socket'
      : uid !== undefined && info.uid !== uid
        ? `is a socket owned by uid ${info.uid}, not by you (uid ${uid}): not your agentpm daemon`
        : null;
  if (problem === null) return;
  throw new AgentpmError(
    'home-unsafe',
    `${paths.socket} ${problem}. Nothing was sent to it (agentpm sends your environment to its daemon). ` +
      `Find out how it got there, remove it (rm ${paths.socket}), and run the command again.`,
  );
}
