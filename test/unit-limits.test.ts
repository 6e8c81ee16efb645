import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULTS } from '../src/config/defaults.js';
import {
  evaluateLimits,
  FRESH_BREACH_STATE,
  isForkStorm,
  largestDescendant,
  newestDescendants,
  type BreachState,
  type LimitDecision,
  type LimitSpec,
} from '../src/daemon/limits.js';
import type { ProcessFigures, TreeFigures } from '../src/daemon/monitor.js';
import type { ProcInfo } from '../src/proc/table.js';

const MB = 1024 * 1024;
const ROOT = 100;

function proc(pid: number, fields: Partial<ProcInfo> = {}): ProcInfo {
  return { pid, ppid: ROOT, pgid: ROOT, sid: ROOT, startTime: 1_000 + pid, state: 'S', rssBytes: 0, cpuTicks: 0, comm: `p${pid}`, ...fields };
}

/** One member of a tree; its memory is also its rss. */
function member(pid: number, memory: number, fields: Partial<ProcInfo> = {}): ProcessFigures {
  return { proc: proc(pid, { rssBytes: memory, ...fields }), memory, cpu: 0 };
}

/** Tree figures built the way measureTree builds them: sums over members, children exclude the root. */
function tree(members: ProcessFigures[], rootPid = ROOT): TreeFigures {
  return {
    rootPid,
    memory: members.reduce((sum, item) => sum + item.memory, 0),
    processes: members.length,
    children: members.filter((item) => item.proc.pid !== rootPid).length,
    cpu: 0,
    members,
  };
}

/** A tree with a root of `rootMemory` and `children` descendants of `childMemory` each. */
function sized(rootMemory: number, children = 0, childMemory = 0): TreeFigures {
  const members = [member(ROOT, rootMemory, { ppid: 1, startTime: 500 })];
  for (let index = 0; index < children; index += 1) members.push(member(200 + index, childMemory));
  return tree(members);
}

function spec(fields: Partial<LimitSpec> = {}): LimitSpec {
  return {
    maxMemoryBytes: null,
    maxChildren: null,
    memoryBreachTicks: DEFAULTS.memoryBreachTicks,
    childrenBreachTicks: DEFAULTS.childrenBreachTicks,
    onLimit: DEFAULTS.onLimit,
    ...fields,
  };
}

/** Feeds one tree per tick through evaluateLimits, carrying the state; returns every decision and the last state. */
function run(limits: LimitSpec, ticks: TreeFigures[], start: BreachState = FRESH_BREACH_STATE): { decisions: LimitDecision[]; state: BreachState } {
  let state = start;
  const decisions: LimitDecision[] = [];
  for (const figures of ticks) {
    const result = evaluateLimits(limits, figures, state);
    decisions.push(result.decision);
    state = result.state;
  }
  return { decisions, state };
}

function kinds(decisions: LimitDecision[]): string[] {
  return decisions.map((decision) => decision.kind);
}

function pidsOf(decision: LimitDecision | undefined): number[] {
  assert.ok(decision && decision.kind === 'kill-offender', `expected kill-offender, got ${JSON.stringify(decision?.kind)}`);
  return decision.victims.map((item) => item.proc.pid);
}

describe('defaults', () => {
  test('memory needs 2 consecutive ticks and children 1 by default', () => {
    assert.equal(DEFAULTS.memoryBreachTicks, 2);
    assert.equal(DEFAULTS.childrenBreachTicks, 1);
    assert.equal(DEFAULTS.onLimit, 'restart');
  });
});

