import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shellQuote, splitCommandLine } from '../src/config/command-line.js';

const words = (input: string): string[] => splitCommandLine(input).words;
const syntax = (input: string): string[] => splitCommandLine(input).shellSyntax.map((construct) => `${construct.kind}:${construct.text}`);

test('words split as a POSIX shell splits them: quotes, backslashes, empty words', () => {
  assert.deepEqual(words('  npm   run dev '), ['npm', 'run', 'dev']);
  assert.deepEqual(words(`python -m bot --msg 'hello world' --x "a b"`), ['python', '-m', 'bot', '--msg', 'hello world', '--x', 'a b']);
  assert.deepEqual(words(`a\\ b c\\\\d`), ['a b', 'c\\d']);
  assert.deepEqual(words(`"q\\"uote" 'no \\escape' "keep \\n"`), ['q"uote', 'no \\escape', 'keep \\n']);
  assert.deepEqual(words(`ab"c d"'e f'g`), ['abc de fg'], 'adjacent quoted parts make one word');
  assert.deepEqual(words(`x '' ""`), ['x', '', ''], 'quotes make an empty word');
  assert.deepEqual(words('a\\\nb'), ['ab'], 'a line continuation is nothing');
  assert.deepEqual(splitCommandLine(`x 'open`).unterminated, "'");
  assert.deepEqual(splitCommandLine(`x "open`).unterminated, '"');
});

test('what a shell would interpret is reported; quoted, the same characters are plain', () => {
  assert.deepEqual(syntax('a && b || c; d | e & f'), ['operator:&&', 'operator:||', 'operator:;', 'operator:|', 'operator:&']);
  assert.deepEqual(syntax('a > out 2>>err < in (x)'), ['operator:>', 'operator:>>', 'operator:<', 'operator:(', 'operator:)']);
  assert.deepEqual(syntax('echo $HOME ${X} $(id) `id` "$Q"'), ['expansion:$HOME', 'expansion:${X}', 'expansion:$(', 'operator:(', 'operator:)', 'expansion:`', 'expansion:`', 'expansion:$Q']);
  assert.deepEqual(syntax('ls *.js a?c [ab] ~/x a~b #c d#e'), ['glob:*', 'glob:?', 'glob:[', 'tilde:~', 'comment:#']);
  assert.deepEqual(syntax('A=1 B=2 cmd C=3'), ['assignment:A=1', 'assignment:B=2']);
  assert.deepEqual(syntax(`"A=1" cmd 'a && b' "x | y > z" \\$HOME '$HOME' "*" \\~`), []);
});

test('shellQuote gives one word back, whatever the text', () => {
  for (const text of ['plain', 'two words', "it's", `a'b"c$d\\e`, '', 'npm run build && npm start']) {
    assert.deepEqual(words(shellQuote(text)), [text], text);
  }
  assert.equal(shellQuote('run.sh'), 'run.sh');
});
