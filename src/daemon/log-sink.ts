/**
 * Where a new instance's stdout and stderr go: two FIFOs the relay reads (rotated, stamped files), or,
 * when the relay cannot be used, the log files themselves opened O_APPEND as before the relay existed
 * (then they grow unrotated, and `show` and `daemon status` say why).
 */
import { appLogPaths } from '../home.js';
import type { FlushResult, LogPolicy } from '../protocol.js';
import { truncateStreamFiles } from '../logs/maintenance.js';
import { openOwnedFiles } from '../safe-files.js';
import { openInstanceFifos } from '../logs/fifo.js';
import type { RelayLink } from './relay-link.js';
import { closeSync } from 'node:fs';

export interface LogSink {
  out: number;
  err: number;
  /** Null: through the relay. Otherwise why the files are written directly. */
  notRotatedWhy: string | null;
  /** Closes the daemon's descriptors once the instance holds its own (or failed to start). */
  release(): void;
}

export async function openLogSink(relay: RelayLink, home: string, app: string, instance: string, policy: LogPolicy): Promise<LogSink> {
  // Opened (and created) here either way: a log file planted as a symlink or another user's file fails
  // the start with its fix, as it did before the relay, rather than cost the app its logs silently.
  const logs = appLogPaths(home, app);
  const [out, err] = openOwnedFiles([logs.out, logs.err], 'append') as [number, number];
  let why: LogSink | string;
  try {
    why = await throughRelay(relay, home, app, instance, policy);
  } catch (error) {
    why = (error as Error).message;
  }
  if (typeof why !== 'string') {
    closeSync(out);
    closeSync(err);
    return why;
  }
  return {
    out,
    err,
    notRotatedWhy: why,
    release: () => {
      closeSync(out);
      closeSync(err);
    },
  };
}

async function throughRelay(relay: RelayLink, home: string, app: string, instance: string, policy: LogPolicy): Promise<LogSink | string> {
  const connected = await relay.ensure();
  if (typeof connected === 'string') return connected;
  let fifos;
  try {
    fifos = await openInstanceFifos(home, app, instance);
  } catch (error) {
    return (error as Error).message;
  }
  try {
    await relay.request({ type: 'policy', policies: { [app]: policy } });
    await relay.request({ type: 'attach', fifos: fifos.paths });
  } catch (error) {
    fifos.discard();
    return `the log relay did not attach the instance's FIFOs: ${(error as Error).message}`;
  }
  const [out, err] = fifos.fds;
  return { out, err, notRotatedWhy: null, release: () => fifos.close() };
}

/** `agentpm flush`: by the relay, which owns the files; by the daemon itself when there is none. */
export async function flushLogs(relay: RelayLink, home: string, names: string[], log: (message: string) => void): Promise<FlushResult> {
  try {
    await relay.request({ type: 'flush', apps: names });
    return { apps: names, by: 'relay' };
  } catch (error) {
    log(`flush without the relay (${(error as Error).message})`);
  }
  for (const name of names) {
    const paths = appLogPaths(home, name);
    truncateStreamFiles(paths.out);
    truncateStreamFiles(paths.err);
  }
  return { apps: names, by: 'daemon' };
}
