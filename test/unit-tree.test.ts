import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseStat, parseTags } from '../src/proc/linux.js';
import type { ProcInfo, ProcSnapshot, ProcTags } from '../src/proc/table.js';
import { attribute, treeOrder, type InstanceRef } from '../src/proc/tree.js';

const HOME = '/home/dev/.agentpm';
const OTHER_HOME = '/home/other/.agentpm';
const DAEMON = 50;

/** A live process; by default a child of the daemon leading its own session. */
function proc(pid: number, fields: Partial<ProcInfo> = {}): ProcInfo {
  return { pid, ppid: DAEMON, pgid: pid, sid: pid, startTime: 1_000 + pid, state: 'S', rssBytes: 0, cpuTicks: 0, comm: `p${pid}`, ...fields };
}

function snapshot(...procs: ProcInfo[]): ProcSnapshot {
  const byPid = new Map<number, ProcInfo>();
  for (const p of procs) {
    assert.ok(!byPid.has(p.pid), `fixture has pid ${p.pid} twice`);
    byPid.set(p.pid, p);
  }
  return { at: 0, byPid };
}

/** Tags by pid, as the environment would carry them. */
function tagReader(tags: Record<number, Partial<ProcTags>> = {}): (p: ProcInfo) => ProcTags | null {
  return (p) => {
    const found = tags[p.pid];
    return found ? { app: null, instance: null, home: null, ...found } : null;
  };
}

function members(result: Map<string, ProcInfo[]>, id: string): number[] {
  const list = result.get(id);
  assert.ok(list, `no entry for instance ${id}`);
  return list.map((p) => p.pid);
}

// Roots the daemon spawned itself (it can vouch for pid + start time until it reaps them).
const A: InstanceRef = { id: 'bot-a1', rootPid: 100, rootStartTime: 1_100, rootIsChild: true };
const B: InstanceRef = { id: 'api-b2', rootPid: 200, rootStartTime: 1_200, rootIsChild: true };

