import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentpmError } from '../src/errors.js';
import { commandPattern } from '../src/reap/pattern.js';

test('a command pattern matches like its regular expression', () => {
  const pattern = commandPattern('mcp-server|@modelcontextprotocol');
  assert.equal(pattern.test('node /opt/mcp-server-git/index.js'), true);
  assert.equal(pattern.test('bash'), false);
  assert.equal(pattern.source, 'mcp-server|@modelcontextprotocol');
});

test('a pattern that backtracks exponentially is cut off after its budget, with the reason', () => {
  const pattern = commandPattern('(a+)+$');
  const started = Date.now();
  assert.throws(
    () => pattern.test(`${'a'.repeat(40)}b`),
    (error: unknown) => error instanceof AgentpmError && error.code === 'invalid-argument' && /took more than 200 ms/.test(error.message),
  );
  assert.ok(Date.now() - started < 5000);
  assert.equal(commandPattern('(a+)+$').test('aaa'), true, 'the same pattern still works on text it handles at once');
});

test('testMany answers per text in one budget, and a catastrophic pattern over a batch is refused the same way', () => {
  const pattern = commandPattern('^err');
  assert.deepEqual(pattern.testMany(['error 1', 'fine', 'err 2']), [true, false, true]);
  assert.deepEqual(pattern.testMany([]), []);
  const started = Date.now();
  assert.throws(
    () => commandPattern('(a+)+$').testMany(['fine', `${'a'.repeat(40)}b`]),
    (error: unknown) => error instanceof AgentpmError && error.code === 'invalid-argument' && /took more than 200 ms on 2 command lines/.test(error.message),
  );
  assert.ok(Date.now() - started < 5000);
});
