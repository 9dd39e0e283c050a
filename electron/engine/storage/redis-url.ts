import { redactUrl } from '../log';
import { StoreError } from './store';

const EXPECTED_FORM = 'redis://[[user]:password@]host[:port][/db] or rediss:// for TLS';

/**
 * Reads a Redis URL, or says what is wrong with it: `source` names where it came from
 * ("TV_REDIS_URL", "--redis", "the Redis URL in Settings"). Never repeats a password.
 */
export function parseRedisUrl(url: string, source = 'the Redis setting'): URL {
  const refuse = () =>
    new StoreError(
      `${source} is not a Redis URL ("${redactUrl(url)}"): expected ${EXPECTED_FORM}`,
      'BAD_REDIS_URL',
    );
  if (!/^rediss?:\/\//.test(url)) throw refuse();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse();
  }
  if (!parsed.hostname || (parsed.pathname !== '' && !/^\/\d{0,2}$/.test(parsed.pathname)))
    throw refuse();
  return parsed;
}

/** host:port of a Redis URL, for messages (IPv6 hosts keep their brackets). */
export function redisAddress(url: URL): string {
  return `${url.hostname}:${url.port || '6379'}`;
}
