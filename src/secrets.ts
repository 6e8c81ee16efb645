/**
 * The one secret classifier. Everything agentpm shows (ls, show and their --json, monit, events, alert
 * labels, daemon.log) and everything it exports goes through it, so that a credential hidden in one
 * place is hidden in all of them.
 *
 * - A variable, flag, header or query parameter whose name contains a secret word (matched as whole
 *   `_`/`-`/camelCase-separated words, so PATH stays visible while GH_PAT does not) has its value masked.
 * - In URLs: the password of `user:password@` (up to the last `@` of the authority, so `u:p@ss@db`
 *   leaks nothing), a user that looks like a token, secret query parameters, and path segments that look
 *   like tokens (`/bot<id>:<token>`, long random segments). A webhook URL is a credential as a whole: only
 *   its scheme and host are shown.
 * - In commands: `NAME=value` assignments, `--token value` flags, `Authorization:` and other secret
 *   headers, `-u user:password`, and values shaped like well-known tokens (ghp_, xoxb-, sk-, JWTs...).
 *
 * Masking errs on the side of hiding: a false positive costs a little readability, a false negative a leak.
 */
import type { AppSpec, HealthCheck, NotifyHook } from './protocol.js';

export const MASK = '****';

/** Words that make a name secret wherever they appear in it. */
const SECRET_WORDS = new Set([
  'KEY', 'KEYS', 'APIKEY', 'TOKEN', 'TOKENS', 'SECRET', 'SECRETS', 'PASSWORD', 'PASSWORDS', 'PASSWD', 'PASS', 'PWD',
  'PASSPHRASE', 'PAT', 'COOKIE', 'COOKIES', 'CREDENTIAL', 'CREDENTIALS', 'CREDS', 'AUTH', 'AUTHORIZATION',
  'PRIVATE', 'DSN', 'SIG', 'SIGNATURE', 'BEARER', 'JWT', 'SALT', 'WEBHOOK', 'WEBHOOKS', 'OTP', 'SESSIONID',
]);
/** Endings that make a run-together word secret too: APIKEY, AUTHTOKEN, DBPASSWORD. */
const SECRET_ENDINGS = ['KEY', 'TOKEN', 'SECRET', 'PASSWORD', 'PASSWD', 'PASSPHRASE', 'CREDENTIALS'];
/** Names that contain a secret word but are well known not to be secret. */
const PUBLIC_NAMES = new Set(['PWD', 'OLDPWD']);

/** Whether a variable, flag, header or parameter name looks like it holds a credential. */
export function isSecretName(name: string): boolean {
  if (PUBLIC_NAMES.has(name.toUpperCase())) return false;
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .split(/[^A-Z0-9]+/)
    .filter(Boolean);
  return words.some((word) => SECRET_WORDS.has(word) || SECRET_ENDINGS.some((ending) => word.length > ending.length && word.endsWith(ending)));
}

