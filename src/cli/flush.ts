/**
 * `agentpm flush` with no daemon running: the CLI empties the files itself (with a daemon, the relay
 * does it, since it owns them). Truncating in place is safe beside a relay that outlived its daemon:
 * it appends (O_APPEND) and checks the file's real size before it rotates.
 */
import { AgentpmError } from '../errors.js';
import { appLogPaths, type HomePaths } from '../home.js';
import { appsWithLogs, truncateStreamFiles } from '../logs/maintenance.js';

export function flushWithoutDaemon(paths: HomePaths, app: string | null): string[] {
  const known = appsWithLogs(paths.logs);
  if (app !== null && !known.includes(app)) {
    throw new AgentpmError('unknown-app', `no log files of an app named ${app} in ${paths.logs}${known.length > 0 ? `; apps with logs: ${known.join(', ')}` : ''}`);
  }
  const apps = app === null ? known : [app];
  for (const name of apps) {
    const files = appLogPaths(paths.home, name);
    truncateStreamFiles(files.out);
    truncateStreamFiles(files.err);
  }
  return apps;
}
