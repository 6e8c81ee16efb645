/**
 * `agentpm monit` in a real terminal: tmux runs it against a real daemon with real apps; the tests
 * press keys and read the screen the way a person would.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { AppDetail } from '../src/protocol.js';
import { liveProcesses } from './helpers/procs.js';
import { CLI, FIXTURES, Rig, waitFor } from './helpers/rig.js';
import { Tmux, tmuxTerm } from './helpers/tmux.js';

const TREE = join(FIXTURES, 'tree.mjs');
const IDLE = join(FIXTURES, 'idle.mjs');
const EXITED = /monit exited (\d+), terminal (restored|changed)/;

/** Any colour in SGR: foreground/background 30-37, 40-47, 90-97, 100-107, 38;…, 48;… (39/49 only reset). */
const COLOR_SGR = /\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9;]*)?m/;

interface Session {
  rig: Rig;
  tmux: Tmux;
}

/**
 * A rig with the given apps running, and monit started from a shell in a tmux session of that size.
 * The shell prints how monit exited and whether the terminal's settings are what they were before.
 */
async function startMonit(t: TestContext, options: { cols: number; rows: number; color: boolean; apps: string[][] }): Promise<Session> {
  const rig = await Rig.create();
  let tmux: Tmux | null = null;
  t.after(async () => {
    try {
      await tmux?.kill();
    } finally {
      await rig.dispose();
    }
  });
  for (const app of options.apps) await rig.ok(['start', ...app]);
  const env: Record<string, string> = { AGENTPM_HOME: rig.home, LANG: 'C.UTF-8', PS1: '$ ' };
  if (!options.color) env['NO_COLOR'] = '1';
  tmux = await Tmux.start({ cols: options.cols, rows: options.rows, env });
  await tmux.type(`S=$(stty -g); TERM=${tmuxTerm()} ${process.execPath} ${CLI} monit; echo "monit exited $?, terminal $([ "$(stty -g)" = "$S" ] && echo restored || echo changed)"`);
  await tmux.keys('Enter');
  return { rig, tmux };
}

function monitProcesses(rig: Rig): number[] {
  return liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === rig.home && proc.cmd.includes(`${CLI} monit`)).map((proc) => proc.pid);
}

/** The app names of the table's rows, and which one carries the selection mark. */
function tableRows(screen: string): { names: string[]; selected: number } {
  const rows = screen.split('\n').filter((line) => /^[> ] \S+ +(online|starting|stopping|stopped|backoff|errored) /.test(line));
  return { names: rows.map((line) => line.slice(2).split(' ')[0] ?? ''), selected: rows.findIndex((line) => line.startsWith('> ')) };
}

/** Moves the selection to an app with j and Up, one row at a time, each time waiting for the mark to move. */
async function select(tmux: Tmux, name: string): Promise<void> {
  for (let moves = 0; moves < 10; moves += 1) {
    const { names, selected } = await tmux.waitForScreen((text) => {
      const rows = tableRows(text);
      return rows.selected >= 0 && rows.names.includes(name) ? rows : undefined;
    }, `the table with ${name} and a selection`);
    const target = names.indexOf(name);
    if (target === selected) return;
    await tmux.keys(target > selected ? 'j' : 'Up');
    await tmux.waitForScreen((text) => tableRows(text).selected !== selected, 'the selection to move', 5000);
  }
  assert.fail(`could not select ${name}:\n${await tmux.capture()}`);
}

/** Waits until the quit left the shell with monit gone, the terminal mode restored and the main screen back. */
async function assertQuitCleanly(session: Session): Promise<void> {
  const { tmux, rig } = session;
  const match = await tmux.waitForScreen((screen) => EXITED.exec(screen), 'monit to exit and the shell to report');
  assert.equal(match[1], '0', 'monit exits 0');
  assert.equal(match[2], 'restored', 'the terminal settings (raw mode, echo) are what they were before');
  assert.equal(await tmux.display('#{alternate_on}'), '0', 'back on the main screen');
  assert.equal(await tmux.display('#{cursor_flag}'), '1', 'the cursor is visible again');
  await waitFor(() => monitProcesses(rig).length === 0, 'no monit process left', 5000);
}

async function treeOf(rig: Rig, name: string, children: number): Promise<AppDetail> {
  return waitFor(async () => {
    const detail = await rig.show(name);
    return detail.status === 'online' && detail.tree.length === children + 1 ? detail : undefined;
  }, `${name} with ${children} children`);
}