/** A value that only refers to a variable (`$TOKEN`, `${TOKEN}`) is shown: it is not the secret. */
function isReference(value: string): boolean {
  return /^["']?\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)["']?$/.test(value);
}

function maskValue(value: string): string {
  return isReference(value) ? value : MASK;
}

/** Values shaped like well-known credentials, masked wherever they appear. */
const TOKEN_SHAPES = [
  /\b\d{5,}:[A-Za-z0-9_-]{30,}/g, // Telegram bot token
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g,
  /\bglpat-[A-Za-z0-9_-]{20,}/g, // GitLab
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, // Slack
  /\bsk-[A-Za-z0-9_-]{20,}/g, // OpenAI, Anthropic and others
  /\bAKIA[0-9A-Z]{16}\b/g, // AWS access key id
  /\bAIza[0-9A-Za-z_-]{35}/g, // Google API key
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, // JWT
];

/** A path segment that looks like a token: long, random-looking (letters and digits mixed). */
function looksLikeToken(segment: string): boolean {
  if (/^bot\d+:/.test(segment)) return true;
  return segment.length >= 20 && /^[A-Za-z0-9_.~=+%-]+$/.test(segment) && /[0-9]/.test(segment) && /[A-Za-z]/.test(segment);
}

interface UrlParts {
  scheme: string;
  userinfo: string | null;
  host: string;
  rest: string;
}

function splitUrl(url: string): UrlParts | null {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)(.*)$/s.exec(url);
  if (!match) return null;
  const scheme = match[1] as string;
  const after = match[2] as string;
  const end = after.search(/[/?#]/);
  let authority = end === -1 ? after : after.slice(0, end);
  let rest = end === -1 ? '' : after.slice(end);
  let at = authority.lastIndexOf('@');
  // A password holding a `/` or `?` cuts the authority short: `u:p/ss@db`. A port is digits, so text
  // after the colon that is not digits, and an `@` later on, mean the password runs up to that `@`.
  if (at === -1 && /:[^:\]]*[^0-9:\]][^:\]]*$/.test(authority) && rest.includes('@')) {
    const whole = authority + rest;
    at = whole.lastIndexOf('@');
    const hostEnd = whole.slice(at + 1).search(/[/?#]/);
    authority = hostEnd === -1 ? whole : whole.slice(0, at + 1 + hostEnd);
    rest = hostEnd === -1 ? '' : whole.slice(at + 1 + hostEnd);
  }
  return { scheme, userinfo: at === -1 ? null : authority.slice(0, at), host: at === -1 ? authority : authority.slice(at + 1), rest };
}

function maskUserinfo(userinfo: string | null): string {
  if (userinfo === null) return '';
  const colon = userinfo.indexOf(':');
  if (colon !== -1) return `${userinfo.slice(0, colon)}:${MASK}@`;
  // A user alone is often a token (https://<token>@github.com); a short plain name is not.
  return userinfo.length >= 16 || looksLikeToken(userinfo) ? `${MASK}@` : `${userinfo}@`;
}

/** The credentials of one URL masked: password, token-like user, secret query values, token-like path segments. */
export function maskUrl(url: string): string {
  const parts = splitUrl(url);
  if (!parts) return maskText(url);
  const hash = parts.rest.indexOf('#');
  const beforeHash = hash === -1 ? parts.rest : parts.rest.slice(0, hash);
  const fragment = hash === -1 ? '' : parts.rest.slice(hash);
  const question = beforeHash.indexOf('?');
  const path = question === -1 ? beforeHash : beforeHash.slice(0, question);
  const query = question === -1 ? '' : beforeHash.slice(question + 1);
  const maskedPath = path
    .split('/')
    .map((segment) => (/^bot\d+:/.test(segment) ? `bot${MASK}` : looksLikeToken(segment) ? MASK : segment))
    .join('/');
  const maskedQuery = query
    .split(/([&;])/)
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) return pair;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      return isSecretName(decodeSafely(name)) || looksLikeToken(value) ? `${name}=${maskValue(value)}` : pair;
    })
    .join('');
  return `${parts.scheme}${maskUserinfo(parts.userinfo)}${parts.host}${maskedPath}${question === -1 ? '' : `?${maskedQuery}`}${fragment}`;
}

function decodeSafely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * A webhook URL is a credential as a whole (whoever has it can post): only the scheme and host are
 * shown, with `/…` when there was more.
 */
export function maskWebhook(url: string): string {
  const parts = splitUrl(url);
  if (!parts) return MASK;
  return `${parts.scheme}${parts.host}${parts.rest === '' || parts.rest === '/' ? '' : '/…'}`;
}

