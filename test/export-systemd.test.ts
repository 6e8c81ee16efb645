/**
 * `agentpm export systemd`, through the real CLI, checked by systemd itself: `systemd-analyze verify`
 * must print nothing for any unit, and systemd's own parser (`systemd --test`, run as nobody as it
 * requires) must read back the argv, the variables and the limits agentpm would have used.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kernelLimitsFor } from '../src/cgroup/limits.js';
import { resolveApps } from '../src/config/resolve.js';
import { commandFor } from '../src/daemon/spawn.js';
import { environmentFileLine, execWord, unitPath } from '../src/export/systemd-quote.js';
import { restartSteps, systemdUnits } from '../src/export/systemd.js';
import { Rig } from './helpers/rig.js';

const SECRETS = {
  BOT_TOKEN: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw',
  OPENAI_API_KEY: 'sk-proj-a$b"c\\d`e%f\'g h\nsecond-line',
  DATABASE_URL: 'postgres://app:s3cr%t$pw@db:5432/main',
};
const PLAIN = { LOG_LEVEL: 'debug', GREETING: '50% off $5 "now" \\o/', MULTI: 'one\ntwo\tthree', UNICODE: 'héllo ✓' };
const TRICKY_ARGS = ['a b', '100%', '$HOME', '${HOME}', '$$', ';', 'q"x', "it's", 'back\\slash', 'tab\there', 'new\nline', 'ünï', '%n'];

interface Fixture {
  dir: string;
  config: string;
}

function fixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-export-'));
  writeFileSync(join(dir, 'bot.js'), 'setInterval(() => {}, 1000);\n');
  writeFileSync(join(dir, 'agent.ts'), 'const n: number = 1;\nsetInterval(() => n, 1000);\n');
  writeFileSync(join(dir, 'worker.py'), 'import time\ntime.sleep(100)\n');
  writeFileSync(join(dir, 'job.sh'), 'sleep 100\n');
  const apps = [
    {
      name: 'bot',
      script: 'bot.js',
      args: TRICKY_ARGS,
      env: { ...PLAIN, ...SECRETS },
      maxMemory: '1G',
      maxChildren: 50,
      maxCpu: '150%',
      killTimeout: '30s',
      stopSignal: 'SIGINT',
      maxRestarts: 5,
      restartWindow: '10m',
      oomScoreAdj: 200,
      health: { http: 'http://127.0.0.1:3000/health', interval: '10s' },
      hangTimeout: '10m',
      notify: [{ command: 'echo crashed' }],
      watch: true,
    },
    { name: 'agent', script: 'agent.ts', maxMemory: '300M', hardMemory: '1G', maxTasks: 4000, onLimit: 'kill-offender', restartDelay: '500ms', maxRestartDelay: '2m' },
    { name: 'worker.py', script: 'worker.py', autorestart: false, killTimeout: '1500ms', health: { command: 'test -f /tmp/ok' } },
    { name: 'job', script: 'job.sh', priority: -5, reap: false, killTimeout: 0, oomScoreAdj: -100 },
    { name: 'sleeper', script: 'sleep', args: ['1000'], maxCpu: 0.5 },
  ];
  const config = join(dir, 'agents.config.json');
  writeFileSync(config, JSON.stringify({ apps }, null, 2));
  return { dir, config };
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): { code: number | null; output: string; stdout: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000, env: options.env ?? process.env });
  return { code: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}`, stdout: result.stdout ?? '' };
}

/** CI installs systemd (.ci/run): there a missing tool fails the tests rather than skipping them. */
const hasAnalyze = run('systemd-analyze', ['--version']).code === 0 || process.env['CI'] === 'true';

function verify(files: string[]): string {
  const result = run('systemd-analyze', ['verify', ...files]);
  return `${result.code === 0 ? '' : `exit ${result.code}\n`}${result.output}`;
}

function unitsIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.service')).map((name) => join(dir, name));
}

test('every exported unit passes systemd-analyze verify without a single warning, system and user', { skip: !hasAnalyze && 'systemd-analyze is not installed (Debian package systemd)' }, async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const flags of [[], ['--user']]) {
    const out = join(dir, `units${flags.join('')}`);
    const result = await rig.cli(['export', 'systemd', config, '--out', out, '--systemd-version', '252', ...flags]);
    assert.equal(result.code, 0, result.stderr);
    const units = unitsIn(out);
    assert.deepEqual(units.map((file) => file.slice(out.length + 1)).sort(), ['agentpm-agent.service', 'agentpm-bot.service', 'agentpm-job.service', 'agentpm-sleeper.service', 'agentpm-worker.py.service']);
    assert.equal(verify(units), '', `systemd-analyze verify ${flags.join(' ')} printed nothing`);
    const bot = readFileSync(join(out, 'agentpm-bot.service'), 'utf8');
    assert.match(bot, /^WantedBy=(default|multi-user)\.target$/m);
    assert.equal(/^WantedBy=default\.target$/m.test(bot), flags.includes('--user'));
    assert.doesNotMatch(bot, /^User=/m, 'no User= for root, nor in a user unit');
    // Keys of systemd 254 are left out for 252, and said so.
    assert.doesNotMatch(bot, /^Restart(Steps|MaxDelaySec)=/m);
    assert.match(bot, /^# The growing delay needs RestartSteps=6 and RestartMaxDelaySec=60s, systemd 254\+/m);
    // A user manager cannot lower an OOM score: the unit would fail at every start.
    const job = readFileSync(join(out, 'agentpm-job.service'), 'utf8');
    assert.equal(/^OOMScoreAdjust=-100$/m.test(job), !flags.includes('--user'));
  }
});

