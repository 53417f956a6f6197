import { describe, expect, it } from 'vitest';
import { diffRelist, type KnownObject } from '../../lib/bridge/relist.ts';

interface Obj {
  metadata: { uid: string; name: string; resourceVersion: string };
}

const obj = (uid: string, name: string, resourceVersion: string): Obj => ({
  metadata: { uid, name, resourceVersion },
});

function known(...objects: Obj[]): Map<string, KnownObject<Obj>> {
  return new Map(
    objects.map((object) => [
      object.metadata.uid,
      { resourceVersion: object.metadata.resourceVersion, object },
    ]),
  );
}

describe('diffRelist', () => {
  it('reports what changed while the watch was away: deletions first, then additions and modifications in list order', () => {
    const before = known(obj('u1', 'a', '1'), obj('u2', 'b', '2'), obj('u3', 'c', '3'));
    const { changes, next } = diffRelist(before, [
      obj('u2', 'b', '7'),
      obj('u4', 'd', '8'),
      obj('u3', 'c', '3'),
    ]);
    expect(
      changes.map(({ change, object }) => [change, object.metadata.name, object.metadata.resourceVersion]),
    ).toEqual([
      ['deleted', 'a', '1'],
      ['modified', 'b', '7'],
      ['added', 'd', '8'],
    ]);
    expect([...next.keys()]).toEqual(['u2', 'u4', 'u3']);
    expect(next.get('u2')?.resourceVersion).toBe('7');
  });

  it('tells a pod re-created under the same name apart by uid: the old one deleted before the new one added', () => {
    const { changes } = diffRelist(known(obj('old', 'task', '5')), [obj('new', 'task', '9')]);
    expect(changes.map(({ change, object }) => [change, object.metadata.uid])).toEqual([
      ['deleted', 'old'],
      ['added', 'new'],
    ]);
  });

  it('reports nothing when nothing changed, and everything as added the first time', () => {
    const listed = [obj('u1', 'a', '1'), obj('u2', 'b', '2')];
    expect(diffRelist(known(...listed), listed).changes).toEqual([]);
    expect(diffRelist(new Map(), listed).changes.map((change) => change.change)).toEqual(['added', 'added']);
  });

  it('cannot report the deletion of an object whose last state it did not keep', () => {
    const versionsOnly = new Map<string, KnownObject<Obj>>([['u1', { resourceVersion: '1' }]]);
    expect(diffRelist(versionsOnly, []).changes).toEqual([]);
  });
});
