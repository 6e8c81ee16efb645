import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAlivePid, readProcess } from './helpers/procs.js';
import { FIXTURES, ROOT, Rig, waitFor } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');
const TREE = join(FIXTURES, 'tree.mjs');

test('ls --json is a stable contract', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', TREE, '--name', 'tree', '--env', 'CHILDREN=2']);
  const app = await waitFor(async () => {
    const summary = await rig.app('tree');
    return summary.processes === 3 ? summary : undefined;
  }, 'the tree');
  assert.deepEqual(Object.keys(app).sort(), ['children', 'containment', 'cpu', 'health', 'lastExit', 'limits', 'memory', 'name', 'nextStartAt', 'pid', 'processes', 'ready', 'restarts', 'status', 'uptimeMs', 'waitingFor'].sort());
  assert.ok(['cgroup2', 'hybrid', 'cgroup1', 'proc'].includes(app.containment), app.containment);
  assert.equal(app.status, 'online');
  assert.equal(typeof app.pid, 'number');
  assert.equal(app.restarts, 0);
  assert.ok(typeof app.uptimeMs === 'number' && app.uptimeMs >= 0);
  assert.ok(app.memory > 3 * 1024 * 1024, 'whole-tree RSS in bytes');
  assert.deepEqual(app.limits, { memory: null, children: null });
  assert.equal(app.lastExit, null);
  assert.equal(app.health, null, 'no health check, no health state');
  assert.equal(app.nextStartAt, null, 'not in backoff');
  assert.equal(app.waitingFor, null, 'not waiting for dependencies');
  assert.equal(typeof app.ready, 'boolean');
});

test('starting a running name is refused; --replace stops the old tree completely first', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', TREE, '--name', 'bot', '--env', 'CHILDREN=2']);
  const first = await waitFor(async () => {
    const app = await rig.app('bot');
    return app.processes === 3 ? rig.tagged().map((proc) => proc.pid) : undefined;
  }, 'the first tree');

  const refused = await rig.cli(['start', IDLE, '--name', 'bot']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /bot already running; use `agentpm restart bot`, or start with --replace/);
  assert.deepEqual(rig.tagged().map((proc) => proc.pid), first, 'the running tree is untouched');

  await rig.ok(['start', IDLE, '--name', 'bot', '--replace']);
  assert.deepEqual(first.filter(isAlivePid), [], 'nothing of the old tree survives');
  const tagged = rig.tagged();
  assert.equal(tagged.length, 1);
  assert.match(tagged[0]?.cmd ?? '', /idle\.mjs/);
});

test('a config with any error starts nothing and names the file, the app, the field and the fix', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const config = join(rig.home, 'ecosystem.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      apps: [
        { name: 'good', script: IDLE },
        { name: 'bad', script: IDLE, killTimout: '5s', maxMemory: 'lots' },
      ],
    }),
  );
  const result = await rig.cli(['start', config]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /2 problems in the configuration; nothing was started/);
  assert.match(result.stderr, new RegExp(`${config}: apps\\[1\\] \\("bad"\\): unknown field \`killTimout\`; did you mean \`killTimeout\`\\?`));
  assert.match(result.stderr, /field `maxMemory`: expected a size such as '512M', '1.5G' or a number of bytes, got 'lots'/);
  assert.deepEqual(await rig.ls(), [], 'not even the valid app was started');
  assert.deepEqual(rig.tagged(), []);

  const missing = await rig.cli(['start', join(rig.home, 'nope.js')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.js does not exist; check the path/);
});

test('the bundled example starts from its TypeScript config, with each interpreter by extension', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const out = await rig.ok(['start', join(ROOT, 'ecosystem.example.ts')]);
  assert.match(out, /agent\s+online/);
  assert.match(out, /flaky\s+online/);
  const agent = await waitFor(async () => {
    const detail = await rig.show('agent');
    return detail.tree.filter((proc) => proc.cmd.includes('mcp-server')).length === 3 ? detail : undefined;
  }, 'the agent and its 3 MCP servers');
  // .ts runs through tsx's loader inside node itself: no wrapper process above the agent.
  const root = agent.tree[0];
  assert.equal(root?.pid, agent.pid);
  assert.match(root?.cmd ?? '', /node --import \S+tsx\S+loader\.mjs \S+examples\/agent\.ts/);
  assert.equal(agent.definition.env['EXAMPLE_API_KEY'], '****', 'secret-looking values are masked');
  assert.equal(agent.definition.env['MCP_SERVERS'], '3');
  assert.equal(JSON.stringify(agent).includes('not-a-real-key'), false, 'the secret appears nowhere in show --json');

  const script = join(rig.home, 'hello.sh');
  writeFileSync(script, 'echo "from bash $BASH_VERSION"; exec sleep 600\n');
  const python = join(rig.home, 'hello.py');
  writeFileSync(python, 'import sys, time\nprint("from python", sys.version_info[0], flush=True)\ntime.sleep(600)\n');
  await rig.ok(['start', script, '--name', 'sh']);
  await rig.ok(['start', python, '--name', 'py']);
  const shOut = await waitFor(async () => ((await rig.ok(['logs', 'sh', '--out'])).includes('from bash') ? true : undefined), 'bash output');
  assert.ok(shOut);
  await waitFor(async () => ((await rig.ok(['logs', 'py'])).includes('from python 3') ? true : undefined), 'python output');
});

