import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isConfigFile } from '../src/config/load.js';
import { closest, resolveApps, type ResolveContext } from '../src/config/resolve.js';
import { defineConfig } from '../src/index.js';
import { AgentpmError } from '../src/errors.js';
import type { AppDefinition } from '../src/protocol.js';

let baseDir: string;
let context: ResolveContext;

before(() => {
  baseDir = mkdtempSync(join(tmpdir(), 'agentpm-unit-config-'));
  writeFileSync(join(baseDir, 'bot.ts'), 'export {};\n');
  writeFileSync(join(baseDir, 'worker.js'), '\n');
  mkdirSync(join(baseDir, 'sub'));
  writeFileSync(join(baseDir, 'sub', 'agent.py'), '\n');
  context = { source: join(baseDir, 'ecosystem.config.ts'), baseDir };
});

after(() => {
  rmSync(baseDir, { recursive: true, force: true });
});

/** Runs resolveApps expecting it to refuse the config; checks the error's class and code, returns its message. */
function refusal(config: unknown): string {
  let caught: unknown;
  try {
    resolveApps(config, context);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, 'resolveApps accepted the config');
  assert.ok(caught instanceof AgentpmError, `expected an AgentpmError, got ${String(caught)}`);
  assert.equal(caught.code, 'invalid-config');
  return caught.message;
}

function only(config: unknown): AppDefinition {
  const specs = resolveApps(config, context);
  assert.equal(specs.length, 1);
  const [spec] = specs;
  assert.ok(spec);
  return spec;
}

describe('resolveApps: accepted configs', () => {
  test('applies every default to a script-only app', () => {
    const spec = only({ apps: [{ script: 'bot.ts' }] });
    assert.deepEqual(spec, {
      name: 'bot',
      script: join(baseDir, 'bot.ts'),
      args: [],
      cwd: baseDir,
      interpreter: null,
      interpreterArgs: [],
      env: {},
      stopSignal: 'SIGTERM',
      killTimeoutMs: 10_000,
      autorestart: true,
      restartDelayMs: 1_000,
      maxRestartDelayMs: 60_000,
      minUptimeMs: 30_000,
      readyAfterMs: 3_000,
      maxRestarts: null,
      restartWindowMs: 600_000,
      maxMemoryBytes: null,
      maxChildren: null,
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
      logs: { maxSizeBytes: 10 * 1024 * 1024, keep: 5, compress: false },
    } satisfies AppDefinition);
  });

  test('parses given values: durations, sizes, args, env, cwd', () => {
    const spec = only({
      apps: [
        {
          name: 'agent-1',
          script: 'worker.js',
          args: ' --port  8080 ',
          cwd: 'sub',
          interpreter: 'node',
          interpreterArgs: ['--enable-source-maps'],
          env: { MODE: 'prod', WORKERS: 4, DEBUG: false },
          stopSignal: 'SIGINT',
          killTimeout: '5s',
          autorestart: false,
          restartDelay: 250,
          maxRestartDelay: '2m',
          minUptime: '10s',
          maxRestarts: 7,
          restartWindow: '1h',
          maxMemory: '1.5G',
          maxChildren: 0,
        },
      ],
    });
    assert.equal(spec.name, 'agent-1');
    assert.equal(spec.script, join(baseDir, 'worker.js'));
    assert.deepEqual(spec.args, ['--port', '8080']);
    assert.equal(spec.cwd, join(baseDir, 'sub'));
    assert.equal(spec.interpreter, 'node');
    assert.deepEqual(spec.interpreterArgs, ['--enable-source-maps']);
    assert.deepEqual(spec.env, { MODE: 'prod', WORKERS: '4', DEBUG: 'false' });
    assert.equal(spec.stopSignal, 'SIGINT');
    assert.equal(spec.killTimeoutMs, 5_000);
    assert.equal(spec.autorestart, false);
    assert.equal(spec.restartDelayMs, 250);
    assert.equal(spec.maxRestartDelayMs, 120_000);
    assert.equal(spec.minUptimeMs, 10_000);
    assert.equal(spec.maxRestarts, 7);
    assert.equal(spec.restartWindowMs, 3_600_000);
    assert.equal(spec.maxMemoryBytes, 1.5 * 1024 ** 3);
    assert.equal(spec.maxChildren, 0);
  });

  test('a relative script resolves against baseDir, not the process cwd', () => {
    assert.notEqual(process.cwd(), baseDir);
    const spec = only({ apps: [{ script: './sub/agent.py' }] });
    assert.equal(spec.script, join(baseDir, 'sub', 'agent.py'));
    assert.equal(spec.name, 'agent');
  });

  test('an absolute script path is kept', () => {
    const absolute = join(baseDir, 'sub', 'agent.py');
    assert.equal(only({ apps: [{ script: absolute }] }).script, absolute);
  });

  test('a bare command without a path or extension is left for PATH lookup', () => {
    const spec = only({ apps: [{ script: 'sleep', args: ['60'] }] });
    assert.equal(spec.script, 'sleep');
    assert.equal(spec.name, 'sleep');
  });

  test('apps with distinct names may share a script', () => {
    const specs = resolveApps({ apps: [{ script: 'bot.ts', name: 'a' }, { script: 'bot.ts', name: 'b' }] }, context);
    assert.deepEqual(
      specs.map((spec) => spec.name),
      ['a', 'b'],
    );
  });
});

