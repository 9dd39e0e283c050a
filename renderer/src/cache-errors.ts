/**
 * A cache error in words a user can act on (the raw message stays beside it): what happened and
 * what to check.
 */
export function explainCacheError(error: string, redis: string | null): string {
  const where = redis ?? 'the Redis server';
  if (/ECONNREFUSED/.test(error))
    return `Nothing accepts connections at ${where}: check that redis-server is running there and that TV_REDIS_URL names its host and port.`;
  if (/ENOTFOUND|EAI_AGAIN/.test(error))
    return `The host of ${where} is not known: check the name in TV_REDIS_URL (or the network's DNS).`;
  if (/timed? ?out|ETIMEDOUT/i.test(error))
    return `${where} did not answer in time: it may be overloaded or unreachable. Pushes go on without it, checking the storage backend instead.`;
  if (/NOAUTH|WRONGPASS|invalid password|AUTH/.test(error))
    return `${where} refused the password: put the right one in TV_REDIS_URL (redis://:password@host:port).`;
  if (/ECONNRESET|EPIPE|Connection is closed|closed/i.test(error))
    return `The connection to ${where} was closed: the server restarted or a network device dropped it. It reconnects by itself.`;
  if (/OOM|maxmemory/i.test(error))
    return `${where} is out of memory: raise its maxmemory or let it evict keys (allkeys-lru).`;
  if (/READONLY/.test(error))
    return `${where} is a read-only replica: point TV_REDIS_URL at the primary.`;
  return `The cache at ${where} failed; pushes go on without it, checking the storage backend instead.`;
}
