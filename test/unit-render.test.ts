import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeEvent, describeExit, renderDetail, renderList } from '../src/cli/render.js';
import { EVENT_TYPES, type AgentEvent, type AppDetail, type AppSummary, type EventType, type ExitRecord } from '../src/protocol.js';

const MB = 1024 * 1024;
const AT = '2025-01-02T03:04:05.678Z';
const INSTANCE = 'f00dbabe1234';

const ANSI = /\x1b\[[0-9;]*m/g;

function plain(text: string): string {
  return text.replace(ANSI, '');
}

function event(type: EventType, reason: string | null, data: Record<string, unknown>, app: string | null = 'bot'): AgentEvent {
  return { type, app, instance: app === null ? null : INSTANCE, at: AT, reason, data };
}

/**
 * One typical event per type and the facts its line must show. Typed by EventType so that a new type
 * without a sample fails the typecheck, and the loop below fails at run time.
 */
const SAMPLES: Record<EventType, { event: AgentEvent; facts: string[] }> = {
  state: { event: event('state', null, { from: 'online', to: 'stopping' }), facts: ['online', 'stopping'] },
  spawn: { event: event('spawn', null, { pid: 4242 }), facts: ['started', 'pid 4242'] },
  exit: { event: event('exit', 'crashed', { code: 3, signal: null, uptimeMs: 65_000, leftovers: 0 }), facts: ['crashed', 'code 3', 'after 1m'] },
  adopt: { event: event('adopt', null, { pid: 777 }), facts: ['adopted', 'pid 777'] },
  'leftovers-killed': { event: event('leftovers-killed', null, { count: 4 }), facts: ['killed 4 process(es)', 'left behind'] },
  'limit-breach': {
    event: event('limit-breach', 'memory-limit', { measured: 540 * MB, limit: 200 * MB, action: 'restart' }),
    facts: ['memory-limit', '540 MB > 200 MB', 'action restart'],
  },
  'offender-killed': {
    event: event('offender-killed', 'children-limit', { pids: [301, 302], memory: [MB, MB], ended: 2 }),
    facts: ['301, 302', 'children-limit', 'keeps running'],
  },
  'orphans-reaped': {
    event: event('orphans-reaped', 'instance-ended', { count: 2, survivors: 0, pids: [501, 502], memory: 3 * MB }),
    facts: ['reaped 2', 'instance-ended', '501, 502'],
  },
  backoff: { event: event('backoff', null, { delayMs: 4_000, unstableExits: 3 }), facts: ['4000 ms', '3 in a row'] },
  'give-up': { event: event('give-up', null, { restartsInWindow: 5, windowMs: 600_000, maxRestarts: 5 }), facts: ['gave up', '5 restarts', '10m', 'errored'] },
  daemon: { event: event('daemon', 'started', { pid: 99, version: '0.1.0' }, null), facts: ['daemon started', 'pid 99'] },
  health: { event: event('health', 'failed', { failures: 3, message: 'HTTP 503' }), facts: ['health check failed 3 time(s)', 'HTTP 503'] },
  guard: {
    event: event('guard', 'memory-pressure', { availableBytes: 300 * MB, pressure: 42, action: 'restart', victim: 'bot' }, null),
    facts: ['memory pressure', '300 MB available', 'PSI some avg10 42', 'restart bot'],
  },
  'notify-failed': { event: event('notify-failed', 'timeout', { hook: 'webhook http://127.0.0.1:9/x', message: 'timed out after 10000 ms' }), facts: ['alert hook failed', 'timed out'] },
  relay: { event: event('relay', 'lost', { pid: 4343 }), facts: ['log relay', 'pid 4343', 'died', 'new one'] },
  watch: { event: event('watch', 'restart', { changes: 7, files: ['src/a.ts', 'src/b.ts'] }), facts: ['file change', 'restarting', '7 changes', 'src/a.ts, src/b.ts, …'] },
};

describe('describeEvent', () => {
  test('an adoption refused for a missing tag says so, with what to do', () => {
    const line = describeEvent(event('adopt', 'unproven', { pid: 777, message: 'pid 777 has the start time … run `agentpm restart bot`.' }));
    assert.match(line, /not adopted: pid 777 .*`agentpm restart bot`/);
    assert.doesNotMatch(line, /adopted by a new daemon/);
  });

  test('renders every kind of watch event', () => {
    assert.match(describeEvent(event('watch', 'ready', { paths: ['/srv/bot/src', '/srv/bot/prompts'], ignore: [] })), /watching \/srv\/bot\/src, \/srv\/bot\/prompts for changes/);
    assert.match(describeEvent(event('watch', 'restart', { changes: 1, files: ['a.ts'] })), /restarting \(1 change: a\.ts\)$/);
    assert.match(describeEvent(event('watch', 'error', { message: 'ENOSPC: System limit for number of file watchers reached' })), /watching failed: ENOSPC/);
  });

  for (const type of EVENT_TYPES) {
    test(`renders ${type} with its key facts`, () => {
      const sample = SAMPLES[type];
      assert.ok(sample, `no sample for event type ${type}: add one (and a rendering)`);
      const line = plain(describeEvent(sample.event));
      assert.ok(line.startsWith(AT), line);
      assert.ok(line.includes(type), `the type is shown: ${line}`);
      assert.ok(!line.includes('undefined') && !line.includes('NaN') && !line.includes('[object'), `no placeholder leaks: ${line}`);
      for (const fact of sample.facts) assert.ok(line.includes(fact), `expected '${fact}' in: ${line}`);
      assert.ok(!line.includes('\n'), 'one line per event');
    });
  }

  test('a type it does not know is refused, not rendered silently', () => {
    assert.throws(() => describeEvent(event('no-such-type' as EventType, null, {})));
  });

  test('names the app and a short instance id, or the daemon', () => {
    const line = describeEvent(SAMPLES.spawn.event);
    assert.ok(line.includes(`bot#${INSTANCE.slice(0, 6)}`), line);
    assert.ok(!line.includes(INSTANCE), line);
    assert.ok(describeEvent({ ...SAMPLES.spawn.event, instance: null }).includes('bot '));
    assert.match(describeEvent(SAMPLES.daemon.event), new RegExp(`^${AT}\\s+daemon\\s+daemon\\s+daemon started`));
  });

  test('limit-breach for children shows the counts and the action', () => {
    const line = describeEvent(event('limit-breach', 'children-limit', { measured: 12, limit: 10, action: 'contain' }));
    assert.ok(line.includes('children-limit: 12 children > 10; action contain'), line);
  });

  test('limit-breach with kill-offender names the action', () => {
    const line = describeEvent(event('limit-breach', 'memory-limit', { measured: 1.5 * 1024 * MB, limit: 1024 * MB, action: 'kill-offender' }));
    assert.ok(line.includes('1.5 GB > 1.0 GB; action kill-offender'), line);
  });

  test('exit by a signal shows the reason and the signal', () => {
    const line = describeEvent(event('exit', 'killed-by-signal', { code: null, signal: 'SIGKILL', uptimeMs: 2_000 }));
    assert.ok(line.includes('exited: killed-by-signal (SIGKILL) after 2s'), line);
  });

  test('exit with code 0 shows the code', () => {
    const line = describeEvent(event('exit', 'exited', { code: 0, signal: null }));
    assert.ok(line.includes('exited: exited (code 0)'), line);
  });

  test('exit at a limit shows the measured figure against the limit, as the table does, then the signal', () => {
    const memory = describeEvent(event('exit', 'memory-limit', { code: null, signal: 'SIGTERM', measured: 540 * MB, limit: 200 * MB, uptimeMs: 30_000 }));
    assert.ok(memory.includes('exited: memory-limit (540 MB > 200 MB), SIGTERM after 30s'), memory);
    const children = describeEvent(event('exit', 'children-limit', { code: null, signal: 'SIGKILL', measured: 40, limit: 10 }));
    assert.ok(children.includes('exited: children-limit (40 children > 10), SIGKILL'), children);
  });

  test('a failed spawn shows its message', () => {
    const line = describeEvent(event('exit', 'spawn-failed', { message: 'ENOENT: no such file' }));
    assert.ok(line.includes('exited: spawn-failed: ENOENT: no such file'), line);
  });

  test('leftovers found while no daemon ran say so', () => {
    const line = describeEvent(event('leftovers-killed', 'daemon-down', { count: 2 }));
    assert.ok(line.includes('killed 2 process(es) left behind while no daemon ran'), line);
    assert.ok(!describeEvent(SAMPLES['leftovers-killed'].event).includes('while no daemon ran'));
  });

  test('daemon exiting shows the reason', () => {
    assert.ok(describeEvent(event('daemon', 'exiting', { pid: 12, mode: 'stop' }, null)).includes('daemon exiting (pid 12)'));
  });
});

function summary(fields: Partial<AppSummary> & { name: string }): AppSummary {
  return {
    health: null,
    status: 'online',
    pid: 1234,
    restarts: 0,
    uptimeMs: 90_000,
    memory: 50 * MB,
    processes: 1,
    children: 0,
    cpu: 12.4,
    limits: { memory: null, children: null },
    lastExit: null,
    nextStartAt: null,
    waitingFor: null,
    ready: true,
    containment: 'proc',
    ...fields,
  };
}

function exitRecord(fields: Partial<ExitRecord>): ExitRecord {
  return { code: null, signal: null, reason: 'exited', limit: null, at: AT, instance: INSTANCE, uptimeMs: 1_000, leftovers: 0, ...fields };
}

/** The list as rows of cells: columns are separated by two spaces or more, cells hold at most single spaces. */
function cells(text: string): string[][] {
  return plain(text)
    .split('\n')
    .map((line) => line.split(/ {2,}/));
}

describe('renderList', () => {
  const HEADER = ['name', 'status', 'pid', 'uptime', 'restarts', 'memory', 'cpu', 'procs', 'last exit'];

  test('no apps: says how to start one', () => {
    assert.match(renderList([]), /no apps/);
    assert.match(renderList([]), /agentpm start/);
  });

  test('an app in backoff shows when it runs next', () => {
    const nextStartAt = new Date(Date.now() + 27_500).toISOString();
    const text = renderList([summary({ name: 'crashy', status: 'backoff', pid: null, uptimeMs: null, nextStartAt })]);
    assert.match(text, /^crashy\s+backoff \(next in 28s\)/m);
  });

  test('a header and one row per app, in order', () => {
    const apps = [summary({ name: 'alpha' }), summary({ name: 'beta', pid: 2 }), summary({ name: 'gamma', pid: 3 })];
    const rows = cells(renderList(apps));
    assert.equal(rows.length, 4);
    assert.deepEqual(rows[0], HEADER);
    assert.deepEqual(rows.slice(1).map((row) => row[0]), ['alpha', 'beta', 'gamma']);
    for (const row of rows) assert.equal(row.length, HEADER.length, `row ${JSON.stringify(row)}`);
  });

  test('a running app shows its figures', () => {
    const [, row] = cells(renderList([summary({ name: 'bot', restarts: 2, processes: 3, cpu: 12.4 })]));
    assert.deepEqual(row, ['bot', 'online', '1234', '1m', '2', '50.0 MB', '12%', '3', '-']);
  });

  test("a stopped app shows '-' for what it does not have", () => {
    const stopped = summary({ name: 'idle', status: 'stopped', pid: null, uptimeMs: null, memory: 0, processes: 0, cpu: 0, restarts: 1 });
    const [, row] = cells(renderList([stopped]));
    assert.deepEqual(row, ['idle', 'stopped', '-', '-', '1', '-', '-', '0', '-']);
  });

  test('shows the memory limit next to the memory, and the process limit (root included)', () => {
    const limited = summary({ name: 'capped', memory: 540 * MB, processes: 4, limits: { memory: 200 * MB, children: 10 } });
    const [, row] = cells(renderList([limited]));
    assert.equal(row?.[5], '540 MB / 200 MB');
    assert.equal(row?.[7], '4 (≤11)');
  });

  test('an app without limits shows no limit', () => {
    const [, row] = cells(renderList([summary({ name: 'free', processes: 2 })]));
    assert.equal(row?.[5], '50.0 MB');
    assert.equal(row?.[7], '2');
  });

  test('the last exit is described', () => {
    const app = summary({ name: 'bot', lastExit: exitRecord({ reason: 'memory-limit', signal: 'SIGTERM', limit: { measured: 540 * MB, limit: 200 * MB } }) });
    const [, row] = cells(renderList([app]));
    assert.equal(row?.[8], 'memory-limit (540 MB > 200 MB)');
  });

  test('columns line up whatever the name lengths', () => {
    const text = plain(renderList([summary({ name: 'a' }), summary({ name: 'a-much-longer-name' })]));
    const lines = text.split('\n');
    const statusAt = lines.map((line) => line.search(/status|online/));
    assert.equal(new Set(statusAt).size, 1, text);
  });
});

describe('describeExit', () => {
  test('no exit yet', () => {
    assert.equal(describeExit(null), '-');
  });

  test('a memory-limit exit shows measured > limit', () => {
    assert.equal(describeExit(exitRecord({ reason: 'memory-limit', signal: 'SIGTERM', limit: { measured: 540 * MB, limit: 200 * MB } })), 'memory-limit (540 MB > 200 MB)');
  });

  test('a children-limit exit shows the children against the limit', () => {
    assert.equal(describeExit(exitRecord({ reason: 'children-limit', signal: 'SIGKILL', limit: { measured: 12, limit: 10 } })), 'children-limit (12 children > 10)');
  });

  test('otherwise the reason with the signal or the code', () => {
    assert.equal(describeExit(exitRecord({ reason: 'killed-by-signal', signal: 'SIGKILL' })), 'killed-by-signal (SIGKILL)');
    assert.equal(describeExit(exitRecord({ reason: 'crashed', code: 1 })), 'crashed (code 1)');
    assert.equal(describeExit(exitRecord({ reason: 'exited', code: 0 })), 'exited (code 0)');
    assert.equal(describeExit(exitRecord({ reason: 'vanished' })), 'vanished');
  });
});

describe('renderDetail', () => {
  const detail: AppDetail = {
    ...summary({ name: 'bot', memory: 540 * MB, processes: 3, limits: { memory: 200 * MB, children: 10 } }),
    instance: INSTANCE,
    nextStartAt: null,
    definition: {
      name: 'bot',
      script: '/srv/bot.js',
      args: ['--fast'],
      cwd: '/srv',
      interpreter: null,
      interpreterArgs: [],
      env: { MODE: 'prod' },
      stopSignal: 'SIGTERM',
      killTimeoutMs: 10_000,
      autorestart: true,
      restartDelayMs: 1_000,
      maxRestartDelayMs: 60_000,
      minUptimeMs: 30_000,
      readyAfterMs: 3_000,
      maxRestarts: null,
      restartWindowMs: 600_000,
      maxMemoryBytes: 200 * MB,
      maxChildren: 10,
      hardMemoryBytes: null,
      maxTasks: null,
      maxCpuPercent: null,
      memoryMetric: 'rss',
      memoryBreachTicks: 2,
      childrenBreachTicks: 1,
      onLimit: 'restart',
      reap: true,
      watch: null,
      ignoreWatch: [],
      watchDelayMs: 1_000,
      notify: [],
      health: null,
      hangTimeoutMs: null,
      priority: 0,
      guardAction: 'restart',
      oomScoreAdj: null,
      dependsOn: [],
      cronRestart: null,
      logs: { maxSizeBytes: 10 * MB, keep: 5, compress: false },
    },
    nextScheduledRestart: null,
    logs: { out: '/logs/bot.out.log', err: '/logs/bot.err.log' },
    logFiles: {
      policy: { maxSizeBytes: 10 * MB, keep: 5, compress: false },
      rotated: true,
      notRotatedWhy: null,
      out: { path: '/logs/bot.out.log', size: 2 * MB, totalSize: 12 * MB, rotatedFiles: 2, dropped: 0 },
      err: { path: '/logs/bot.err.log', size: 1024, totalSize: 1024, rotatedFiles: 0, dropped: 17 },
    },
    tree: [
      { pid: 1234, ppid: 1, rss: 40 * MB, cpu: 5, cmd: 'node /srv/bot.js' },
      { pid: 1300, ppid: 1234, rss: 500 * MB, cpu: 80, cmd: 'chromium --headless' },
    ],
    exits: [exitRecord({ reason: 'memory-limit', signal: 'SIGTERM', limit: { measured: 540 * MB, limit: 200 * MB }, uptimeMs: 120_000, leftovers: 2 })],
  };

  test('shows the figures with their limits, the tree nested, and the exits', () => {
    const text = plain(renderDetail(detail));
    assert.ok(text.startsWith(`bot: online (pid 1234, instance ${INSTANCE})`), text);
    assert.ok(text.includes('540 MB in 3 process(es), limit 200 MB, children limit 10'), text);
    // The kernel's caps derived from the graceful limits: 1.25 × 200 MB, and 32 + 10 × 16 + 64 tasks.
    assert.ok(text.includes('kernel caps  memory 250 MB, 256 tasks (under a cgroup backend)'), text);
    assert.ok(text.includes('/srv/bot.js --fast'), text);
    assert.ok(text.includes('MODE=prod'), text);
    const child = text.split('\n').find((line) => line.includes('chromium'));
    const root = text.split('\n').find((line) => line.includes('node /srv/bot.js'));
    assert.ok(child && root, text);
    assert.ok(child.indexOf('chromium') > root.indexOf('node /srv/bot.js'), 'a child is indented under its parent');
    // agentpm ended the tree: its other processes went with it, nothing leaked.
    assert.ok(text.includes('memory-limit (540 MB > 200 MB)  after 2m, 2 more process(es) of its tree ended with it'), text);
  });

  test('kernel caps: explicit ones and a CPU quota are shown, none without any limit', () => {
    const capped = plain(renderDetail({ ...detail, definition: { ...detail.definition, hardMemoryBytes: false, maxTasks: 500, maxCpuPercent: 150 } }));
    assert.ok(capped.includes('kernel caps  500 tasks, cpu 150% (under a cgroup backend)'), capped);
    const free = plain(renderDetail({ ...detail, definition: { ...detail.definition, maxMemoryBytes: null, maxChildren: null } }));
    assert.ok(!free.includes('kernel caps'), free);
  });

  test('shows each log file with its size, the rotated total, the policy and the lines dropped', () => {
    const text = plain(renderDetail(detail));
    assert.ok(text.includes('logs         rotated at 10.0 MB, 5 kept'), text);
    assert.ok(text.includes('/logs/bot.out.log  2.0 MB (12.0 MB with 2 rotated)'), text);
    assert.ok(text.includes('/logs/bot.err.log  1.0 KB, 17 line(s) dropped (disk full)'), text);
    assert.ok(!text.includes('not rotated'), text);
    const direct = plain(renderDetail({ ...detail, logFiles: { ...detail.logFiles, rotated: false, notRotatedWhy: 'mkfifo not found on PATH' } }));
    assert.ok(direct.includes('not rotated: this instance writes its files directly (mkfifo not found on PATH)'), direct);
  });

  test('after an exit of its own, what the tree left behind reads as left behind', () => {
    const crashed = plain(renderDetail({ ...detail, exits: [exitRecord({ reason: 'crashed', code: 1, leftovers: 3 })] }));
    assert.ok(crashed.includes('crashed (code 1)  after 1s, 3 left behind (killed)'), crashed);
  });
});

test('a state change the app caused itself says so', () => {
  const line = describeEvent(event('state', 'root-exited', { from: 'online', to: 'stopping' }));
  assert.ok(line.includes('online → stopping (it exited by itself; ending what it left)'), line);
  assert.ok(!describeEvent(event('state', null, { from: 'online', to: 'stopping' })).includes('by itself'));
});
