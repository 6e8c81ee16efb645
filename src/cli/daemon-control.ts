/**
 * Stopping and replacing the daemon. `daemon restart` swaps the daemon process while every app keeps
 * running (apps never depend on the daemon: their output goes to files, and the new daemon re-adopts
 * them by pid + start time + tag). A daemon that speaks another protocol cannot be asked over the
 * socket, so it is found through its pid file and sent SIGTERM, which means the same: exit, leave the
 * apps running.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentpmError } from '../errors.js';
import type { HomePaths } from '../home.js';
import type { DaemonStatus } from '../protocol.js';
import { readOwnedFile } from '../safe-files.js';
import { DaemonClient } from './client.js';

/** Waits (bounded) until a pid is gone. Signal 0 sends nothing: it only asks whether the pid exists. */
export async function waitForExit(pid: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await sleep(20);
  }
  return false;
}

export async function connectIfRunning(paths: HomePaths): Promise<DaemonClient | null> {
  try {
    return await DaemonClient.connect(paths, { autostart: false });
  } catch (error) {
    if (error instanceof AgentpmError && error.code === 'daemon-unreachable') return null;
    throw error;
  }
}

/** Stops the daemon, leaving apps running. Returns the pid that was stopped, or null if none ran. */
export async function stopDaemon(paths: HomePaths): Promise<number | null> {
  let client: DaemonClient | null;
  try {
    client = await connectIfRunning(paths);
  } catch (error) {
    if (error instanceof AgentpmError && error.code === 'protocol-mismatch') return stopByPidFile(paths);
    throw error;
  }
  if (!client) return null;
  let status: DaemonStatus;
  try {
    status = await client.request({ type: 'status' });
    if (status.supervisedBy) {
      throw new AgentpmError(
        'invalid-argument',
        `this daemon runs under ${status.supervisedBy} (pid ${status.pid}); stop or restart it there (systemctl [--user] restart agentpm), ` +
          'which with KillMode=control-group also restarts the apps, so nothing is left behind',
      );
    }
    await client.request({ type: 'daemon-stop' });
  } finally {
    client.close();
  }
  if (!(await waitForExit(status.pid))) throw new AgentpmError('stop-failed', `the daemon (pid ${status.pid}) did not exit within 5 s; see ${paths.daemonLog}`);
  return status.pid;
}

async function stopByPidFile(paths: HomePaths): Promise<number> {
  let recorded: { pid: number; startTime: number | null };
  try {
    recorded = JSON.parse(readOwnedFile(paths.pidFile).toString('utf8')) as typeof recorded;
  } catch {
    throw new AgentpmError('daemon-unreachable', `the daemon speaks another protocol and ${paths.pidFile} is unreadable; stop it by hand (kill <pid>, apps keep running)`);
  }
  const { createProcessTable } = await import('../proc/platform.js');
  const table = await createProcessTable();
  const proc = table.read(recorded.pid);
  const tags = proc ? table.tags(proc) : null;
  // Identity before the signal: the same process (start time) and an agentpm daemon of this home.
  if (!proc || proc.startTime !== recorded.startTime || tags?.home !== paths.home || !table.cmdline(proc).includes('daemon/main.js')) {
    throw new AgentpmError('daemon-unreachable', `the pid file names pid ${recorded.pid}, which is not this home's daemon any more; nothing was signalled`);
  }
  process.kill(recorded.pid, 'SIGTERM');
  if (!(await waitForExit(recorded.pid))) throw new AgentpmError('stop-failed', `the daemon (pid ${recorded.pid}) did not exit within 5 s`);
  return recorded.pid;
}
