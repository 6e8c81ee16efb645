import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentEvent } from '../src/protocol.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

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