describe('evaluateLimits: no limits', () => {
  test('never acts, whatever the memory, the children or their growth', () => {
    const ticks = [sized(10 * 1024 * MB, 0), sized(10 * 1024 * MB, 50, MB), sized(10 * 1024 * MB, 500, MB), sized(10 * 1024 * MB, 5_000, MB)];
    const { decisions } = run(spec(), ticks);
    assert.deepEqual(kinds(decisions), ['none', 'none', 'none', 'none']);
    const killOffender = run(spec({ onLimit: 'kill-offender', memoryBreachTicks: 1 }), ticks);
    assert.deepEqual(kinds(killOffender.decisions), ['none', 'none', 'none', 'none']);
  });

  test('a memory limit alone ignores any number of children', () => {
    const { decisions } = run(spec({ maxMemoryBytes: 1024 * MB }), [sized(MB, 0), sized(MB, 100), sized(MB, 1_000)]);
    assert.deepEqual(kinds(decisions), ['none', 'none', 'none']);
  });

  test('a children limit alone ignores any amount of memory', () => {
    const { decisions } = run(spec({ maxChildren: 10 }), [sized(64 * 1024 * MB, 2), sized(64 * 1024 * MB, 2), sized(64 * 1024 * MB, 2)]);
    assert.deepEqual(kinds(decisions), ['none', 'none', 'none']);
  });
});

describe('evaluateLimits: memory', () => {
  const limits = spec({ maxMemoryBytes: 200 * MB });

  test('a tree at or under the limit is left alone', () => {
    const { decisions, state } = run(limits, [sized(200 * MB), sized(200 * MB), sized(100 * MB, 3, 30 * MB), sized(100 * MB, 3, 30 * MB)]);
    assert.deepEqual(kinds(decisions), ['none', 'none', 'none', 'none']);
    assert.equal(state.memoryTicks, 0);
  });

  test('counts the whole tree: a root under the limit with descendants over it is a breach', () => {
    const figures = sized(50 * MB, 3, 100 * MB); // 350 MB, the root holds 50 MB
    const { decisions } = run(limits, [figures, figures]);
    assert.deepEqual(kinds(decisions), ['none', 'restart']);
  });

  test('the breach must last memoryBreachTicks (default 2) consecutive ticks before a decision', () => {
    const over = sized(100 * MB, 2, 220 * MB); // 540 MB
    const { decisions } = run(limits, [over, over]);
    assert.deepEqual(kinds(decisions), ['none', 'restart']);
    assert.deepEqual(decisions[1], { kind: 'restart', reason: 'memory-limit', measured: 540 * MB, limit: 200 * MB });
  });

  test('memoryBreachTicks is honoured as configured', () => {
    const over = sized(300 * MB);
    assert.deepEqual(kinds(run(spec({ maxMemoryBytes: 200 * MB, memoryBreachTicks: 4 }), [over, over, over, over]).decisions), ['none', 'none', 'none', 'restart']);
    assert.deepEqual(kinds(run(spec({ maxMemoryBytes: 200 * MB, memoryBreachTicks: 1 }), [over]).decisions), ['restart']);
  });

  test('a dip below the limit resets the count', () => {
    const over = sized(300 * MB);
    const under = sized(150 * MB);
    const { decisions, state } = run(limits, [over, under, over, under, over]);
    assert.deepEqual(kinds(decisions), ['none', 'none', 'none', 'none', 'none']);
    assert.equal(state.memoryTicks, 1);
    assert.deepEqual(kinds(run(limits, [over], state).decisions), ['restart']);
  });

  test('after acting, the breach must be seen for the full tick count again', () => {
    const over = sized(300 * MB);
    const { decisions } = run(limits, [over, over, over, over, over]);
    assert.deepEqual(kinds(decisions), ['none', 'restart', 'none', 'restart', 'none']);
  });

  test('state counts the consecutive ticks and records the children seen', () => {
    const first = evaluateLimits(limits, sized(300 * MB, 4, 0), FRESH_BREACH_STATE);
    assert.equal(first.state.memoryTicks, 1);
    assert.equal(first.state.childrenTicks, 0);
    assert.equal(first.state.previousChildren, 4);
    // the input state is not mutated
    assert.deepEqual(FRESH_BREACH_STATE, { memoryTicks: 0, childrenTicks: 0, previousChildren: null, offenderTried: { 'memory-limit': false, 'children-limit': false } });
  });
});

