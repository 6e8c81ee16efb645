/**
 * `agentpm export kubernetes`, through the real CLI: every manifest validated against the Kubernetes API
 * schemas (kubernetes-models 4, which runs on Node 20), read back as kubectl would (YAML 1.1, `$$`
 * unescaped), with the kernel caps of kernelLimitsFor and no secret value outside the 0600 Secret file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { Secret, type ISecret } from 'kubernetes-models/v1/Secret';
import { kernelLimitsFor } from '../src/cgroup/limits.js';
import { resolveApps } from '../src/config/resolve.js';
import { kubernetesName, memoryQuantity } from '../src/export/kubernetes.js';
import { Rig } from './helpers/rig.js';

const SECRETS = { BOT_TOKEN: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw', DATABASE_URL: 'postgres://app:s3cr$(t)@db:5432/main', API_KEY: 'yes' };
const PLAIN = { LOG_LEVEL: 'debug', PRICE: '$5 and $(HOME) and $$', FLAG: 'on', OCTAL: '010' };
const ARGS = ['a b', '$HOME', '$(HOME)', '$$(HOME)', 'yes', 'no', '~', '1e3', '0x1F', 'null', ''];

function fixture(): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-k8s-'));
  writeFileSync(join(dir, 'bot.js'), 'setInterval(() => {}, 1000);\n');
  writeFileSync(join(dir, 'agent.ts'), 'setInterval(() => {}, 1000);\n');
  writeFileSync(join(dir, 'worker.py'), 'import time\ntime.sleep(100)\n');
  const apps = [
    {
      name: 'Bot_1',
      script: 'bot.js',
      args: ARGS,
      env: { ...PLAIN, ...SECRETS },
      maxMemory: '1G',
      maxChildren: 50,
      maxCpu: '150%',
      killTimeout: '30s',
      stopSignal: 'SIGINT',
      health: { http: 'http://127.0.0.1:3000/health?deep=1', interval: '10s', timeout: '2500ms', retries: 4, startPeriod: '1m' },
      hangTimeout: '10m',
    },
    { name: 'agent', script: 'agent.ts', maxMemory: '300M', hardMemory: false, health: { command: 'test -f /tmp/ok' }, autorestart: false },
    { name: 'worker', script: 'worker.py', hardMemory: '512M', interpreterArgs: ['-u'], health: { http: 'https://api.example.com:8443/ping' } },
    { name: 'sleeper', script: 'sleep', args: ['1000'], killTimeout: '1500ms', health: { command: 'curl -H "Authorization: Bearer abcdefghijklmnop" localhost' } },
  ];
  const config = join(dir, 'agents.config.json');
  writeFileSync(config, JSON.stringify({ apps }, null, 2));
  return { dir, config };
}

/** Kubernetes' expansion of command, args and env values with no variable defined: `$$` is `$`, `$(X)` stays. */
function expand(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '$' && text[i + 1] === '$') {
      out += '$';
      i += 1;
    } else out += text[i];
  }
  return out;
}

type Manifest = IDeployment | ISecret;

/** Every document of a stream, parsed as kubectl parses it (YAML 1.1), each validated against its schema. */
function manifests(text: string): Manifest[] {
  const documents = parseAllDocuments(text, { version: '1.1' });
  if (!Array.isArray(documents)) throw new Error('not a YAML stream');
  return documents.map((document) => {
    assert.deepEqual(document.errors, [], 'the YAML parses');
    const value = document.toJS() as Manifest;
    if (value.kind === 'Deployment') new Deployment(value as IDeployment).validate();
    else if (value.kind === 'Secret') new Secret(value as ISecret).validate();
    else assert.fail(`unexpected kind ${String((value as { kind?: unknown }).kind)}`);
    return value;
  });
}

function bytes(quantity: string | number | undefined): number | null {
  if (quantity === undefined) return null;
  const match = /^(\d+)(Mi|Ki)?$/.exec(String(quantity));
  assert.ok(match, `a quantity: ${quantity}`);
  return Number(match[1]) * (match[2] === 'Mi' ? 1024 * 1024 : match[2] === 'Ki' ? 1024 : 1);
}