test("every process carries its tags; stdin is closed; output goes through the instance's FIFOs to stamped log files", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const script = join(rig.home, 'talker.mjs');
  writeFileSync(script, `console.log('out line 1'); console.error('err line 1'); console.log('out line 2'); setInterval(() => {}, 60000);`);
  await rig.ok(['start', script, '--name', 'talker', '--env', 'SERVICE_TOKEN=abc123']);
  const app = await waitFor(async () => {
    const summary = await rig.app('talker');
    return summary.pid ? summary : undefined;
  }, 'the app');
  const root = readProcess(app.pid as number);
  assert.equal(root?.env.get('AGENTPM_APP'), 'talker');
  assert.equal(root?.env.get('AGENTPM_HOME'), rig.home);
  assert.match(root?.env.get('AGENTPM_INSTANCE') ?? '', /^[0-9a-f]{12}$/);
  assert.equal(readlinkSync(`/proc/${app.pid}/fd/0`), '/dev/null');
  const instance = root?.env.get('AGENTPM_INSTANCE') ?? '';
  assert.equal(readlinkSync(`/proc/${app.pid}/fd/1`), join(rig.home, 'run', `talker.${instance}.out.fifo`));
  assert.equal(readlinkSync(`/proc/${app.pid}/fd/2`), join(rig.home, 'run', `talker.${instance}.err.fifo`));

  await waitFor(() => readFileSync(join(rig.home, 'logs', 'talker.out.log'), 'utf8').includes('out line 2'), 'the output');
  await waitFor(() => readFileSync(join(rig.home, 'logs', 'talker.err.log'), 'utf8').includes('err line 1'), 'the error output');
  assert.match(readFileSync(join(rig.home, 'logs', 'talker.out.log'), 'utf8'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z out line 1\n/);
  assert.equal(await rig.ok(['logs', 'talker', '--out', '--lines', '1']), 'out line 2\n');
  assert.equal(await rig.ok(['logs', 'talker', '--err']), 'err line 1\n');
  // Out and err interleave by arrival at the relay: within a stream in order, across the two as read.
  const merged = (await rig.ok(['logs', 'talker'])).split('\n').filter((line) => line !== '');
  assert.deepEqual([...merged].sort(), ['talker     | out line 1', 'talker     | out line 2', 'talker/err | err line 1']);
  assert.ok(merged.indexOf('talker     | out line 1') < merged.indexOf('talker     | out line 2'), merged.join('\n'));

  const shown = await rig.ok(['show', 'talker']);
  assert.match(shown, /SERVICE_TOKEN=\*\*\*\*/);
  assert.doesNotMatch(shown, /abc123/);
});

test('bad input on the command line fails with a message that names the fix', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const unknown = await rig.cli(['stop', 'ghost']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no app named ghost \(no apps registered; start one with `agentpm start <script>`\)/);
  const badSignal = await rig.cli(['signal', 'SIGNOPE', 'ghost']);
  assert.equal(badSignal.code, 1);
  assert.match(badSignal.stderr, /unknown signal SIGNOPE/);
  const badEnv = await rig.cli(['start', IDLE, '--env', 'NOVALUE']);
  assert.equal(badEnv.code, 1);
  assert.match(badEnv.stderr, /--env expects NAME=value, got 'NOVALUE'/);
  const badTimeout = await rig.cli(['start', IDLE, '--kill-timeout', 'soon']);
  assert.equal(badTimeout.code, 1);
  assert.match(badTimeout.stderr, /field `killTimeout`: expected a duration such as '500ms', '10s'/);
  assert.deepEqual(await rig.ls(), []);
});

