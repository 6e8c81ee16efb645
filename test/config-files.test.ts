import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { AppDetail } from '../src/protocol.js';
import { readProcess } from './helpers/procs.js';
import { Rig, waitFor } from './helpers/rig.js';

const IDLE = 'setInterval(() => {}, 60_000);\n';
const MB = 1024 * 1024;

/** A directory outside the package (agentpm is not resolvable from it), removed after the test. */
function project(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-config-project-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  assert.throws(() => createRequire(join(dir, 'index.js')).resolve('agentpm'), /Cannot find module 'agentpm'/, 'the test needs a directory that cannot see agentpm');
  return dir;
}

async function online(rig: Rig, names: string[]): Promise<void> {
  await waitFor(async () => {
    const list = await rig.ls();
    return names.every((name) => list.find((app) => app.name === name)?.status === 'online');
  }, `${names.join(', ')} online`);
}

const PM2_ECOSYSTEM = `module.exports = {
  apps: [
    {
      name: 'api',
      script: 'server.mjs',
      cwd: 'api',
      instances: 2,
      exec_mode: 'cluster',
      max_memory_restart: '200M',
      kill_timeout: 3000,
      min_uptime: '10s',
      cron_restart: '0 * * * *',
      env: { PORT: 3000 },
      env_production: { NODE_ENV: 'production' },
    },
    { name: 'worker', script: './worker.mjs', restart_delay: 2000, max_restarts: 5, merge_logs: true, autorestart: true },
  ],
};
`;

const PM2_FILES = { 'ecosystem.config.js': PM2_ECOSYSTEM, 'api/server.mjs': IDLE, 'worker.mjs': IDLE };

test('a PM2 ecosystem file starts, mapped to agentpm, with a warning listing what has no equivalent', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = project(t, PM2_FILES);
  const result = await rig.cli(['start', join(dir, 'ecosystem.config.js')]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stderr,
    /agentpm: warning: \S+ecosystem\.config\.js: PM2 fields with no agentpm equivalent were ignored: instances \(api: 2\); exec_mode \(api: "cluster"\); merge_logs \(worker: true\)/,
  );
  assert.match(result.stderr, /restart_delay \(worker\) became restartDelay, which doubles/);
  await online(rig, ['api', 'worker']);
  const api = (await rig.show('api')).definition;
  assert.equal(api.script, join(dir, 'api', 'server.mjs'));
  assert.equal(api.cwd, join(dir, 'api'));
  assert.equal(api.maxMemoryBytes, 200 * MB);
  assert.equal(api.killTimeoutMs, 3000);
  assert.equal(api.minUptimeMs, 10_000);
  assert.deepEqual(api.cronRestart, { schedule: '0 * * * *', timezone: null }, 'cron_restart is mapped to cronRestart');
  assert.deepEqual(api.env, { PORT: '3000' }, 'env_production only with --env production');
  const worker = (await rig.show('worker')).definition;
  assert.equal(worker.restartDelayMs, 2000);
  assert.equal(worker.maxRestarts, 5);
});

test('`agentpm import pm2` prints an ecosystem.config.ts that starts the same apps, from outside the package', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = project(t, PM2_FILES);
  const converted = await rig.cli(['import', 'pm2', join(dir, 'ecosystem.config.js')]);
  assert.equal(converted.code, 0, converted.stderr);
  assert.match(converted.stderr, /agentpm: warning: ecosystem\.config\.js: PM2 fields with no agentpm equivalent were ignored: instances/);
  assert.match(converted.stdout, /^\/\/ Converted from ecosystem\.config\.js by `agentpm import pm2`\./);
  assert.match(converted.stdout, /^import \{ defineConfig \} from 'agentpm';$/m);
  assert.match(converted.stdout, /maxMemory: '200M',/);
  assert.match(converted.stdout, /killTimeout: '3s',/);

  const definitions = async (): Promise<AppDetail['definition'][]> => Promise.all(['api', 'worker'].map(async (name) => (await rig.show(name)).definition));
  await rig.ok(['start', join(dir, 'ecosystem.config.js'), '--env', 'production']);
  await online(rig, ['api', 'worker']);
  const fromPm2 = await definitions();
  assert.equal(fromPm2[0]?.env['NODE_ENV'], 'production');
  await rig.ok(['delete', 'all']);

  // A .ts in a directory without package.json runs as CommonJS through tsx: `agentpm` is require()d.
  writeFileSync(join(dir, 'ecosystem.config.ts'), converted.stdout);
  const started = await rig.cli(['start', join(dir, 'ecosystem.config.ts'), '--env', 'production']);
  assert.equal(started.code, 0, started.stderr);
  assert.equal(started.stderr.replace(/^agentpm: type-checking ecosystem\.config\.ts…\n/, ''), '', 'an agentpm config: no PM2 warning (only the type check says what it does)');
  await online(rig, ['api', 'worker']);
  assert.deepEqual(await definitions(), fromPm2);

  const bad = await rig.cli(['import', 'yaml', join(dir, 'ecosystem.config.js')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /cannot import 'yaml'; supported: pm2/);
});

