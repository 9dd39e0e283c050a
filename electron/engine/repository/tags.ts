import { randomBytes } from 'node:crypto';
import * as z from 'zod/mini';
import { readAll, type Store } from '../storage/store';
import { tagNameProblem } from '../../../shared/names';
import { FormatError, validateModelName } from './format';

/**
 * Tags (docs/format.md): names for versions ("prod", "candidate"). A tag is never overwritten:
 * each set, move or delete is a new record under `tags/<model>/<tag>/`, and the newest record
 * (by its time, then its writer's nonce) is the tag's target. Two workstations moving one tag at
 * once both write a record; both land, and every client sees the same newest one.
 *
 * Key: `tags/<model>/<tag>/<13-digit ms time>-<8 hex nonce>-<version id | "deleted">`, so a
 * listing alone says where every tag points. Body (JSON): who moved it, when, and from where.
 */
export const TAGS_PREFIX = 'tags/';
const DELETED = 'deleted';

/**
 * A tag's name: a model name's rules, minus names a selector reads otherwise (`latest`, `vN`)
 * and hex that would read as a version id prefix (shared/names.ts).
 */
export function validateTagName(name: string): string {
  const problem = tagNameProblem(name);
  if (problem) throw new FormatError(problem);
  return name;
}

/** One move of a tag, as its key says. */
export interface TagMove {
  key: string;
  model: string;
  tag: string;
  /** When it was written (ms), by the writer's clock. */
  at: number;
  /** The version it points at from then on; null: deleted. */
  version: string | null;
}

/** Who moved a tag, when, and from which version, as its record's body says. */
export interface TagRecord {
  by: string | null;
  at: string | null;
  from: string | null;
}

export function tagKey(model: string, tag: string, at: number, version: string | null): string {
  const nonce = randomBytes(4).toString('hex');
  return `${TAGS_PREFIX}${model}/${tag}/${String(at).padStart(13, '0')}-${nonce}-${version ?? DELETED}`;
}

export function parseTagKey(key: string): TagMove | undefined {
  const m = /^tags\/([^/]+)\/([^/]+)\/(\d{13})-[0-9a-f]{8}-([0-9a-f]{64}|deleted)$/.exec(key);
  if (!m) return undefined;
  return {
    key,
    model: m[1] as string,
    tag: m[2] as string,
    at: Number(m[3]),
    version: m[4] === DELETED ? null : (m[4] as string),
  };
}

const RecordSchema = z.object({
  by: z.string(),
  at: z.string(),
  from: z.nullable(z.string()),
});

export function encodeTagRecord(
  model: string,
  tag: string,
  version: string | null,
  from: string | null,
  by: string,
  at: Date,
): Buffer {
  return Buffer.from(JSON.stringify({ model, tag, version, from, by, at: at.toISOString() }));
}

/** A record's body; one that cannot be read still counts (its key says where the tag points). */
export function parseTagRecord(bytes: Uint8Array): TagRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return { by: null, at: null, from: null };
  }
  const parsed = RecordSchema.safeParse(raw);
  return parsed.success ? parsed.data : { by: null, at: null, from: null };
}

/** Every move of a model's tags (of one tag), oldest first: key order is the moves' order. */
export async function tagMoves(store: Store, model: string, tag?: string): Promise<TagMove[]> {
  validateModelName(model);
  const prefix = `${TAGS_PREFIX}${model}/${tag === undefined ? '' : `${tag}/`}`;
  const moves: TagMove[] = [];
  for await (const entry of store.list(prefix)) {
    const move = parseTagKey(entry.key);
    if (move) moves.push(move);
  }
  return moves.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Each tag's newest move (deleted tags left out): tag name -> version id. */
export function currentTags(moves: readonly TagMove[]): Map<string, TagMove> {
  const newest = new Map<string, TagMove>();
  for (const move of moves) newest.set(move.tag, move); // sorted: the last one wins
  for (const [tag, move] of newest) if (move.version === null) newest.delete(tag);
  return newest;
}

/** The body of a move's record. */
export async function readTagRecord(store: Store, move: TagMove): Promise<TagRecord> {
  try {
    return parseTagRecord(await readAll(store, move.key));
  } catch {
    return { by: null, at: null, from: null };
  }
}