describe('evaluateLimits: children', () => {
  const limits = spec({ maxChildren: 10 });

  test('children at the limit are allowed', () => {
    const { decisions } = run(limits, [sized(MB, 10), sized(MB, 10)]);
    assert.deepEqual(kinds(decisions), ['none', 'none']);
  });

  test('the root is not a child: 10 descendants plus the root is within a limit of 10', () => {
    const figures = sized(MB, 10);
    assert.equal(figures.processes, 11);
    assert.deepEqual(evaluateLimits(limits, figures, FRESH_BREACH_STATE).decision, { kind: 'none' });
  });

  test('a breach is acted on after childrenBreachTicks (default 1)', () => {
    const { decisions } = run(limits, [sized(MB, 9), sized(MB, 11)]); // growth 2: not a storm
    assert.deepEqual(decisions, [{ kind: 'none' }, { kind: 'restart', reason: 'children-limit', measured: 11, limit: 10 }]);
  });

  test('childrenBreachTicks is honoured as configured, and a dip resets the count', () => {
    const limits3 = spec({ maxChildren: 10, childrenBreachTicks: 3 });
    assert.deepEqual(kinds(run(limits3, [sized(MB, 11), sized(MB, 11), sized(MB, 11)]).decisions), ['none', 'none', 'restart']);
    assert.deepEqual(kinds(run(limits3, [sized(MB, 11), sized(MB, 11), sized(MB, 10), sized(MB, 11), sized(MB, 11)]).decisions), ['none', 'none', 'none', 'none', 'none']);
  });

  test('a children decision does not reset the memory count', () => {
    const both = spec({ maxChildren: 10, maxMemoryBytes: 200 * MB });
    const first = sized(100 * MB, 11, 20 * MB); // 320 MB and 11 children
    const second = sized(120 * MB, 10, 20 * MB); // 320 MB and 10 children
    const { decisions } = run(both, [first, second]);
    // children act on the first tick (1 tick); memory, over since that tick too, reaches its 2 ticks on the second
    assert.deepEqual(decisions, [
      { kind: 'restart', reason: 'children-limit', measured: 11, limit: 10 },
      { kind: 'restart', reason: 'memory-limit', measured: 320 * MB, limit: 200 * MB },
    ]);
  });
});

describe('isForkStorm', () => {
  test('far over the limit: at least 1.5x and at least 3 over', () => {
    assert.equal(isForkStorm(15, null, 10), true);
    assert.equal(isForkStorm(14, null, 10), false); // under 1.5x
    assert.equal(isForkStorm(3, null, 2), false); // 1.5x but only 1 over
    assert.equal(isForkStorm(4, null, 2), false); // 2x but only 2 over
    assert.equal(isForkStorm(5, null, 2), true);
    assert.equal(isForkStorm(3, null, 0), true);
    assert.equal(isForkStorm(2, null, 0), false);
  });

  test('growth per tick of at least max(3, ceil(limit/10))', () => {
    assert.equal(isForkStorm(11, 8, 10), true); // +3, threshold 3
    assert.equal(isForkStorm(11, 9, 10), false); // +2
    assert.equal(isForkStorm(105, 95, 100), true); // +10, threshold 10
    assert.equal(isForkStorm(104, 95, 100), false); // +9
    assert.equal(isForkStorm(101, 90, 100), true); // +11
    assert.equal(isForkStorm(42, 38, 31), true); // threshold ceil(3.1) = 4
    assert.equal(isForkStorm(41, 38, 31), false);
  });

  test('no previous count means no growth', () => {
    assert.equal(isForkStorm(12, null, 10), false);
  });
});

