/**
 * The tests' own view of cgroupfs, independent of agentpm's code: where a home's tree is
 * (agentpm-<sha256 of the home's real path, 12 hex>), whether any of it is left, and removing what is
 * (members killed by pid: they sit in a cgroup agentpm created for that home, so they are the test's).
 */
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, readdirSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_HOME_PREFIX } from './procs.js';

/** Where the run's tree names are noted, for the leftover check at the end of the suite. */
export const TREE_NAMES_FILE = join(tmpdir(), `${TEST_HOME_PREFIX}cgroup-trees`);
const MAX_DEPTH = 5;

export function treeNameOf(home: string): string {
  let real = home;
  try {
    real = realpathSync(home);
  } catch {
    // gone already
  }
  return `agentpm-${createHash('sha256').update(real).digest('hex').slice(0, 12)}`;
}

export function noteTreeName(home: string): void {
  appendFileSync(TREE_NAMES_FILE, `${treeNameOf(home)}\n`);
}

export function notedTreeNames(): Set<string> {
  try {
    return new Set(readFileSync(TREE_NAMES_FILE, 'utf8').split('\n').filter(Boolean));
  } catch {
    return new Set();
  }
}

/** Mount points of every cgroup hierarchy (v1 controllers and cgroup2). */
export function hierarchies(): string[] {
  return readFileSync('/proc/mounts', 'latin1')
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([, , type]) => type === 'cgroup' || type === 'cgroup2')
    .map(([, point]) => point as string);
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => join(dir, entry.name));
  } catch {
    return [];
  }
}

/** Directories named in `names` in any hierarchy (not looked into), a few levels deep. */
export function findTrees(names: ReadonlySet<string>): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const child of subdirs(dir)) {
      if (names.has(child.slice(child.lastIndexOf('/') + 1))) found.push(child);
      else if (depth < MAX_DEPTH) walk(child, depth + 1);
    }
  };
  for (const root of hierarchies()) walk(root, 1);
  return found;
}

/** Every cgroup at or below `dir`, deepest first. */
export function cgroupsBelow(dir: string): string[] {
  const all = [dir];
  for (let index = 0; index < all.length; index += 1) all.push(...subdirs(all[index] as string));
  return all.reverse();
}

export function procsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'latin1').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kills the members (never this process or pid 1) and removes the tree leaf-first; bounded. */
export async function removeTrees(dirs: string[]): Promise<void> {
  for (let round = 0; round < 100; round += 1) {
    let left = 0;
    for (const dir of dirs) {
      for (const cgroup of cgroupsBelow(dir)) {
        for (const pid of procsIn(cgroup)) {
          if (pid <= 1 || pid === process.pid) continue;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        try {
          rmdirSync(cgroup);
        } catch {
          left += 1;
        }
      }
    }
    if (left === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Removes a home's tree (what a daemon killed by the test left), and forgets its name once it is gone:
 * the list keeps only what the leftover check at the end of the suite must report.
 */
export async function removeTreeOf(home: string): Promise<void> {
  const name = treeNameOf(home);
  await removeTrees(findTrees(new Set([name])));
  if (findTrees(new Set([name])).length > 0) return;
  const left = [...notedTreeNames()].filter((noted) => noted !== name);
  if (left.length > 0) writeFileSync(TREE_NAMES_FILE, `${left.join('\n')}\n`);
  else rmSync(TREE_NAMES_FILE, { force: true });
}
