/**
 * A cache error in words a user can act on (the raw message stays beside it): what happened and
 * what to check. The engine's own sentences ("Redis at HOST:PORT refused the connection") and
 * the client's raw errors (ECONNREFUSED...) are both understood; on a Redis Cluster the words
 * speak of its masters, each of which can fail on its own.
 */
export function explainCacheError(
  error: string,
  redis: string | null,
  kind: 'standalone' | 'cluster' | null = null,
): string {
  const cluster = kind === 'cluster' || /^rediss?\+cluster:\/\//.test(redis ?? '');
  return (cluster ? explainCluster(error, redis) : undefined) ?? explainServer(error, redis);
}

function explainServer(error: string, redis: string | null): string {
  const where = redis ?? 'the Redis server';
  if (/ECONNREFUSED|refused the connection/.test(error))
    return `Nothing accepts connections at ${where}: check that redis-server is running there and that TV_REDIS_URL names its host and port.`;
  if (/ENOTFOUND|EAI_AGAIN|no such host/.test(error))
    return `The host of ${where} is not known: check the name in TV_REDIS_URL (or the network's DNS).`;
  if (/TLS certificate/.test(error))
    return `${where} presented a TLS certificate this computer does not trust or that does not fit: see the message below; a private CA goes in NODE_EXTRA_CA_CERTS.`;
  if (/timed? ?out|ETIMEDOUT|did not answer|did not accept/i.test(error))
    return `${where} did not answer in time: it may be overloaded or unreachable. Pushes go on without it, checking the storage backend instead.`;
  if (/NOAUTH|needs a password/.test(error))
    return `${where} needs a password: put it in TV_REDIS_URL (redis://:password@host:port) or in Settings.`;
  if (/WRONGPASS|invalid password|refused the password|AUTH/.test(error))
    return `${where} refused the password: put the right one in TV_REDIS_URL (redis://:password@host:port).`;
  if (/ECONNRESET|EPIPE|Connection is closed|closed|not connected/i.test(error))
    return `The connection to ${where} was closed: the server restarted or a network device dropped it. It reconnects by itself.`;
  if (/OOM|maxmemory/i.test(error))
    return `${where} is out of memory: raise its maxmemory or let it evict keys (allkeys-lru).`;
  if (/READONLY/.test(error))
    return `${where} is a read-only replica: point TV_REDIS_URL at the primary.`;
  if (/is not a Redis Cluster/.test(error))
    return `${where} is one Redis server, not a cluster: use redis://host:port.`;
  return `The cache at ${where} failed; pushes go on without it, checking the storage backend instead.`;
}

/** What is particular to a Redis Cluster; undefined when the error reads as for one server. */
function explainCluster(error: string, redis: string | null): string | undefined {
  const where = `the Redis Cluster at ${(redis ?? '').replace(/^rediss?\+cluster:\/\//, '') || 'TV_REDIS_URL'}`;
  /** The master a message names ("Redis at HOST:PORT ..."), when it names one. */
  const master = /Redis at ([^\s:,]+:\d+)(?=[\s:])/.exec(error)?.[1];
  if (/no node of the Redis Cluster .* answered over TLS/.test(error))
    return `No master of ${where} answered over TLS: check that the servers take TLS on those ports and that this computer trusts their certificate (a private CA goes in NODE_EXTRA_CA_CERTS).`;
  if (
    /no node of the Redis Cluster|None of startup nodes|Failed to refresh slots cache/.test(error)
  )
    return `No node of ${where} answered: check that the servers run and that TV_REDIS_URL lists their host:port. Pushes go on without the cache, checking the storage backend instead.`;
  if (/CLUSTERDOWN|cluster is down/.test(error))
    return `${capitalize(where)} says it is down (slots without a master): check its masters (redis-cli --cluster check). Pushes go on without the cache.`;
  if (/is not a Redis Cluster|cluster support disabled/.test(error))
    return `A server in ${where} is not in cluster mode: use redis://host:port for one server, or list the cluster's masters.`;
  if (
    master &&
    /refused the connection|ECONNREFUSED|did not answer|did not accept|timed? ?out|closed|not connected|ECONNRESET/i.test(
      error,
    )
  )
    return `Master ${master} of ${where} is not answering: the storage backend answers for its keys, the other masters keep serving theirs, and caching of its keys resumes by itself when it is back.`;
  if (/MOVED|ASK|TRYAGAIN/.test(error))
    return `${capitalize(where)} was moving slots between masters (a failover or a resharding); the cache follows by itself.`;
  return undefined;
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
