import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { App } from '../src/daemon/app.js';
import { createIgnore, globToRegExp, RestartDebouncer, Watchers } from '../src/daemon/watch.js';
import type { AppSpec } from '../src/protocol.js';
import { waitFor } from './helpers/rig.js';

describe('globToRegExp', () => {
  const cases: [string, string[], string[]][] = [
    ['*.tmp', ['a.tmp', '.tmp'], ['a.tmp.x', 'dir/a.tmp']],
    ['src/**/*.test.ts', ['src/a.test.ts', 'src/x/y/a.test.ts'], ['src/a.ts', 'lib/a.test.ts']],
    ['data/cache', ['data/cache'], ['data/cache2', 'data']],
    ['**/build', ['build', 'a/b/build'], ['a/builds']],
    ['file?.txt', ['file1.txt'], ['file12.txt', 'file/.txt']],
    ['*.{png,jpg}', ['a.png', 'b.jpg'], ['c.gif', 'a.png.bak']],
    ['[ab].js', ['a.js', 'b.js'], ['c.js']],
    ['a+b(1).js', ['a+b(1).js'], ['aab1.js']],
  ];
  for (const [glob, matching, other] of cases) {
    test(glob, () => {
      const regex = globToRegExp(glob);
      for (const path of matching) assert.ok(regex.test(path), `${glob} should match ${path}`);
      for (const path of other) assert.ok(!regex.test(path), `${glob} should not match ${path}`);
    });
  }
});

describe('createIgnore', () => {
  const home = '/home/me/.agentpm';
  const cwd = '/work/project';

  test('always ignores node_modules, .git, __pycache__, *.log and the agentpm home', () => {
    const ignored = createIgnore({ cwd, watch: [cwd], ignoreWatch: [] }, home);
    for (const path of [
      '/work/project/node_modules',
      '/work/project/node_modules/pkg/index.js',
      '/work/project/packages/a/node_modules/x.js',
      '/work/project/.git/HEAD',
      '/work/project/app/__pycache__/m.cpython-312.pyc',
      '/work/project/server.log',
      '/work/project/logs/today.log',
      home,
      `${home}/logs/bot.out.log`,
      `${home}/registry.json`,
    ]) {
      assert.equal(ignored(path), true, path);
    }
    for (const path of ['/work/project', '/work/project/src/index.ts', '/work/project/logs/today.txt', '/work/project/.gitignore', '/work/project/catalog.json']) {
      assert.equal(ignored(path), false, path);
    }
  });

  test("the user's ignoreWatch adds to the defaults instead of replacing them", () => {
    const ignored = createIgnore({ cwd, watch: [cwd], ignoreWatch: ['tmp', '*.swp', 'data/cache/', './dist', 'src/**/*.test.ts', '/work/project/secrets'] }, home);
    for (const path of [
      '/work/project/tmp',
      '/work/project/tmp/a.txt',
      '/work/project/src/tmp/b.txt',
      '/work/project/src/.index.ts.swp',
      '/work/project/data/cache/blob',
      '/work/project/dist/index.js',
      '/work/project/src/deep/x.test.ts',
      '/work/project/secrets/key',
      '/work/project/node_modules/x.js',
      '/work/project/out.log',
      `${home}/events.log`,
    ]) {
      assert.equal(ignored(path), true, path);
    }
    for (const path of ['/work/project/data/other', '/work/project/src/x.ts', '/work/project/srcdist/a.js', '/work/project/src/data/cache/x']) {
      assert.equal(ignored(path), false, path);
    }
  });

  test('directory names are looked at below the watched root only', () => {
    const root = '/home/me/.git-projects/node_modules-free/app';
    const ignored = createIgnore({ cwd: root, watch: [root], ignoreWatch: [] }, home);
    assert.equal(ignored(`${root}/index.js`), false);
    assert.equal(ignored(root), false);
  });
});

