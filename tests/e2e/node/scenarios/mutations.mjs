// Two devices of one user make every kind of write; after each step both push and pull and
// their items are recorded. The devices run without WebSocket, so nothing reaches a device except
// through the explicit pulls: "concurrent" below really means neither device saw the other's write.
//
// args: {databaseUrl, user}
// result: {steps: {<step>: {a: [items], b: [items]}}, local: {<what>: value seen locally}}
import { add, openDevice, pull, push, remove, replacePrefix, scenario, snapshot } from '../client.mjs';

scenario(async ({ databaseUrl, user }) => {
  const a = await openDevice({ databaseUrl, userId: user, webSocket: false });
  const b = await openDevice({ databaseUrl, userId: user, webSocket: false });
  const steps = {};
  const local = {};
  const id = async (db, title) => (await db.items.where('title').equals(title).first()).id;
  const step = async (name, action) => {
    await action();
    for (const db of [a, b]) await push(db);
    for (const db of [a, b]) await pull(db);
    steps[name] = { a: await snapshot(a), b: await snapshot(b) };
  };

  await step('add', async () => {
    await a.items.add({ title: 'one', n: 1, tags: ['a', 'b', 'c'], path: 'docs/readme' });
    await a.items.bulkAdd([
      { title: 'two', n: 2, path: 'docs/guide' },
      { title: 'three', n: 3, path: 'src/main' },
    ]);
  });

  await step('put', async () => {
    await a.items.put({ id: await id(a, 'two'), title: 'two', n: 22 }); // replaces: path is gone
    await b.items.bulkPut([{ ...(await b.items.get(await id(b, 'three'))), n: 33 }, { title: 'four', n: 4 }]);
  });

  await step('upsert', async () => {
    const three = await id(a, 'three');
    await Promise.all([
      a.items.upsert(three, { 'meta.by': 'upsert', count: add(5) }),
      b.items.update(three, { count: add(7) }),
      a.items.upsert(a.items.newId(), { title: 'five', n: 5 }),
    ]);
  });

  await step('nested-update', async () => {
    const one = await id(a, 'one');
    await Promise.all([a.items.update(one, { 'a.b.c': 1 }), b.items.update(one, { 'a.b.d': 2 })]);
  });

  // B's new 'two' reaches the server first; A's where-clause modify must hit it there too.
  await step('modify-where', async () => {
    await b.items.add({ title: 'two', n: 2.5 });
    await push(b);
    await a.items.where('title').equals('two').modify({ flag: true });
  });

  await step('compound-index', async () => {
    await b.items.add({ title: 'seven', a: 1, b: 2 });
    await push(b);
    await a.items.add({ title: 'eight', a: 1, b: 2 });
    await a.items.where('[a+b]').equals([1, 2]).modify({ hit: true });
  });

  // B's 'big' (n > 100) reaches the server first; A's where-clause delete must remove it there too.
  await step('delete-where', async () => {
    await b.items.add({ title: 'big', n: 150 });
    await push(b);
    await a.items.where('n').above(100).delete();
  });

  await step('add-counter', async () => {
    const one = await id(a, 'one');
    await Promise.all([a.items.update(one, { count: add(1) }), b.items.update(one, { count: add(1) })]);
    local.counter = { a: (await a.items.get(one)).count, b: (await b.items.get(one)).count };
  });

  await step('remove-from-array', async () => {
    const one = await id(a, 'one');
    await Promise.all([
      a.items.update(one, { tags: remove(['b']) }),
      b.items.update(one, { tags: add(['d']) }),
    ]);
    local.tags = { a: (await a.items.get(one)).tags, b: (await b.items.get(one)).tags };
  });

  // B's 'six' reaches the server first; A's rename of docs/ must move it too.
  await step('replace-prefix', async () => {
    await b.items.add({ title: 'six', path: 'docs/new' });
    await push(b);
    await a.items.where('path').startsWith('docs/').modify({ path: replacePrefix('docs/', 'files/') });
  });

  return { steps, local };
});
