import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const MEMORY_TREE = join(FIXTURES, 'memory-tree.mjs');

test('whole-tree figures: memory and processes count every descendant; PSS counts shared pages once', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const config = join(rig.home, 'two.config.json');
  // The same tree twice: a node root and three node children, which share node's code pages.
  const app = { script: MEMORY_TREE, env: { CHILD_MB: '5,5,5' } };
  writeFileSync(config, JSON.stringify({ apps: [{ name: 'by-rss', ...app }, { name: 'by-pss', memoryMetric: 'pss', ...app }] }));
  await rig.ok(['start', config]);
  const [rss, pss] = await waitFor(async () => {
    const list = await rig.ls();
    return list.every((entry) => entry.processes === 4 && entry.memory > 0) ? list : undefined;
  }, 'both trees complete');
  const detail = await rig.show('by-rss');
  assert.equal(detail.tree.length, 4);
  assert.equal(detail.memory, detail.tree.reduce((sum, proc) => sum + proc.rss, 0), 'the app figure is the sum over its tree');
  assert.ok((pss?.memory ?? 0) > 0 && (pss?.memory ?? 0) < (rss?.memory ?? 0), `PSS (${pss?.memory}) is below RSS (${rss?.memory}) for processes that share pages`);
});

test('cpu is measured per tree: a busy child shows up in its app', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const script = join(rig.home, 'busy.mjs');
  writeFileSync(
    script,
    `import { spawn } from 'node:child_process';
spawn(process.execPath, ['-e', 'const end = Date.now() + 120000; while (Date.now() < end) {}'], { stdio: 'ignore' });
setInterval(() => {}, 60000);`,
  );
  await rig.ok(['start', script, '--name', 'busy']);
  const app = await waitFor(async () => {
    const summary = await rig.app('busy');
    return summary.cpu >= 30 ? summary : undefined;
  }, 'the busy child to show in the app cpu');
  assert.ok(app.cpu <= 200);
  const detail = await rig.show('busy');
  const child = detail.tree.find((proc) => proc.pid !== detail.pid);
  assert.ok((child?.cpu ?? 0) > (detail.tree[0]?.cpu ?? 0), 'the busy process is the child, not the root');
});
