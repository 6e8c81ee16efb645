/**
 * The programmatic API (`import { connect } from 'agentpm'`), through the package's own entry (dist),
 * against a real daemon under a temporary home: the README's chat-bot pattern, where each conversation's
 * agent is an app of its own and a replaced conversation's tree is deleted whole, and the same errors
 * and codes as the CLI.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { AgentpmError, connect, type AgentEvent } from 'agentpm';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const TREE = join(FIXTURES, 'tree.mjs');

test('a bot replaces a conversation: the old agent tree is gone, the new one runs, events arrive', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pm = await connect({ home: rig.home });
  t.after(() => pm.close());
  const events: AgentEvent[] = [];
  const unsubscribe = await pm.subscribe((event) => events.push(event));

  const agent = (conversation: string) => ({ name: `agent-${conversation}`, script: TREE, env: { CHILDREN: '3' }, maxMemory: '500M', autorestart: false });
  const started = await pm.start(agent('a'));
  assert.deepEqual(started.started, ['agent-a']);
  const oldTree = await waitFor(() => {
    const pids = rig.tagged().filter((proc) => proc.app === 'agent-a');
    return pids.length === 4 ? pids.map((proc) => proc.pid) : null;
  }, 'the first agent with its 3 children');

  // The conversation is replaced: the old agent is deleted (whole tree), the new one started.
  assert.deepEqual((await pm.delete('agent-a')).apps, ['agent-a']);
  await pm.start(agent('b'));
  assert.deepEqual(rig.tagged().filter((proc) => oldTree.includes(proc.pid)), [], 'nothing of the replaced agent survives its delete');
  assert.deepEqual((await pm.ls()).map((app) => app.name), ['agent-b']);
  assert.equal((await pm.show('agent-b')).definition.maxMemoryBytes, 500 * 2 ** 20);

  await waitFor(() => events.some((event) => event.app === 'agent-b' && event.type === 'state'), 'a state event of agent-b');
  unsubscribe();
});

test('the API fails with the CLI\'s codes: an invalid definition starts nothing, a duplicate is refused, an unknown app is named', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pm = await connect({ home: rig.home });
  t.after(() => pm.close());

  const invalid = await pm.start([{ name: 'fine', script: TREE }, { name: 'bad', script: TREE, maxMemory: 'lots' }]).catch((error: unknown) => error);
  assert.ok(invalid instanceof AgentpmError, String(invalid));
  assert.equal(invalid.code, 'invalid-config');
  assert.match(invalid.message, /maxMemory/);
  assert.deepEqual(await pm.ls(), [], 'nothing of an invalid batch started');

  await pm.start({ name: 'once', script: TREE, env: { CHILDREN: '0' } });
  const twice = await pm.start({ name: 'once', script: TREE }).catch((error: unknown) => error);
  assert.ok(twice instanceof AgentpmError, String(twice));
  const cli = await rig.cli(['start', TREE, '--name', 'once']);
  assert.notEqual(cli.code, 0);
  assert.ok(cli.stderr.includes(twice.message), `the CLI prints the same message: ${cli.stderr}`);

  const unknown = await pm.stop('nope').catch((error: unknown) => error);
  assert.ok(unknown instanceof AgentpmError);
  assert.equal(unknown.code, 'unknown-app');
  await assert.rejects(() => pm.stop([]), /no app named/);
});
