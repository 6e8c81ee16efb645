import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planAction, parseSignal, REAP_UNAVAILABLE, type Requester } from '../src/tui/actions.js';
import { AgentpmError } from '../src/errors.js';
import { ASCII_GLYPHS, bar, clock, fit, fitLine, levelStyle, lineWidth, sanitize, shortCommand, sparkline, textWidth, truncate, truncateKeeping, UNICODE_GLYPHS } from '../src/tui/format.js';
import { handleKey, KEY_HELP } from '../src/tui/keys.js';
import { computeLayout, MIN_COLS, MIN_ROWS } from '../src/tui/layout.js';
import type { KeyPress, Line, Rect } from '../src/tui/renderer.js';
import { addEvents, applySnapshot, createState, EVENT_LIMIT, moveSelection, SAMPLE_LIMIT, visibleApps, type MonitState, type Snapshot } from '../src/tui/state.js';
import { layoutTree } from '../src/tui/tree.js';
import { buildFrame, eventsPane, footerLine, headerLine, keyHints, logsPane, tableColumns, treeBodyRows, treePane, withClock } from '../src/tui/view-model.js';
import type { AgentEvent, AppDetail, AppSummary, DaemonStatus, RequestBody, TreeProcess } from '../src/protocol.js';

const MB = 1024 * 1024;
const NOW = Date.parse('2025-01-02T03:04:05.000Z');
const G = UNICODE_GLYPHS;

function app(name: string, overrides: Partial<AppSummary> = {}): AppSummary {
  return {
    name,
    status: 'online',
    pid: 100,
    restarts: 0,
    uptimeMs: 65_000,
    memory: 50 * MB,
    processes: 4,
    children: 3,
    cpu: 12.4,
    health: null,
    limits: { memory: 200 * MB, children: 10 },
    lastExit: null,
    nextStartAt: null,
    waitingFor: null,
    ready: true,
    containment: 'proc',
    ...overrides,
  };
}

function proc(pid: number, ppid: number, cmd = `cmd-${pid}`): TreeProcess {
  return { pid, ppid, rss: MB, cpu: 0, cmd };
}

const STATUS: DaemonStatus = {
  pid: 42,
  version: '0.1.0',
  protocol: 3,
  uptimeMs: 1000,
  home: '/tmp/home',
  apps: 2,
  supervisedBy: null,
  rss: 60 * MB,
  heapUsed: 20 * MB,
  heapTotal: 30 * MB,
  external: 2 * MB,
  tickMs: 500,
  tickCost: { samples: 10, medianMs: 4, maxMs: 9, processes: 300 },
  machine: { totalBytes: 16 * 1024 * MB, availableBytes: 12 * 1024 * MB, pressureSomeAvg10: 0.25 },
  metrics: null,
  relay: null,
  relayProblem: null,
  unrotated: [],
  containment: { backend: 'proc', reason: 'no writable cgroup', enable: null, launcher: 'direct', dirs: {} },
};

function detail(summary: AppSummary, tree: TreeProcess[]): AppDetail {
  return {
    ...summary,
    instance: 'abc',
    nextStartAt: null,
    nextScheduledRestart: null,
    definition: {} as AppDetail['definition'],
    logs: { out: '/nonexistent/out.log', err: '/nonexistent/err.log' },
    logFiles: {
      policy: { maxSizeBytes: 10 * MB, keep: 5, compress: false },
      rotated: true,
      notRotatedWhy: null,
      out: { path: '/nonexistent/out.log', size: 0, totalSize: 0, rotatedFiles: 0, dropped: 0 },
      err: { path: '/nonexistent/err.log', size: 0, totalSize: 0, rotatedFiles: 0, dropped: 0 },
    },
    tree,
    exits: [],
  };
}

function snapshot(apps: AppSummary[], withDetail: AppDetail | null = null): Snapshot {
  return { status: STATUS, apps, detail: withDetail };
}

function stateWith(apps: AppSummary[]): MonitState {
  const state = createState();
  applySnapshot(state, snapshot(apps), G, NOW);
  return state;
}

function key(name: string, ctrl = false): KeyPress {
  return { name, ctrl };
}

function text(line: Line): string {
  return line.map((part) => part.text).join('');
}

