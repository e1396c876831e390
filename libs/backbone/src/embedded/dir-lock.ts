import { open, readFile, unlink, writeFile } from 'node:fs/promises';
import { StartupError } from '@tributary/common';

/** Directories locked by this process (a lock file naming our pid may be left by an earlier run). */
const heldHere = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dir>/LOCK` (our pid) so two backbones never write the same files. A lock whose process
 * is gone (kill -9, crash) is taken over.
 */
export async function lockDir(lockPath: string): Promise<() => Promise<void>> {
  if (heldHere.has(lockPath)) throw new StartupError('DATA_DIR_LOCKED', `backbone data directory is already open in this process (${lockPath})`);
  try {
    const fh = await open(lockPath, 'wx');
    await fh.writeFile(`${process.pid}\n`);
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const pid = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
      throw new StartupError('DATA_DIR_LOCKED', `backbone data directory is in use by process ${pid} (${lockPath})`);
    }
    await writeFile(lockPath, `${process.pid}\n`);
  }
  heldHere.add(lockPath);
  return async () => {
    heldHere.delete(lockPath);
    await unlink(lockPath).catch(() => undefined);
  };
}
