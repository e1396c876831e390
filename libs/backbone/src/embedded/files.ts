import { open, readdir, readFile, rename, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@tributary/common';
import { BackboneError } from '@tributary/common';
import type { CleanupPolicy } from '../backbone';
import { FLAG_CONTINUES } from './record-codec';
import { scanSegment, type Segment } from './segment-reader';

/** What a topic directory's topic.json holds (fixed when the topic is created). */
export interface TopicConfig {
  cleanup: CleanupPolicy;
  retentionMs?: number;
  retentionBytes?: number;
}

const SEGMENT_RE = /^(\d{20})\.log$/;
/** A finished compaction covering segments with base in [first, end), not yet swapped in. */
const SWAP_RE = /^(\d{20})-(\d{20})\.swap$/;
const CONFIG_FILE = 'topic.json';

export function segmentFileName(base: number): string {
  return `${String(base).padStart(20, '0')}.log`;
}

export function swapFileName(first: number, end: number): string {
  return `${String(first).padStart(20, '0')}-${String(end).padStart(20, '0')}.swap`;
}

/** fsync a directory so created, renamed and deleted names are durable (best effort off Linux). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot fsync directories; file data is still synced.
  } finally {
    await fh?.close();
  }
}

/** Writes a file atomically: temp file, fsync, rename, fsync the directory. */
export async function writeFileAtomic(dir: string, name: string, data: string | Buffer): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}

/** The topic's config: as stored, or `initial` written now for a new topic. */
export async function loadTopicConfig(dir: string, initial: TopicConfig): Promise<TopicConfig> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, CONFIG_FILE), 'utf8')) as Partial<TopicConfig>;
    const config: TopicConfig = { cleanup: parsed.cleanup === 'compact' ? 'compact' : 'delete' };
    if (typeof parsed.retentionMs === 'number') config.retentionMs = parsed.retentionMs;
    if (typeof parsed.retentionBytes === 'number') config.retentionBytes = parsed.retentionBytes;
    return config;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await writeFileAtomic(dir, CONFIG_FILE, `${JSON.stringify(initial)}\n`);
  return initial;
}

/**
 * Completes a compaction that reached its commit point (the .swap rename) before a crash or
 * during normal operation: deletes the segments it replaces, then renames it into place.
 */
export async function finishSwap(dir: string, swapName: string, segmentBases: readonly number[]): Promise<void> {
  const m = SWAP_RE.exec(swapName);
  if (!m) throw new BackboneError('BACKBONE_CORRUPT', `not a swap file: ${swapName}`);
  const first = Number(m[1]);
  const end = Number(m[2]);
  for (const base of segmentBases) {
    if (base > first && base < end) await unlinkIfExists(join(dir, segmentFileName(base)));
  }
  const swapPath = join(dir, swapName);
  if ((await stat(swapPath)).size === 0) {
    // Everything was deleted: no segment replaces the covered range.
    await unlinkIfExists(join(dir, segmentFileName(first)));
    await unlink(swapPath);
  } else {
    await rename(swapPath, join(dir, segmentFileName(first)));
  }
  await fsyncDir(dir);
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Lists a topic's segments after finishing interrupted compactions and removing temp files. */
export async function listSegments(dir: string): Promise<Segment[]> {
  let names = await readdir(dir);
  const bases = (): number[] => names.flatMap((n) => (SEGMENT_RE.test(n) ? [Number(n.slice(0, 20))] : []));
  for (const n of names) {
    if (SWAP_RE.test(n)) await finishSwap(dir, n, bases());
    else if (n.endsWith('.tmp')) await unlinkIfExists(join(dir, n));
  }
  names = await readdir(dir);
  const segments: Segment[] = [];
  for (const base of bases().sort((a, b) => a - b)) {
    const path = join(dir, segmentFileName(base));
    const st = await stat(path);
    segments.push({ base, path, size: st.size, createdAt: st.mtimeMs, lastWriteAt: st.mtimeMs });
  }
  return segments;
}

/**
 * Validates the last segment (the only one a crash can leave torn: segments are fsynced before
 * the next one is created) and truncates it after its last complete append call.
 * Resolves the next offset the topic will assign.
 */
export async function recoverLastSegment(segment: Segment, logger: Logger): Promise<number> {
  let validEnd = 0;
  let nextOffset = segment.base;
  let lastOffset = -1;
  let broken = false;
  const { end, pos } = await scanSegment(segment, segment.size, (reader) => {
    const f = reader.frame;
    // Offsets only grow (compaction leaves gaps, nothing else does).
    if (f.offset < segment.base || f.offset <= lastOffset) {
      broken = true;
      return false;
    }
    lastOffset = f.offset;
    if ((f.flags & FLAG_CONTINUES) === 0) {
      validEnd = reader.filePos;
      nextOffset = f.offset + 1;
    }
    return true;
  });
  if (validEnd < segment.size) {
    const reason = broken ? 'offset out of order' : end === 'end' ? 'incomplete append call' : `${end} record`;
    logger.warn(
      { segment: segment.path, size: segment.size, validBytes: validEnd, at: broken ? undefined : pos, reason },
      'backbone: truncating the damaged tail of a segment (from an unclean shutdown)',
    );
    await truncate(segment.path, validEnd);
    segment.size = validEnd;
  }
  return nextOffset;
}
