import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseRedisSetting } from './storage/redis-url';

/** Where the engine keeps its data and which services it uses. */
export interface EngineConfig {
  /** A path, file:// URL or s3://bucket/prefix. */
  repository: string;
  /** redis://...; undefined means no cache. */
  redisUrl: string | undefined;
  /**
   * The per-user cache folder: reports and diffs of versions (immutable) are kept there. Absent
   * means none is kept (the engine in tests and the benchmark, unless given one).
   */
  cacheDir?: string | undefined;
}

/** The per-user data folder, the ecosystem's way on each platform. */
export function userDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform = process.platform,
): string {
  if (platform === 'win32')
    return join(env['APPDATA'] ?? join(homedir(), 'AppData', 'Roaming'), 'TensorVault');
  if (platform === 'darwin')
    return join(homedir(), 'Library', 'Application Support', 'TensorVault');
  return join(env['XDG_DATA_HOME'] || join(homedir(), '.local', 'share'), 'tensorvault');
}

/**
 * The per-user cache folder, the ecosystem's way on each platform (XDG_CACHE_HOME on Linux,
 * ~/Library/Caches, %LOCALAPPDATA%): what only saves time and can be computed or fetched again (the
 * local copy of a remote repository's index objects, reports and diffs, the files cache), never data.
 */
export function userCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  platform = process.platform,
): string {
  if (platform === 'win32')
    return join(env['LOCALAPPDATA'] ?? join(homedir(), 'AppData', 'Local'), 'TensorVault', 'Cache');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'TensorVault');
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'tensorvault');
}

/** The embedded default: a local repository in the user's data folder. */
export function defaultRepository(env: NodeJS.ProcessEnv = process.env): string {
  return join(userDataDir(env), 'repository');
}

/**
 * Flags first, then TV_REPO / TV_REDIS_URL, then the embedded default (no Redis). A malformed
 * Redis URL is refused here, naming where it came from. Reports are kept in the user's cache folder.
 */
export function resolveConfig(
  flags: { repo?: string | undefined; redis?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): EngineConfig {
  const repository = flags.repo || env['TV_REPO'] || defaultRepository(env);
  const redisUrl = flags.redis || env['TV_REDIS_URL'] || undefined;
  if (redisUrl) parseRedisSetting(redisUrl, flags.redis ? '--redis' : 'TV_REDIS_URL');
  return { repository, redisUrl, cacheDir: userCacheDir(env) };
}