test('every manifest validates against the Kubernetes schemas and carries the app as agentpm runs it', async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'k8s');
  const result = await rig.cli(['export', 'kubernetes', config, '--image', 'ghcr.io/me/agents:1.2', '--out', out]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['agent.yaml', 'bot-1-secret.yaml', 'bot-1.yaml', 'sleeper.yaml', 'worker.yaml']);
  const apps = resolveApps(JSON.parse(readFileSync(config, 'utf8')), { source: config, baseDir: dir });
  for (const app of apps) {
    const name = kubernetesName(app.name);
    const [deployment, ...more] = manifests(readFileSync(join(out, `${name}.yaml`), 'utf8')) as IDeployment[];
    assert.equal(more.length, 0);
    assert.ok(deployment);
    assert.equal(deployment.metadata?.name, name);
    assert.equal(deployment.spec?.replicas, 1);
    assert.equal(deployment.spec?.strategy?.type, 'Recreate');
    const pod = deployment.spec?.template.spec;
    assert.equal(pod?.terminationGracePeriodSeconds, Math.ceil(app.killTimeoutMs / 1000), `${app.name}: the grace is killTimeout, rounded up`);
    const container = pod?.containers[0];
    assert.ok(container);
    assert.equal(container.image, 'ghcr.io/me/agents:1.2');
    assert.equal(container.workingDir, app.cwd);
    const limits = kernelLimitsFor(app, null);
    assert.equal(bytes(container.resources?.limits?.['memory'] as string | undefined), limits.memoryMaxBytes, `${app.name}: limits.memory is kernelLimitsFor's figure`);
    assert.equal(bytes(container.resources?.requests?.['memory'] as string | undefined), app.maxMemoryBytes, `${app.name}: requests.memory is maxMemory`);
    assert.equal(container.resources?.limits?.['cpu'], limits.cpu === null ? undefined : `${(limits.cpu.quotaUs / limits.cpu.periodUs) * 1000}m`);
  }

  const [bot] = manifests(readFileSync(join(out, 'bot-1.yaml'), 'utf8')) as IDeployment[];
  const container = bot?.spec?.template.spec?.containers[0];
  assert.ok(container);
  assert.deepEqual([...(container.command ?? []), ...(container.args ?? [])].map(expand), ['node', join(dir, 'bot.js'), ...ARGS], 'argv as the container runs it');
  const env = Object.fromEntries((container.env ?? []).map((item) => [item.name, item.value === undefined ? item.valueFrom : expand(item.value)]));
  assert.deepEqual(Object.keys(env), Object.keys({ ...PLAIN, ...SECRETS }), 'every variable, in order');
  for (const [key, value] of Object.entries(PLAIN)) assert.equal(env[key], value, key);
  for (const key of Object.keys(SECRETS)) assert.deepEqual(env[key], { secretKeyRef: { name: 'bot-1-env', key } }, `${key} from the Secret`);
  assert.deepEqual(container.livenessProbe, {
    httpGet: { path: '/health?deep=1', port: 3000, scheme: 'HTTP' },
    periodSeconds: 10,
    timeoutSeconds: 3,
    failureThreshold: 4,
    initialDelaySeconds: 60,
  });
  const [agent] = manifests(readFileSync(join(out, 'agent.yaml'), 'utf8')) as IDeployment[];
  const agentContainer = agent?.spec?.template.spec?.containers[0];
  assert.deepEqual(agentContainer?.command, ['node']);
  assert.deepEqual(agentContainer?.args, ['--import', 'tsx', join(dir, 'agent.ts')], "tsx from the app's own node_modules, not agentpm's");
  assert.deepEqual(agentContainer?.livenessProbe?.exec?.command, ['sh', '-c', 'test -f /tmp/ok']);
  assert.deepEqual(agentContainer?.resources, { requests: { memory: '300Mi' } }, 'hardMemory false: no limit');
  const [worker] = manifests(readFileSync(join(out, 'worker.yaml'), 'utf8')) as IDeployment[];
  const workerContainer = worker?.spec?.template.spec?.containers[0];
  assert.deepEqual([...(workerContainer?.command ?? []), ...(workerContainer?.args ?? [])], ['python3', '-u', join(dir, 'worker.py')]);
  assert.deepEqual(workerContainer?.livenessProbe?.httpGet, { host: 'api.example.com', path: '/ping', port: 8443, scheme: 'HTTPS' });
  const sleeper = readFileSync(join(out, 'sleeper.yaml'), 'utf8');
  assert.equal((manifests(sleeper)[0] as IDeployment).spec?.template.spec?.containers[0]?.livenessProbe, undefined, 'a health command with a credential is not inlined');
  assert.match(sleeper, /# No liveness probe: the health command holds a credential/);
  assert.ok(!sleeper.includes('abcdefghijklmnop'));

  // The honest comments, where a guarantee does not carry over.
  const botText = readFileSync(join(out, 'bot-1.yaml'), 'utf8');
  for (const pattern of [/maxChildren 50: .*pids limit only per node/, /CrashLoopBackOff/, /signals the container's PID 1 only/, /STOPSIGNAL SIGINT/, /hangTimeout 10m/, /must listen on 0\.0\.0\.0/]) {
    assert.match(botText, pattern);
  }
  assert.match(readFileSync(join(out, 'agent.yaml'), 'utf8'), /autorestart: false: a Deployment always restarts its pod; run an app that should end as a Job/);
});