test("a config outside the package loads `import { defineConfig } from 'agentpm'` as ESM and require('agentpm') as CommonJS", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const esm = project(t, {
    'package.json': JSON.stringify({ type: 'module' }),
    'ecosystem.config.ts': `import { defineConfig } from 'agentpm';\nexport default defineConfig({ apps: [{ name: 'esm-ts', script: 'app.js' }] });\n`,
    'other.config.mjs': `import { defineConfig } from 'agentpm';\nexport default defineConfig({ apps: [{ name: 'esm-mjs', script: 'app.js' }] });\n`,
    'app.js': IDLE,
  });
  const cjs = project(t, {
    'ecosystem.config.cjs': `const { defineConfig } = require('agentpm');\nmodule.exports = defineConfig({ apps: [{ name: 'cjs', script: 'app.js' }] });\n`,
    'app.js': IDLE,
  });
  await rig.ok(['start', join(esm, 'ecosystem.config.ts')]);
  await rig.ok(['start', join(esm, 'other.config.mjs')]);
  await rig.ok(['start', join(cjs, 'ecosystem.config.cjs')]);
  await online(rig, ['esm-ts', 'esm-mjs', 'cjs']);
});

test('--env <name> applies each app\'s env_<name> over its env; a name no app defines is refused', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = project(t, {
    'ecosystem.config.ts': `import { defineConfig } from 'agentpm';
export default defineConfig({
  apps: [
    { name: 'bot', script: 'app.js', env: { LOG_LEVEL: 'debug', REGION: 'eu' }, env_production: { LOG_LEVEL: 'warn' }, env_staging: { LOG_LEVEL: 'info' } },
    { name: 'plain', script: 'app.js', env: { LOG_LEVEL: 'debug' } },
  ],
});
`,
    'app.js': IDLE,
  });
  const config = join(dir, 'ecosystem.config.ts');
  const unknown = await rig.cli(['start', config, '--env', 'prod']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no app defines the environment 'prod' \(env_prod\); environments defined: production, staging/);
  const pair = await rig.cli(['start', config, '--env', 'LOG_LEVEL=warn']);
  assert.equal(pair.code, 1);
  assert.match(pair.stderr, /with a config file, --env takes one environment name \(its apps' env_<name> blocks\), e\.g\. --env production; got 'LOG_LEVEL=warn'/);
  const onScript = await rig.cli(['start', join(dir, 'app.js'), '--env', 'production']);
  assert.equal(onScript.code, 1);
  assert.match(onScript.stderr, /--env expects NAME=value, got 'production' \(a bare name such as --env production selects an environment of a config file\)/);
  assert.deepEqual(await rig.ls(), []);

  await rig.ok(['start', config, '--env', 'production']);
  await online(rig, ['bot', 'plain']);
  const envOf = async (name: string): Promise<Map<string, string> | undefined> => readProcess((await rig.app(name)).pid as number)?.env;
  const bot = await envOf('bot');
  assert.equal(bot?.get('LOG_LEVEL'), 'warn', 'env_production over env, in the running process');
  assert.equal(bot?.get('REGION'), 'eu');
  assert.equal((await envOf('plain'))?.get('LOG_LEVEL'), 'debug', 'an app without env_production keeps its env');
});

test('--only a,c starts only those apps; an unknown name is refused, naming the apps there are', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = project(t, {
    'apps.json': JSON.stringify({ apps: ['a', 'b', 'c'].map((name) => ({ name, script: 'app.js' })) }),
    'app.js': IDLE,
  });
  const config = join(dir, 'apps.json');
  const unknown = await rig.cli(['start', config, '--only', 'a,zz']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /--only: no app named zz in \S+apps\.json; its apps: a, b, c/);
  const onScript = await rig.cli(['start', join(dir, 'app.js'), '--only', 'a']);
  assert.equal(onScript.code, 1);
  assert.match(onScript.stderr, /--only selects apps of a config file; \S+app\.js is a script/);
  assert.deepEqual(await rig.ls(), []);

  await rig.ok(['start', config, '--only', 'a, c']);
  await online(rig, ['a', 'c']);
  assert.deepEqual((await rig.ls()).map((app) => app.name).sort(), ['a', 'c']);
});