describe('format: widths and fitting', () => {
  test('cell widths: ASCII 1, East Asian wide 2, combining marks 0', () => {
    assert.equal(textWidth('agent'), 5);
    assert.equal(textWidth('中文'), 4);
    assert.equal(textWidth('e\u0301'), 1);
  });

  test('fit pads or truncates to exactly the width, with an ellipsis when it cut', () => {
    assert.equal(fit('abc', 6), 'abc   ');
    assert.equal(fit('abc', 6, { alignRight: true }), '   abc');
    assert.equal(fit('abcdefgh', 5), 'abcd…');
    assert.equal(fit('abcdefgh', 5, { ellipsis: '~' }), 'abcd~');
    assert.equal(truncate('abc', 3), 'abc', 'an exact fit is not cut');
    assert.equal(truncate('abc', 0), '');
    // A wide character that would straddle the edge is left out and the gap filled.
    const cut = fit('中中中', 4);
    assert.equal(textWidth(cut), 4);
    assert.equal(cut, '中 …');
  });

  test('fitLine keeps styles, cuts the segment that crosses the edge, pads in the last style', () => {
    const line: Line = [{ text: 'name ', style: 'strong' }, { text: 'online', style: 'ok' }, { text: ' and more' }];
    const cut = fitLine(line, 8);
    assert.deepEqual(cut, [{ text: 'name ', style: 'strong' }, { text: 'on…', style: 'ok' }]);
    // A segment that exactly reaches the edge while more follows still shows that something was cut.
    assert.equal(text(fitLine(line, 11)), 'name onlin…');
    const padded = fitLine([{ text: 'x', style: 'selected' }], 4, { pad: true });
    assert.deepEqual(padded, [{ text: 'x   ', style: 'selected' }]);
    assert.deepEqual(fitLine([], 3, { pad: true }), [{ text: '   ' }]);
  });

  test('fitLine never exceeds the width, whatever the input', () => {
    const pieces = ['a', 'bb', '中', 'ccc ', '', '├─', 'e\u0301'];
    for (let seed = 0; seed < 300; seed += 1) {
      const line: Line = [];
      for (let index = 0; index < (seed % 7) + 1; index += 1) line.push({ text: pieces[(seed * 7 + index * 3) % pieces.length]!.repeat((seed + index) % 4) });
      const width = seed % 13;
      const fitted = fitLine(line, width);
      assert.ok(lineWidth(fitted) <= width, `${JSON.stringify(line)} at ${width}: ${JSON.stringify(fitted)}`);
      if (lineWidth(line) <= width) assert.equal(text(fitted), text(line), 'what fits is unchanged');
    }
  });

  test('shortCommand keeps the last component of absolute paths, and everything else', () => {
    assert.equal(shortCommand('/usr/bin/node --import /srv/app/node_modules/tsx/dist/loader.mjs /srv/app/agent.ts --model=x'), 'node --import loader.mjs agent.ts --model=x');
    assert.equal(shortCommand('/usr/bin/python3 worker.py --config=/etc/bot/config.yaml'), 'python3 worker.py --config=config.yaml');
    assert.equal(shortCommand('sleep 600'), 'sleep 600');
    assert.equal(shortCommand('sh -c cd /tmp && ls'), 'sh -c cd /tmp && ls', 'a one-level path is already short');
    assert.equal(shortCommand('/'), '/');
  });

  test('sanitize removes escape sequences and control characters, and replaces what blessed mismeasures', () => {
    assert.equal(sanitize('\x1b[31merror\x1b[0m: x'), 'error: x');
    assert.equal(sanitize('\x1b]0;title\x07text'), 'text');
    assert.equal(sanitize('a\tb\x07c'), 'a b?c');
    assert.equal(sanitize('done 🚀'), 'done ?');
    assert.equal(sanitize('zero\u200bwidth'), 'zerowidth');
  });
});

describe('format: bars and sparklines', () => {
  test('bar fills in proportion, shows any non-zero figure, caps at full', () => {
    assert.equal(bar(0, 10, G), '░'.repeat(10));
    assert.equal(bar(0.5, 10, G), '█'.repeat(5) + '░'.repeat(5));
    assert.equal(bar(0.001, 10, G), '█' + '░'.repeat(9));
    assert.equal(bar(3, 4, G), '████');
    assert.equal(bar(Number.NaN, 3, G), '░░░');
    assert.equal(bar(0.5, 4, ASCII_GLYPHS), '##--');
    assert.equal(bar(1, 0, G), '');
  });

  test('levelStyle: ok below 70%, warn below 90%, bad from 90%', () => {
    assert.equal(levelStyle(0.69), 'ok');
    assert.equal(levelStyle(0.7), 'warn');
    assert.equal(levelStyle(0.9), 'bad');
    assert.equal(levelStyle(1.5), 'bad');
  });

  test('sparkline scales from zero to the largest value; zero is blank', () => {
    assert.equal(sparkline([], 10, G), '');
    assert.equal(sparkline([0, 1, 2, 4, 8], 10, G), ' ▂▃▅█');
    assert.equal(sparkline([5, 5, 5], 10, G), '███');
    assert.equal(sparkline([1, 2], 10, ASCII_GLYPHS), '~#');
  });

  test('sparkline fits more values than columns and keeps a short spike', () => {
    const values = Array.from({ length: 600 }, (_, index) => (index === 301 ? 100 : 10));
    const line = sparkline(values, 60, G);
    assert.equal([...line].length, 60);
    assert.equal([...line].filter((char) => char === '█').length, 1, 'the spike survives downsampling');
  });

  test('clock is local HH:MM:SS and tolerates garbage', () => {
    assert.match(clock('2025-01-02T03:04:05.000Z'), /^\d\d:04:05$/);
    assert.equal(clock('not a date'), '--:--:--');
  });
});

