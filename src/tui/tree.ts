/**
 * An app's process list (from `show`) laid out as an indented tree. Linear in the number of processes,
 * so an app with hundreds of them costs one pass per change, not per frame.
 */
import type { TreeProcess } from '../protocol.js';
import type { Glyphs } from './format.js';

export interface TreeRow {
  pid: number;
  rss: number;
  cpu: number;
  cmd: string;
  depth: number;
  /** The drawing in front of the command: continuation lines of the ancestors, then the branch. */
  prefix: string;
}

/**
 * Depth-first, children in pid order. Processes whose parent is not in the list (the root, and
 * members that were reparented to init or called setsid) are top-level rows, the app's root first.
 */
export function layoutTree(procs: readonly TreeProcess[], rootPid: number | null, glyphs: Glyphs): TreeRow[] {
  const byPid = new Map<number, TreeProcess>();
  for (const proc of procs) byPid.set(proc.pid, proc);
  const children = new Map<number, TreeProcess[]>();
  const roots: TreeProcess[] = [];
  for (const proc of byPid.values()) {
    if (proc.ppid !== proc.pid && byPid.has(proc.ppid)) {
      const siblings = children.get(proc.ppid);
      if (siblings) siblings.push(proc);
      else children.set(proc.ppid, [proc]);
    } else {
      roots.push(proc);
    }
  }
  for (const siblings of children.values()) siblings.sort((a, b) => a.pid - b.pid);
  roots.sort((a, b) => (a.pid === rootPid ? -1 : b.pid === rootPid ? 1 : a.pid - b.pid));

  const rows: TreeRow[] = [];
  const placed = new Set<number>();
  const walk = (top: TreeProcess): void => {
    // Iterative, so a pathologically deep chain cannot overflow the stack.
    const stack: { proc: TreeProcess; depth: number; lead: string; last: boolean }[] = [{ proc: top, depth: 0, lead: '', last: true }];
    while (stack.length > 0) {
      const { proc, depth, lead, last } = stack.pop()!;
      if (placed.has(proc.pid)) continue;
      placed.add(proc.pid);
      const prefix = depth === 0 ? '' : lead + (last ? glyphs.lastBranch : glyphs.branch);
      rows.push({ pid: proc.pid, rss: proc.rss, cpu: proc.cpu, cmd: proc.cmd, depth, prefix });
      const kids = children.get(proc.pid) ?? [];
      const childLead = depth === 0 ? '' : lead + (last ? ' '.repeat(glyphs.pipe.length) : glyphs.pipe);
      for (let index = kids.length - 1; index >= 0; index -= 1) {
        const kid = kids[index]!;
        stack.push({ proc: kid, depth: depth + 1, lead: childLead, last: index === kids.length - 1 });
      }
    }
  };
  for (const root of roots) walk(root);
  // Only a parent cycle (impossible from one /proc scan, but the list comes over a socket) is left.
  for (const proc of byPid.values()) if (!placed.has(proc.pid)) walk(proc);
  return rows;
}