describe('RestartDebouncer', () => {
  test('a burst of changes gives one run, after the quiet period, with the changes counted', async () => {
    const runs: { changes: number; files: string[]; at: number }[] = [];
    const debouncer = new RestartDebouncer(100, async (changes, files) => {
      runs.push({ changes, files, at: Date.now() });
    });
    const start = Date.now();
    for (let i = 0; i < 20; i += 1) {
      debouncer.change(`file${i % 3}.ts`);
      await sleep(5);
    }
    const lastChange = Date.now();
    await waitFor(() => runs.length === 1, 'the run', 2000);
    await sleep(250);
    debouncer.close();
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.changes, 20);
    assert.deepEqual(runs[0]?.files, ['file0.ts', 'file1.ts', 'file2.ts']);
    assert.ok((runs[0]?.at ?? 0) - lastChange >= 90, 'after the quiet period');
    assert.ok((runs[0]?.at ?? 0) - start >= 190);
  });

  test('changes during a run give exactly one more run, after it', async () => {
    let running = 0;
    let overlapped = false;
    const runs: number[] = [];
    const debouncer = new RestartDebouncer(30, async (changes) => {
      running += 1;
      if (running > 1) overlapped = true;
      runs.push(changes);
      await sleep(300);
      running -= 1;
    });
    debouncer.change('a');
    await waitFor(() => runs.length === 1, 'the first run', 2000);
    // Many quiet periods end while the first run is still going.
    for (let i = 0; i < 5; i += 1) {
      debouncer.change('b');
      await sleep(50);
    }
    await waitFor(() => runs.length === 2, 'the second run', 2000);
    await sleep(500);
    debouncer.close();
    assert.equal(overlapped, false, 'runs never overlap');
    assert.deepEqual(runs, [1, 5]);
  });

  test('close cancels a pending run and ignores later changes', async () => {
    let runs = 0;
    const debouncer = new RestartDebouncer(30, async () => {
      runs += 1;
    });
    debouncer.change('a');
    debouncer.close();
    debouncer.change('b');
    await sleep(120);
    assert.equal(runs, 0);
  });
});

describe('Watchers', () => {
  /** Just what Watchers reads of an App; restarts are counted. */
  function fakeApp(name: string, spec: Partial<AppSpec>): App & { restartCount: number } {
    const app = {
      name,
      desired: 'running',
      instance: null,
      restartCount: 0,
      spec: { cwd: spec.watch?.[0] ?? '/nonexistent', ignoreWatch: [], watchDelayMs: 50, ...spec },
      async restartIfWanted() {
        app.restartCount += 1;
      },
    };
    return app as unknown as App & { restartCount: number };
  }

  test('watch while meant to run; closeAll ends every watcher and timer at once', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'agentpm-unit-watch-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'a.js'), '');
    const events: string[] = [];
    const watchers = new Watchers({ emit: (type, _app, _instance, reason) => events.push(`${type}:${reason}`), log: () => undefined }, join(dir, 'home'));
    const one = fakeApp('one', { watch: [dir] });
    const two = fakeApp('two', { watch: [dir] });
    const unwatched = fakeApp('plain', { watch: null });
    for (const app of [one, two, unwatched]) watchers.sync(app);
    await watchers.ready(['one', 'two', 'plain']);
    assert.deepEqual(events, ['watch:ready', 'watch:ready']);

    appendFileSync(join(dir, 'a.js'), '// 1\n');
    await waitFor(() => one.restartCount === 1 && two.restartCount === 1, 'both restarts', 5000);

    // Stopped: no longer watched.
    (two as { desired: string }).desired = 'stopped';
    watchers.sync(two);
    appendFileSync(join(dir, 'a.js'), '// 2\n');
    await waitFor(() => one.restartCount === 2, 'the second restart', 5000);
    await sleep(200);
    assert.equal(two.restartCount, 1);

    // A change arms a debounce; closeAll cancels it with the watchers. If anything stayed open, this
    // test file would never exit.
    appendFileSync(join(dir, 'a.js'), '// 3\n');
    await sleep(20);
    watchers.closeAll();
    appendFileSync(join(dir, 'a.js'), '// 4\n');
    await sleep(300);
    assert.equal(one.restartCount, 2);
  });
});