describe('tree layout', () => {
  test('root first, children in pid order, indented by parent with branch glyphs', () => {
    const rows = layoutTree([proc(30, 10), proc(10, 1), proc(20, 10), proc(21, 20), proc(22, 20)], 10, G);
    assert.deepEqual(
      rows.map((row) => `${row.prefix}${row.pid}`),
      ['10', '├─20', '│ ├─21', '│ └─22', '└─30'],
    );
    assert.deepEqual(rows.map((row) => row.depth), [0, 1, 2, 2, 1]);
  });

  test('processes whose parent is not in the tree (setsid, reparented) are top-level, after the root', () => {
    const rows = layoutTree([proc(5, 1), proc(50, 1), proc(51, 50), proc(40, 1)], 50, G);
    assert.deepEqual(rows.map((row) => `${row.prefix}${row.pid}`), ['50', '└─51', '5', '40']);
  });

  test('ASCII glyphs without a UTF-8 terminal', () => {
    const rows = layoutTree([proc(1, 0), proc(2, 1), proc(3, 2), proc(4, 1)], 1, ASCII_GLYPHS);
    assert.deepEqual(rows.map((row) => `${row.prefix}${row.pid}`), ['1', '|-2', '| `-3', '`-4']);
  });

  test('a parent cycle or a very deep chain neither hangs, overflows nor loses a process', () => {
    assert.deepEqual(layoutTree([proc(1, 2), proc(2, 1)], null, G).map((row) => row.pid).sort(), [1, 2]);
    const chain = Array.from({ length: 20_000 }, (_, index) => proc(index + 2, index + 1));
    const rows = layoutTree(chain, 2, ASCII_GLYPHS);
    assert.equal(rows.length, 20_000);
    assert.equal(rows.at(-1)?.depth, 19_999);
  });
});

describe('state', () => {
  test('selection follows the name across refreshes and falls back when the app is gone', () => {
    const state = stateWith([app('a'), app('b'), app('c')]);
    assert.equal(state.selected, 'a', 'the first app is selected');
    assert.equal(moveSelection(state, 1), true);
    applySnapshot(state, snapshot([app('c'), app('b'), app('a')]), G, NOW + 1000);
    assert.equal(state.selected, 'b', 'reordering keeps the selection');
    applySnapshot(state, snapshot([app('c'), app('a')]), G, NOW + 2000);
    assert.equal(state.selected, 'c', 'a deleted selection moves to the first app');
    assert.equal(moveSelection(state, -5), false, 'clamped at the top');
    assert.equal(moveSelection(state, 5), true);
    assert.equal(state.selected, 'a', 'clamped at the bottom');
  });

  test('the detail is taken only for the selected app, and laid out as a tree', () => {
    const state = stateWith([app('a'), app('b')]);
    applySnapshot(state, snapshot([app('a'), app('b')], detail(app('b'), [proc(1, 0)])), G, NOW + 1000);
    assert.equal(state.detail, null, 'an answer for another app (selection moved meanwhile) is dropped');
    applySnapshot(state, snapshot([app('a'), app('b')], detail(app('a', { pid: 1 }), [proc(1, 0), proc(2, 1)])), G, NOW + 2000);
    assert.deepEqual(state.treeRows.map((row) => row.pid), [1, 2]);
  });

  test('memory samples: one per refresh, bounded, extra refreshes replace, gone apps forgotten', () => {
    const state = stateWith([app('a', { memory: 1 }), app('b')]);
    applySnapshot(state, snapshot([app('a', { memory: 2 }), app('b')]), G, NOW + 100);
    assert.deepEqual(state.samples.get('a')?.map((sample) => sample.bytes), [2], 'a refresh 100 ms later replaces the sample');
    for (let index = 1; index <= SAMPLE_LIMIT + 50; index += 1) applySnapshot(state, snapshot([app('a', { memory: index })]), G, NOW + index * 1000);
    const samples = state.samples.get('a') ?? [];
    assert.equal(samples.length, SAMPLE_LIMIT);
    assert.equal(samples.at(-1)?.bytes, SAMPLE_LIMIT + 50, 'the newest are kept');
    assert.equal(state.samples.has('b'), false);
  });

  test('filter by name ignores case; the selection moves into the filtered list', () => {
    const state = stateWith([app('Agent-1'), app('worker'), app('agent-2')]);
    state.selected = 'worker';
    handleKey(state, key('/'), 10, NOW);
    for (const char of 'AGENT') handleKey(state, key(char), 10, NOW);
    assert.deepEqual(visibleApps(state).map((entry) => entry.name), ['Agent-1', 'agent-2']);
    assert.equal(state.selected, 'Agent-1');
    handleKey(state, key('enter'), 10, NOW);
    assert.equal(state.mode.kind, 'normal');
    assert.equal(state.filter, 'AGENT', 'Enter keeps the filter');
    handleKey(state, key('escape'), 10, NOW);
    assert.equal(state.filter, '', 'Esc clears it');
  });

  test('events: a backlog replaces, pushes append, the total is bounded', () => {
    const state = createState();
    const event = (index: number): AgentEvent => ({ type: 'spawn', app: 'a', instance: 'i', at: new Date(NOW + index).toISOString(), reason: null, data: { pid: index } });
    addEvents(state, [event(1)], false);
    addEvents(state, [event(2), event(3)], true);
    assert.deepEqual(state.events.map((entry) => entry.data['pid']), [2, 3]);
    addEvents(state, Array.from({ length: EVENT_LIMIT + 10 }, (_, index) => event(index + 10)), false);
    assert.equal(state.events.length, EVENT_LIMIT);
    assert.equal(state.events.at(-1)?.data['pid'], EVENT_LIMIT + 19);
  });
});