test('for systemd 254 the backoff keys are written, and they are the only keys a 252 systemd does not know', { skip: !hasAnalyze && 'systemd-analyze is not installed' }, async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'units');
  assert.equal((await rig.cli(['export', 'systemd', config, '--out', out, '--systemd-version', '254'])).code, 0);
  const bot = readFileSync(join(out, 'agentpm-bot.service'), 'utf8');
  for (const line of ['RestartSec=1s', 'RestartSteps=6', 'RestartMaxDelaySec=60s']) assert.ok(bot.split('\n').includes(line), line);
  const local = Number(/^systemd (\d+)/.exec(run('systemctl', ['--version']).stdout)?.[1] ?? 0);
  const warnings = verify(unitsIn(out)).split('\n').filter(Boolean);
  if (local >= 254) assert.deepEqual(warnings, []);
  else {
    assert.ok(warnings.length > 0);
    for (const line of warnings) assert.match(line, /Unknown key '(RestartSteps|RestartMaxDelaySec)' in section \[Service\], ignoring\./);
  }
});

test('secret-looking variables: only in a 0600 EnvironmentFile, never in a unit nor on stdout; it reads back exactly', async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'units');
  const written = await rig.cli(['export', 'systemd', config, '--out', out]);
  assert.equal(written.code, 0, written.stderr);
  const envFile = join(out, 'agentpm-bot.env');
  assert.equal(statSync(envFile).mode & 0o777, 0o600);
  assert.match(written.stdout, /agentpm-bot\.env \(mode 0600: secret values\)/);
  assert.deepEqual(readdirSync(out).filter((name) => name.endsWith('.env')), ['agentpm-bot.env'], 'only an app with secrets has an env file');
  const bot = readFileSync(join(out, 'agentpm-bot.service'), 'utf8');
  assert.ok(bot.split('\n').includes(`EnvironmentFile=${envFile}`));
  const printed = await rig.cli(['export', 'systemd', config]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.match(printed.stdout, /# ==> agentpm-bot\.env <==\n# agentpm-bot\.env is not printed: it holds the secret-looking BOT_TOKEN, OPENAI_API_KEY, DATABASE_URL/);
  assert.match(printed.stderr, /agentpm-bot\.env not printed \(secret values\); use --out DIR/);
  const everything = [...unitsIn(out).map((file) => readFileSync(file, 'utf8')), printed.stdout, printed.stderr, written.stdout, written.stderr].join('\n');
  for (const [name, value] of Object.entries(SECRETS)) {
    for (const piece of [value, ...value.split(/[\n$"\\`%' ]/).filter((part) => part.length >= 6)]) assert.ok(!everything.includes(piece), `${name}'s value (${piece.slice(0, 4)}…) appears nowhere`);
  }
  // systemd's env-file parser and bash read double-quoted values by the same rules (\ escapes " \ ` $ only).
  const names = Object.keys(SECRETS);
  const read = run('bash', ['-c', `set -a; . "$1"; for n in ${names.join(' ')}; do printf '%s\\0' "\${!n}"; done`, 'bash', envFile], { env: {} });
  assert.equal(read.code, 0, read.output);
  assert.deepEqual(read.stdout.split('\0').slice(0, -1), Object.values(SECRETS));
});

/** systemd's display of an argv (`Command Line:` of a dump): words, double quotes, C escapes. */
function parseCommandLine(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const char = line[i] as string;
    if (char === '\\' && i + 1 < line.length) {
      const next = line[(i += 1)] as string;
      const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r' };
      if (next === 'x') {
        word = (word ?? '') + String.fromCharCode(Number.parseInt(line.slice(i + 1, i + 3), 16));
        i += 2;
      } else word = (word ?? '') + (escapes[next] ?? next);
    } else if (char === '"') {
      quoted = !quoted;
      word ??= '';
    } else if (char === ' ' && !quoted) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? '') + char;
  }
  if (word !== null) words.push(word);
  return words;
}

/** The dump of one unit as systemd's loader parsed it: `Key: value` lines, in order (values may span lines). */
function dumpOf(unitDir: string, unit: string): string | null {
  const result = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/lib/systemd/systemd', '--test', '--system', `--unit=${unit}`, '--no-pager'], {
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${unitDir}:` },
  });
  const start = result.stdout.indexOf(`-> Unit ${unit}:`);
  if (start === -1) return null;
  const end = result.stdout.indexOf('\n\t-> Unit ', start + 1);
  return result.stdout.slice(start, end === -1 ? undefined : end);
}

/** A systemd timespan as it prints one ('1.500000s', '500ms', '1min 30s') in microseconds. */
function microseconds(text: string | undefined): number {
  const units: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, min: 60e6, h: 3600e6 };
  let total = 0;
  for (const [, number, unit] of (text ?? '').matchAll(/(\d+(?:\.\d+)?)(us|ms|s|min|h)\b/g)) total += Number(number) * (units[unit ?? ''] ?? Number.NaN);
  return Math.round(total);
}

const canDump = (existsSync('/lib/systemd/systemd') && run('setpriv', ['--version']).code === 0) || process.env['CI'] === 'true';

test("systemd's own parser reads back agentpm's argv, variables, signals and kernel caps", { skip: !canDump && 'needs /lib/systemd/systemd and setpriv' }, async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'units');
  assert.equal((await rig.cli(['export', 'systemd', config, '--out', out])).code, 0);
  chmodSync(dir, 0o755);
  chmodSync(out, 0o755);
  const apps = resolveApps(JSON.parse(readFileSync(config, 'utf8')), { source: config, baseDir: dir });
  for (const app of apps) {
    const dump = dumpOf(out, `agentpm-${app.name}.service`);
    assert.ok(dump, `systemd dumped agentpm-${app.name}.service`);
    const field = (key: string): string | undefined => new RegExp(`^\\t\\t${key}: (.*)$`, 'm').exec(dump)?.[1];
    // ExecStart= as the manager stored it, then as it runs: `$$` is `$`, `$VAR`/`${VAR}` are expanded.
    const stored = /^\t\t\tCommand Line: (.*)$/m.exec(dump)?.[1] ?? '';
    const argv = parseCommandLine(stored).map((word) => word.replace(/\$\$|\$\{[A-Za-z_]\w*\}|\$[A-Za-z_]\w*/g, (match) => (match === '$$' ? '$' : `<expanded ${match}>`)));
    const expected = commandFor(app);
    assert.deepEqual(argv.slice(1), expected.args, `${app.name}: the arguments`);
    assert.ok(argv[0]?.endsWith(`/${expected.file.split('/').pop() ?? ''}`), `${app.name}: ${argv[0]} runs ${expected.file}`);
    assert.equal(field('WorkingDirectory'), app.cwd);
    assert.equal(field('KillMode'), 'control-group');
    assert.equal(field('KillSignal'), app.stopSignal);
    assert.equal(field('Restart'), app.autorestart ? 'always' : 'no');
    // killTimeout 0 (SIGKILL at once) is 1ms: TimeoutStopSec=0 would mean no timeout at all.
    // (The dump shows this one to the second, truncated; the unit holds it to the millisecond.)
    const stopUs = Math.max(app.killTimeoutMs, 1) * 1000;
    assert.equal(microseconds(field('TimeoutStopSec')), stopUs >= 1e6 ? Math.floor(stopUs / 1e6) * 1e6 : stopUs, `${app.name}: TimeoutStopSec is killTimeout`);
    if (app.autorestart) assert.equal(microseconds(field('RestartSec')), app.restartDelayMs * 1000, `${app.name}: RestartSec is restartDelay`);
    const limits = kernelLimitsFor(app, null);
    assert.equal(field('MemoryMax'), String(limits.memoryMaxBytes ?? '18446744073709551615'), `${app.name}: MemoryMax is kernelLimitsFor's figure`);
    if (limits.pidsMax !== null) assert.equal(field('TasksMax'), String(limits.pidsMax), `${app.name}: TasksMax is kernelLimitsFor's figure`);
    if (limits.cpu !== null) assert.equal(microseconds(field('CPUQuotaPerSecSec')), (limits.cpu.quotaUs / limits.cpu.periodUs) * 1e6, `${app.name}: CPUQuota is kernelLimitsFor's quota`);
    else assert.equal(field('CPUQuotaPerSecSec'), 'infinity');
    if (limits.memoryMaxBytes !== null) assert.equal(field('OOMPolicy'), limits.memoryOomGroup ? 'kill' : 'continue');
    if (app.oomScoreAdj !== null) assert.equal(field('OOMScoreAdjust'), String(app.oomScoreAdj));
  }
  // Environment=: every plain variable, value for value (one can span lines), and no secret one.
  const bot = dumpOf(out, 'agentpm-bot.service') ?? '';
  const environment = bot.split(/\n\t\t(?=[A-Z])/).filter((entry) => entry.startsWith('Environment: ')).map((entry) => entry.slice('Environment: '.length));
  assert.deepEqual(environment.filter((entry) => !entry.startsWith('PATH=')), Object.entries(PLAIN).map(([name, value]) => `${name}=${value}`));
});

