import { Option, type Command } from 'commander';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a repository at --repo (or the default location)')
    .option(
      '--chunk-size <size>',
      'average chunk size, a power of two (min = size/4, max = size*4)',
      '64KiB',
    )
    .addOption(
      new Option('--hash <algorithm>', 'content hash')
        .choices(['sha256', 'blake3'])
        .default('sha256'),
    )
    .option(
      '--pack-size <size>',
      'bytes per pack, 64KiB to 1GiB (default: 16MiB on S3, 64MiB in a folder)',
    )
    .addOption(
      new Option(
        '--compression <scheme>',
        'compress chunks in packs where it pays: lz4 (byte-grouped floats, fast), zstd (smaller, slower), none',
      )
        .choices(['none', 'lz4', 'zstd'])
        .default('none'),
    )
    .option('--json', 'print one JSON object')
    .action(
      async (
        opts: {
          chunkSize: string;
          hash: 'sha256' | 'blake3';
          packSize?: string;
          compression: 'none' | 'lz4' | 'zstd';
          json?: boolean;
        },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          const { parseSize, profileForSize } = await import('../../engine/chunking/params');
          const { validatePackSize } = await import('../../engine/repository/format');
          const { formatBytes } = await import('../format');
          let chunking;
          try {
            chunking = profileForSize(opts.chunkSize);
          } catch (err) {
            throw new Error(`--chunk-size ${(err as Error).message}`, { cause: err });
          }
          let packSize: number | undefined;
          try {
            if (opts.packSize !== undefined) packSize = validatePackSize(parseSize(opts.packSize));
          } catch (err) {
            throw new Error(`--pack-size ${(err as Error).message}`, { cause: err });
          }
          const info = await service.init({
            hash: opts.hash,
            chunking,
            ...(packSize !== undefined ? { packSize } : {}),
            compression: opts.compression,
          });
          emit(opts.json, info, () => {
            const c = info.chunking;
            return `Created a repository at ${info.location}\n  id ${info.repositoryId}, hash ${info.hash}, chunks ${formatBytes(c.minSize)} / ${formatBytes(c.avgSize)} / ${formatBytes(c.maxSize)}${info.packSize ? `, packs of ${formatBytes(info.packSize)}` : ''}${info.compression !== 'none' ? `, compression ${info.compression}` : ''}`;
          });
        });
      },
    );
}
