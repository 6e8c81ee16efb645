import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CpuMeter, EMPTY_FIGURES, measureTree } from '../src/daemon/monitor.js';
import type { ProcInfo, ProcessTable, ProcSnapshot, ProcTags } from '../src/proc/table.js';

const TICKS = 100;
const ROOT = 100;

function proc(pid: number, fields: Partial<ProcInfo> = {}): ProcInfo {
  return { pid, ppid: ROOT, pgid: ROOT, sid: ROOT, startTime: 1_000 + pid, state: 'S', rssBytes: 0, cpuTicks: 0, comm: `p${pid}`, ...fields };
}

/** A process table that knows only PSS figures (by pid); everything else is out of scope here. */
class FakeTable implements ProcessTable {
  readonly clockTicksPerSecond = TICKS;
  readonly bootId = 'test-boot';
  pssCalls = 0;

  constructor(private readonly pssByPid: Record<number, number | null> = {}) {}

  pss(p: ProcInfo): number | null {
    this.pssCalls += 1;
    return this.pssByPid[p.pid] ?? null;
  }
  scan(): ProcSnapshot {
    throw new Error('not used');
  }
  read(): ProcInfo | null {
    throw new Error('not used');
  }
  tags(): ProcTags | null {
    throw new Error('not used');
  }
  cmdline(): string {
    throw new Error('not used');
  }
  startedAtMs(): number {
    throw new Error('not used');
  }
  ticksNow(): number {
    throw new Error('not used');
  }
  uid(): number | null {
    throw new Error('not used');
  }
}

describe('CpuMeter', () => {
  test('a first sample reads 0', () => {
    const meter = new CpuMeter(TICKS);
    assert.equal(meter.percent(proc(1, { cpuTicks: 5_000 }), 10_000, true), 0);
  });

  test('percent of one core from the tick delta over the wall time', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 100 }), 1_000, true);
    meter.rotate();
    // 50 ticks = 0.5 s of CPU over 1 s
    assert.equal(meter.percent(proc(1, { cpuTicks: 150 }), 2_000, true), 50);
  });

  test('the wall time is the time between the samples, not a fixed tick', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    // 50 ticks = 0.5 s of CPU over 0.5 s
    assert.equal(meter.percent(proc(1, { cpuTicks: 50 }), 500, true), 100);
  });

  test('more than one core reads over 100', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 250 }), 1_000, true), 250);
  });

  test('the clock tick rate is the one given', () => {
    const meter = new CpuMeter(1_000);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 500 }), 1_000, true), 50);
  });

  test('rounds to a tenth of a percent', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    // 1 tick = 0.01 s over 3 s = 0.333..%
    assert.equal(meter.percent(proc(1, { cpuTicks: 1 }), 3_000, true), 0.3);
  });

  test('an idle process reads 0', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 70 }), 0, true);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 70 }), 1_000, true), 0);
  });

  test('without rotate() the sample being taken is not compared against', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    assert.equal(meter.percent(proc(1, { cpuTicks: 100 }), 1_000, true), 0);
  });

  test('only the previous sample is compared, not older ones', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    meter.percent(proc(1, { cpuTicks: 10 }), 1_000, true);
    meter.rotate();
    // against the previous sample: 20 ticks over 1 s = 20%; against the first it would be 15%
    assert.equal(meter.percent(proc(1, { cpuTicks: 30 }), 2_000, true), 20);
  });

  test('a process missing from the previous sample starts again from 0', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.percent(proc(2, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    meter.percent(proc(2, { cpuTicks: 10 }), 1_000, true); // pid 1 not seen in this sample
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 100 }), 2_000, true), 0);
    assert.equal(meter.percent(proc(2, { cpuTicks: 60 }), 2_000, true), 50);
  });

  test('a reused pid (another start time) starts from 0', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(42, { startTime: 100, cpuTicks: 0 }), 0, true);
    meter.rotate();
    assert.equal(meter.percent(proc(42, { startTime: 200, cpuTicks: 500 }), 1_000, true), 0);
    meter.rotate();
    // and the new process is measured from then on
    assert.equal(meter.percent(proc(42, { startTime: 200, cpuTicks: 600 }), 2_000, true), 100);
  });

  test('a sample not later than the previous one reads 0, and never a negative figure', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 100 }), 1_000, true);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 200 }), 1_000, true), 0);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 50 }), 2_000, true), 0);
  });

  test('between ticks (advance false) a read returns what the last tick measured', () => {
    const meter = new CpuMeter(TICKS);
    assert.equal(meter.percent(proc(1, { cpuTicks: 0 }), 0, false), 0); // never measured
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 40 }), 1_000, true), 40);
    // not published before the tick ends
    assert.equal(meter.percent(proc(1, { cpuTicks: 45 }), 1_010, false), 0);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 45 }), 1_010, false), 40);
    assert.equal(meter.percent(proc(1, { cpuTicks: 90 }), 1_500, false), 40);
  });

  test('a read between ticks is not a sample: the next tick compares against the previous tick', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    meter.percent(proc(1, { cpuTicks: 10 }), 1_000, true);
    meter.rotate();
    meter.percent(proc(1, { cpuTicks: 29 }), 1_990, false); // an `ls` 10 ms before the tick
    // 20 ticks over 1 s since the last tick; against the read it would be 1 tick over 10 ms = 100%
    assert.equal(meter.percent(proc(1, { cpuTicks: 30 }), 2_000, true), 20);
  });

  test('between ticks, a reused pid reads 0, not the figure of the process that had it', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(42, { startTime: 100, cpuTicks: 0 }), 0, true);
    meter.rotate();
    meter.percent(proc(42, { startTime: 100, cpuTicks: 100 }), 1_000, true);
    meter.rotate();
    assert.equal(meter.percent(proc(42, { startTime: 100 }), 1_100, false), 100);
    assert.equal(meter.percent(proc(42, { startTime: 200 }), 1_100, false), 0);
  });

  test('processes are measured independently', () => {
    const meter = new CpuMeter(TICKS);
    meter.percent(proc(1, { cpuTicks: 0 }), 0, true);
    meter.percent(proc(2, { cpuTicks: 0 }), 0, true);
    meter.rotate();
    assert.equal(meter.percent(proc(1, { cpuTicks: 25 }), 1_000, true), 25);
    assert.equal(meter.percent(proc(2, { cpuTicks: 75 }), 1_000, true), 75);
  });
});

