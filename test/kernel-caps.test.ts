/**
 * The kernel-cap fields end to end through the real CLI and daemon: set on the command line or in a config,
 * refused with the fix when they contradict the graceful limits, shown by `show`. (Writing them into cgroups
 * is the backends' part; the derivation and the files have unit tests.)
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FIXTURES, Rig } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');

test('--max-cpu and config caps reach the definition and show; contradictions are refused and start nothing', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'capped', '--max-cpu', '150%', '--max-memory', '200M', '--max-children', '10']);
  const detail = await rig.show('capped');
  assert.equal(detail.definition.maxCpuPercent, 150);
  assert.deepEqual([detail.definition.hardMemoryBytes, detail.definition.maxTasks], [null, null]);
  const shown = await rig.ok(['show', 'capped']);
  assert.ok(shown.includes('kernel caps  memory 250 MB, 256 tasks, cpu 150% (under a cgroup backend)'), shown);

  await rig.ok(['start', IDLE, '--name', 'tasks', '--max-children', '10', '--max-tasks', '120']);
  assert.equal((await rig.show('tasks')).definition.maxTasks, 120, '--max-tasks reaches the definition');

  const bad = await rig.cli(['start', IDLE, '--name', 'greedy', '--max-cpu', 'fast']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /field `maxCpu`: expected a share of CPU such as '50%', '150%'/);

  const config = join(rig.home, 'caps.config.cjs');
  writeFileSync(config, `module.exports = { apps: [{ name: 'tight', script: ${JSON.stringify(IDLE)}, maxMemory: '400M', hardMemory: '300M', maxChildren: 50, maxTasks: 20 }] };\n`);
  const refused = await rig.cli(['start', config]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /field `hardMemory`: 300 MB is below maxMemory \(400 MB\)/);
  assert.match(refused.stderr, /field `maxTasks`: 20 leaves no room for maxChildren \(50\)/);
  assert.deepEqual((await rig.ls()).map((app) => app.name).sort(), ['capped', 'tasks'], 'nothing of the refused config started');
});
