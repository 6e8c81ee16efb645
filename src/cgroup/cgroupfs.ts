/**
 * The few cgroupfs operations agentpm needs, on directories it created itself: membership, moving a
 * process, freezing, killing, removing. Everything here is synchronous and bounded; a missing directory
 * reads as an empty cgroup.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupDirs, Hierarchy, InstanceCgroup } from './types.js';

/** The directory whose cgroup.procs names the members: the unified one when there is one. */
export function membershipDir(dirs: CgroupDirs): string | null {
  return dirs.unified ?? dirs.freezer ?? dirs.pids ?? dirs.memory ?? dirs.cpu ?? null;
}

/** Member pids (thread-group leaders); null when the cgroup does not exist. */
export function readProcs(dir: string): number[] | null {
  let text: string;
  try {
    text = readFileSync(join(dir, 'cgroup.procs'), 'latin1');
  } catch {
    return null;
  }
  const pids: number[] = [];
  for (const line of text.split('\n')) if (line) pids.push(Number(line));
  return pids;
}

export function membersOf(cgroup: InstanceCgroup): number[] {
  const dir = membershipDir(cgroup.dirs);
  return dir === null ? [] : readProcs(dir) ?? [];
}

/** cgroup.procs of every hierarchy, membership last: once a pid is there, it is in all of them. */
export function procsFiles(dirs: CgroupDirs): string[] {
  const member = membershipDir(dirs);
  const others = Object.values(dirs).filter((dir) => dir !== member);
  return [...others, ...(member ? [member] : [])].map((dir) => join(dir, 'cgroup.procs'));
}

/** Moves one process into `dirs` in every hierarchy; false if it is gone or could not be moved. */
export function moveProcess(pid: number, dirs: CgroupDirs): boolean {
  try {
    for (const file of procsFiles(dirs)) writeFileSync(file, String(pid));
    return true;
  } catch {
    return false;
  }
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}

/** Removes an empty cgroup (its empty children first); false when something still lives there. */
export function removeTree(dir: string): boolean {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
  let empty = true;
  for (const name of entries) empty = removeTree(join(dir, name)) && empty;
  if (!empty) return false;
  try {
    rmdirSync(dir);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Child cgroups of a directory (names); [] when it does not exist. */
export function childGroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** cgroup.kill (v2, kernel 5.14+): SIGKILL to the whole cgroup at once, race-free against forks. */
export function canKillAtOnce(dirs: CgroupDirs): boolean {
  return dirs.unified !== undefined && existsSync(join(dirs.unified, 'cgroup.kill'));
}

export function killAtOnce(dirs: CgroupDirs): boolean {
  if (!dirs.unified) return false;
  try {
    writeFileSync(join(dirs.unified, 'cgroup.kill'), '1');
    return true;
  } catch {
    return false;
  }
}

/** Freezes (or thaws) the cgroup: v2 cgroup.freeze where it exists, else the v1 freezer. */
export function setFrozen(dirs: CgroupDirs, frozen: boolean): boolean {
  try {
    if (dirs.unified && existsSync(join(dirs.unified, 'cgroup.freeze'))) {
      writeFileSync(join(dirs.unified, 'cgroup.freeze'), frozen ? '1' : '0');
      return true;
    }
    if (dirs.freezer) {
      writeFileSync(join(dirs.freezer, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
      return true;
    }
  } catch {
    // gone, or not permitted
  }
  return false;
}

/** Whether the cgroup is frozen (or being frozen): a containment of the previous daemon was cut short. */
export function isFrozen(dirs: CgroupDirs): boolean {
  try {
    if (dirs.unified && existsSync(join(dirs.unified, 'cgroup.freeze'))) return readFileSync(join(dirs.unified, 'cgroup.freeze'), 'latin1').trim() === '1';
    if (dirs.freezer) return readFileSync(join(dirs.freezer, 'freezer.state'), 'latin1').trim() !== 'THAWED';
  } catch {
    // gone
  }
  return false;
}

/** Whether freezing has taken hold (every member stopped), as the kernel reports it. */
export function frozenNow(dirs: CgroupDirs): boolean {
  try {
    if (dirs.unified && existsSync(join(dirs.unified, 'cgroup.freeze'))) return /^frozen 1$/m.test(readFileSync(join(dirs.unified, 'cgroup.events'), 'latin1'));
    if (dirs.freezer) return readFileSync(join(dirs.freezer, 'freezer.state'), 'latin1').trim() === 'FROZEN';
  } catch {
    // gone
  }
  return true;
}

export function dirsEntries(dirs: CgroupDirs): [Hierarchy, string][] {
  return Object.entries(dirs) as [Hierarchy, string][];
}