describe('keys', () => {
  test('q and Ctrl-C quit; Ctrl-C also from a prompt', () => {
    const state = stateWith([app('a')]);
    assert.deepEqual(handleKey(state, key('q'), 10, NOW), { kind: 'quit' });
    handleKey(state, key('k'), 10, NOW);
    assert.equal(state.mode.kind, 'signal');
    assert.equal(handleKey(state, key('q'), 10, NOW), null, 'q is typed into the prompt');
    assert.deepEqual(handleKey(state, key('c', true), 10, NOW), { kind: 'quit' });
  });

  test('r, s, S, x act on the selected app; without one they only say so', () => {
    const state = stateWith([app('a'), app('b')]);
    handleKey(state, key('down'), 10, NOW);
    assert.deepEqual(handleKey(state, key('r'), 10, NOW), { kind: 'action', action: 'restart', app: 'b' });
    assert.deepEqual(handleKey(state, key('s'), 10, NOW), { kind: 'action', action: 'stop', app: 'b' });
    assert.deepEqual(handleKey(state, key('S'), 10, NOW), { kind: 'action', action: 'start', app: 'b' });
    assert.deepEqual(handleKey(state, key('x'), 10, NOW), { kind: 'action', action: 'reap', app: 'b' });
    const empty = stateWith([]);
    assert.equal(handleKey(empty, key('r'), 10, NOW), null);
    assert.equal(empty.notice?.text, 'no app selected');
  });

  test('d asks first: y deletes, anything else keeps the app', () => {
    const state = stateWith([app('a')]);
    assert.equal(handleKey(state, key('d'), 10, NOW), null);
    assert.deepEqual(state.mode, { kind: 'confirm-delete', app: 'a' });
    assert.equal(handleKey(state, key('n'), 10, NOW), null);
    assert.equal(state.mode.kind, 'normal');
    handleKey(state, key('d'), 10, NOW);
    assert.deepEqual(handleKey(state, key('y'), 10, NOW), { kind: 'action', action: 'delete', app: 'a' });
  });

  test('k prompts for a signal: SIGTERM by default, short names accepted, unknown refused', () => {
    const state = stateWith([app('a')]);
    handleKey(state, key('k'), 10, NOW);
    assert.deepEqual(handleKey(state, key('enter'), 10, NOW), { kind: 'action', action: 'signal', app: 'a', signal: 'SIGTERM' });
    handleKey(state, key('k'), 10, NOW);
    for (const char of 'usr2') handleKey(state, key(char), 10, NOW);
    handleKey(state, key('backspace'), 10, NOW);
    handleKey(state, key('1'), 10, NOW);
    assert.deepEqual(handleKey(state, key('enter'), 10, NOW), { kind: 'action', action: 'signal', app: 'a', signal: 'SIGUSR1' });
    handleKey(state, key('k'), 10, NOW);
    for (const char of 'nope') handleKey(state, key(char), 10, NOW);
    assert.equal(handleKey(state, key('enter'), 10, NOW), null);
    assert.match(state.notice?.text ?? '', /unknown signal 'nope'/);
    handleKey(state, key('k'), 10, NOW);
    assert.equal(handleKey(state, key('escape'), 10, NOW), null, 'Esc sends nothing');
    assert.equal(state.mode.kind, 'normal');
  });

  test('? opens the help; the next key only closes it', () => {
    const state = stateWith([app('a')]);
    handleKey(state, key('?'), 10, NOW);
    assert.equal(state.mode.kind, 'help');
    assert.equal(handleKey(state, key('r'), 10, NOW), null, 'r closes the help, it does not restart');
    assert.equal(state.mode.kind, 'normal');
  });

  test('PgDn/PgUp/End/Home scroll the tree within its rows', () => {
    const state = stateWith([app('a', { pid: 1 })]);
    const tree = [proc(1, 0), ...Array.from({ length: 99 }, (_, index) => proc(index + 2, 1))];
    applySnapshot(state, snapshot([app('a', { pid: 1 })], detail(app('a', { pid: 1 }), tree)), G, NOW + 1000);
    handleKey(state, key('pagedown'), 10, NOW);
    assert.equal(state.treeScroll, 9);
    handleKey(state, key('end'), 10, NOW);
    assert.equal(state.treeScroll, 90);
    handleKey(state, key('pagedown'), 10, NOW);
    assert.equal(state.treeScroll, 90, 'not past the end');
    handleKey(state, key('home'), 10, NOW);
    assert.equal(state.treeScroll, 0);
  });
});

