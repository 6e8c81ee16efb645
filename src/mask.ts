/**
 * Values that look secret are masked in every output (ls, show, JSON, the TUI): whole values of
 * variables whose names look secret, and the password part of URLs such as postgres://user:pass@host.
 */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|CREDENTIAL|AUTH/i;
const URL_PASSWORD = /(\w+:\/\/[^:/@\s]+:)[^@\s]+@/g;

export function maskEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => [key, SECRET_NAME.test(key) ? '****' : value.replace(URL_PASSWORD, '$1****@')]),
  );
}
