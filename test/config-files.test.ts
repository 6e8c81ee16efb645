import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
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

const DEBUG_CONFIG = { AGENTPM_DEBUG_CONFIG: '1' };
const TYPE_CHECKING = /agentpm: type-checking ecosystem\.config\.ts…/;
const COMPILED = /agentpm: debug: ecosystem\.config\.ts: compiled [0-9a-f]{12}\n/;
const RAN_COMPILED = /agentpm: debug: ecosystem\.config\.ts: type check remembered; running the compiled copy [0-9a-f]{12}, no tsx\n/;

test('an unchanged .ts config runs its compiled copy, without tsx, and each of its files sees its own paths (import.meta in ESM, __dirname in CommonJS) and packages; an edit to an imported file is run', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // ESM (a "type": "module" package): import.meta of the config and of a helper in another directory, a
  // file read relative to each, and a package of the project's node_modules.
  const esm = project(t, {
    'package.json': JSON.stringify({ type: 'module' }),
    'idle.mjs': IDLE,
    'data.txt': 'beside the config',
    'lib/data.txt': 'beside the helper',
    'lib/helper.ts': `import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
export const helperDir: string = dirname(fileURLToPath(import.meta.url));
export const helperData: string = readFileSync(new URL('./data.txt', import.meta.url), 'utf8');
export const value: string = 'one';
`,
    'node_modules/greeting/package.json': JSON.stringify({ name: 'greeting', version: '1.0.0', type: 'module', main: 'index.js', types: 'index.d.ts' }),
    'node_modules/greeting/index.js': 'export const where = import.meta.url;\n',
    'node_modules/greeting/index.d.ts': 'export declare const where: string;\n',
    'ecosystem.config.ts': `import { readFileSync } from 'node:fs';
import { defineConfig } from 'agentpm';
import { where } from 'greeting';
import { helperData, helperDir, value } from './lib/helper.ts';
export default defineConfig({
  apps: [{
    name: 'esm-paths',
    script: 'idle.mjs',
    env: {
      URL: import.meta.url,
      DIR: import.meta.dirname,
      FILE: import.meta.filename,
      DATA: readFileSync(new URL('./data.txt', import.meta.url), 'utf8'),
      HELPER_DIR: helperDir,
      HELPER_DATA: helperData,
      PACKAGE: where,
      VALUE: value,
    },
  }],
});
`,
  });
  // CommonJS (no package.json): __dirname and __filename of the config and of a helper elsewhere.
  const cjs = project(t, {
    'idle.mjs': IDLE,
    'data.txt': 'beside the config',
    'lib/data.txt': 'beside the helper',
    'lib/helper.ts': `import { readFileSync } from 'node:fs';
import { join } from 'node:path';
export const helperDir: string = __dirname;
export const helperData: string = readFileSync(join(__dirname, 'data.txt'), 'utf8');
export const value: string = 'one';
`,
    'ecosystem.config.ts': `import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'agentpm';
import { helperData, helperDir, value } from './lib/helper.ts';
export default defineConfig({
  apps: [{
    name: 'cjs-paths',
    script: 'idle.mjs',
    env: { DIR: __dirname, FILE: __filename, DATA: readFileSync(join(__dirname, 'data.txt'), 'utf8'), HELPER_DIR: helperDir, HELPER_DATA: helperData, VALUE: value },
  }],
});
`,
  });
  const common = (dir: string, value: string): Record<string, string> => ({
    DIR: dir,
    FILE: join(dir, 'ecosystem.config.ts'),
    DATA: 'beside the config',
    HELPER_DIR: join(dir, 'lib'),
    HELPER_DATA: 'beside the helper',
    VALUE: value,
  });
  const cases = [
    { dir: esm, name: 'esm-paths', expected: (value: string) => ({ ...common(esm, value), URL: pathToFileURL(join(esm, 'ecosystem.config.ts')).href, PACKAGE: pathToFileURL(join(esm, 'node_modules', 'greeting', 'index.js')).href }) },
    { dir: cjs, name: 'cjs-paths', expected: (value: string) => common(cjs, value) },
  ];
  for (const { dir, name, expected } of cases) {
    const config = join(dir, 'ecosystem.config.ts');
    const envAfter = async (what: string, debug: RegExp): Promise<Record<string, string>> => {
      const result = await rig.cli(['start', config], { env: DEBUG_CONFIG });
      assert.equal(result.code, 0, `${name}, ${what}: ${result.stderr}`);
      assert.match(result.stderr, debug, `${name}, ${what}`);
      await online(rig, [name]);
      // From the running app, not `show`, which masks values that look like credentials (a random temp name can).
      const env = readProcess((await rig.app(name)).pid as number)?.env ?? new Map<string, string>();
      return Object.fromEntries(Object.keys(expected('')).map((key) => [key, env.get(key) ?? '(unset)']));
    };

    const first = await envAfter('first start', COMPILED);
    assert.deepEqual(first, expected('one'), `${name}: each file's own paths, on the first start`);
    await rig.ok(['delete', name]);
    const again = await envAfter('unchanged', RAN_COMPILED);
    assert.deepEqual(again, expected('one'), `${name}: the same, from the compiled copy`);

    writeFileSync(join(dir, 'lib', 'helper.ts'), readFileSync(join(dir, 'lib', 'helper.ts'), 'utf8').replace("'one'", "'two'"));
    const edited = await envAfter('an imported file edited', TYPE_CHECKING);
    assert.deepEqual(edited, expected('two'), `${name}: the edit is run, not the old compiled copy`);
    await rig.ok(['delete', name]);
    assert.deepEqual(await envAfter('edited, then unchanged', RAN_COMPILED), expected('two'), `${name}: the new compiled copy`);
  }
});