describe('attribute', () => {
  test('no instances: an empty map', () => {
    assert.equal(attribute(snapshot(proc(100)), [], tagReader(), HOME).size, 0);
  });

  test('an instance known only by its intent (no recorded root) claims its tagged processes, never session 0 (the kernel threads)', () => {
    const intent: InstanceRef = { id: 'bot-i9', rootPid: 0, rootStartTime: 0, rootIsChild: false, followDetached: true };
    const kthreadd = proc(2, { ppid: 0, sid: 0, pgid: 0, startTime: 0 });
    const kworker = proc(3, { ppid: 2, sid: 0, pgid: 0, startTime: 0 });
    const tagged = proc(300, { ppid: 1, startTime: 5_000 });
    const child = proc(301, { ppid: 300, sid: 300, startTime: 5_001 });
    const result = attribute(snapshot(kthreadd, kworker, tagged, child), [intent], tagReader({ 300: { instance: 'bot-i9', home: HOME } }), HOME);
    assert.deepEqual(members(result, intent.id), [300, 301]);
  });

  test('the root is found by pid and start time, and listed first', () => {
    const result = attribute(snapshot(proc(100), proc(999)), [A], tagReader(), HOME);
    assert.deepEqual(members(result, A.id), [100]);
  });

  test('a root with the right pid but another start time is not the root', () => {
    const result = attribute(snapshot(proc(100, { startTime: 1_101 })), [A], tagReader(), HOME);
    assert.deepEqual(members(result, A.id), []);
  });

  test('a root known only from the registry (not our child) must carry the instance tag', () => {
    const adopted: InstanceRef = { ...A, rootIsChild: false };
    const procs = [proc(100), proc(101, { ppid: 100, sid: 100 })];
    const untagged = attribute(snapshot(...procs), [adopted], tagReader(), HOME);
    assert.deepEqual(members(untagged, A.id), []);
    const tagged = attribute(snapshot(...procs), [adopted], tagReader({ 100: { instance: A.id, home: HOME } }), HOME);
    assert.deepEqual(members(tagged, A.id), [100, 101]);
  });

  test('a root tagged for another instance or another home is not claimed, even as our child', () => {
    for (const tags of [{ instance: B.id, home: HOME }, { instance: A.id, home: OTHER_HOME }]) {
      const result = attribute(snapshot(proc(100)), [A], tagReader({ 100: tags }), HOME);
      assert.deepEqual(members(result, A.id), [], JSON.stringify(tags));
    }
  });

  test('an instance with no live member maps to []', () => {
    const result = attribute(snapshot(proc(999)), [A], tagReader(), HOME);
    assert.deepEqual(members(result, A.id), []);
  });

  test('descendants are found by ppid, however deep, even outside the session', () => {
    const result = attribute(
      snapshot(
        proc(100),
        proc(101, { ppid: 100, sid: 101 }), // called setsid but kept its parent
        proc(102, { ppid: 101, sid: 101 }),
        proc(103, { ppid: 102, sid: 103 }),
        proc(999), // unrelated child of the daemon
        proc(998, { ppid: 1, sid: 998 }),
      ),
      [A],
      tagReader(),
      HOME,
    );
    assert.deepEqual(members(result, A.id), [100, 101, 102, 103]);
  });

  test('a reparented setsid process is found by its AGENTPM_INSTANCE tag when AGENTPM_HOME matches', () => {
    const procs = [proc(100), proc(300, { ppid: 1, sid: 300, pgid: 300 }), proc(301, { ppid: 300, sid: 300 })];
    const result = attribute(snapshot(...procs), [A], tagReader({ 300: { instance: A.id, home: HOME, app: 'bot' } }), HOME);
    assert.deepEqual(members(result, A.id).sort(), [100, 300, 301]);
  });

  test('the tag is ignored when AGENTPM_HOME is another home, or missing', () => {
    const procs = [proc(100), proc(300, { ppid: 1, sid: 300 })];
    for (const home of [OTHER_HOME, null]) {
      const result = attribute(snapshot(...procs), [A], tagReader({ 300: { instance: A.id, home } }), HOME);
      assert.deepEqual(members(result, A.id), [100], `home ${String(home)}`);
    }
  });

  test('a tag naming an instance not asked about claims nothing', () => {
    const result = attribute(snapshot(proc(100), proc(300, { ppid: 1 })), [A], tagReader({ 300: { instance: 'ghost-9', home: HOME } }), HOME);
    assert.deepEqual(members(result, A.id), [100]);
  });

  test("a process in the root's session is found after the root died, with its descendants", () => {
    const result = attribute(
      snapshot(
        // root 100 is gone; its session lives on in reparented, untagged processes
        proc(400, { ppid: 1, sid: 100, pgid: 100, startTime: 1_150 }),
        proc(401, { ppid: 400, sid: 100, pgid: 100, startTime: 1_160 }),
        proc(402, { ppid: 401, sid: 402, startTime: 1_170 }),
        proc(999),
      ),
      [{ ...A, rootSeenAlive: 1_200 }],
      tagReader(),
      HOME,
    );
    assert.deepEqual(members(result, A.id).sort(), [400, 401, 402]);
  });

  test("a dead root's session whose processes all started after the root was last seen alive is a reuse of its pid: not ours", () => {
    // Root 100 died at ~1_200 with its session empty; pid 100 was reused by a session leader that has
    // exited too, leaving a `nohup job` (started 5_000) in a session whose id is 100 again.
    const procs = [proc(500, { ppid: 1, sid: 100, startTime: 5_000 }), proc(501, { ppid: 500, sid: 100, startTime: 5_010 })];
    assert.deepEqual(members(attribute(snapshot(...procs), [{ ...A, rootSeenAlive: 1_200 }], tagReader(), HOME), A.id), []);
  });

  test('one process started while the root was alive proves the session never emptied: later ones are ours too', () => {
    // The kernel hands out no pid that still names a session with members, so 100 was never reused.
    const procs = [proc(400, { ppid: 1, sid: 100, startTime: 1_150 }), proc(500, { ppid: 1, sid: 100, startTime: 5_000 }), proc(501, { ppid: 500, sid: 100, startTime: 5_010 })];
    assert.deepEqual(members(attribute(snapshot(...procs), [{ ...A, rootSeenAlive: 1_200 }], tagReader(), HOME), A.id).sort(), [400, 500, 501]);
  });

  test('a zombie of the old session proves it as well; without rootSeenAlive the root start time is the bound', () => {
    const registryOnly: InstanceRef = { ...A, rootIsChild: false };
    const proved = attribute(snapshot(proc(400, { ppid: 1, sid: 100, startTime: 1_100, state: 'Z' }), proc(401, { ppid: 1, sid: 100, startTime: 1_160 })), [registryOnly], tagReader(), HOME);
    assert.deepEqual(members(proved, A.id), [401]);
    const unprovable = attribute(snapshot(proc(400, { ppid: 1, sid: 100, startTime: 1_150 }), proc(401, { ppid: 1, sid: 100, startTime: 1_160 })), [registryOnly], tagReader({ 401: { instance: A.id, home: HOME } }), HOME);
    assert.deepEqual(members(unprovable, A.id), [401], 'only its tag claims 401; 400 is in a session that cannot be proven ours');
  });

  test("a zombie holding the root's pid with another start time (a reuse that died) opens no session", () => {
    const result = attribute(
      snapshot(proc(100, { ppid: 1, startTime: 5_000, state: 'Z' }), proc(500, { ppid: 1, sid: 100, startTime: 5_010 })),
      [{ ...A, rootSeenAlive: 9_000 }],
      tagReader(),
      HOME,
    );
    assert.deepEqual(members(result, A.id), []);
  });

  test('an excluded pid (the daemon, launched by a CLI inside the app) is never a member, nor what hangs below it', () => {
    const result = attribute(
      snapshot(
        proc(100),
        proc(101, { ppid: 100, sid: 100 }), // the CLI run by the agent
        proc(102, { ppid: 101, sid: 102 }), // the daemon it launched (setsid, untagged)
        proc(103, { ppid: 102, sid: 102 }), // a health check the daemon runs
      ),
      [A],
      tagReader(),
      HOME,
      { exclude: new Set([102]) },
    );
    assert.deepEqual(members(result, A.id), [100, 101]);
  });

  test('a process with sid = root pid but started before the root is not a member', () => {
    const result = attribute(snapshot(proc(100), proc(500, { ppid: 1, sid: 100, startTime: 1_050 })), [A], tagReader(), HOME);
    assert.deepEqual(members(result, A.id), [100]);
  });

  test('zombies are never members: not as root, tagged, in the session or as descendants', () => {
    const result = attribute(
      snapshot(
        proc(100, { state: 'Z' }),
        proc(101, { ppid: 100, sid: 100, state: 'Z' }),
        proc(102, { ppid: 1, sid: 100, state: 'X' }),
        proc(300, { ppid: 1, state: 'Z' }),
        proc(103, { ppid: 1, sid: 100, state: 'R' }),
        proc(104, { ppid: 103, sid: 100, state: 'Z' }),
      ),
      [A],
      tagReader({ 300: { instance: A.id, home: HOME } }),
      HOME,
    );
    assert.deepEqual(members(result, A.id), [103]);
  });

  test('a zombie root with live children: the children are still found through the session', () => {
    const result = attribute(snapshot(proc(100, { state: 'Z' }), proc(101, { ppid: 1, sid: 100 })), [A], tagReader(), HOME);
    assert.deepEqual(members(result, A.id), [101]);
  });

  test('an adopted root that is now a zombie (its environment unreadable): its session is still searched', () => {
    const adopted: InstanceRef = { ...A, rootIsChild: false };
    const result = attribute(snapshot(proc(100, { state: 'Z' }), proc(101, { ppid: 1, sid: 100 })), [adopted], tagReader(), HOME);
    assert.deepEqual(members(result, A.id), [101]);
  });

  test('a root pid reused by an unrelated process (other start time) is not attributed, nor its children', () => {
    const result = attribute(
      snapshot(proc(100, { ppid: 777, sid: 777, startTime: 9_000 }), proc(110, { ppid: 100, sid: 777, startTime: 9_100 })),
      [A],
      tagReader(),
      HOME,
    );
    assert.deepEqual(members(result, A.id), []);
  });

  test('a new session led by the reused root pid is not attributed', () => {
    const result = attribute(
      snapshot(
        proc(400, { ppid: 1, sid: 100, startTime: 1_150 }), // ours: tagged, in the old session, started before the reuse
        proc(100, { ppid: 1, sid: 100, startTime: 9_000 }), // the pid reused, leading a new session of its own
        proc(110, { ppid: 100, sid: 100, startTime: 9_100 }),
        proc(111, { ppid: 1, sid: 100, startTime: 9_200 }), // reparented member of the new session
      ),
      [A],
      tagReader({ 400: { instance: A.id, home: HOME } }),
      HOME,
    );
    assert.deepEqual(members(result, A.id), [400]);
  });

  test('two instances do not steal each other’s processes, in either order', () => {
    const procs = [
      proc(100),
      proc(101, { ppid: 100, sid: 100 }),
      proc(200),
      proc(201, { ppid: 200, sid: 200 }),
      // B's process that wandered into A's tree: in A's session and a child of A's 101, but tagged for B
      proc(300, { ppid: 101, sid: 100 }),
      proc(301, { ppid: 300, sid: 100 }), // its child, which inherited B's environment
      // A's reparented setsid'd process, tagged for A
      proc(400, { ppid: 1, sid: 400 }),
      // B's root is itself a child of A's 101: it stays B's, and so does its subtree
      proc(202, { ppid: 101, sid: 202, startTime: 1_300 }),
      proc(203, { ppid: 202, sid: 202, startTime: 1_310 }),
    ];
    const b2: InstanceRef = { id: 'api-b3', rootPid: 202, rootStartTime: 1_300, rootIsChild: true };
    const tags = tagReader({
      300: { instance: B.id, home: HOME },
      301: { instance: B.id, home: HOME },
      400: { instance: A.id, home: HOME },
      202: { instance: b2.id, home: HOME },
      203: { instance: b2.id, home: HOME },
    });
    for (const order of [
      [A, B, b2],
      [b2, B, A],
    ]) {
      const result = attribute(snapshot(...procs), order, tags, HOME);
      assert.deepEqual(members(result, A.id).sort(), [100, 101, 400]);
      assert.deepEqual(members(result, B.id).sort(), [200, 201, 300, 301]);
      assert.deepEqual(members(result, b2.id).sort(), [202, 203]);
    }
  });

  test('asked about one instance only (as stop is), processes tagged for another are still left out', () => {
    const procs = [
      proc(100),
      proc(101, { ppid: 100, sid: 100 }),
      proc(300, { ppid: 101, sid: 100 }), // B's by tag, inside A's session and tree
      proc(301, { ppid: 300, sid: 100 }),
      proc(302, { ppid: 100, sid: 100 }), // A's id but another home: another daemon's
    ];
    const tags = tagReader({ 300: { instance: B.id, home: HOME }, 301: { instance: B.id, home: HOME }, 302: { instance: A.id, home: OTHER_HOME } });
    const result = attribute(snapshot(...procs), [A], tags, HOME);
    assert.deepEqual(members(result, A.id).sort(), [100, 101]);
  });

  test('a process is attributed to at most one instance', () => {
    const procs = [proc(100), proc(200), proc(300, { ppid: 100, sid: 200 }), proc(301, { ppid: 300, sid: 200 })];
    const result = attribute(snapshot(...procs), [A, B], tagReader({ 301: { instance: A.id, home: HOME } }), HOME);
    const all = [...result.values()].flat().map((p) => p.pid);
    assert.equal(new Set(all).size, all.length, `some pid listed twice: ${all.join(',')}`);
    assert.deepEqual(all.sort(), [100, 200, 300, 301]);
  });
});

