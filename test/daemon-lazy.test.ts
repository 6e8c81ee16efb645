import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');
/** What an app has to ask for before the daemon loads it (croner is require()d, which the log does not see: cron.ts has its own test). */
const OPTIONAL = ['daemon/watch.js', 'daemon/health.js', 'daemon/notify.js', 'daemon/schedule.js', 'daemon/metrics-registry.js', 'node:http', 'chokidar', 'prom-client'];

/** The modules the daemon process has loaded so far (module-log.mjs records them by pid). */
function daemonModules(rig: Rig, log: string): string[] {
  const pid = rig.daemonPid();
  assert.ok(pid, 'a daemon runs');
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith(`${pid} `))
    .map((line) => line.slice(line.indexOf(' ') + 1));
}

const loaded = (modules: string[], name: string): boolean => modules.some((url) => (name.startsWith('node:') ? url === name : url.includes(`/${name}`)));

test('the daemon loads watching, health checks, alerts, cron and metrics only once an app or a setting uses them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-lazy-'));
  const log = join(dir, 'modules.log');
  const rig = await Rig.create({ NODE_OPTIONS: `--import ${join(FIXTURES, 'module-log.mjs')}`, AGENTPM_TEST_MODULE_LOG: log });
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const config = join(rig.home, 'agents.json');
  writeFileSync(config, JSON.stringify({ apps: [{ name: 'plain', script: IDLE }] }));
  await rig.ok(['start', config]);
  await waitFor(async () => (await rig.app('plain')).status === 'online', 'plain online');
  await rig.ok(['show', 'plain']);
  const idle = daemonModules(rig, log);
  assert.ok(loaded(idle, 'daemon/supervisor.js'), 'the log records the daemon modules');
  assert.deepEqual(OPTIONAL.filter((name) => loaded(idle, name)), [], 'an app that uses no optional feature loads none');

  writeFileSync(config, JSON.stringify({ apps: [{ name: 'watched', script: IDLE, watch: [rig.home] }] }));
  await rig.ok(['start', config]);
  const watching = daemonModules(rig, log);
  assert.ok(loaded(watching, 'daemon/watch.js') && loaded(watching, 'chokidar'), 'an app with watch loads the watcher');
  assert.deepEqual(['daemon/health.js', 'daemon/notify.js', 'daemon/schedule.js', 'node:http'].filter((name) => loaded(watching, name)), [], 'and nothing else');

  writeFileSync(config, JSON.stringify({ apps: [{ name: 'checked', script: IDLE, health: { command: 'true', interval: '1s' }, cronRestart: '0 4 * * *' }] }));
  await rig.ok(['start', config]);
  const all = daemonModules(rig, log);
  assert.ok(['daemon/health.js', 'daemon/schedule.js'].every((name) => loaded(all, name)), 'health checks and cron restarts load with their app');
  assert.match((await rig.show('checked')).nextScheduledRestart ?? '', /^\d{4}-/, 'the schedule is armed by the start itself');
});