test('a compiled config copy that was altered, is another user\'s, is a symlink or sits in a directory open to others is never run: the config is compiled again from its checked files', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = project(t, {
    'idle.mjs': IDLE,
    'ecosystem.config.ts': "export default { apps: [{ name: 'web', script: 'idle.mjs', env: { FROM: 'the config' } }] };\n",
  });
  const config = join(dir, 'ecosystem.config.ts');
  const marker = join(dir, 'tampered-code-ran');
  // What an attacker would put in place of the compiled copy (CommonJS, as this config compiles to).
  const evil = `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\nmodule.exports = { default: { apps: [{ name: 'web', script: 'idle.mjs', env: { FROM: 'tampered' } }] } };\n`;
  const evilSha = createHash('sha256').update(evil).digest('hex');
  const cacheFile = join(rig.home, 'typecheck-cache.json');
  const compiledDir = join(rig.home, 'compiled-configs');
  const compiledRef = (): { sha: string } => (JSON.parse(readFileSync(cacheFile, 'utf8')) as { entries: Record<string, { compiled: { sha: string } }> }).entries[config]!.compiled;
  /** Points the cache entry at another copy, as only the user (whose file the cache is) could. */
  const pointAt = (sha: string): void => {
    const cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as { entries: Record<string, { compiled: { sha: string } }> };
    cache.entries[config]!.compiled.sha = sha;
    writeFileSync(cacheFile, JSON.stringify(cache));
  };
  const start = async (what: string, refusal: RegExp): Promise<void> => {
    const result = await rig.cli(['start', config], { env: DEBUG_CONFIG });
    assert.equal(result.code, 0, `${what}: ${result.stderr}`);
    assert.equal(existsSync(marker), false, `${what}: the tampered copy did not run`);
    assert.equal((await rig.show('web')).definition.env['FROM'], 'the config', what);
    assert.match(result.stderr, refusal, `${what}: the reason it was not used`);
    const next = await rig.cli(['start', config], { env: DEBUG_CONFIG });
    assert.match(next.stderr, RAN_COMPILED, `${what}: compiled again, and that copy is used from then on`);
  };

  const first = await rig.cli(['start', config], { env: DEBUG_CONFIG });
  assert.equal(first.code, 0, first.stderr);
  await online(rig, ['web']);
  assert.equal(statSync(compiledDir).mode & 0o777, 0o700, 'the directory of compiled copies is private');
  const good = compiledRef().sha;
  assert.equal(statSync(join(compiledDir, `${good}.js`)).mode & 0o777, 0o600, 'a compiled copy is private');

  writeFileSync(join(compiledDir, `${good}.js`), evil);
  await start('altered in place', /compiled copy not used: \S+ does not hash to its name \(truncated or altered\); compiling again\n[^]*compiled [0-9a-f]{12}\n/);

  writeFileSync(join(compiledDir, `${good}.js`), '');
  await start('truncated', /does not hash to its name/);

  writeFileSync(join(compiledDir, `${evilSha}.js`), evil, { mode: 0o600 });
  chownSync(join(compiledDir, `${evilSha}.js`), 65534, 65534);
  pointAt(evilSha);
  await start("another user's file", /compiled copy not used: \S+ is owned by uid 65534, not by you/);

  rmSync(join(compiledDir, `${evilSha}.js`), { force: true });
  const evilFile = join(dir, 'evil.js');
  writeFileSync(evilFile, evil);
  symlinkSync(evilFile, join(compiledDir, `${evilSha}.js`));
  pointAt(evilSha);
  await start('a symlink', /compiled copy not used: \S+ is a symbolic link/);

  rmSync(join(compiledDir, `${evilSha}.js`), { force: true });
  writeFileSync(join(compiledDir, `${evilSha}.js`), evil, { mode: 0o600 });
  pointAt(evilSha);
  chmodSync(compiledDir, 0o777);
  const open = await rig.cli(['start', config], { env: DEBUG_CONFIG });
  assert.equal(open.code, 0, open.stderr);
  assert.equal(existsSync(marker), false, 'a directory open to others: the copy in it did not run');
  assert.match(open.stderr, /compiled copy not used: \S+ is open to others \(mode 777\)/);
  assert.match(open.stderr, /compiled copy not stored \(\S+ is open to others/, 'nor is a new one written there');
  chmodSync(compiledDir, 0o700);

  // A truncated cache file is no cache: the config is checked again.
  writeFileSync(cacheFile, readFileSync(cacheFile, 'utf8').slice(0, 40));
  const truncated = await rig.cli(['start', config], { env: DEBUG_CONFIG });
  assert.equal(truncated.code, 0, truncated.stderr);
  assert.match(truncated.stderr, TYPE_CHECKING);
  assert.equal(existsSync(marker), false);
});