describe('actions', () => {
  function recorder(answer: (body: RequestBody) => unknown = () => ({ apps: [] })): { sent: RequestBody[]; request: Requester } {
    const sent: RequestBody[] = [];
    const request = (async (body: RequestBody) => {
      sent.push(body);
      return answer(body);
    }) as Requester;
    return { sent, request };
  }

  test('restart, stop, delete and signal send the matching request', async () => {
    for (const [action, body] of [
      ['restart', { type: 'restart', target: { names: ['a'] } }],
      ['stop', { type: 'stop', target: { names: ['a'] } }],
      ['delete', { type: 'delete', target: { names: ['a'] } }],
      ['signal', { type: 'signal', name: 'a', signal: 'SIGHUP' }],
    ] as const) {
      const plan = planAction(action, app('a'), 'SIGHUP');
      assert.equal(plan.kind, 'request');
      if (plan.kind !== 'request') continue;
      const { sent, request } = recorder();
      assert.match(await plan.run(request), /a$/);
      assert.deepEqual(sent, [body]);
    }
  });

  test('start starts the saved definition of a stopped app, and is refused for a running one', async () => {
    const running = planAction('start', app('a'));
    assert.equal(running.kind, 'refused');
    const stopped = planAction('start', app('a', { status: 'stopped', pid: null }));
    assert.equal(stopped.kind, 'request');
    if (stopped.kind !== 'request') return;
    const { sent, request } = recorder();
    assert.equal(await stopped.run(request), 'started a');
    assert.deepEqual(sent, [{ type: 'start-saved', names: ['a'], ifRunning: 'refuse' }]);
    assert.equal(planAction('signal', app('a', { pid: null })).kind, 'refused');
  });

  test("reap asks for the app's orphans and reports what was found; an older daemon says not available", async () => {
    const plan = planAction('reap', app('a'));
    assert.equal(plan.kind, 'request');
    if (plan.kind !== 'request') return;
    const found = recorder(() => ({ daemon: true, dryRun: false, found: [{}, {}], ended: 2, survivors: 0, skipped: [] }));
    assert.equal(await plan.run(found.request), 'reaped 2 orphaned process(es) of a');
    const sent = found.sent[0];
    assert.ok(sent?.type === 'reap');
    assert.equal(sent.options.app, 'a');
    assert.equal(sent.options.dryRun, false);
    assert.equal(sent.options.unmanaged, null, 'never processes agentpm did not start');
    assert.equal(sent.options.caller.pid, process.pid, 'the TUI names itself, so that it and its ancestors are never reaped');
    const none = recorder(() => ({ daemon: true, dryRun: false, found: [], ended: 0, survivors: 0, skipped: [] }));
    assert.equal(await plan.run(none.request), 'no orphans of a');
    const old = recorder(() => {
      throw new AgentpmError('bad-request', 'unknown request type');
    });
    assert.equal(await plan.run(old.request), REAP_UNAVAILABLE);
    const down = recorder(() => {
      throw new AgentpmError('daemon-unreachable', 'gone');
    });
    await assert.rejects(plan.run(down.request), /gone/);
  });

  test('parseSignal', () => {
    assert.equal(parseSignal('term'), 'SIGTERM');
    assert.equal(parseSignal(' sigusr1 '), 'SIGUSR1');
    assert.equal(parseSignal('SIGKILL'), 'SIGKILL');
    assert.equal(parseSignal('bogus'), null);
    assert.equal(parseSignal(''), null);
  });
});