const URL_IN_TEXT = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s'"<>`]+/g;
/** `NAME=value` (shell assignments, --flag=value, connection-string pairs): value up to a space, quote or separator. */
const ASSIGNMENT = /(^|[^A-Za-z0-9_.$])([A-Za-z_][A-Za-z0-9_.-]*)=("[^"]*"|'[^']*'|[^\s'";&|]+)/g;
/** `--token value`, `-password value`. */
const FLAG_WITH_VALUE = /(^|\s)(--?[A-Za-z][A-Za-z0-9_-]*)(\s+)("[^"]*"|'[^']*'|[^\s'"-][^\s'"]*)/g;
/** curl's `-u user:password` / `--user user:password`. */
const USER_FLAG = /(^|\s)(-u|--user|--proxy-user)(\s+|=)(["']?)([^\s:'"]*):([^\s'"]+)/g;
/**
 * `Authorization: Bearer x`, `X-Api-Key: x`, `Cookie: a=b` where a header stands (at the start, after a
 * quote or -H): the value runs to the closing quote or the line's end. Prose such as "credentials: ..." is not a header.
 */
const HEADER = /(^|['"]|(?:-H|--header)[ \t=]+)([A-Za-z][A-Za-z0-9-]*)(:[ \t]*)((?:Bearer|Basic|Token|Bot|Digest|OAuth)[ \t]+)?([^'"\n]+)/g;

/**
 * Credentials inside free text: a shell command (notify, health, an app's args, a process's command
 * line) or a message (an error, an event, a log line).
 */
export function maskText(text: string, options: { urls?: 'mask' | 'host-only' } = {}): string {
  const urls: string[] = [];
  // URLs first, set aside, so that the patterns below do not take them apart.
  let out = text.replace(URL_IN_TEXT, (url) => {
    urls.push(options.urls === 'host-only' ? maskWebhook(url) : maskUrl(url));
    return `\u0000${urls.length - 1}\u0000`;
  });
  for (const shape of TOKEN_SHAPES) out = out.replace(shape, MASK);
  out = out.replace(HEADER, (whole, lead: string, name: string, colon: string, scheme: string | undefined, value: string) =>
    isSecretName(name) && value.trim() !== '' ? `${lead}${name}${colon}${scheme ?? ''}${maskValue(value.trim())}` : whole,
  );
  out = out.replace(USER_FLAG, (_whole, lead: string, flag: string, gap: string, quote: string, user: string, password: string) =>
    `${lead}${flag}${gap}${quote}${user}:${isReference(password) ? password : MASK}`,
  );
  out = out.replace(ASSIGNMENT, (whole, lead: string, name: string, value: string) => (isSecretName(name) ? `${lead}${name}=${maskValue(value)}` : whole));
  out = out.replace(FLAG_WITH_VALUE, (whole, lead: string, flag: string, gap: string, value: string) =>
    isSecretName(flag.replace(/^-+/, '')) && !value.startsWith(MASK) ? `${lead}${flag}${gap}${maskValue(value)}` : whole,
  );
  return out.replace(/\u0000(\d+)\u0000/g, (_whole, index: string) => urls[Number(index)] ?? '');
}

/** A shell command as shown: see maskText. */
export function maskCommand(command: string): string {
  return maskText(command);
}

/** An argument list: `--token value` across two arguments, and credentials inside each one. */
export function maskArgs(args: string[]): string[] {
  return args.map((arg, index) => {
    const previous = args[index - 1];
    if (previous !== undefined && /^--?[A-Za-z]/.test(previous) && !previous.includes('=') && isSecretName(previous.replace(/^-+/, '')) && !arg.startsWith('-')) {
      return maskValue(arg);
    }
    if ((previous === '-u' || previous === '--user') && arg.includes(':')) return `${arg.slice(0, arg.indexOf(':'))}:${MASK}`;
    return maskText(arg);
  });
}

/**
 * Whether a variable is secret-looking as a whole: its name, or a credential inside its value (a
 * password in a DATABASE_URL). What `show` would mask, in whole or in part, an export moves out of the
 * unit or manifest into a file only its owner can read.
 */
export function isSecretVariable(name: string, value: string): boolean {
  return isSecretName(name) || maskText(value) !== value;
}

/** Variables as shown: secret names masked whole, credentials inside the other values masked. */
export function maskEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, isSecretName(key) ? MASK : maskText(value)]));
}

function maskHook(hook: NotifyHook): NotifyHook {
  return { ...hook, command: hook.command === null ? null : maskCommand(hook.command), webhook: hook.webhook === null ? null : maskWebhook(hook.webhook) };
}

function maskHealth(health: HealthCheck | null): HealthCheck | null {
  if (health === null) return null;
  return { ...health, http: health.http === null ? null : maskUrl(health.http), command: health.command === null ? null : maskCommand(health.command) };
}

/** Every field of a definition that can carry a credential: what `show`, monit and exports print. */
export function maskDefinition<T extends Omit<AppSpec, 'baseEnv'>>(definition: T): T {
  return {
    ...definition,
    script: maskText(definition.script),
    args: maskArgs(definition.args),
    interpreterArgs: maskArgs(definition.interpreterArgs),
    env: maskEnv(definition.env),
    notify: definition.notify.map(maskHook),
    health: maskHealth(definition.health),
  };
}

/** Event data: every string in it, at any depth (messages, hook labels, file names). */
export function maskData<T>(value: T): T {
  if (typeof value === 'string') return maskText(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => maskData(item)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, typeof item === 'string' && isSecretName(key) ? MASK : maskData(item)])) as T;
  }
  return value;
}
