import { redactUrl } from '../log';
import { StoreError } from './store';

const EXPECTED_FORM =
  'redis://[[user]:password@]host[:port][/db] (rediss:// for TLS), or for a Redis Cluster redis+cluster://[[user]:password@]host:port,host:port (rediss+cluster:// for TLS) or a comma-separated list of redis:// URLs';

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** What a Redis setting names: one server, or the seed nodes of a Redis Cluster. */
export type RedisTarget =
  | { kind: 'standalone'; url: URL }
  | {
      kind: 'cluster';
      /** Nodes to learn the cluster's layout from (any reachable one will do). */
      nodes: RedisNodeAddress[];
      username: string;
      password: string;
      tls: boolean;
    };

/**
 * Reads a Redis setting, or says what is wrong with it: `source` names where it came from
 * ("TV_REDIS_URL", "--redis", "the Redis URL in Settings"). Never repeats a password.
 *
 * - `redis://...` or `rediss://...`: one server.
 * - `redis+cluster://[user:pass@]h1:p1,h2:p2` or `rediss+cluster://...`: a Redis Cluster.
 * - `redis://h1:p1,redis://h2:p2`: a Redis Cluster too (credentials and TLS alike in each).
 */
export function parseRedisSetting(text: string, source = 'the Redis setting'): RedisTarget {
  const refuse = (why = '') =>
    new StoreError(
      `${source} is not a Redis URL ("${redactRedisSetting(text)}")${why}: expected ${EXPECTED_FORM}`,
      'BAD_REDIS_URL',
    );
  const setting = text.trim();
  const cluster = /^(rediss?)\+cluster:\/\/(.*)$/i.exec(setting);
  if (cluster) return parseClusterForm(cluster[1]!.toLowerCase() === 'rediss', cluster[2]!, refuse);
  if (setting.includes(',')) return parseUrlList(setting.split(','), refuse);
  return { kind: 'standalone', url: parseOne(setting, refuse) };
}

/** host:port of a server, or of each seed node of a cluster, for messages. */
export function redisTargetAddress(target: RedisTarget): string {
  return target.kind === 'standalone'
    ? `${target.url.hostname}:${target.url.port || '6379'}`
    : target.nodes.map(nodeAddress).join(',');
}

export function nodeAddress(node: RedisNodeAddress): string {
  return `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`;
}

/**
 * The setting written back in its own form with other credentials: a password (and user name)
 * added for the engine, or both removed (`''`) for what is shown and saved beside a secret.
 */
export function withRedisCredentials(
  target: RedisTarget,
  credentials: { username?: string; password: string },
): string {
  if (target.kind === 'standalone') {
    const url = new URL(target.url.toString());
    url.username = credentials.username ?? url.username;
    url.password = credentials.password;
    if (!url.password) url.username = '';
    return url.toString().replace(/\/$/, '');
  }
  const user = credentials.username ?? target.username;
  const auth = credentials.password
    ? `${encodeURIComponent(user)}:${encodeURIComponent(credentials.password)}@`
    : '';
  return `${target.tls ? 'rediss' : 'redis'}+cluster://${auth}${target.nodes.map(nodeAddress).join(',')}`;
}

/** The password a setting carries ('' when none). */
export function redisPassword(target: RedisTarget): string {
  return target.kind === 'standalone' ? decodeURIComponent(target.url.password) : target.password;
}

/** A Redis setting with every user name and password replaced by ***. */
export function redactRedisSetting(text: string): string {
  if (!text.includes(',')) return redactUrl(text);
  return text.replace(/(\/\/|,)[^@/,]*@/g, '$1***@');
}

function parseOne(text: string, refuse: (why?: string) => StoreError): URL {
  if (!/^rediss?:\/\//i.test(text)) throw refuse();
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw refuse();
  }
  if (!parsed.hostname || (parsed.pathname !== '' && !/^\/\d{0,2}$/.test(parsed.pathname)))
    throw refuse();
  return parsed;
}

function parseClusterForm(
  tls: boolean,
  rest: string,
  refuse: (why?: string) => StoreError,
): RedisTarget {
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hosts = (at >= 0 ? rest.slice(at + 1) : rest).replace(/\/$/, '');
  const colon = auth.indexOf(':');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw refuse(': a user name or password is not URL-encoded');
    }
  };
  const nodes = hosts.split(',').map((h) => parseHostPort(h.trim(), refuse));
  return {
    kind: 'cluster',
    nodes,
    username: decode(colon >= 0 ? auth.slice(0, colon) : ''),
    password: decode(colon >= 0 ? auth.slice(colon + 1) : auth),
    tls,
  };
}

function parseUrlList(parts: string[], refuse: (why?: string) => StoreError): RedisTarget {
  const urls = parts.map((p) => parseOne(p.trim(), refuse));
  const first = urls[0]!;
  const same = (u: URL) =>
    u.protocol === first.protocol && u.username === first.username && u.password === first.password;
  if (!urls.every(same))
    throw refuse(': the nodes of one cluster take the same scheme and credentials');
  if (urls.some((u) => u.pathname.length > 1 && u.pathname !== '/0'))
    throw refuse(': a Redis Cluster has only database 0');
  return {
    kind: 'cluster',
    nodes: urls.map((u) => ({
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(u.port || 6379),
    })),
    username: decodeURIComponent(first.username),
    password: decodeURIComponent(first.password),
    tls: first.protocol === 'rediss:',
  };
}

function parseHostPort(text: string, refuse: (why?: string) => StoreError): RedisNodeAddress {
  const match = /^(?:\[([0-9a-f:.]+)\]|([\w.-]+))(?::(\d{1,5}))?$/i.exec(text);
  const port = Number(match?.[3] ?? 6379);
  if (!match || port < 1 || port > 65535) throw refuse(`: "${text}" is not host:port`);
  return { host: (match[1] ?? match[2])!, port };
}
