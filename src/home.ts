/**
 * AGENTPM_HOME and the files in it. The home holds the socket, the registry (which includes the apps'
 * environments) and the logs, so it must be private to its user.
 */
import { mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentpmError } from './errors.js';

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

export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env['AGENTPM_HOME'];
  return resolve(configured && configured !== '' ? configured : join(homedir(), '.agentpm'));
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

/** Creates the home (0700) if needed and refuses one that another user could tamper with. */
export function ensurePrivateHome(home: string): HomePaths {
  const paths = homePaths(home);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const info = statSync(home);
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new AgentpmError(
      'home-unsafe',
      `${home} is owned by uid ${info.uid}, not by you (uid ${uid}); agentpm keeps its socket and app environments there. ` +
        `Use a home of your own (set AGENTPM_HOME) or fix the owner (chown).`,
    );
  }
  if ((info.mode & 0o022) !== 0) {
    throw new AgentpmError(
      'home-unsafe',
      `${home} is writable by group or others (mode ${(info.mode & 0o777).toString(8)}); another user could take over the socket. ` +
        `Run: chmod 700 ${home}`,
    );
  }
  mkdirSync(paths.logs, { recursive: true, mode: 0o700 });
  return paths;
}
