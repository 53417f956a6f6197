/** What a watcher remembers of one object: enough to tell a change and to report a deletion. */
export interface KnownObject<T> {
  resourceVersion: string;
  /** Kept for objects whose deletion is reported with their last state (pods); absent otherwise. */
  object?: T;
}

export interface ObjectMeta {
  metadata?: { uid?: string; name?: string; namespace?: string; resourceVersion?: string };
}

export type ChangeKind = 'added' | 'modified' | 'deleted';

export interface ListedChange<T> {
  change: ChangeKind;
  object: T;
}

/**
 * Compares a fresh list with what the watcher knew before it lost its place (410 Gone, restart):
 * objects gone since are reported deleted with their last known state, new ones added, and ones whose
 * resourceVersion moved modified. Deletions come first, so a pod deleted and re-created under the same
 * name while the watch was away is reported in that order. Keys are uids, never names.
 */
export function diffRelist<T extends ObjectMeta>(
  known: ReadonlyMap<string, KnownObject<T>>,
  listed: readonly T[],
): { changes: ListedChange<T>[]; next: Map<string, KnownObject<T>> } {
  const next = new Map<string, KnownObject<T>>();
  const additions: ListedChange<T>[] = [];
  for (const object of listed) {
    const uid = object.metadata?.uid;
    if (!uid) continue;
    const resourceVersion = object.metadata?.resourceVersion ?? '';
    next.set(uid, { resourceVersion, object });
    const before = known.get(uid);
    if (!before) additions.push({ change: 'added', object });
    else if (before.resourceVersion !== resourceVersion) additions.push({ change: 'modified', object });
  }
  const deletions: ListedChange<T>[] = [];
  for (const [uid, before] of known) {
    if (!next.has(uid) && before.object) deletions.push({ change: 'deleted', object: before.object });
  }
  return { changes: [...deletions, ...additions], next };
}