describe('evaluateLimits: fork storms are contained at once', () => {
  test('far over the limit: contain on the first tick, whatever childrenBreachTicks', () => {
    const limits = spec({ maxChildren: 10, childrenBreachTicks: 5 });
    const { decisions } = run(limits, [sized(MB, 15)]);
    assert.deepEqual(decisions, [{ kind: 'contain', reason: 'children-limit', measured: 15, limit: 10 }]);
  });

  test('growing fast past the limit: contain on the first tick over it', () => {
    const limits = spec({ maxChildren: 10, childrenBreachTicks: 5 });
    const { decisions } = run(limits, [sized(MB, 2), sized(MB, 8), sized(MB, 11)]);
    assert.deepEqual(kinds(decisions), ['none', 'none', 'contain']);
  });

  test('growth under the limit is no breach', () => {
    const limits = spec({ maxChildren: 100 });
    const { decisions } = run(limits, [sized(MB, 0), sized(MB, 30), sized(MB, 60), sized(MB, 90)]);
    assert.deepEqual(kinds(decisions), ['none', 'none', 'none', 'none']);
  });

  test('contain even with onLimit kill-offender: a storm is not given a chance to keep forking', () => {
    const limits = spec({ maxChildren: 10, onLimit: 'kill-offender' });
    assert.deepEqual(kinds(run(limits, [sized(MB, 20)]).decisions), ['contain']);
  });

  test('a slow breach is not a storm: restart, not contain', () => {
    const limits = spec({ maxChildren: 10 });
    assert.deepEqual(kinds(run(limits, [sized(MB, 10), sized(MB, 12)]).decisions), ['none', 'restart']);
  });
});

