import type { Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  const cache = program.command('cache').description('the Redis existence cache');
  cache
    .command('status')
    .description(
      "PING Redis and show the cache's state, this repository's keys, Redis memory and the hit figures every client keeps in Redis (exits 1 when Redis is down)",
    )
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }, command: Command) => {
      await withService(command, async (service) => {
        const { formatCacheStatus } = await import('../cache-status');
        const status = await service.cacheStatus();
        emit(opts.json, status, () => formatCacheStatus(status));
        if (status.state === 'down') process.exitCode = 1;
      });
    });
}