test('logs --follow prints new lines as the app writes them, out and err told apart', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const script = join(rig.home, 'ticker.mjs');
  writeFileSync(script, "let i = 0; setInterval(() => { i += 1; console.log(`line ${i}`); if (i % 2 === 0) console.error(`err ${i}`); }, 100);");
  await rig.ok(['start', script, '--name', 'ticker']);
  const { spawn } = await import('node:child_process');
  const follower = spawn(process.execPath, [join(ROOT, 'bin', 'agentpm'), 'logs', 'ticker', '--follow', '--lines', '1'], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'] });
  rig.ownPids.add(follower.pid as number);
  let output = '';
  follower.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(() => /ticker +\| line (\d+)/.test(output) || undefined, 'the first lines');
  const first = Number(/ticker +\| line (\d+)/.exec(output)?.[1]);
  await waitFor(() => output.includes(`ticker     | line ${first + 5}`) || undefined, 'lines written after it started following');
  assert.match(output, /ticker\/err \| err \d+/);
  follower.kill('SIGTERM');
});

test("PM2 habits: status, list, describe and info mean ls and show; -i (cluster mode) is refused with the reason and the way", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'bot']);
  for (const verb of ['status', 'list']) {
    const rows = JSON.parse(await rig.ok([verb, '--json'])) as { name: string }[];
    assert.deepEqual(rows.map((row) => row.name), ['bot'], verb);
    assert.match(await rig.ok([verb]), /^bot\s+online/m, `${verb} as a table`);
  }
  for (const verb of ['describe', 'info']) assert.equal((JSON.parse(await rig.ok([verb, 'bot', '--json'])) as { name: string }).name, 'bot', verb);
  const cluster = await rig.cli(['start', IDLE, '--name', 'pool', '-i', '2']);
  assert.equal(cluster.code, 1);
  assert.match(cluster.stderr, /-i\/--instances \(PM2's cluster mode\) is not supported.*--name <name>-2, or list them in a config/s);
  assert.deepEqual((await rig.ls()).map((app) => app.name), ['bot'], 'nothing was started');
});

test('a command string starts as its program with its arguments, split as a shell splits them, named after the program', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // Named like a config file: as the last word of a command string, it is only an argument.
  const script = join(rig.home, 'serve.config.mjs');
  writeFileSync(script, 'console.log(JSON.stringify(process.argv.slice(2))); setInterval(() => {}, 1000);');
  const expected = ['--port', '8080', 'two words', 'a b', 'q"uote', "it's"];
  await rig.ok(['start', `node ${script} --port 8080 'two words' a\\ b "q\\"uote" "it's"`]);
  const app = await rig.show('node');
  assert.equal(app.definition.script, 'node', 'named after and running the first word');
  assert.deepEqual(app.definition.args, [script, ...expected]);
  const log = join(rig.home, 'logs', 'node.out.log');
  await waitFor(() => readFileSync(log, 'utf8').includes('8080') || undefined, 'the app printing its arguments');
  assert.ok(readFileSync(log, 'utf8').includes(JSON.stringify(expected)), 'the program got the words, unquoted');
  // --name wins; arguments after -- follow the string's; the old form is the same definition.
  await rig.ok(['start', `node ${script} --port 9090`, '--name', 'web', '--', 'extra']);
  assert.deepEqual((await rig.show('web')).definition.args, [script, '--port', '9090', 'extra']);
  await rig.ok(['start', 'node', '--name', 'old', '--', script, '--port', '9090', 'extra']);
  assert.deepEqual((await rig.show('old')).definition.args, (await rig.show('web')).definition.args);
  await rig.ok(['start', `node ${script}`, '--name', 'plain']);
  assert.deepEqual((await rig.show('plain')).definition.args, [script], 'a string ending in a config-like name is still a command');
});

test('a command string with shell syntax is refused before anything starts, with the bash -c form that runs it', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const cases: [string, RegExp][] = [
    ['npm run build && npm start', /uses shell syntax \(`&&`\).*agentpm start bash --name npm -- -c 'npm run build && npm start'/],
    ['node bot.js | tee out.log', /\(`\|`\).*-c 'node bot.js \| tee out.log'/],
    ['node bot.js > out.log', /\(`>`\)/],
    ['echo $HOME', /\(`\$HOME`\)/],
    ["PORT=8080 python -m bot", /\(`PORT=8080`\).*use --env: agentpm start 'python -m bot' --env PORT=8080/],
    ["python -m bot 'unclosed", /unterminated ' quote/],
  ];
  for (const [command, message] of cases) {
    const result = await rig.cli(['start', command]);
    assert.equal(result.code, 1, command);
    assert.match(result.stderr, message, command);
    assert.match(result.stderr, /nothing was started|close it/, command);
  }
  assert.equal(rig.daemonPid(), undefined, 'a refused command string starts no daemon');
  const prettylist = await rig.cli(['prettylist']);
  assert.equal(prettylist.code, 1);
  assert.match(prettylist.stderr, /prettylist is PM2's process list as JSON; agentpm's is `agentpm ls --json`/);
});