describe('resolveApps: refused configs', () => {
  test('not an object with an apps array', () => {
    for (const config of [null, 42, 'apps', [], {}, { apps: {} }]) {
      assert.match(refusal(config), /expected an object with an `apps` array/);
    }
  });

  test('an empty apps array', () => {
    assert.match(refusal({ apps: [] }), /`apps` is empty/);
  });

  test('an app that is not an object', () => {
    assert.match(refusal({ apps: ['bot.ts'] }), /apps\[0\]: expected an object/);
  });

  test('a missing script', () => {
    const text = refusal({ apps: [{ name: 'x' }] });
    assert.match(text, /field `script`: required/);
  });

  test('a script file that does not exist: the message names the resolved path and the source', () => {
    const text = refusal({ apps: [{ script: 'agents/missing.ts' }] });
    const missing = join(baseDir, 'agents', 'missing.ts');
    assert.ok(text.includes(`${missing} does not exist`), text);
    assert.ok(text.includes(context.source), text);
    assert.ok(text.includes('field `script`'), text);
    assert.ok(text.includes('("missing")'), text);
  });

  test('an unknown field close to a known one gets a "did you mean"', () => {
    assert.match(refusal({ apps: [{ script: 'bot.ts', maxMemroy: '1G' }] }), /unknown field `maxMemroy`; did you mean `maxMemory`\?/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', restart_delay: '1s' }] }), /unknown field `restart_delay`; did you mean `restartDelay`\?/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', scirpt: 'x' }] }), /did you mean `script`\?/);
  });

  test('an unknown field far from every known one lists the known fields instead', () => {
    const text = refusal({ apps: [{ script: 'bot.ts', healthcheck: true }] });
    assert.match(text, /unknown field `healthcheck`; known fields: name, script, args,/);
    assert.doesNotMatch(text, /did you mean/);
  });

  test('several problems are all reported at once, across apps', () => {
    const text = refusal({
      apps: [
        { script: 'bot.ts', killTimeout: 'soon', maxRestarts: 0 },
        { script: 'nope.js', stopSignal: 'SIGNOPE' },
      ],
    });
    assert.match(text, /^4 problems in the configuration; nothing was started:/);
    assert.match(text, /apps\[0\] \("bot"\): field `killTimeout`: expected a duration .* got 'soon'/);
    assert.match(text, /apps\[0\] \("bot"\): field `maxRestarts`: expected a whole number from 1 to 1000000, got 0/);
    assert.match(text, /apps\[1\] \("nope"\): field `script`: .*nope\.js does not exist/);
    assert.match(text, /apps\[1\] \("nope"\): field `stopSignal`: .*got 'SIGNOPE'/);
    assert.equal(text.split('\n').length, 5);
  });

  test('a single problem is announced as such', () => {
    assert.match(refusal({ apps: [{ script: 'bot.ts', autorestart: 'yes' }] }), /^invalid configuration; nothing was started:\n {2}.*field `autorestart`: expected true or false, got 'yes'$/);
  });

  test('duplicate names are refused', () => {
    assert.match(refusal({ apps: [{ script: 'bot.ts' }, { script: './bot.ts', args: '--again' }] }), /app name "bot" is used by 2 apps; names must be unique/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', name: 'same' }, { script: 'worker.js', name: 'same' }] }), /app name "same" is used by 2 apps/);
  });

  test('a bad stopSignal is refused; a real one is accepted', () => {
    for (const bad of ['SIGFOO', 'TERM', 'sigterm', 15]) {
      assert.match(refusal({ apps: [{ script: 'bot.ts', stopSignal: bad }] }), /field `stopSignal`: expected a signal name such as 'SIGTERM'/);
    }
    assert.equal(only({ apps: [{ script: 'bot.ts', stopSignal: 'SIGHUP' }] }).stopSignal, 'SIGHUP');
  });

  test('a bad maxMemory is refused: unparseable, zero, or not a size at all', () => {
    assert.match(refusal({ apps: [{ script: 'bot.ts', maxMemory: 'lots' }] }), /field `maxMemory`: expected a size such as '512M', '1\.5G' or a number of bytes, got 'lots'/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', maxMemory: '0M' }] }), /field `maxMemory`: must be more than 0, got '0M'/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', maxMemory: 0 }] }), /field `maxMemory`: must be more than 0, got 0/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', maxMemory: { gb: 1 } }] }), /field `maxMemory`: expected a size such as '1\.5G', got \{"gb":1\}/);
  });

  test('a bad name is refused', () => {
    assert.match(refusal({ apps: [{ script: 'bot.ts', name: '-bot' }] }), /field `name`: expected 1-64 characters/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', name: 'a b' }] }), /field `name`/);
  });

  test('a cwd that is not a directory is refused', () => {
    assert.match(refusal({ apps: [{ script: 'bot.ts', cwd: 'bot.ts' }] }), new RegExp(`field \`cwd\`: ${join(baseDir, 'bot.ts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a directory`));
  });

  test('bad args, env and interpreterArgs are refused', () => {
    assert.match(refusal({ apps: [{ script: 'bot.ts', args: ['a', 1] }] }), /field `args`: expected a string or an array of strings/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', env: { A: { nested: true } } }] }), /field `env\.A`: expected a string, number or boolean/);
    assert.match(refusal({ apps: [{ script: 'bot.ts', interpreterArgs: '--inspect' }] }), /field `interpreterArgs`: expected an array of strings/);
  });
});