test('quoting: words, assignments, env-file lines and paths systemd cannot hold', () => {
  assert.equal(execWord('a b'), '"a b"');
  assert.equal(execWord('100%'), '"100%%"');
  assert.equal(execWord('$HOME'), '"$$HOME"');
  assert.equal(execWord('q"x\\y'), '"q\\"x\\\\y"');
  assert.equal(execWord('a\nb\x01'), '"a\\nb\\x01"');
  assert.equal(environmentFileLine('K', 'a"b\\c`d$e%f\'g'), 'K="a\\"b\\\\c\\`d\\$e%f\'g"');
  assert.equal(unitPath('/srv/50% off', 'cwd'), '/srv/50%% off');
  for (const bad of ['/srv/a\nb', ' /srv', '/srv/a\\', 'relative']) assert.throws(() => unitPath(bad, 'cwd'), /cannot be written in a systemd unit|must be an absolute path/);
});

test('restartSteps: the doublings from restartDelay to maxRestartDelay', () => {
  assert.equal(restartSteps(1000, 60_000), 6);
  assert.equal(restartSteps(1000, 1000), 0);
  assert.equal(restartSteps(0, 60_000), 0);
  assert.equal(restartSteps(500, 120_000), 8);
});

test('export systemd refuses what it cannot write, naming the problem and the fix', async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const cases: Array<[string[], RegExp]> = [
    [['export', 'systemd', join(dir, 'bot.js')], /is not a config file .*put the script in one/],
    [['export', 'systemd', config, '--systemd-version', '239'], /--systemd-version expects a whole number from 240/],
    [['export', 'systemd', config, '--only', 'nope'], /--only: no app named nope/],
  ];
  const missing = join(dir, 'missing.config.json');
  writeFileSync(missing, JSON.stringify({ apps: [{ name: 'x', script: join(dir, 'bot.js'), interpreter: 'no-such-interpreter-here' }] }));
  cases.push([['export', 'systemd', missing], /cannot find 'no-such-interpreter-here' on PATH; a unit must name its program by absolute path/]);
  const badName = join(dir, 'badname.config.json');
  writeFileSync(badName, JSON.stringify({ apps: [{ name: 'x', script: join(dir, 'bot.js'), env: { 'MY-VAR': '1' } }] }));
  cases.push([['export', 'systemd', badName], /cannot carry the variable name\(s\) "MY-VAR"/]);
  for (const [args, message] of cases) {
    const result = await rig.cli(args);
    assert.equal(result.code, 1, args.join(' '));
    assert.match(result.stderr, message);
    assert.equal(result.stdout, '');
  }
  const argsSecret = join(dir, 'args.config.json');
  writeFileSync(argsSecret, JSON.stringify({ apps: [{ name: 'x', script: join(dir, 'bot.js'), args: ['--token', 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'] }] }));
  const warned = await rig.cli(['export', 'systemd', argsSecret]);
  assert.equal(warned.code, 0);
  assert.match(warned.stderr, /app x: its arguments hold what looks like a credential \(--token \*\*\*\*\)/);
  assert.match(warned.stdout, /^# WARNING: the arguments below hold what looks like a credential/m);
});

test('dependsOn orders the units: After= and Wants= name the dependencies, and verify accepts them', { skip: !hasAnalyze && 'systemd-analyze is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-export-'));
  try {
    const [gateway, bot] = resolveApps({ apps: [{ name: 'gateway', script: 'sleep', args: ['100'] }, { name: 'bot', script: 'sleep', args: ['100'], dependsOn: ['gateway'] }] }, { source: 'test', baseDir: dir });
    assert.ok(gateway && bot);
    const { files } = systemdUnits({ apps: [gateway, bot], settings: null, source: 'test' }, { user: false, version: 252, envDir: dir, path: process.env['PATH'] ?? '', userName: null });
    const unit = files.find((file) => file.name === 'agentpm-bot.service')?.content ?? '';
    assert.ok(unit.split('\n').includes('After=agentpm-gateway.service'));
    assert.ok(unit.split('\n').includes('Wants=agentpm-gateway.service'));
    assert.doesNotMatch(files.find((file) => file.name === 'agentpm-gateway.service')?.content ?? '', /^(After|Wants)=/m);
    for (const file of files) writeFileSync(join(dir, file.name), file.content);
    assert.equal(verify(files.map((file) => join(dir, file.name))), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