describe('treeOrder', () => {
  test('parent before child, children by pid, depth from the top', () => {
    const root = proc(100, { startTime: 10 });
    const c1 = proc(105, { ppid: 100, startTime: 12 });
    const c2 = proc(101, { ppid: 100, startTime: 13 });
    const g1 = proc(106, { ppid: 105, startTime: 14 });
    const ordered = treeOrder([g1, c1, root, c2]);
    assert.deepEqual(
      ordered.map(({ proc: p, depth }) => [p.pid, depth]),
      [
        [100, 0],
        [101, 1],
        [105, 1],
        [106, 2],
      ],
    );
  });

  test('processes whose parent is not a member are tops, oldest first, then by pid', () => {
    const ordered = treeOrder([
      proc(300, { ppid: 1, startTime: 50 }),
      proc(100, { ppid: 50, startTime: 10 }),
      proc(250, { ppid: 1, startTime: 50 }),
      proc(301, { ppid: 300, startTime: 60 }),
      proc(90, { ppid: 1, startTime: 70 }), // lowest pid, but the youngest top
    ]);
    assert.deepEqual(
      ordered.map(({ proc: p, depth }) => [p.pid, depth]),
      [
        [100, 0],
        [250, 0],
        [300, 0],
        [301, 1],
        [90, 0],
      ],
    );
  });

  test('a process that is its own parent (pid 0 style) is a top, not lost', () => {
    const ordered = treeOrder([proc(7, { ppid: 7 })]);
    assert.deepEqual(
      ordered.map(({ proc: p, depth }) => [p.pid, depth]),
      [[7, 0]],
    );
  });

  test('every member appears exactly once', () => {
    const input = [proc(1, { ppid: 0 }), proc(2, { ppid: 1 }), proc(3, { ppid: 1 }), proc(4, { ppid: 3 }), proc(9, { ppid: 8 })];
    const ordered = treeOrder(input);
    assert.deepEqual(ordered.map(({ proc: p }) => p.pid).sort(), [1, 2, 3, 4, 9]);
  });
});

