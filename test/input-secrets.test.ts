import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentEvent } from '../src/protocol.js';
import { CLI, FIXTURES, ROOT, Rig, waitFor } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');

function writeConfig(rig: Rig, config: unknown, name = 'ecosystem.config.json'): string {
  const file = join(rig.home, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

test('secrets: show, show --json, events, notify test and daemon.log never print a credential', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const telegram = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
  const secrets = ['argsecret1', 'dbpass1', 'ghpat1', 'cookie1', 'phrase1', 'ss1@', 'whsecret1', 'keysecret1', 'cmdsecret1', telegram, 'healthpw1', 'bearer1'];
  const config = writeConfig(rig, {
    apps: [
      {
        name: 'leaky',
        script: IDLE,
        args: ['--token', 'argsecret1'],
        env: { DB_PASS: 'dbpass1', GH_PAT: 'ghpat1', SESSION_COOKIE: 'cookie1', PASSPHRASE: 'phrase1', DATABASE_URL: 'postgres://u:p@ss1@db/main', PATH_HINT: 'visible-value' },
        notify: [
          { webhook: 'http://127.0.0.1:9/hooks/whsecret1?key=keysecret1', timeout: '1s' },
          { command: `TOKEN=cmdsecret1 echo https://api.telegram.org/bot${telegram}/sendMessage -H 'Authorization: Bearer bearer1' >/dev/null; exit 3` },
        ],
        // fetch refuses URLs with credentials, and its message quotes the URL: the event must not.
        health: { http: 'http://user:healthpw1@127.0.0.1:9/health', interval: '200ms', startPeriod: 0, retries: 1000 },
      },
    ],
  });
  await rig.ok(['start', config]);
  await waitFor(async () => JSON.parse((await rig.ok(['ls', '--json'])))[0]?.health === 'unhealthy', 'the health check to fail');

  const outputs: Record<string, string> = {
    'show --json': await rig.ok(['show', 'leaky', '--json']),
    show: await rig.ok(['show', 'leaky']),
    'events --json': await rig.ok(['events', '--json', '--lines', '200']),
    events: await rig.ok(['events', '--lines', '200']),
    'notify test': (await rig.cli(['notify', 'test', 'leaky', '--json'])).stdout,
  };
  outputs['events.log'] = readFileSync(join(rig.home, 'events.log'), 'utf8');
  outputs['daemon.log'] = readFileSync(join(rig.home, 'daemon.log'), 'utf8');
  for (const [where, text] of Object.entries(outputs)) {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${where} shows ${secret}:\n${text}`);
  }
  const detail = JSON.parse(outputs['show --json'] as string) as { definition: { env: Record<string, string>; notify: { webhook: string | null; command: string | null }[]; health: { http: string } } };
  assert.equal(detail.definition.env['PATH_HINT'], 'visible-value', 'other variables stay readable');
  assert.equal(detail.definition.env['DATABASE_URL'], 'postgres://u:****@db/main');
  assert.equal(detail.definition.notify[0]?.webhook, 'http://127.0.0.1:9/…');
  assert.equal(detail.definition.health.http, 'http://user:****@127.0.0.1:9/health');
  const unhealthy = (JSON.parse(`[${outputs['events --json']?.trim().split('\n').join(',')}]`) as AgentEvent[]).find((event) => event.type === 'health');
  assert.match(String(unhealthy?.data['message']), /user:\*\*\*\*@127\.0\.0\.1/, 'the health message is kept, masked');
  assert.match(outputs['notify test'] as string, /command TOKEN=\*\*\*\* echo https:\/\/api\.telegram\.org\/…/);
  // The registry keeps what the app needs to run: masking is for display only.
  assert.match(readFileSync(join(rig.home, 'registry.json'), 'utf8'), /dbpass1/);
});

test('numbers: every size, count and duration is bounded where it is typed, with the flag or field named', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const huge = '99999999999999999999';
  const refused: [string[], RegExp][] = [
    [['start', 'sleep', '--max-memory', '99999999999999999999999T', '--', '100'], /field `maxMemory`: sizes are at most 1024T/],
    [['start', 'sleep', '--max-restarts', huge, '--', '100'], /field `maxRestarts`: expected a whole number from 1 to 1000000/],
    [['start', 'sleep', '--max-children', huge, '--', '100'], /field `maxChildren`: expected a whole number from 0 to 1000000/],
    [['start', 'sleep', '--kill-timeout', '99999999d', '--', '100'], /field `killTimeout`: durations are at most 24d/],
    [['events', '--lines', '20000'], /--lines expects a whole number from 1 to 10000, got '20000'/],
    [['logs', 'nope', '--lines', huge], /--lines expects a whole number from 0 to 10000000/],
    [['restart', 'all', '--wait', '--parallel', huge], /--parallel expects a whole number from 1 to 1000/],
    [['reap', '--dry-run', '--pid', `${huge}:1`], /--pid: '99999999999999999999:1' is not a pid:startTime/],
    [['startup', 'systemd', '--tasks-max', '1\nExecStartPre=/bin/true'], /--tasks-max expects a whole number from 1 to 4194304/],
    [['startup', 'systemd', '--memory-max', '1G\nExecStartPre=/bin/true'], /--memory-max expects a size/],
  ];
  for (const [args, message] of refused) {
    const result = await rig.cli(args);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
    assert.doesNotMatch(result.stderr, /invalid request|protocol/, 'refused by the CLI, not at the protocol level');
  }
  const config = writeConfig(rig, { apps: [{ name: 'big', script: IDLE, maxMemory: '99999999999999999999999T', maxRestarts: 1e20, memoryBreachTicks: 1e20, health: { command: 'true', retries: 1e20 } }] });
  const bad = await rig.cli(['start', config]);
  assert.equal(bad.code, 1);
  for (const field of ['maxMemory', 'maxRestarts', 'memoryBreachTicks', 'health.retries']) assert.match(bad.stderr, new RegExp(`${field.replace('.', '\\.')}\`?: .*(at most|to 1000000)`), field);
  assert.deepEqual(await rig.ls(), [], 'nothing was started');
});

/** Runs the CLI with its stdout a pipe whose reader is already gone, as in `agentpm ls | head -0`. */
function withClosedStdout(rig: Rig, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agentpm ${args.join(' ')} did not end after its reader went away`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('EPIPE: every command whose reader went away ends quietly with status 141, following ones too', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'quiet']);
  await waitFor(() => readFileSync(join(rig.home, 'logs', 'quiet.out.log'), 'utf8').includes('idle'), 'the app to log a line');
  for (const args of [['daemon', 'status'], ['ls'], ['ls', '--json'], ['show', 'quiet'], ['events'], ['events', '--follow'], ['logs', 'quiet'], ['logs', 'quiet', '--follow']]) {
    const result = await withClosedStdout(rig, args);
    assert.equal(result.stderr, '', `${args.join(' ')} printed: ${result.stderr}`);
    assert.equal(result.code, 141, args.join(' '));
  }
});
