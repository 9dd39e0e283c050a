import type { Command } from 'commander';
import type { TagResult } from '../../../shared/types';
import { emit, withService } from '../run';

export function register(program: Command): void {
  program
    .command('tag')
    .description('point a tag at a version (set or move it), or delete a tag')
    .argument('<selector>', 'MODEL@VERSION to tag (with --delete: MODEL)')
    .argument('<name>', 'tag name, e.g. prod or candidate (then MODEL@NAME selects the version)')
    .option('--delete', 'delete the tag NAME of MODEL')
    .option('--json', 'print one JSON object')
    .action(
      async (
        selector: string,
        name: string,
        opts: { delete?: boolean; json?: boolean },
        command: Command,
      ) => {
        await withService(command, async (service) => {
          if (!opts.delete && !selector.includes('@'))
            throw new Error(
              `tag which version of ${selector}? give MODEL@VERSION, e.g. ${selector}@latest or ${selector}@v3`,
            );
          const result = opts.delete
            ? await service.untag(selector, name)
            : await service.tag(selector, name);
          emit(opts.json, result, () => describe(result));
        });
      },
    );
  program
    .command('tags')
    .description("a model's tags and the versions they point at")
    .argument('<model>', 'model name')
    .option('--history', 'every move of every tag, oldest first (who, when, from, to)')
    .option('--json', 'print one JSON array')
    .action(
      async (model: string, opts: { history?: boolean; json?: boolean }, command: Command) => {
        await withService(command, async (service) => {
          const { formatUtc, table } = await import('../format');
          if (opts.history) {
            const moves = await service.tagHistory(model);
            const at = (v: { version: string | null; id: string } | null) =>
              v ? `${v.version ?? 'gone'} (${v.id.slice(0, 12)})` : '-';
            return emit(opts.json, moves, () =>
              moves.length === 0
                ? `${model} has no tags (tv tag ${model}@vN NAME sets one)`
                : table(
                    ['when', 'tag', 'from', 'to', 'by'],
                    moves.map((m) => [
                      formatUtc(m.at),
                      m.name,
                      at(m.from),
                      m.to ? at(m.to) : 'deleted',
                      m.by ?? '?',
                    ]),
                  ),
            );
          }
          const tags = await service.tags(model);
          emit(opts.json, tags, () =>
            tags.length === 0
              ? `${model} has no tags (tv tag ${model}@vN NAME sets one)`
              : table(
                  ['tag', 'version', 'id', 'set', 'by'],
                  tags.map((t) => [
                    t.name,
                    t.removed ? `${t.version ?? '?'} (removed)` : (t.version ?? '?'),
                    t.shortId,
                    formatUtc(t.at),
                    t.by ?? '?',
                  ]),
                ),
          );
        });
      },
    );
}

function describe(r: TagResult): string {
  const was = r.previous ? `${r.previous.version ?? r.previous.id.slice(0, 12)}` : '';
  if (r.version === null) return `${r.model}: deleted tag ${r.name} (it pointed at ${was})`;
  if (!r.changed) return `${r.model}: ${r.name} already points at ${r.version} (${r.shortId})`;
  return r.previous
    ? `${r.model}: moved ${r.name} from ${was} to ${r.version} (${r.shortId})`
    : `${r.model}: ${r.name} -> ${r.version} (${r.shortId})`;
}
