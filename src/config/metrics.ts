/**
 * Where the metrics endpoint listens, as a config's top-level `metrics` or `agentpm daemon start
 * --metrics` give it. One check for the CLI and the daemon: the endpoint has no authentication, so an
 * address other than loopback is refused unless the user says so (allowPublic).
 */
import { BlockList, isIP } from 'node:net';
import { AgentpmError } from '../errors.js';
import type { MetricsSettings } from '../protocol.js';

/** The port OpenTelemetry's Prometheus exporter uses by default: free on most hosts. */
export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_METRICS_LISTEN = `127.0.0.1:${DEFAULT_METRICS_PORT}`;
/** No address is longer; a longer string is refused before any parsing. */
const MAX_LISTEN_LENGTH = 100;

export type ParsedListen = { ok: true; host: string; port: number; listen: string } | { ok: false; message: string };

const EXAMPLE = `'127.0.0.1:${DEFAULT_METRICS_PORT}', '[::1]:${DEFAULT_METRICS_PORT}' or a port alone (served on 127.0.0.1)`;

/**
 * `HOST:PORT`, `[IPv6]:PORT` or `PORT`. The host is an IP literal or `localhost` (taken as 127.0.0.1):
 * whether a name is loopback depends on the resolver, and the check must not.
 */
export function parseListen(input: string): ParsedListen {
  const text = input.trim();
  if (text.length === 0 || text.length > MAX_LISTEN_LENGTH) return { ok: false, message: `expected ${EXAMPLE}, got '${input.slice(0, MAX_LISTEN_LENGTH)}'` };
  let host = '127.0.0.1';
  let portText = text;
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2] ?? '';
    if (isIP(host) !== 6) return { ok: false, message: `'${host}' in brackets must be an IPv6 address, as in '[::1]:${DEFAULT_METRICS_PORT}'` };
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return { ok: false, message: `an IPv6 address goes in brackets, as in '[${host}]:${portText}'` };
    if (host === 'localhost') host = '127.0.0.1';
    if (isIP(host) !== 4) return { ok: false, message: `the host must be an IP address (127.0.0.1, [::1], 0.0.0.0...) or localhost, got '${host}'` };
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return { ok: false, message: `the port must be a number from 1 to 65535, got '${portText}' (expected ${EXAMPLE})` };
  }
  const port = Number(portText);
  return { ok: true, host, port, listen: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** 127.0.0.0/8, ::1 (however written), and IPv4-mapped loopback. */
export function isLoopback(host: string): boolean {
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** What is wrong with a setting (from any source: a config, a flag, a request, the registry), or null. */
export function metricsProblem(settings: MetricsSettings): string | null {
  const parsed = parseListen(settings.listen);
  if (!parsed.ok) return `metrics.listen: ${parsed.message}`;
  if (!settings.allowPublic && !isLoopback(parsed.host)) {
    return (
      `metrics.listen: ${parsed.listen} is not a loopback address, and the endpoint has no authentication: anyone who reaches it ` +
      `reads your apps' names, states and figures. Serve it on 127.0.0.1 (let Prometheus scrape through a tunnel or a proxy with ` +
      `authentication), or set allowPublic: true (--metrics-allow-public) to serve it there anyway`
    );
  }
  return null;
}

/**
 * A config's top-level `metrics`: `{ listen?, allowPublic? }`, `true` (the default address), a listen
 * string, or `false`/`null` (off). Returns the setting, or undefined when there is a problem (reported).
 */
export function resolveMetrics(input: unknown, problem: (where: string, message: string) => void): MetricsSettings | null | undefined {
  if (input === false || input === null) return null;
  if (input === true) return { listen: DEFAULT_METRICS_LISTEN, allowPublic: false };
  let listen: unknown = DEFAULT_METRICS_LISTEN;
  let allowPublic: unknown = false;
  if (typeof input === 'string' || typeof input === 'number') listen = String(input);
  else if (typeof input === 'object' && !Array.isArray(input)) {
    const { listen: given, allowPublic: allow, ...rest } = input as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) {
      problem('metrics', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => `\`${key}\``).join(', ')}; expected { listen: '${DEFAULT_METRICS_LISTEN}', allowPublic?: boolean }`);
      return undefined;
    }
    if (given !== undefined) listen = given;
    if (allow !== undefined) allowPublic = allow;
  } else {
    problem('metrics', `expected { listen: '${DEFAULT_METRICS_LISTEN}' } (or false), got ${JSON.stringify(input) ?? String(input)}`);
    return undefined;
  }
  if (typeof listen !== 'string' && typeof listen !== 'number') {
    problem('metrics.listen', `expected ${EXAMPLE}, got ${JSON.stringify(listen)}`);
    return undefined;
  }
  if (typeof allowPublic !== 'boolean') {
    problem('metrics.allowPublic', `expected true or false, got ${JSON.stringify(allowPublic)}`);
    return undefined;
  }
  const parsed = parseListen(String(listen));
  if (!parsed.ok) {
    problem('metrics.listen', parsed.message);
    return undefined;
  }
  const settings = { listen: parsed.listen, allowPublic };
  const refused = metricsProblem(settings);
  if (refused) {
    problem('metrics.listen', refused.replace(/^metrics\.listen: /, ''));
    return undefined;
  }
  return settings;
}

/** `agentpm daemon start --metrics ADDRESS|off [--metrics-allow-public]`. */
export function metricsFlag(value: string, allowPublic: boolean): MetricsSettings | null {
  if (value === 'off') {
    if (allowPublic) throw new AgentpmError('invalid-argument', '--metrics-allow-public goes with --metrics HOST:PORT, not with off');
    return null;
  }
  const parsed = parseListen(value);
  if (!parsed.ok) throw new AgentpmError('invalid-argument', `--metrics: ${parsed.message}`);
  const settings = { listen: parsed.listen, allowPublic };
  const problem = metricsProblem(settings);
  if (problem) throw new AgentpmError('invalid-argument', `--metrics: ${problem.replace(/^metrics\.listen: /, '')}`);
  return settings;
}
