/**
 * One daemon per home. On Linux the lock is an abstract Unix socket named after the user and the home:
 * binding it is atomic, and the kernel releases it the instant its holder dies, even of SIGKILL, so no
 * stale lock ever needs cleaning (a pid file would, and cleaning it races with a second starter).
 * The name is taken from the home's real path, not the string it was reached by.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { AgentpmError } from '../errors.js';

export interface DaemonLock {
  release(): void;
}

export async function acquireDaemonLock(home: string): Promise<DaemonLock> {
  if (process.platform !== 'linux') {
    // Abstract sockets are Linux-only; elsewhere the socket file itself is the (weaker) guard.
    return { release: () => undefined };
  }
  // The real path: a home reached through a symlink and through its target is one home, one daemon.
  const digest = createHash('sha256').update(realpathSync(home)).digest('hex').slice(0, 24);
  const name = `\0agentpm-${process.getuid?.() ?? 0}-${digest}`;
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new AgentpmError('daemon-running', `another agentpm daemon already serves ${home}; use \`agentpm daemon status\``)
          : error,
      );
    });
    server.listen(name, () => resolve());
  });
  server.unref();
  return { release: () => server.close() };
}