test('monit shows the apps and the tree, restarts from the keyboard, has help, and quits cleanly (120x40, NO_COLOR)', async (t) => {
  const session = await startMonit(t, {
    cols: 120,
    rows: 40,
    color: false,
    apps: [
      [TREE, '--name', 'tree', '--env', 'CHILDREN=3', '--max-memory', '500M', '--max-children', '10'],
      [IDLE, '--name', 'idle'],
    ],
  });
  const { rig, tmux } = session;
  const before = await treeOf(rig, 'tree', 3);
  await tmux.waitForScreen((screen) => /^. tree +online /m.test(screen) && /^. idle +online /m.test(screen), 'both apps online in the table');
  await select(tmux, 'tree');

  // The table row: pid, memory against its limit, children against theirs.
  const row = await tmux.waitForScreen((screen) => new RegExp(`^> tree +online +${before.pid} .*/ 500 MB +3/10 `, 'm').exec(screen)?.[0], 'the tree row with its figures');
  assert.match(row, /█/, 'a memory bar');

  // The process tree: the root, then its three children one level in, the last one closing the branch.
  const children = before.tree.filter((proc) => proc.pid !== before.pid).map((proc) => proc.pid).sort((a, b) => a - b);
  const screen = await tmux.waitForScreen((text) => (children.every((pid) => new RegExp(`^ +${pid} .*─sleep 600`, 'm').test(text)) ? text : undefined), 'the three children in the tree');
  assert.match(screen, /tree · tree · 4 processes/);
  const lines = screen.split('\n');
  const rootLine = lines.findIndex((line) => new RegExp(`^ +${before.pid} +\\S+ MB +\\d+% +node tree\\.mjs( |$)`).test(line));
  assert.ok(rootLine >= 0, 'the root is listed');
  const childLines = children.map((pid) => lines.findIndex((line) => new RegExp(`^ +${pid} `).test(line)));
  assert.deepEqual(childLines, [rootLine + 1, rootLine + 2, rootLine + 3], 'the children follow the root, in pid order');
  assert.deepEqual(
    childLines.map((index) => /([├└])─sleep 600/.exec(lines[index] ?? '')?.[1]),
    ['├', '├', '└'],
    'indented under the root',
  );

  // NO_COLOR: attributes (inverse selection, bold) but no colour at all.
  const escaped = await tmux.capture(true);
  assert.doesNotMatch(escaped, COLOR_SGR);
  assert.match(escaped, /\x1b\[(?:[0-9;]*;)?7m> tree/, 'the selection is shown in inverse video');

  // The help overlay, and any key closes it.
  await tmux.keys('?');
  const help = await tmux.waitForScreen((text) => (text.includes('help: keys') ? text : undefined), 'the help overlay');
  for (const text of ['restart the selected app', 'delete it (asks y/n)', 'signal its root process', 'reap its orphans', 'filter apps by name', 'q Ctrl-C']) assert.ok(help.includes(text), `help mentions '${text}'`);
  await tmux.keys('Escape');
  await tmux.waitForScreen((text) => !text.includes('help: keys'), 'the help to close');

  // A restart from the keyboard: the daemon restarts the app, and the screen shows the new instance.
  await tmux.keys('r');
  await tmux.waitForScreen((text) => text.includes('restarted tree'), 'the restart to be confirmed');
  const after = await waitFor(async () => {
    const app = await rig.app('tree');
    return app.restarts === 1 && app.status === 'online' && app.pid !== before.pid ? app : undefined;
  }, 'tree restarted with a new pid');
  await tmux.waitForScreen((text) => new RegExp(`^> tree +online +${after.pid} +\\S+ +1 `, 'm').test(text), 'the new pid and one restart in the table');
  await tmux.waitForScreen((text) => text.includes(`spawn started, pid ${after.pid}`), 'the spawn event, pushed live');
  const idle = await rig.app('idle');
  assert.equal(idle.restarts, 0, 'only the selected app was restarted');

  await tmux.keys('q');
  await assertQuitCleanly(session);
});

test('monit at 80x24 in colour: usable, and it waits for a daemon that went away without starting one', async (t) => {
  const session = await startMonit(t, {
    cols: 80,
    rows: 24,
    color: true,
    apps: [
      [TREE, '--name', 'tree', '--env', 'CHILDREN=3'],
      [IDLE, '--name', 'idle'],
    ],
  });
  const { rig, tmux } = session;
  const detail = await treeOf(rig, 'tree', 3);
  await select(tmux, 'tree');
  const screen = await tmux.waitForScreen(
    (text) => (detail.tree.every((proc) => new RegExp(`^ +${proc.pid} `, 'm').test(text)) && /^. idle +online/m.test(text) ? text : undefined),
    'both apps and the whole tree',
  );
  const lines = screen.split('\n');
  assert.match(lines[23] ?? '', /q quit/, `the footer is on the last of the 24 rows:\n${screen}`);
  assert.ok(lines.every((line) => [...line].length <= 80), 'nothing wraps');
  assert.match(screen, /^ {2}name +status +pid +up +rst +memory +chld +cpu +last exit/m, 'every column of the table');
  assert.match(screen, /memory · tree/);
  assert.match(screen, /events · tree/);
  assert.match(screen, /logs · tree · out and err/);
  assert.match(screen, /^out tree ready: root \d+, 3 descendants/m, "the app's own output in the log tail");
  assert.match(screen, /\? help q quit\s*$/, 'the keys fit in the footer');
  // The header, compact at this width: the daemon, machine memory, pressure where the kernel has PSI.
  assert.match(lines[0] ?? '', new RegExp(`^agentpm │ daemon ${rig.daemonPid()} \\S+ MB │ mem \\S+ [KMGT]B/\\S+ [KMGT]B`));
  if (existsSync('/proc/pressure/memory')) assert.match(lines[0] ?? '', /│ psi \d+\.\d\d% +\d\d:\d\d:\d\d$/);
  assert.match(await tmux.capture(true), COLOR_SGR, 'in colour without NO_COLOR');

  // The help overlay fits at 80x24.
  await tmux.keys('?');
  await tmux.waitForScreen((text) => text.includes('help: keys') && text.includes('q Ctrl-C'), 'the whole help');
  await tmux.keys('q');
  await tmux.waitForScreen((text) => !text.includes('help: keys'), 'q closes the help first');
  assert.equal(monitProcesses(rig).length, 1, 'q in the help only closed it');

  // The daemon goes away: monit says so, keeps the last figures, and does not start a daemon itself.
  await rig.ok(['daemon', 'stop']);
  await tmux.waitForScreen((text) => text.includes('daemon unreachable') && text.includes('not live'), 'daemon unreachable on screen');
  const watchUntil = Date.now() + 3000;
  while (Date.now() < watchUntil) {
    assert.equal(rig.daemonPid(), undefined, 'monit must not start a daemon');
    await new Promise((done) => setTimeout(done, 100));
  }
  await rig.ok(['daemon', 'start']);
  const daemon = await waitFor(() => rig.daemonPid(), 'the new daemon');
  await tmux.waitForScreen((text) => /^agentpm │ daemon (\d+) /m.exec(text)?.[1] === String(daemon) && !text.includes('unreachable'), 'monit reconnected to the new daemon', 10_000);
  await tmux.waitForScreen((text) => /^> tree +online/m.test(text) && /^ {2}idle +online/m.test(text), 'the adopted apps, live again');

  await tmux.keys('C-c');
  await assertQuitCleanly(session);
});

test('monit with hundreds of processes in one app: the tree scrolls and stays responsive (80x24)', async (t) => {
  const children = 300;
  const session = await startMonit(t, { cols: 80, rows: 24, color: false, apps: [[TREE, '--name', 'big', '--env', `CHILDREN=${children}`]] });
  const { rig, tmux } = session;
  const detail = await treeOf(rig, 'big', children);
  const total = children + 1;
  const first = await tmux.waitForScreen((text) => new RegExp(`tree · big · 1-(\\d+) of ${total}`).exec(text), 'the first page of the tree');
  const page = Number(first[1]);
  assert.ok(page >= 5 && page < 30, `a screenful of rows (${page}), not all of them`);

  await tmux.keys('NPage');
  await tmux.waitForScreen((text) => new RegExp(`· ${page}-${2 * page - 1} of ${total}`).test(text), 'PgDn moves a page (keeping one row)', 5000);

  // The children are listed in pid order; the root is left out (pids wrap around: it may have the highest).
  const last = Math.max(...detail.tree.filter((proc) => proc.pid !== detail.pid).map((proc) => proc.pid));
  const started = Date.now();
  await tmux.keys('End');
  await tmux.waitForScreen((text) => new RegExp(`^ +${last} .*└─sleep 600`, 'm').test(text) && text.includes(`-${total} of ${total}`), 'End shows the last process', 5000);
  assert.ok(Date.now() - started < 3000, `End took ${Date.now() - started} ms to show`);

  await tmux.keys('Home');
  await tmux.waitForScreen((text) => text.includes(`· 1-${page} of ${total}`), 'Home goes back to the top', 5000);
  await tmux.keys('q');
  await assertQuitCleanly(session);
});

test('monit at 80x24: an event line too long for its pane keeps its key figure (the measure against the limit) whole', async (t) => {
  // Three children against a limit of one: the tree is restarted at once, and its exit names the limit.
  const session = await startMonit(t, { cols: 80, rows: 24, color: false, apps: [[TREE, '--name', 'tree', '--env', 'CHILDREN=3', '--max-children', '1', '--restart-delay', '1m']] });
  const { tmux } = session;
  const exitRow = /\d\d:\d\d:\d\d exit .*/;
  const screen = await tmux.waitForScreen((text) => (exitRow.test(text) ? text : undefined), 'the exit at the children limit in the events pane', 20_000);
  const row = exitRow.exec(screen)?.[0] ?? '';
  assert.match(row, /\d+ children > 1/, `the figure is whole:\n${screen}`);
  assert.match(row, /…/, `and the line was cut around it to fit its pane:\n${screen}`);
  await tmux.keys('q');
  await assertQuitCleanly(session);
});