describe('resolveApps: scripts and args', () => {
  test('a directory is refused as a script, naming it', () => {
    assert.match(refusal({ apps: [{ script: 'sub' }] }), /field `script`: \S+\/sub is a directory; name the file to run/);
  });

  test('an app without a script gets one problem, not a second about its name', () => {
    const message = refusal({ apps: [{ env: {} }] });
    assert.match(message, /field `script`: required/);
    assert.doesNotMatch(message, /field `name`/);
  });

  test('args given as one string keep quoted parts together', () => {
    assert.deepEqual(only({ apps: [{ script: 'bot.ts', args: `--title "two words" --x 'a b' plain` }] }).args, ['--title', 'two words', '--x', 'a b', 'plain']);
  });
});

describe('closest', () => {
  test('suggests a near miss, case-insensitively, and nothing for a far one', () => {
    assert.equal(closest('MAXMEMORY', ['maxMemory', 'maxChildren']), 'maxMemory');
    assert.equal(closest('killTimout', ['killTimeout', 'minUptime']), 'killTimeout');
    assert.equal(closest('watch', ['maxMemory', 'script']), null);
  });
});

describe('isConfigFile', () => {
  test('ecosystem.* files with a config extension are configs', () => {
    for (const path of ['ecosystem.config.ts', 'ecosystem.ts', 'ecosystem.mjs', 'ecosystem.cjs', '/srv/app/ecosystem.config.js']) {
      assert.equal(isConfigFile(path), true, path);
    }
  });

  test('*.config.* files are configs', () => {
    for (const path of ['agentpm.config.ts', 'agents.config.mts', './deploy/prod.config.cjs']) {
      assert.equal(isConfigFile(path), true, path);
    }
  });

  test('any .json file is a config', () => {
    for (const path of ['apps.json', '/etc/agentpm/bots.json']) {
      assert.equal(isConfigFile(path), true, path);
    }
  });

  test('other scripts are not configs', () => {
    for (const path of ['bot.ts', 'agent.py', 'config.ts', 'myecosystem.ts', 'configure.js', 'ecosystem.py', 'ecosystem.config.yaml', 'app.config', '/srv/ecosystem.config.js/bot.ts']) {
      assert.equal(isConfigFile(path), false, path);
    }
  });
});