/** A /proc/<pid>/stat line (52 fields) with the given pid, comm and the fields agentpm reads. */
function statLine(pid: number, comm: string, f: { state: string; ppid: number; pgid: number; sid: number; utime: number; stime: number; start: number; rssPages: number }): string {
  const after = [
    f.state, f.ppid, f.pgid, f.sid, 34817, f.pgid, 4194560, 1234, 0, 5, 0, // 3..13: tty_nr, tpgid, flags, faults
    f.utime, f.stime, 3, 4, 20, 0, 1, 0, // 14..21: utime, stime, cutime, cstime, priority, nice, threads, itrealvalue
    f.start, 987654321, f.rssPages, // 22..24: starttime, vsize, rss
    ...Array.from({ length: 52 - 24 }, () => 0), // 25..52
  ];
  return `${pid} (${comm}) ${after.join(' ')}\n`;
}

describe('parseStat', () => {
  const fields = { state: 'S', ppid: 1, pgid: 4242, sid: 4200, utime: 25, stime: 7, start: 123_456, rssPages: 250 };

  test('reads pid, ppid, pgid, sid, state, cpu ticks, start time and rss', () => {
    const parsed = parseStat(statLine(4242, 'node', fields), 4096);
    assert.deepEqual(parsed, {
      pid: 4242,
      ppid: 1,
      pgid: 4242,
      sid: 4200,
      cpuTicks: 32,
      startTime: 123_456,
      rssBytes: 250 * 4096,
      state: 'S',
      comm: 'node',
    } satisfies ProcInfo);
  });

  test('uses the page size given for rss', () => {
    assert.equal(parseStat(statLine(1, 'x', fields), 16_384)?.rssBytes, 250 * 16_384);
  });

  test('a comm with spaces and parentheses inside is kept whole and does not shift the fields', () => {
    const comm = 'my (weird) app) S 9 9 9';
    const parsed = parseStat(statLine(77, comm, { ...fields, state: 'Z' }), 4096);
    assert.ok(parsed);
    assert.equal(parsed.comm, comm);
    assert.equal(parsed.pid, 77);
    assert.equal(parsed.state, 'Z');
    assert.equal(parsed.ppid, 1);
    assert.equal(parsed.sid, 4200);
    assert.equal(parsed.startTime, 123_456);
  });

  test('garbage and truncated lines give null', () => {
    assert.equal(parseStat('', 4096), null);
    assert.equal(parseStat('not a stat line', 4096), null);
    assert.equal(parseStat('12 (sh) S 1 12 12', 4096), null);
  });
});

describe('parseTags', () => {
  test('reads AGENTPM_APP, AGENTPM_INSTANCE and AGENTPM_HOME from a NUL-separated environment', () => {
    const environ = ['PATH=/usr/bin', 'AGENTPM_APP=bot', 'AGENTPM_INSTANCE=bot-a1', `AGENTPM_HOME=${HOME}`, 'LANG=C', ''].join('\0');
    assert.deepEqual(parseTags(environ), { app: 'bot', instance: 'bot-a1', home: HOME });
  });

  test('a value containing = is kept whole', () => {
    assert.deepEqual(parseTags('AGENTPM_HOME=/tmp/a=b\0'), { app: null, instance: null, home: '/tmp/a=b' });
  });

  test('an untagged environment gives null', () => {
    assert.equal(parseTags('PATH=/usr/bin\0HOME=/root\0'), null);
    assert.equal(parseTags(''), null);
  });

  test('other AGENTPM_ variables, or AGENTPM_ inside a value, are not tags', () => {
    assert.equal(parseTags('AGENTPM_DEBUG=1\0NOTE=AGENTPM_INSTANCE=x\0'), null);
    assert.equal(parseTags('XAGENTPM_APP=bot\0'), null);
  });
});
