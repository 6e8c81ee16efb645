import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyExit, type ExitFacts } from '../src/daemon/forensics.js';

function facts(overrides: Partial<ExitFacts>): ExitFacts {
  return { code: null, signal: null, stopReason: null, oomKillRose: false, statusKnown: true, ...overrides };
}

describe('classifyExit', () => {
  test('exit code 0 is exited', () => {
    assert.deepEqual(classifyExit(facts({ code: 0 })), { reason: 'exited', signal: null });
  });

  test('a non-zero exit code is crashed', () => {
    assert.deepEqual(classifyExit(facts({ code: 1 })), { reason: 'crashed', signal: null });
    assert.deepEqual(classifyExit(facts({ code: 127 })), { reason: 'crashed', signal: null });
  });

  test('death by SIGTERM is killed-by-signal', () => {
    assert.deepEqual(classifyExit(facts({ signal: 'SIGTERM' })), { reason: 'killed-by-signal', signal: 'SIGTERM' });
  });

  test('exit code 143 (a shell reporting SIGTERM) is killed-by-signal with signal SIGTERM', () => {
    assert.deepEqual(classifyExit(facts({ code: 143 })), { reason: 'killed-by-signal', signal: 'SIGTERM' });
  });

  test('other 128 + N codes of the common signals are read as those signals', () => {
    assert.deepEqual(classifyExit(facts({ code: 129 })), { reason: 'killed-by-signal', signal: 'SIGHUP' });
    assert.deepEqual(classifyExit(facts({ code: 130 })), { reason: 'killed-by-signal', signal: 'SIGINT' });
    assert.deepEqual(classifyExit(facts({ code: 137 })), { reason: 'killed-by-signal', signal: 'SIGKILL' });
  });

  test('SIGKILL while the kernel oom_kill counter rose is oom-killed', () => {
    assert.deepEqual(classifyExit(facts({ signal: 'SIGKILL', oomKillRose: true })), { reason: 'oom-killed', signal: 'SIGKILL' });
    assert.deepEqual(classifyExit(facts({ code: 137, oomKillRose: true })), { reason: 'oom-killed', signal: 'SIGKILL' });
  });

  test('SIGKILL without an OOM kill is not oom-killed, and a rise alone does not make other exits oom-killed', () => {
    assert.deepEqual(classifyExit(facts({ signal: 'SIGKILL' })), { reason: 'killed-by-signal', signal: 'SIGKILL' });
    assert.deepEqual(classifyExit(facts({ signal: 'SIGTERM', oomKillRose: true })), { reason: 'killed-by-signal', signal: 'SIGTERM' });
    assert.deepEqual(classifyExit(facts({ code: 0, oomKillRose: true })), { reason: 'exited', signal: null });
    assert.deepEqual(classifyExit(facts({ code: 1, oomKillRose: true })), { reason: 'crashed', signal: null });
  });

  test('a stop by agentpm wins over whatever the exit looked like, keeping the signal', () => {
    assert.deepEqual(classifyExit(facts({ stopReason: 'stopped', signal: 'SIGTERM' })), { reason: 'stopped', signal: 'SIGTERM' });
    assert.deepEqual(classifyExit(facts({ stopReason: 'stopped', code: 1 })), { reason: 'stopped', signal: null });
    assert.deepEqual(classifyExit(facts({ stopReason: 'memory-limit', signal: 'SIGKILL', oomKillRose: true })), { reason: 'memory-limit', signal: 'SIGKILL' });
    assert.deepEqual(classifyExit(facts({ stopReason: 'children-limit', statusKnown: false })), { reason: 'children-limit', signal: null });
  });

  test('an unknown exit status is vanished, whatever else is known', () => {
    assert.deepEqual(classifyExit(facts({ statusKnown: false })), { reason: 'vanished', signal: null });
    assert.deepEqual(classifyExit(facts({ statusKnown: false, code: 137, signal: 'SIGKILL', oomKillRose: true })), { reason: 'vanished', signal: null });
  });
});