describe('resolveApps: named environments (env_<name>)', () => {
  const config = {
    apps: [
      { name: 'bot', script: 'bot.ts', env: { LOG_LEVEL: 'debug', REGION: 'eu' }, env_production: { LOG_LEVEL: 'warn', WORKERS: 4 }, env_staging: { LOG_LEVEL: 'info' } },
      { name: 'worker', script: 'worker.js', env: { QUEUE: 'default' } },
    ],
  };

  test('without --env, env alone applies; the env_ blocks are accepted fields', () => {
    const [bot, worker] = resolveApps(config, context);
    assert.deepEqual(bot?.env, { LOG_LEVEL: 'debug', REGION: 'eu' });
    assert.deepEqual(worker?.env, { QUEUE: 'default' });
  });

  test('the selected environment is merged over env; apps without it keep their env', () => {
    const [bot, worker] = resolveApps(config, { ...context, environment: 'production' });
    assert.deepEqual(bot?.env, { LOG_LEVEL: 'warn', REGION: 'eu', WORKERS: '4' });
    assert.deepEqual(worker?.env, { QUEUE: 'default' });
    // The order of the keys in the file does not matter.
    const reversed = only({ apps: [{ script: 'bot.ts', env_production: { A: 'prod' }, env: { A: 'base' } }] });
    assert.deepEqual(reversed.env, { A: 'base' });
    const [selected] = resolveApps({ apps: [{ script: 'bot.ts', env_production: { A: 'prod' }, env: { A: 'base' } }] }, { ...context, environment: 'production' });
    assert.deepEqual(selected?.env, { A: 'prod' });
  });

  test('an environment no app defines is refused, listing the ones that exist', () => {
    let caught: unknown;
    try {
      resolveApps(config, { ...context, environment: 'prod' });
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof AgentpmError);
    assert.match(caught.message, /no app defines the environment 'prod' \(env_prod\); environments defined: production, staging/);
    assert.throws(() => resolveApps({ apps: [{ script: 'bot.ts' }] }, { ...context, environment: 'production' }), /no app has named environments \(add env_<name> blocks next to env\)/);
  });

  test('env_<name> blocks are typed in AppConfig (checked by the typecheck of the tests)', () => {
    const config = defineConfig({ apps: [{ script: 'bot.ts', env: { A: 1 }, env_production: { A: 2, B: true }, env_staging: { A: 'x' } }] });
    // @ts-expect-error an environment is an object of variables, not a string
    const wrong = defineConfig({ apps: [{ script: 'bot.ts', env_production: 'A=1' }] });
    assert.ok(config && wrong);
  });

  test('every env_ block is checked, selected or not', () => {
    const text = refusal({ apps: [{ script: 'bot.ts', env_staging: ['A=1'], env_production: { A: { nested: true } } }] });
    assert.match(text, /field `env_staging`: expected an object of NAME: value, got \["A=1"\]/);
    assert.match(text, /field `env_production.A`: expected a string, number or boolean/);
  });
});