describe('evaluateLimits: kill-offender', () => {
  const memoryLimits = spec({ maxMemoryBytes: 200 * MB, onLimit: 'kill-offender' });
  const childrenLimits = spec({ maxChildren: 2, onLimit: 'kill-offender' });

  test('memory: picks the largest descendant, never the root even when it is the largest', () => {
    const figures = tree([
      member(ROOT, 150 * MB, { ppid: 1 }),
      member(201, 30 * MB),
      member(202, 120 * MB),
      member(203, 60 * MB, { ppid: 202 }),
    ]);
    const { decisions } = run(memoryLimits, [figures, figures]);
    assert.equal(decisions[0]?.kind, 'none');
    assert.deepEqual(pidsOf(decisions[1]), [202], 'the largest by its own memory; ending it frees its subtree too (180 MB)');
    assert.equal(decisions[1]?.kind === 'kill-offender' ? decisions[1].measured : null, 360 * MB);
    assert.equal(decisions[1]?.kind === 'kill-offender' ? decisions[1].limit : null, 200 * MB);
    assert.equal(decisions[1]?.kind === 'kill-offender' ? decisions[1].reason : null, 'memory-limit');
  });

  test('memory: a tree of the root alone gets restart', () => {
    const { decisions } = run(memoryLimits, [sized(300 * MB), sized(300 * MB)]);
    assert.deepEqual(decisions[1], { kind: 'restart', reason: 'memory-limit', measured: 300 * MB, limit: 200 * MB });
  });

  test(
    'memory: a root that alone is over the limit gets restart, not the end of a small descendant that cannot help',
    () => {
      const figures = tree([member(ROOT, 300 * MB, { ppid: 1 }), member(201, 1 * MB)]);
      const { decisions } = run(memoryLimits, [figures, figures]);
      assert.equal(decisions[1]?.kind, 'restart');
    },
  );

  test('the root is found by pid: a root listed last is still never a victim', () => {
    const figures = tree([member(201, 10 * MB), member(202, 20 * MB), member(ROOT, 500 * MB, { ppid: 1 })]);
    assert.deepEqual(largestDescendant(figures).map((item) => item.proc.pid), [202]);
    assert.deepEqual(largestDescendant(tree([member(ROOT, 500 * MB, { ppid: 1 })])), []);
  });

  test('children: picks the newest excess descendants by start time, not by pid', () => {
    const figures = tree([
      member(ROOT, MB, { ppid: 1, startTime: 9_999 }), // the root started "last": still never a victim
      member(201, MB, { startTime: 100 }), // an early MCP server
      member(202, MB, { startTime: 400 }),
      member(203, MB, { startTime: 300 }),
      member(150, MB, { startTime: 500 }), // newest, with the lowest pid
    ]);
    // 4 children over a limit of 2: not far over (4 < 2 + 3), no previous count: not a storm
    const { decisions } = run(childrenLimits, [figures]);
    assert.deepEqual(pidsOf(decisions[0]), [150, 202]);
    assert.equal(decisions[0]?.kind === 'kill-offender' ? decisions[0].measured : null, 4);
    assert.equal(decisions[0]?.kind === 'kill-offender' ? decisions[0].reason : null, 'children-limit');
  });

  test('children: one over the limit ends one process', () => {
    const figures = tree([member(ROOT, MB, { ppid: 1, startTime: 1 }), member(201, MB, { startTime: 10 }), member(202, MB, { startTime: 30 }), member(203, MB, { startTime: 20 })]);
    assert.deepEqual(pidsOf(run(childrenLimits, [figures]).decisions[0]), [202]);
  });

  test('newestDescendants never returns the root, nor more than asked', () => {
    const figures = tree([member(ROOT, MB, { ppid: 1, startTime: 9_999 }), member(201, MB, { startTime: 1 })]);
    assert.deepEqual(newestDescendants(figures, 5).map((item) => item.proc.pid), [201]);
    assert.deepEqual(newestDescendants(figures, 0), []);
  });

  test('a persisting breach after kill-offender waits the full tick count again, then restarts', () => {
    const figures = tree([member(ROOT, 100 * MB, { ppid: 1 }), member(201, 150 * MB)]);
    const { decisions, state } = run(memoryLimits, [figures, figures, figures, figures]);
    assert.deepEqual(kinds(decisions), ['none', 'kill-offender', 'none', 'restart']);
    assert.equal(state.offenderTried['memory-limit'], true);
  });

  test('children: a persisting breach after kill-offender restarts at the next tick (1 tick)', () => {
    const figures = tree([member(ROOT, MB, { ppid: 1 }), member(201, MB), member(202, MB), member(203, MB)]);
    const { decisions } = run(childrenLimits, [figures, figures]);
    assert.deepEqual(kinds(decisions), ['kill-offender', 'restart']);
  });

  test('when the breach clears, the offender is tried again next time', () => {
    const over = tree([member(ROOT, 100 * MB, { ppid: 1 }), member(201, 150 * MB)]);
    const under = tree([member(ROOT, 100 * MB, { ppid: 1 }), member(202, 10 * MB)]);
    const first = run(memoryLimits, [over, over]);
    assert.deepEqual(kinds(first.decisions), ['none', 'kill-offender']);
    assert.equal(first.state.offenderTried['memory-limit'], true);
    const cleared = run(memoryLimits, [under], first.state);
    assert.equal(cleared.state.offenderTried['memory-limit'], false);
    assert.deepEqual(kinds(run(memoryLimits, [over, over], cleared.state).decisions), ['none', 'kill-offender']);
  });

  test('children: offenderTried resets once back within the limit', () => {
    const over = tree([member(ROOT, MB, { ppid: 1 }), member(201, MB), member(202, MB), member(203, MB)]);
    const within = tree([member(ROOT, MB, { ppid: 1 }), member(201, MB), member(202, MB)]);
    assert.deepEqual(kinds(run(childrenLimits, [over, within, over]).decisions), ['kill-offender', 'none', 'kill-offender']);
  });

  test('offenderTried is kept per limit: a memory offender does not spend the children one', () => {
    const both = spec({ maxMemoryBytes: 200 * MB, maxChildren: 2, onLimit: 'kill-offender', memoryBreachTicks: 1 });
    const memoryOnly = tree([member(ROOT, 100 * MB, { ppid: 1 }), member(201, 150 * MB)]);
    const first = run(both, [memoryOnly]);
    assert.deepEqual(kinds(first.decisions), ['kill-offender']);
    const childrenOver = tree([member(ROOT, MB, { ppid: 1 }), member(201, MB), member(202, MB), member(203, MB)]);
    assert.deepEqual(kinds(run(both, [childrenOver], first.state).decisions), ['kill-offender']);
  });

  test("onLimit 'restart' never picks an offender", () => {
    const figures = tree([member(ROOT, 100 * MB, { ppid: 1 }), member(201, 150 * MB)]);
    const { decisions } = run(spec({ maxMemoryBytes: 200 * MB }), [figures, figures]);
    assert.deepEqual(kinds(decisions), ['none', 'restart']);
  });
});