describe('view model', () => {
  function inside(rect: Rect, cols: number, rows: number): boolean {
    return rect.top >= 0 && rect.left >= 0 && rect.top + rect.height <= rows && rect.left + rect.width <= cols && rect.width > 0 && rect.height > 0;
  }

  function overlaps(a: Rect, b: Rect): boolean {
    return a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height && b.top < a.top + a.height;
  }

  test('layout: every pane on screen, none overlapping, from the minimum size up', () => {
    for (const [cols, rows] of [[80, 24], [120, 40], [MIN_COLS, MIN_ROWS], [300, 100]] as const) {
      for (const appCount of [0, 1, 3, 50]) {
        const layout = computeLayout(cols, rows, appCount);
        assert.ok(layout, `${cols}x${rows}`);
        const rects = Object.values(layout);
        for (const rect of rects) assert.ok(inside(rect, cols, rows), `${cols}x${rows} ${JSON.stringify(rect)}`);
        for (let a = 0; a < rects.length; a += 1) for (let b = a + 1; b < rects.length; b += 1) assert.ok(!overlaps(rects[a]!, rects[b]!), `${cols}x${rows}: ${JSON.stringify(rects[a])} ${JSON.stringify(rects[b])}`);
        assert.ok(layout.tree.height >= 4 && layout.events.height >= 2 && layout.logs.height >= 3, `${cols}x${rows} leaves room for the details`);
      }
    }
    assert.equal(computeLayout(MIN_COLS - 1, 24, 1), null);
  });

  test('a frame at 80x24 and 120x40: every line fits its pane, the apps and the tree are there', () => {
    const apps = [app('agent', { pid: 1 }), app('flaky', { status: 'backoff', pid: null, processes: 0, memory: 0, lastExit: { code: 1, signal: null, reason: 'crashed', limit: null, at: '', instance: 'x', uptimeMs: 1, leftovers: 0 } })];
    const tree = [proc(1, 0, 'node agent.ts'), proc(2, 1, 'node mcp-1'), proc(3, 1, 'node mcp-2')];
    for (const [cols, rows] of [[80, 24], [120, 40]] as const) {
      const state = stateWith(apps);
      applySnapshot(state, snapshot(apps, detail(apps[0]!, tree)), G, NOW + 1000);
      state.logs = [{ stream: 'out', text: 'agent turn 1' }, { stream: 'err', text: 'warning: slow' }];
      const frame = buildFrame({ state, cols, rows, glyphs: G, now: NOW + 1000 });
      for (const pane of frame.panes) {
        const width = pane.overlay ? pane.rect.width - 2 : pane.rect.width;
        const room = pane.rect.height - (pane.title === null ? 0 : 1);
        assert.ok(pane.lines.length <= room, `${cols}x${rows} ${pane.id}: ${pane.lines.length} lines in ${room} rows`);
        for (const line of pane.lines) assert.ok(lineWidth(line) <= width, `${cols}x${rows} ${pane.id}: '${text(line)}' is wider than ${width}`);
      }
      const all = frame.panes.flatMap((pane) => [pane.title ?? '', ...pane.lines.map(text)]).join('\n');
      assert.match(all, /^> agent +online/m, 'the selected app is marked');
      assert.match(all, /^ {2}flaky +backoff/m);
      assert.match(all, /crashed \(code 1\)/);
      assert.match(all, /^ +2 +1\.0 MB +0% +├─node mcp-1$/m);
      assert.match(all, /^ +3 +1\.0 MB +0% +└─node mcp-2$/m);
      assert.match(all, /now 50\.0 MB .*(limit|\/) 200 MB$/m, 'the limit is shown even in a narrow memory pane');
      assert.match(all, /err warning: slow/);
      assert.match(all, /daemon (pid )?42/);
    }
  });

  test('the table adapts its columns: full headers from 110 columns, a memory bar against the limit', () => {
    const wide = tableColumns([app('a')], 120, G).map((column) => column.header);
    assert.deepEqual(wide, ['name', 'status', 'pid', 'uptime', 'restarts', 'memory', 'children', 'cpu', 'last exit']);
    const narrow = tableColumns([app('a')], 80, G);
    const used = 2 + narrow.reduce((sum, column) => sum + column.width + 1, 0) - 1;
    assert.equal(used, 80, 'the last exit takes exactly what is left');
    const memory = narrow.find((column) => column.header === 'memory');
    assert.equal(text(memory!.cell(app('a', { memory: 100 * MB }))), '███░░░ 100 MB');
    assert.equal(text(memory!.cell(app('a', { limits: { memory: null, children: null } }))), '50.0 MB');
    const status = narrow.find((column) => column.header === 'status');
    assert.deepEqual(status!.cell(app('a', { health: 'unhealthy' })), [{ text: 'unhealthy', style: 'bad' }], 'a failing health check shows in the status');
    assert.deepEqual(status!.cell(app('a', { health: 'healthy' })), [{ text: 'online', style: 'ok' }]);
    const children = narrow.find((column) => column.header === 'chld');
    assert.equal(text(children!.cell(app('a'))), '3/10', 'children exclude the root');
  });

  test('the tree pane formats only the rows that are visible, and says where it is', () => {
    const state = stateWith([app('big', { pid: 1 })]);
    const tree = [proc(1, 0), ...Array.from({ length: 4999 }, (_, index) => proc(index + 2, 1))];
    applySnapshot(state, snapshot(state.apps, detail(state.apps[0]!, tree)), G, NOW + 1000);
    const rect = { top: 0, left: 0, width: 60, height: 12 };
    const top = treePane(state, state.apps[0]!, rect, G);
    assert.equal(top.lines.length, 11, 'a column header and ten processes, not five thousand');
    assert.match(top.title ?? '', /1-10 of 5000/);
    state.treeScroll = 1_000_000;
    const bottom = treePane(state, state.apps[0]!, rect, G);
    assert.match(bottom.title ?? '', /4991-5000 of 5000/, 'scrolling is clamped to the end');
    assert.match(text(bottom.lines.at(-1)!), /└─cmd-5000/);
    assert.equal(treeBodyRows(80, 24, 1), computeLayout(80, 24, 1)!.tree.height - 2);
  });

  test('header: machine memory, PSI when present, and the daemon being away', () => {
    const state = stateWith([]);
    assert.equal(text(headerLine(state)), 'agentpm monit │ daemon pid 42, 60.0 MB │ mem 4.0 GB used, 12.0 GB avail of 16.0 GB │ psi 0.25%');
    assert.equal(text(headerLine(state, true)), 'agentpm │ daemon 42 60.0 MB │ mem 4.0 GB/16.0 GB │ psi 0.25%');
    for (const [cols, expected] of [[120, /^agentpm monit .*psi 0\.25% +\d\d:\d\d:\d\d$/], [80, /^agentpm │ .*psi 0\.25% +\d\d:\d\d:\d\d$/]] as const) {
      const header = buildFrame({ state, cols, rows: 24, glyphs: G, now: NOW }).panes.find((pane) => pane.id === 'header');
      assert.match(text(header?.lines[0] ?? []), expected, `pressure and the clock are visible at ${cols} columns`);
    }
    state.status = { ...STATUS, machine: { ...STATUS.machine, pressureSomeAvg10: null } };
    assert.doesNotMatch(text(headerLine(state)), /psi/);
    state.connection = { state: 'down', since: NOW, error: 'no agentpm daemon is running' };
    assert.match(text(headerLine(state)), /daemon unreachable since \d\d:\d\d:\d\d, retrying every second │ no agentpm daemon is running/);
  });

  test('the clock keeps the right edge of the header, however long the rest', () => {
    const short = text(withClock([{ text: 'agentpm monit' }], NOW, 40, G));
    assert.equal(textWidth(short), 40);
    assert.match(short, /^agentpm monit +\d\d:04:05$/);
    const long = text(withClock([{ text: 'x'.repeat(100) }], NOW, 40, G));
    assert.equal(textWidth(long), 40);
    assert.match(long, /^x+… \d\d:04:05$/);
  });

  test('events: the reasons, newest last, without the state transitions that repeat them', () => {
    const at = new Date(NOW).toISOString();
    const events: AgentEvent[] = [
      { type: 'spawn', app: 'a', instance: 'i', at, reason: null, data: { pid: 7 } },
      { type: 'state', app: 'a', instance: 'i', at, reason: null, data: { from: 'online', to: 'stopping' } },
      { type: 'exit', app: 'a', instance: 'i', at, reason: 'crashed', data: { code: 1, signal: null, uptimeMs: 15_000 } },
      { type: 'backoff', app: 'a', instance: 'i', at, reason: null, data: { delayMs: 2000, unstableExits: 2 } },
    ];
    const pane = eventsPane(events, 'a', { top: 0, left: 0, width: 80, height: 3 }, G);
    assert.deepEqual(pane.lines.map((line) => text(line).replace(/^\d\d:\d\d:\d\d /, '')), ['exit crashed (code 1) after 15s', 'backoff restarting in 2000 ms (unstable exit 2 in a row)']);
    assert.equal(pane.lines[0]?.[2]?.style, 'bad', 'a crash stands out');
  });

  test('truncateKeeping cuts around the key figure, never into it', () => {
    const line = 'exited: memory-limit (211 MB > 200 MB), SIGTERM: a long message from the app after 5m';
    const keys = ['memory-limit (211 MB > 200 MB)', '211 MB > 200 MB'];
    assert.equal(truncateKeeping(line, 200, keys), line, 'what fits is not cut');
    for (const width of [34, 40, 50, 60, 70]) {
      const cut = truncateKeeping(line, width, keys);
      assert.equal(textWidth(cut), width, `exactly ${width} cells`);
      assert.ok(cut.includes(keys[0] ?? ''), `${width}: the whole key stays: ${cut}`);
      assert.ok(cut.startsWith(width >= 40 ? 'exited:' : 'ex'), `${width}: the start stays: ${cut}`);
      assert.ok(cut.includes('…'), `${width}: the cut is marked`);
    }
    assert.equal(truncateKeeping(line, 70, keys), 'exited: memory-limit (211 MB > 200 MB), SIGTERM: a long message from …');
    // Too narrow for the cause with its figure: the figure alone, whole.
    assert.equal(truncateKeeping(line, 22, keys), 'exite…211 MB > 200 MB…');
    // A long start before the key: its end goes, and all that follows the key stays.
    const pids = 'ended offending process(es) 101, 102, 103, 104, 105, 106, 107 (memory-limit); the app keeps running';
    assert.equal(truncateKeeping(pids, 60, ['(memory-limit)']), 'ended offending proces…(memory-limit); the app keeps running');
    // Too narrow for any key with room to spare, or no key in the text: a plain cut at the end.
    assert.equal(truncateKeeping(line, 14, keys), truncate(line, 14));
    assert.equal(truncateKeeping(line, 40, ['not there']), truncate(line, 40));
    assert.equal(truncateKeeping(line, 40, []), truncate(line, 40));
    // Wide characters before the key: still exactly the width.
    assert.equal(textWidth(truncateKeeping(`中文中文中文中文中文 ${keys[0]} after 5m`, 41, keys)), 41);
  });

  test('events: a line cut to a narrow pane keeps its key figure (a limit, a cause, a count) in view', () => {
    const at = new Date(NOW).toISOString();
    const events: AgentEvent[] = [
      { type: 'exit', app: 'a', instance: 'i', at, reason: 'memory-limit', data: { code: null, signal: 'SIGTERM', measured: 211 * MB, limit: 200 * MB, uptimeMs: 300_000, message: 'tree ended with it after the stop signal' } },
      { type: 'exit', app: 'a', instance: 'i', at, reason: 'crashed', data: { code: 3, signal: null, message: 'x'.repeat(80), uptimeMs: 2000 } },
      { type: 'limit-breach', app: 'a', instance: 'i', at, reason: 'children-limit', data: { measured: 56, limit: 50, action: 'contain-and-kill-the-offending-subtree-then-restart' } },
      { type: 'offender-killed', app: 'a', instance: 'i', at, reason: 'memory-limit', data: { pids: [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008] } },
    ];
    const rowsAt = (width: number): string[] => eventsPane(events, 'a', { top: 0, left: 0, width, height: 6 }, G).lines.map(text);
    const wide = rowsAt(56);
    for (const row of wide) assert.ok(textWidth(row) <= 56 && row.includes('…'), `cut to the pane, and marked: ${row}`);
    assert.match(wide[0] ?? '', /:\d\d exit memory-limit \(211 MB > 200 MB\), SIGTERM/, 'the type says exit: the text does not repeat it');
    assert.match(wide[1] ?? '', /crashed \(code 3\)/);
    assert.match(wide[2] ?? '', /children-limit: 56 children > 50/);
    assert.match(wide[3] ?? '', /\(memory-limit\)/);
    // The events pane of an 80-column terminal: the figure alone (a limit-breach's long type leaves too little room even for that).
    const narrow = rowsAt(36);
    assert.match(narrow[0] ?? '', /211 MB > 200 MB/);
    assert.match(narrow[1] ?? '', /crashed \(code 3\)/);
  });

  test('logs: stderr is labelled, not only coloured', () => {
    const state = createState();
    state.logs = [{ stream: 'out', text: 'fine' }, { stream: 'err', text: 'bad' }];
    const pane = logsPane(state, 'a', { top: 0, left: 0, width: 40, height: 5 }, G);
    assert.deepEqual(pane.lines.map(text), ['out fine', 'err bad']);
    assert.equal(pane.lines[1]?.[0]?.style, 'err');
  });

  test('footer: prompts per mode, key hints fitted to the width', () => {
    const state = stateWith([app('a')]);
    assert.match(text(footerLine(state, NOW, 120)), /r restart {2}s stop/);
    assert.ok(textWidth(keyHints(80)) <= 80);
    assert.match(keyHints(80), /q quit$/, 'quit stays visible at 80 columns');
    state.mode = { kind: 'confirm-delete', app: 'a' };
    assert.match(text(footerLine(state, NOW, 80)), /delete a .*y\/n/);
    state.mode = { kind: 'normal' };
    state.notice = { text: 'restarted a', style: 'ok', at: NOW };
    assert.equal(text(footerLine(state, NOW + 1000, 80)), 'restarted a');
    assert.doesNotMatch(text(footerLine(state, NOW + 60_000, 80)), /restarted/, 'a message goes away');
  });

  test('the help overlay lists every key', () => {
    const state = stateWith([app('a')]);
    state.mode = { kind: 'help' };
    const help = buildFrame({ state, cols: 80, rows: 24, glyphs: G, now: NOW }).panes.find((pane) => pane.id === 'help');
    assert.ok(help?.overlay);
    const body = help.lines.map(text).join('\n');
    for (const entry of KEY_HELP) assert.ok(body.includes(entry.keys) && body.includes(entry.what), `help shows ${entry.keys}`);
  });

  test('below the minimum size only a message is drawn', () => {
    const frame = buildFrame({ state: stateWith([app('a')]), cols: 40, rows: 10, glyphs: G, now: NOW });
    assert.equal(frame.panes.length, 1);
    assert.match(text(frame.panes[0]!.lines[0]!), /terminal too small/);
  });
});
