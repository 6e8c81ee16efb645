import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULTS } from '../src/config/defaults.js';
import type { AppDefinition } from '../src/protocol.js';
import { isSecretName, maskArgs, maskCommand, maskData, maskDefinition, maskEnv, maskText, maskUrl, maskWebhook } from '../src/secrets.js';

const TELEGRAM = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const GH = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';

describe('isSecretName', () => {
  test('secret words anywhere in a name, as whole words', () => {
    for (const name of ['DB_PASS', 'GH_PAT', 'SESSION_COOKIE', 'PASSPHRASE', 'GOOGLE_CREDENTIAL', 'GOOGLE_CREDENTIALS', 'BASIC_AUTH', 'SSH_PRIVATE_KEY', 'SENTRY_DSN',
      'OPENAI_API_KEY', 'github_token', 'CLIENT_SECRET', 'DB_PASSWORD', 'SMTP_PASSWD', 'MYSQL_PWD', 'apiKey', 'dbPassword', 'X-Api-Key', 'Authorization',
      'APIKEY', 'AUTHTOKEN', 'SLACK_WEBHOOK_URL', 'access_token', 'key', 'sig', 'X-Amz-Signature', 'X-Amz-Credential', 'token', 'HASH_SALT']) {
      assert.equal(isSecretName(name), true, name);
    }
  });

  test('names that merely contain the letters stay visible', () => {
    for (const name of ['PATH', 'PWD', 'OLDPWD', 'PATTERN', 'BYPASS_CACHE', 'COMPASS_URL', 'AUTHOR', 'NODE_ENV', 'PORT', 'LOG_LEVEL', 'HOME', 'KEYBOARD', 'SPATIAL', 'PASSENGER_COUNT', 'q', 'chat_id']) {
      assert.equal(isSecretName(name), false, name);
    }
  });
});

describe('maskUrl', () => {
  test('the password, up to the last @ of the authority: postgres://u:p@ss@db leaks nothing', () => {
    assert.equal(maskUrl('postgres://u:p@ss@db:5432/main'), 'postgres://u:****@db:5432/main');
    assert.equal(maskUrl('postgres://app:s3cret@db/main'), 'postgres://app:****@db/main');
    assert.equal(maskUrl('https://user:password@health.example.com/health'), 'https://user:****@health.example.com/health');
    assert.equal(maskUrl('postgres://u:p/ss@db/main'), 'postgres://u:****@db/main', 'a password with a slash');
  });

  test('a token as the user, secret query values and token-like path segments', () => {
    assert.equal(maskUrl(`https://${GH}@github.com/o/r.git`), 'https://****@github.com/o/r.git');
    assert.equal(maskUrl('ssh://git@github.com/o/r'), 'ssh://git@github.com/o/r');
    assert.equal(maskUrl('https://example.com/hook?key=abc123&room=ops'), 'https://example.com/hook?key=****&room=ops');
    assert.equal(maskUrl('https://s3.example.com/b/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=f00d'), 'https://s3.example.com/b/o?X-Amz-Credential=****&X-Amz-Signature=****');
    assert.equal(maskUrl(`https://api.telegram.org/bot${TELEGRAM}/sendMessage`), 'https://api.telegram.org/bot****/sendMessage');
    assert.equal(maskUrl('https://hooks.slack.com/services/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'), 'https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/****');
  });

  test('ordinary URLs are left as they are', () => {
    for (const url of ['https://example.com/path?q=1', 'http://127.0.0.1:3000/health', 'http://[::1]:8080/x', 'https://example.com/users/someone@example.com']) {
      assert.equal(maskUrl(url), url);
    }
  });
});

