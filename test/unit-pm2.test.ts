import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromPm2, humanDuration, humanSize, isPm2Config, toEcosystemTs } from '../src/config/pm2.js';
import { resolveApps } from '../src/config/resolve.js';
import { parseSize } from '../src/config/units.js';

const MB = 1024 * 1024;
let baseDir: string;

before(() => {
  baseDir = mkdtempSync(join(tmpdir(), 'agentpm-unit-pm2-'));
  mkdirSync(join(baseDir, 'api'));
  writeFileSync(join(baseDir, 'api', 'server.js'), '\n');
  writeFileSync(join(baseDir, 'worker.py'), '\n');
});

after(() => {
  rmSync(baseDir, { recursive: true, force: true });
});

const PM2_FILE = {
  apps: [
    {
      name: 'api',
      script: 'server.js',
      cwd: 'api',
      args: '--port 3000',
      instances: 4,
      exec_mode: 'cluster',
      max_memory_restart: '200M',
      kill_timeout: 3000,
      restart_delay: 2000,
      min_uptime: '10s',
      env: { PORT: 3000, DEBUG: false },
      env_production: { NODE_ENV: 'production' },
      watch: 'lib',
      ignore_watch: 'tmp',
      watch_delay: 1500,
      merge_logs: true,
      node_args: '--max-old-space-size=512 --enable-source-maps',
    },
    {
      name: 'worker',
      script: 'worker.py',
      exec_interpreter: 'python3',
      cron_restart: '0 * * * *',
      exp_backoff_restart_delay: 100,
      max_restarts: 10,
      autorestart: false,
      instances: 1,
      exec_mode: 'fork',
    },
  ],
  deploy: { production: { user: 'deploy' } },
};

describe('isPm2Config', () => {
  test('told apart by the fields only PM2 has', () => {
    assert.equal(isPm2Config(PM2_FILE), true);
    assert.equal(isPm2Config({ apps: [{ script: 'a.js', max_memory_restart: '1G' }] }), true);
    assert.equal(isPm2Config({ apps: [{ script: 'a.js', instances: 2 }] }), true);
    assert.equal(isPm2Config({ apps: [{ script: 'a.js' }], deploy: {} }), true);
  });

  test("agentpm's own configs are not PM2's, named environments included", () => {
    assert.equal(isPm2Config({ apps: [{ script: 'a.js', maxMemory: '1G', env: { A: '1' }, env_production: { A: '2' }, watch: true, interpreterArgs: [] }] }), false);
    assert.equal(isPm2Config({ apps: [{ script: 'a.js', maxMemroy: '1G' }] }), false, 'a typo stays a typo');
    assert.equal(isPm2Config({ apps: 'nope' }), false);
    assert.equal(isPm2Config(null), false);
  });
});

