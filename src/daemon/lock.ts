/**
 * One daemon per home. On Linux the lock is an abstract Unix socket: binding it is atomic, and the kernel
 * releases it the instant its holder dies, even of SIGKILL, so no stale lock ever needs cleaning (a pid
 * file would, and cleaning it races with a second starter).
 *
 * Abstract names have no owner and no permissions: anyone who can guess one can bind it first and keep
 * the daemon from ever starting. So the name is derived from the home's real path (a home reached through
 * a symlink and through its target is one home, one daemon) and from a random key kept in the private
 * home, which no other user can read. A name already taken is checked: held by one of our own processes,
 * it is another daemon of this home; held by anyone else, the lock was squatted, and the error says so.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, linkSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { AgentpmError } from '../errors.js';
import { readOwnedFile, writeOwnedFileAtomic } from '../safe-files.js';

export interface DaemonLock {
  release(): void;
  /**
   * Puts the key back if the home lost it (deleted and re-created under a running daemon): the next
   * starter must compute this daemon's name, or it would take a lock of its own beside it.
   */
  restoreKeyFile(): void;
}

const KEY_FILE = 'lock.key';

/**
 * What a lock is for: one daemon per home, and one log relay per home (see logs/relay/). Each role has
 * its own name, derived the same way from the home and its key.
 */
export type LockRole = 'daemon' | 'relay';

export async function acquireDaemonLock(home: string): Promise<DaemonLock> {
  return acquireHomeLock(home, 'daemon');
}

export async function acquireHomeLock(home: string, role: LockRole): Promise<DaemonLock> {
  if (process.platform !== 'linux') {
    // Abstract sockets are Linux-only; elsewhere the socket file itself is the (weaker) guard.
    return { release: () => undefined, restoreKeyFile: () => undefined };
  }
  const real = realpathSync(home);
  const key = lockKey(real);
  // The daemon's name is what it always was, so that a daemon of an older agentpm still excludes this one.
  const name = `agentpm-${process.getuid?.() ?? 0}-${createHash('sha256').update(`${real}\0${key}`).digest('hex').slice(0, 32)}${role === 'daemon' ? '' : `-${role}`}`;
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') return reject(error);
      const holder = describeHolder(name);
      reject(
        holder === null
          ? new AgentpmError('daemon-running', `another agentpm ${role === 'daemon' ? 'daemon' : 'log relay'} already serves ${home}; use \`agentpm daemon status\``)
          : new AgentpmError(
              'home-unsafe',
              `the lock of ${home} (abstract socket @${name}) is held by ${holder}, not by an agentpm ${role === 'daemon' ? 'daemon' : 'log relay'} of yours: another user may be ` +
                `keeping agentpm from starting. End that process, or, while no agentpm daemon runs for this home, remove ${join(real, KEY_FILE)} ` +
                `so that the next daemon locks under a new name.`,
            ),
      );
    });
    server.listen(`\0${name}`, () => resolve());
  });
  server.unref();
  const keyFile = join(real, KEY_FILE);
  return {
    release: () => server.close(),
    restoreKeyFile: () => {
      let current: string | null = null;
      try {
        current = readOwnedFile(keyFile).toString('latin1').trim();
      } catch {
        // missing or unusable: written again below
      }
      if (current !== key) writeOwnedFileAtomic(keyFile, key);
    },
  };
}

/** The home's lock key, created once (written in full before it appears under its name, by link()). */
function lockKey(home: string): string {
  const path = join(home, KEY_FILE);
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const key = readOwnedFile(path).toString('latin1').trim();
      if (/^[0-9a-f]{32}$/.test(key)) return key;
      throw new AgentpmError('home-unsafe', `${path} is not an agentpm lock key; remove it (while no agentpm daemon runs for this home)`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const temp = `${path}.${process.pid}.tmp`;
    rmSync(temp, { force: true });
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, randomBytes(16).toString('hex'));
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, path); // fails if another starter's key got there first: then that one is read
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      rmSync(temp, { force: true });
    }
  }
  throw new AgentpmError('home-unsafe', `cannot create the lock key ${path}`);
}

/** null: the holder is ours, or gone (a daemon that was exiting); a description of anyone else. */
function describeHolder(name: string): string | null {
  const holder = foreignHolder(name);
  // A holder not found may have been a daemon of ours that exited a moment ago: look once more.
  return holder === NOT_SEEN ? (foreignHolder(name) === null ? null : NOT_SEEN) : holder;
}

const NOT_SEEN = "a process agentpm cannot see (another user's)";

/**
 * Who holds an abstract socket name, when it is not one of this user's processes: "pid N (uid U)", or
 * NOT_SEEN (another user's, where /proc hides its descriptors). null: ours, or nobody any more.
 */
function foreignHolder(name: string): string | null {
  const inodes = new Set<string>();
  try {
    for (const line of readFileSync('/proc/net/unix', 'latin1').split('\n')) {
      const fields = line.trim().split(/\s+/);
      // Listed with a leading @ for the NUL, and padded with @s: Node binds the whole sun_path.
      if (fields[7]?.replace(/@+$/, '') === `@${name}`) inodes.add(fields[6] ?? '');
    }
  } catch {
    return null; // cannot tell: assume the usual case, a daemon of ours starting
  }
  if (inodes.size === 0) return null;
  const uid = process.getuid?.();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (!match || !inodes.has(match[1] ?? '')) continue;
      let owner: number | null = null;
      try {
        owner = statSync(`/proc/${entry}`).uid;
      } catch {
        // gone meanwhile
      }
      return owner === uid ? null : `pid ${entry} (uid ${owner ?? '?'})`;
    }
  }
  return NOT_SEEN;
}