test('maskWebhook: a webhook URL is a credential as a whole, only scheme and host remain', () => {
  assert.equal(maskWebhook('https://ops.example.com/hooks/agentpm/s3cr3t?key=abc'), 'https://ops.example.com/…');
  assert.equal(maskWebhook('https://u:p@ops.example.com/x'), 'https://ops.example.com/…');
  assert.equal(maskWebhook('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080');
});

describe('maskCommand', () => {
  test('a bot token in a URL, a bearer header, an assignment and a secret flag', () => {
    assert.equal(
      maskCommand(`curl -fsS "https://api.telegram.org/bot${TELEGRAM}/sendMessage" -d chat_id=42`),
      'curl -fsS "https://api.telegram.org/bot****/sendMessage" -d chat_id=42',
    );
    assert.equal(maskCommand("curl -H 'Authorization: Bearer abc.def' https://x.example.com"), "curl -H 'Authorization: Bearer ****' https://x.example.com");
    assert.equal(maskCommand('curl -H "X-Api-Key: k123" -H "Content-Type: application/json" -d @- "$URL"'), 'curl -H "X-Api-Key: ****" -H "Content-Type: application/json" -d @- "$URL"');
    assert.equal(maskCommand('TOKEN=abc API_KEY="x y" LOG=1 ./notify.sh'), 'TOKEN=**** API_KEY=**** LOG=1 ./notify.sh');
    assert.equal(maskCommand('bot --token abc --password=hunter2 --verbose'), 'bot --token **** --password=**** --verbose');
    assert.equal(maskCommand('curl -u admin:hunter2 https://x.example.com'), 'curl -u admin:**** https://x.example.com');
    assert.equal(maskCommand(`deploy ${GH}`), 'deploy ****');
  });

  test('references to variables are not secrets and stay readable', () => {
    const command = 'curl -fsS "https://api.telegram.org/bot$TELEGRAM_BOT_TOKEN/sendMessage" -H "Authorization: Bearer $TOKEN" -d chat_id="$TELEGRAM_CHAT_ID"';
    assert.equal(maskCommand(command), command);
  });

  test('maskText can show only the hosts of URLs (alert labels)', () => {
    assert.equal(maskText('curl -d @- https://user:pw@api.telegram.org/bot123:ABC/sendMessage', { urls: 'host-only' }), 'curl -d @- https://api.telegram.org/…');
  });
});

test('maskArgs: a secret flag and its value across two arguments', () => {
  assert.deepEqual(maskArgs(['--token', 'abc', '--queue', 'high', '--api-key=k', '-u', 'me:pw', 'Authorization: Bearer z']), [
    '--token', '****', '--queue', 'high', '--api-key=****', '-u', 'me:****', 'Authorization: Bearer ****',
  ]);
});

describe('maskEnv', () => {
  test('secret names masked whole (with an empty value too), credentials inside other values, order kept', () => {
    const masked = maskEnv({ NODE_ENV: 'production', DB_PASS: 'p', GH_PAT: 'x', EMPTY_TOKEN: '', DATABASE_URL: 'postgres://u:p@ss@db/main', PATH: '/usr/bin' });
    assert.deepEqual(masked, { NODE_ENV: 'production', DB_PASS: '****', GH_PAT: '****', EMPTY_TOKEN: '****', DATABASE_URL: 'postgres://u:****@db/main', PATH: '/usr/bin' });
    assert.deepEqual(Object.keys(masked), ['NODE_ENV', 'DB_PASS', 'GH_PAT', 'EMPTY_TOKEN', 'DATABASE_URL', 'PATH']);
  });

  test('returns a copy and does not touch the input', () => {
    const env = { SECRET: 'x' };
    assert.notEqual(maskEnv(env), env);
    assert.deepEqual(env, { SECRET: 'x' });
  });
});

test('maskDefinition: every field that can carry a credential', () => {
  const definition: AppDefinition = {
    name: 'bot', script: '/srv/bot.js', args: ['--token', 'abc'], cwd: '/srv', interpreter: null, interpreterArgs: ['--secret=s'],
    env: { PASSPHRASE: 'x', MODE: 'a' }, stopSignal: 'SIGTERM', killTimeoutMs: DEFAULTS.killTimeout, autorestart: true,
    restartDelayMs: 1, maxRestartDelayMs: 1, minUptimeMs: 1, readyAfterMs: 1, maxRestarts: null, restartWindowMs: 1, maxMemoryBytes: null, maxChildren: null,
    hardMemoryBytes: null, maxTasks: null, maxCpuPercent: null,
    memoryMetric: 'rss', memoryBreachTicks: 1, childrenBreachTicks: 1, onLimit: 'restart', reap: true, watch: null, ignoreWatch: [], watchDelayMs: 1,
    notify: [{ command: `curl https://api.telegram.org/bot${TELEGRAM}/sendMessage`, webhook: 'https://ops.example.com/hooks/t0k3n?key=k', events: null, timeoutMs: 1 }],
    health: { http: 'http://admin:hunter2@127.0.0.1:3000/health', command: 'check --password pw-h3alth', intervalMs: 1, timeoutMs: 1, retries: 1, startPeriodMs: 1 },
    hangTimeoutMs: null, priority: 0, guardAction: 'restart', oomScoreAdj: null, dependsOn: [], cronRestart: null, logs: { maxSizeBytes: 1024, keep: 1, compress: false },
  };
  const shown = JSON.stringify(maskDefinition(definition));
  for (const secret of ['abc', '=s"', 'hunter2', TELEGRAM, 't0k3n', 'key=k', '"x"', 'pw-h3alth']) assert.ok(!shown.includes(secret), `${secret} leaked: ${shown}`);
  assert.match(shown, /"MODE":"a"/);
  assert.match(shown, /https:\/\/ops\.example\.com\/…/);
  assert.equal(definition.env['PASSPHRASE'], 'x', 'the input is not touched');
});

test('maskData: every string of event data, at any depth', () => {
  assert.deepEqual(maskData({ message: 'fetch https://u:pw@h.example.com/x failed', nested: [{ hook: 'command TOKEN=abc ./x' }], count: 3, token: 'zz' }), {
    message: 'fetch https://u:****@h.example.com/x failed',
    nested: [{ hook: 'command TOKEN=**** ./x' }],
    count: 3,
    token: '****',
  });
});
