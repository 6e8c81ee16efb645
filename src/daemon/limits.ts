/**
 * Whole-tree limits, pure: given a tree's figures at one tick and what was seen at the ticks before,
 * decide whether to act. An agent's cost is its tree's: the limits count every descendant, not the
 * main pid (PM2 watches the main pid only, and never restarted a 556 MB tree under a 200 MB limit).
 */
import type { AppSpec, ExitReason } from '../protocol.js';
import type { ProcessFigures, TreeFigures } from './monitor.js';

export type LimitReason = Extract<ExitReason, 'memory-limit' | 'children-limit'>;

export interface BreachState {
  /** Consecutive ticks over each limit. */
  memoryTicks: number;
  childrenTicks: number;
  /** Children at the previous tick, to see a tree that is forking fast. */
  previousChildren: number | null;
  /** A kill-offender action was taken for this breach: if it persists, restart instead. */
  offenderTried: Record<LimitReason, boolean>;
}

export const FRESH_BREACH_STATE: BreachState = {
  memoryTicks: 0,
  childrenTicks: 0,
  previousChildren: null,
  offenderTried: { 'memory-limit': false, 'children-limit': false },
};

export type LimitDecision =
  | { kind: 'none' }
  | { kind: 'restart' | 'contain'; reason: LimitReason; measured: number; limit: number }
  | { kind: 'kill-offender'; reason: LimitReason; measured: number; limit: number; victims: ProcessFigures[] };

export type LimitSpec = Pick<AppSpec, 'maxMemoryBytes' | 'maxChildren' | 'memoryBreachTicks' | 'childrenBreachTicks' | 'onLimit'>;

/**
 * A children breach is a fork storm when the tree is far over the limit or still growing fast: then it
 * is frozen and killed at once rather than given a grace period in which it would keep forking.
 */
export function isForkStorm(children: number, previous: number | null, limit: number): boolean {
  const farOver = children >= Math.ceil(limit * 1.5) && children - limit >= 3;
  const growth = previous === null ? 0 : children - previous;
  return farOver || growth >= Math.max(3, Math.ceil(limit / 10));
}

export function evaluateLimits(spec: LimitSpec, figures: TreeFigures, state: BreachState): { state: BreachState; decision: LimitDecision } {
  const overChildren = spec.maxChildren !== null && figures.children > spec.maxChildren;
  const overMemory = spec.maxMemoryBytes !== null && figures.memory > spec.maxMemoryBytes;
  const next: BreachState = {
    memoryTicks: overMemory ? state.memoryTicks + 1 : 0,
    childrenTicks: overChildren ? state.childrenTicks + 1 : 0,
    previousChildren: figures.children,
    offenderTried: {
      'memory-limit': overMemory && state.offenderTried['memory-limit'],
      'children-limit': overChildren && state.offenderTried['children-limit'],
    },
  };

  if (overChildren && spec.maxChildren !== null) {
    const limit = spec.maxChildren;
    const measured = figures.children;
    if (isForkStorm(measured, state.previousChildren, limit)) return { state: next, decision: { kind: 'contain', reason: 'children-limit', measured, limit } };
    if (next.childrenTicks >= spec.childrenBreachTicks) {
      return { state: reset(next, 'children-limit'), decision: decide(spec, 'children-limit', measured, limit, newestDescendants(figures, measured - limit), next) };
    }
  }
  if (overMemory && spec.maxMemoryBytes !== null && next.memoryTicks >= spec.memoryBreachTicks) {
    // Ending the largest descendant only helps if the tree is then under the limit; otherwise the
    // breach is the root's own and only a restart ends it.
    const largest = largestDescendant(figures);
    const helps = largest.some((item) => figures.memory - subtreeMemory(figures, item) <= (spec.maxMemoryBytes as number));
    return { state: reset(next, 'memory-limit'), decision: decide(spec, 'memory-limit', figures.memory, spec.maxMemoryBytes, helps ? largest : [], next) };
  }
  return { state: next, decision: { kind: 'none' } };
}

function decide(spec: LimitSpec, reason: LimitReason, measured: number, limit: number, victims: ProcessFigures[], state: BreachState): LimitDecision {
  if (spec.onLimit === 'kill-offender' && !state.offenderTried[reason] && victims.length > 0) {
    return { kind: 'kill-offender', reason, measured, limit, victims };
  }
  return { kind: 'restart', reason, measured, limit };
}

/** After acting, the breach must be seen for the full number of ticks again before the next action. */
function reset(state: BreachState, reason: LimitReason): BreachState {
  return {
    ...state,
    memoryTicks: reason === 'memory-limit' ? 0 : state.memoryTicks,
    childrenTicks: reason === 'children-limit' ? 0 : state.childrenTicks,
    offenderTried: { ...state.offenderTried, [reason]: true },
  };
}

/** The descendant holding the most memory; never the root (killing it is a restart). */
export function largestDescendant(figures: TreeFigures): ProcessFigures[] {
  const root = rootOf(figures);
  const candidates = figures.members.filter((item) => item !== root);
  const largest = candidates.sort((a, b) => b.memory - a.memory)[0];
  return largest ? [largest] : [];
}

/** The `count` most recently started descendants: the excess, not the long-lived MCP servers. */
export function newestDescendants(figures: TreeFigures, count: number): ProcessFigures[] {
  const root = rootOf(figures);
  return figures.members
    .filter((item) => item !== root)
    .sort((a, b) => b.proc.startTime - a.proc.startTime || b.proc.pid - a.proc.pid)
    .slice(0, Math.max(0, count));
}

/** Memory of a member and everything below it: what ending it (its subtree goes too) gives back. */
function subtreeMemory(figures: TreeFigures, top: ProcessFigures): number {
  const below = new Map<number, ProcessFigures[]>();
  for (const item of figures.members) below.set(item.proc.ppid, [...(below.get(item.proc.ppid) ?? []), item]);
  let total = 0;
  const queue = [top];
  for (let next = queue.pop(); next; next = queue.pop()) {
    total += next.memory;
    queue.push(...(below.get(next.proc.pid) ?? []));
  }
  return total;
}

function rootOf(figures: TreeFigures): ProcessFigures | undefined {
  return figures.members.find((item) => item.proc.pid === figures.rootPid);
}