describe('measureTree', () => {
  const members = [
    proc(ROOT, { ppid: 1, rssBytes: 100, cpuTicks: 0 }),
    proc(201, { rssBytes: 20, cpuTicks: 0 }),
    proc(202, { ppid: 201, rssBytes: 3, cpuTicks: 0 }),
  ];

  test("'rss' sums the members' resident memory and never reads PSS", () => {
    const table = new FakeTable({ [ROOT]: 1, 201: 1, 202: 1 });
    const figures = measureTree(members, ROOT, 'rss', table, new CpuMeter(TICKS), 0, true);
    assert.equal(figures.memory, 123);
    assert.deepEqual(figures.members.map((item) => item.memory), [100, 20, 3]);
    assert.equal(table.pssCalls, 0);
  });

  test("'pss' sums PSS, falling back to RSS where pss() returns null", () => {
    const table = new FakeTable({ [ROOT]: 60, 201: null, 202: 2 });
    const figures = measureTree(members, ROOT, 'pss', table, new CpuMeter(TICKS), 0, true);
    assert.deepEqual(figures.members.map((item) => item.memory), [60, 20, 2]);
    assert.equal(figures.memory, 82);
    assert.equal(table.pssCalls, 3);
  });

  test("'pss' of 0 is a figure, not a missing one", () => {
    const table = new FakeTable({ [ROOT]: 0, 201: 0, 202: 0 });
    assert.equal(measureTree(members, ROOT, 'pss', table, new CpuMeter(TICKS), 0, true).memory, 0);
  });

  test('processes counts every member, children exclude the root', () => {
    const figures = measureTree(members, ROOT, 'rss', new FakeTable(), new CpuMeter(TICKS), 0, true);
    assert.equal(figures.rootPid, ROOT);
    assert.equal(figures.processes, 3);
    assert.equal(figures.children, 2);
    assert.deepEqual(figures.members.map((item) => item.proc), members);
  });

  test('a tree whose root is gone counts every member as a child', () => {
    const figures = measureTree(members.slice(1), ROOT, 'rss', new FakeTable(), new CpuMeter(TICKS), 0, true);
    assert.equal(figures.processes, 2);
    assert.equal(figures.children, 2);
  });

  test('an empty tree is all zeros', () => {
    const figures = measureTree([], ROOT, 'rss', new FakeTable(), new CpuMeter(TICKS), 0, true);
    assert.deepEqual(figures, { ...EMPTY_FIGURES, rootPid: ROOT });
  });

  test('a scan between ticks reports the CPU of the last tick and leaves the meter as it was', () => {
    const meter = new CpuMeter(TICKS);
    measureTree(members, ROOT, 'rss', new FakeTable(), meter, 0, true);
    meter.rotate();
    const busy = [proc(ROOT, { ppid: 1, cpuTicks: 50 }), proc(201, { cpuTicks: 25 }), proc(202, { ppid: 201, cpuTicks: 0 })];
    assert.equal(measureTree(busy, ROOT, 'rss', new FakeTable(), meter, 1_000, true).cpu, 75);
    meter.rotate();
    const between = [proc(ROOT, { ppid: 1, cpuTicks: 99, rssBytes: 7 }), proc(201, { cpuTicks: 99 }), proc(202, { ppid: 201, cpuTicks: 99 })];
    const scan = measureTree(between, ROOT, 'rss', new FakeTable(), meter, 1_100, false);
    assert.deepEqual(scan.members.map((item) => item.cpu), [50, 25, 0]);
    assert.equal(scan.cpu, 75);
    assert.equal(scan.memory, 7); // memory is read at every scan
    const next = [proc(ROOT, { ppid: 1, cpuTicks: 60 }), proc(201, { cpuTicks: 25 }), proc(202, { ppid: 201, cpuTicks: 5 })];
    assert.deepEqual(measureTree(next, ROOT, 'rss', new FakeTable(), meter, 2_000, true).members.map((item) => item.cpu), [10, 0, 5]);
  });

  test('cpu is the sum of the members, per member through the shared meter', () => {
    const meter = new CpuMeter(TICKS);
    const first = measureTree(members, ROOT, 'rss', new FakeTable(), meter, 0, true);
    assert.equal(first.cpu, 0);
    meter.rotate();
    const later = [proc(ROOT, { ppid: 1, rssBytes: 100, cpuTicks: 10 }), proc(201, { rssBytes: 20, cpuTicks: 35 }), proc(202, { ppid: 201, rssBytes: 3, cpuTicks: 1 })];
    const second = measureTree(later, ROOT, 'rss', new FakeTable(), meter, 1_000, true);
    assert.deepEqual(second.members.map((item) => item.cpu), [10, 35, 1]);
    assert.equal(second.cpu, 46);
  });
});