describe('fromPm2', () => {
  test("maps PM2's fields to agentpm's, keeping every value's meaning", () => {
    const { config, problems } = fromPm2(PM2_FILE, 'ecosystem.config.js');
    assert.deepEqual(problems, []);
    assert.deepEqual(config.apps, [
      {
        name: 'api',
        script: 'api/server.js', // PM2 resolves script from cwd
        cwd: 'api',
        args: '--port 3000',
        maxMemory: '200M',
        killTimeout: '3s',
        restartDelay: '2s',
        minUptime: '10s',
        env: { PORT: 3000, DEBUG: false },
        env_production: { NODE_ENV: 'production' },
        watch: ['lib'],
        ignoreWatch: ['tmp'],
        watchDelay: '1500ms',
        interpreterArgs: ['--max-old-space-size=512', '--enable-source-maps'],
      },
      { name: 'worker', script: 'worker.py', interpreter: 'python3', cronRestart: '0 * * * *', restartDelay: '100ms', maxRestarts: 10, autorestart: false },
    ]);
    assert.equal('deploy' in config, false);
  });

  test('warns once, listing every field with no equivalent and the apps that set it; values agentpm matches anyway are not listed', () => {
    const { warnings } = fromPm2(PM2_FILE, 'ecosystem.config.js');
    const [unmapped, ...rest] = warnings;
    assert.equal(unmapped, 'ecosystem.config.js: PM2 fields with no agentpm equivalent were ignored: instances (api: 4); exec_mode (api: "cluster"); merge_logs (api: true)');
    assert.ok(rest.some((line) => /`deploy` section has no agentpm equivalent/.test(line)));
    assert.ok(rest.some((line) => /restart_delay \(api\) became restartDelay, which doubles/.test(line)));
    assert.equal(warnings.join('\n').includes('worker: 1'), false, 'instances: 1 and exec_mode fork are what agentpm does');
  });

  test("the result is a valid agentpm config, and PM2's sizes parse to the same bytes as in PM2", () => {
    const { config } = fromPm2(PM2_FILE, 'ecosystem.config.js');
    const [api, worker] = resolveApps(config, { source: 'ecosystem.config.js', baseDir, environment: 'production' });
    assert.equal(api?.script, join(baseDir, 'api', 'server.js'));
    assert.equal(api?.cwd, join(baseDir, 'api'));
    assert.deepEqual(api?.args, ['--port', '3000']);
    assert.equal(api?.maxMemoryBytes, 200 * MB);
    assert.equal(api?.killTimeoutMs, 3000);
    assert.equal(api?.restartDelayMs, 2000);
    assert.equal(api?.minUptimeMs, 10_000);
    assert.equal(api?.watchDelayMs, 1500);
    assert.deepEqual(api?.watch, [join(baseDir, 'api', 'lib')]);
    assert.deepEqual(api?.env, { PORT: '3000', DEBUG: 'false', NODE_ENV: 'production' });
    assert.equal(worker?.interpreter, 'python3');
    assert.equal(worker?.maxRestarts, 10);
    assert.equal(worker?.autorestart, false);
    // PM2 multiplies K/M/G by 1024 (lib/Common.js), as parseSize does.
    for (const [pm2, bytes] of [['150K', 150 * 1024], ['200M', 200 * MB], ['1G', 1024 * MB], ['1.5G', 1.5 * 1024 * MB]] as const) {
      assert.deepEqual(parseSize(pm2), { ok: true, value: bytes }, pm2);
    }
  });

  test('a fixed delay of 0 keeps the backoff; exp_backoff_restart_delay wins over restart_delay, as in PM2', () => {
    const zero = fromPm2({ apps: [{ script: 'a.js', restart_delay: 0 }] }, 'f.js');
    assert.deepEqual(zero.config.apps, [{ script: 'a.js' }]);
    assert.match(zero.warnings.join('\n'), /restart_delay: 0 left out: agentpm's default backoff applies/);
    const both = fromPm2({ apps: [{ script: 'a.js', restart_delay: 5000, exp_backoff_restart_delay: 200 }] }, 'f.js');
    assert.deepEqual(both.config.apps, [{ script: 'a.js', restartDelay: '200ms' }]);
    assert.match(both.warnings.join('\n'), /restart_delay ignored: exp_backoff_restart_delay is used/);
  });

  test("agentpm's own fields are kept; bare commands are not joined to cwd; numbers of bytes become sizes", () => {
    const { config, problems } = fromPm2({ apps: [{ script: 'npm', args: ['start'], cwd: 'web', max_memory_restart: 300 * MB, maxChildren: 40, onLimit: 'kill-offender' }] }, 'f.js');
    assert.deepEqual(problems, []);
    assert.deepEqual(config.apps, [{ script: 'npm', args: ['start'], cwd: 'web', maxMemory: '300M', maxChildren: 40, onLimit: 'kill-offender' }]);
  });

  test('problems name the file, the app and the PM2 field: wrong types, typos, the same setting twice', () => {
    const { problems } = fromPm2(
      { apps: [{ name: 'api', script: 'a.js', kill_timeout: true, max_memory_restat: '1G', max_memory_restart: '1G', maxMemory: '2G', node_args: {} }] },
      'eco.js',
    );
    assert.deepEqual(problems, [
      'eco.js: apps[0] ("api"): field `kill_timeout`: expected a number of ms, got true',
      'eco.js: apps[0] ("api"): unknown field `max_memory_restat`; did you mean `max_memory_restart`?',
      'eco.js: apps[0] ("api"): `max_memory_restart` and `maxMemory` both set maxMemory; keep one',
      'eco.js: apps[0] ("api"): field `node_args`: expected a string or an array of strings, got {}',
    ]);
  });
});

describe('toEcosystemTs and the small helpers', () => {
  test('prints a typed config with the warnings as comments', () => {
    const { config, warnings } = fromPm2({ apps: [{ name: 'api', script: "it's.js", env: { 'my-var': 'a\nb' }, instances: 2 }] }, 'eco.js');
    const text = toEcosystemTs(config, { from: 'eco.js', warnings });
    assert.equal(
      text,
      [
        '// Converted from eco.js by `agentpm import pm2`.',
        '// eco.js: PM2 fields with no agentpm equivalent were ignored: instances (api: 2)',
        "import { defineConfig } from 'agentpm';",
        '',
        'export default defineConfig({',
        '  apps: [',
        '    {',
        "      name: 'api',",
        '      script: "it\'s.js",',
        '      env: {',
        "        'my-var': 'a\\nb',",
        '      },',
        '    },',
        '  ],',
        '});',
        '',
      ].join('\n'),
    );
  });

  test('humanDuration and humanSize', () => {
    assert.equal(humanDuration(0), 0);
    assert.equal(humanDuration(3000), '3s');
    assert.equal(humanDuration(120_000), '2m');
    assert.equal(humanDuration(7_200_000), '2h');
    assert.equal(humanDuration(1500), '1500ms');
    assert.equal(humanSize(200 * MB), '200M');
    assert.equal(humanSize(2 * 1024 * MB), '2G');
    assert.equal(humanSize(1000), 1000);
  });
});
