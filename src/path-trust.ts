/**
 * Whether a directory can be trusted to stay what it was when it was checked. The home holds the
 * socket the CLI sends the caller's environment to, and the files a daemon (perhaps root's) writes;
 * anyone who can replace a directory on the way to it, or retarget a symlink on the way, decides what
 * the CLI talks to and where the daemon writes, at any moment after a check.
 *
 * The rule, for every component from `/` down to the directory (symlinks followed, each checked):
 * - a directory on the way must be owned by root or the caller, and not writable by group or others
 *   unless it has the sticky bit (like /tmp, mode 1777): in a sticky directory others can add entries
 *   but cannot rename or remove ours, and the entry we go through next is checked itself;
 * - a symlink on the way must be owned by root or the caller. Its directory passed the rule above, so
 *   only its owner can replace it; another user's symlink (in a sticky directory such as /tmp) can be
 *   pointed elsewhere right after the check, which is as bad as a directory of theirs;
 * - the directory itself must be owned by the caller and not writable by group or others at all,
 *   sticky or not: anyone who can add an entry there can plant a socket or a log file;
 * - group-writable counts as writable even when the group is the caller's own private group: agentpm
 *   cannot tell who else is in it.
 * Components that do not exist yet pass: the home is created 0700 and then checked again.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { AgentpmError } from './errors.js';

/** Linux gives up after 40 symlinks in one lookup; so do we, rather than loop on a cycle. */
const MAX_SYMLINKS = 40;

export interface EntryInfo {
  kind: 'directory' | 'symlink' | 'other';
  uid: number;
  mode: number;
}

/** 'ancestor': a component on the way; 'target': the directory agentpm keeps its files in. */
export type Role = 'ancestor' | 'target';

export type Problem = 'foreign-owner' | 'writable' | 'foreign-symlink' | 'not-directory';

/** The pure rule (see the module comment): null when the entry is acceptable in that role. */
export function judgeEntry(entry: EntryInfo, role: Role, callerUid: number): Problem | null {
  const ownOrRoot = entry.uid === callerUid || entry.uid === 0;
  if (entry.kind === 'symlink') {
    if (!ownOrRoot) return 'foreign-symlink';
    // The walk follows symlinks on the way; one in place of the target appeared after it looked.
    return role === 'ancestor' ? null : 'not-directory';
  }
  if (entry.kind !== 'directory') return 'not-directory';
  if (role === 'target') {
    if (entry.uid !== callerUid) return 'foreign-owner';
    return (entry.mode & 0o022) !== 0 ? 'writable' : null;
  }
  if (!ownOrRoot) return 'foreign-owner';
  const sticky = (entry.mode & 0o1000) !== 0;
  return (entry.mode & 0o022) !== 0 && !sticky ? 'writable' : null;
}

export interface TrustOptions {
  /** What the directory is for, to say in messages: "agentpm's home", "the app log directory". */
  what: string;
  /** The fix for a target writable by others, e.g. `chmod 700 <dir>`. */
  chmodFix?: string;
  /** Tests and callers that know better; defaults to this process's uid. */
  uid?: number;
}

/**
 * Walks `path` from `/`, checking every component with judgeEntry and following trusted symlinks, and
 * returns the real path: from then on agentpm uses only it, so no symlink is followed again. Throws
 * `home-unsafe` with the fix otherwise. Where the path stops existing, the rest is appended as given.
 */
export function trustedRealPath(path: string, options: TrustOptions): string {
  const absolute = resolve(path);
  const uid = options.uid ?? process.getuid?.();
  if (uid === undefined) return absolute; // no uids (Windows): nothing to compare against
  judge('/', lstatOrThrow('/', absolute, options), 'ancestor', uid, absolute, options);
  const pending = absolute.split('/').filter((part) => part !== '');
  let current = '/';
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '.') continue;
    if (name === '..') {
      current = dirname(current);
      continue;
    }
    const next = join(current, name);
    const info = lstatOrNull(next, absolute, options);
    if (info === null) return resolve(next, ...pending);
    if (info.isSymbolicLink()) {
      judge(next, info, 'ancestor', uid, absolute, options);
      links += 1;
      if (links > MAX_SYMLINKS) {
        throw new AgentpmError('home-unsafe', `${absolute} cannot be resolved: more than ${MAX_SYMLINKS} symlinks (a cycle?). Set AGENTPM_HOME to a real directory.`);
      }
      const target = readlinkSync(next);
      if (isAbsolute(target)) current = '/';
      pending.unshift(...target.split('/').filter((part) => part !== ''));
      continue;
    }
    // The last component is judged as the target below (also when `..` in a symlink ends elsewhere).
    if (pending.length > 0) judge(next, info, 'ancestor', uid, absolute, options);
    current = next;
  }
  judge(current, lstatOrThrow(current, absolute, options), 'target', uid, absolute, options);
  return current;
}

function entryOf(info: Stats): EntryInfo {
  const kind = info.isSymbolicLink() ? 'symlink' : info.isDirectory() ? 'directory' : 'other';
  return { kind, uid: info.uid, mode: info.mode };
}

function judge(path: string, info: Stats, role: Role, uid: number, subject: string, options: TrustOptions): void {
  const problem = judgeEntry(entryOf(info), role, uid);
  if (problem === null) return;
  const mode = (info.mode & 0o7777).toString(8);
  const own = 'set AGENTPM_HOME to a directory of your own';
  let message: string;
  switch (problem) {
    case 'foreign-symlink':
      message =
        `${subject} is not safe for ${options.what}: ${path} is a symlink owned by uid ${info.uid}, who can point it elsewhere at any time. ` +
        `Use a path without it: ${own}.`;
      break;
    case 'not-directory':
      message = `${subject} cannot be used for ${options.what}: ${path} is not a directory. Remove it or ${own}.`;
      break;
    case 'foreign-owner':
      message =
        role === 'target'
          ? `${path} is owned by uid ${info.uid}, not by you (uid ${uid}); it holds ${options.what}. ${capitalize(own)}, or fix the owner: chown ${uid} ${path}`
          : `${subject} is not safe for ${options.what}: ${path} is owned by uid ${info.uid}, not by you (uid ${uid}) or root, so that user can replace what is under it. ` +
            `${capitalize(own)}, or fix the owner: chown ${uid} ${path}`;
      break;
    case 'writable':
      message =
        role === 'target'
          ? `${path} is writable by group or others (mode ${mode}); it holds ${options.what}, and another user could plant files in it. Run: ${options.chmodFix ?? `chmod 700 ${path}`}`
          : `${subject} is not safe for ${options.what}: ${path} is writable by group or others (mode ${mode}) without the sticky bit, so another user can replace what is under it. ` +
            `Run: chmod go-w ${path} (or ${own})`;
      break;
  }
  throw new AgentpmError('home-unsafe', message);
}

function lstatOrNull(path: string, subject: string, options: TrustOptions): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw cannotCheck(path, subject, options, error);
  }
}

function lstatOrThrow(path: string, subject: string, options: TrustOptions): Stats {
  try {
    return lstatSync(path);
  } catch (error) {
    throw cannotCheck(path, subject, options, error);
  }
}

function cannotCheck(path: string, subject: string, options: TrustOptions, error: unknown): AgentpmError {
  return new AgentpmError('home-unsafe', `cannot check ${subject} for ${options.what}: ${path}: ${(error as Error).message}. Set AGENTPM_HOME to a directory of your own.`);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