test('a .ts config with type errors is reported, not run: nothing starts, and no code of it executes', async (t) => {
  const rig = await Rig.create();
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-tsconfig-'));
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const marker = join(dir, 'ran');
  writeFileSync(join(dir, 'idle.mjs'), IDLE);
  writeFileSync(
    join(dir, 'ecosystem.config.ts'),
    `import { writeFileSync } from 'node:fs';
import { defineConfig } from 'agentpm';
writeFileSync(${JSON.stringify(marker)}, 'the config ran');
const retries: number = 'three';
export default defineConfig({ apps: [{ name: 'typo', script: 'idle.mjs', killTimeout: true }] });
`,
  );
  const result = await rig.cli(['start', join(dir, 'ecosystem.config.ts')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /has type errors; it was not run and nothing was started/);
  assert.match(result.stderr, /ecosystem\.config\.ts:4:7: TS2322: Type 'string' is not assignable to type 'number'/);
  assert.match(result.stderr, /ecosystem\.config\.ts:5:\d+: TS2322: Type 'true' is not assignable to type 'Duration \| undefined'/);
  const { existsSync } = await import('node:fs');
  assert.equal(existsSync(marker), false, 'the config was not executed');
  assert.deepEqual(await rig.ls(), []);
});

test('a .ts config is type-checked once per content: an unchanged one starts without a check, an edit to a file it imports checks again, an error is never remembered', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const good = 'export const port: number = 8080;\n';
  const dir = project(t, {
    'idle.mjs': IDLE,
    'apps.ts': good,
    'ecosystem.config.ts': `import { port } from './apps.ts';
const checked: number = port;
export default { apps: [{ name: 'web', script: 'idle.mjs', env: { PORT: String(checked) } }] };
`,
  });
  const config = join(dir, 'ecosystem.config.ts');
  const CHECKING = /type-checking ecosystem\.config\.ts…/;
  const start = async (): Promise<{ code: number | null; stderr: string }> => rig.cli(['start', config]);

  const first = await start();
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, CHECKING, 'the first start checks, and says so');
  await online(rig, ['web']);
  const cacheFile = join(rig.home, 'typecheck-cache.json');
  assert.equal(statSync(cacheFile).mode & 0o777, 0o600, 'the cache is private');

  const second = await start();
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, CHECKING, 'an unchanged config is not checked again');

  // An edit to the imported file (not to the config) that breaks the config's types.
  writeFileSync(join(dir, 'apps.ts'), "export const port: string = '8080';\n");
  for (const attempt of ['after a remembered success', 'again: a failure is not remembered']) {
    const broken = await start();
    assert.equal(broken.code, 1, attempt);
    assert.match(broken.stderr, CHECKING, attempt);
    assert.match(broken.stderr, /ecosystem\.config\.ts:2:7: TS2322: Type 'string' is not assignable to type 'number'/, attempt);
  }

  writeFileSync(join(dir, 'apps.ts'), good);
  const fixed = await start();
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stderr, CHECKING, 'the fixed file is checked');
  const again = await start();
  assert.doesNotMatch(again.stderr, CHECKING, 'and then remembered');
});