test('secret-looking values: only in the 0600 Secret file, never in a Deployment nor on stdout', async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'k8s');
  const written = await rig.cli(['export', 'kubernetes', config, '--image', 'img', '--out', out]);
  assert.equal(written.code, 0, written.stderr);
  const secretFile = join(out, 'bot-1-secret.yaml');
  assert.equal(statSync(secretFile).mode & 0o777, 0o600);
  assert.equal(statSync(join(out, 'bot-1.yaml')).mode & 0o777, 0o644);
  const [secret] = manifests(readFileSync(secretFile, 'utf8')) as ISecret[];
  assert.equal(secret?.metadata?.name, 'bot-1-env');
  assert.deepEqual(secret?.stringData, SECRETS, 'the values, exactly (no $ escaping: Secrets are not expanded)');
  const printed = await rig.cli(['export', 'kubernetes', config, '--image', 'img']);
  assert.equal(printed.code, 0, printed.stderr);
  assert.match(printed.stdout, /^# bot-1-secret\.yaml is not printed: it holds the secret-looking BOT_TOKEN, DATABASE_URL, API_KEY/m);
  assert.match(printed.stderr, /bot-1-secret\.yaml not printed \(secret values\); use --out DIR/);
  const kinds = manifests(printed.stdout).map((item) => `${item.kind}/${item.metadata?.name ?? ''}`);
  assert.deepEqual(kinds, ['Deployment/bot-1', 'Deployment/agent', 'Deployment/worker', 'Deployment/sleeper'], 'the stream has the Deployments and no Secret without values');
  const everything = [printed.stdout, printed.stderr, written.stdout, ...['bot-1.yaml', 'agent.yaml', 'worker.yaml', 'sleeper.yaml'].map((file) => readFileSync(join(out, file), 'utf8'))].join('\n');
  for (const [name, value] of Object.entries(SECRETS)) {
    if (value.length >= 6) assert.ok(!everything.includes(value) && !everything.includes(value.replaceAll('$', '$$')), `${name}'s value appears nowhere but the Secret`);
  }
});

test('names and input Kubernetes cannot take are refused, naming the fix', async (t) => {
  const rig = await Rig.create();
  const { dir, config } = fixture();
  t.after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const clash = join(dir, 'clash.config.json');
  writeFileSync(clash, JSON.stringify({ apps: [{ name: 'my_bot', script: 'sleep' }, { name: 'My.Bot', script: 'sleep' }] }));
  const cases: Array<[string[], RegExp]> = [
    [['export', 'kubernetes', config], /required option '--image <image>' not specified/],
    [['export', 'kubernetes', config, '--image', 'a b'], /--image expects an image reference/],
    [['export', 'kubernetes', clash, '--image', 'img'], /apps my_bot and My\.Bot both become 'my-bot' in Kubernetes/],
  ];
  for (const [args, message] of cases) {
    const result = await rig.cli(args);
    assert.equal(result.code, 1, args.join(' '));
    assert.match(result.stderr, message);
  }
  assert.equal(kubernetesName('Bot_1.x'), 'bot-1-x');
  assert.equal(memoryQuantity(1024 * 1024 * 300), '300Mi');
  assert.equal(memoryQuantity(1_000_000_001), '1000000001');
});
